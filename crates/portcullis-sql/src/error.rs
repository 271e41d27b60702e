//! sqlx errors → [`StoreError`], in one place.
//!
//! A unique-constraint violation is a [`StoreError::Conflict`]; everything else means the
//! database could not answer and is [`StoreError::Unavailable`], which the layer turns into
//! a 503 (fail closed). No message built here contains a connection URL or a password: they
//! are made from the error's kind and the server's own message, never from options.

use portcullis_core::StoreError;

/// Maps an error of a write that may collide with a unique value (`what` names the thing).
pub(crate) fn conflict_or_unavailable(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable(&err),
    }
}

/// Maps any other error.
pub(crate) fn unavailable(err: &sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    let message = match err {
        E::PoolTimedOut => "database unreachable: no connection within the acquire timeout".into(),
        E::PoolClosed => "database pool is closed".into(),
        E::Io(io) => format!("database connection failed: {}", io.kind()),
        E::Tls(_) => "database TLS negotiation failed".into(),
        E::Protocol(p) => format!("database protocol error: {p}"),
        E::Configuration(c) => format!("invalid database configuration: {c}"),
        E::Database(db) => match db.code() {
            Some(code) => format!("database error {code}: {}", db.message()),
            None => format!("database error: {}", db.message()),
        },
        E::WorkerCrashed => "database worker crashed".into(),
        E::ColumnNotFound(_)
        | E::ColumnDecode { .. }
        | E::ColumnIndexOutOfBounds { .. }
        | E::Decode(_)
        | E::TypeNotFound { .. } => format!("unexpected database row: {err}"),
        other => format!("database error: {other}"),
    };
    StoreError::Unavailable(message)
}

/// Removes a URL's password (raw and percent-decoded) and the URL itself from a message,
/// in case some layer below ever echoes them.
pub(crate) fn redact(err: StoreError, url: &str) -> StoreError {
    match err {
        StoreError::Unavailable(mut message) => {
            if !url.is_empty() {
                message = message.replace(url, "<database url>");
            }
            if let Some(password) = password_of(url) {
                message = message.replace(password, "***");
                message = message.replace(&percent_decode(password), "***");
            }
            StoreError::Unavailable(message)
        }
        other => other,
    }
}

/// The password of `scheme://user:password@host/…`, if any and not empty.
fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_found_only_in_the_authority() {
        assert_eq!(password_of("postgres://u:hunter2@h:1/db"), Some("hunter2"));
        assert_eq!(password_of("postgres://u:p@ss@h/db"), Some("p@ss"));
        assert_eq!(password_of("postgres://u@h/db"), None);
        assert_eq!(password_of("postgres://u:@h/db"), None);
        assert_eq!(password_of("postgres://h/db?x=a:b@c"), None);
        assert_eq!(password_of("sqlite://data.db?mode=rwc"), None);
        assert_eq!(password_of("not a url"), None);
    }

    #[test]
    fn redact_removes_the_url_and_both_spellings_of_the_password() {
        let url = "postgres://u:hun%74er2@h/db";
        let err = StoreError::Unavailable(format!("failed {url} hun%74er2 hunter2"));
        let StoreError::Unavailable(message) = redact(err, url) else {
            unreachable!()
        };
        assert!(!message.contains("hunter2") && !message.contains("hun%74er2"));
        assert!(message.contains("<database url>"));
        assert_eq!(
            redact(StoreError::Conflict("x"), url),
            StoreError::Conflict("x")
        );
    }

    #[test]
    fn percent_decode_leaves_stray_percents_alone() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }
}
