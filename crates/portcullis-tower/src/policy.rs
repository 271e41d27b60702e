//! The HTTP policy of [`AuthLayer`](crate::AuthLayer): which paths need no actor, whether the
//! others need one, who a request without credentials is, where credentials are read from and
//! the realm of the challenge.
//!
//! It lives here, not in core's `AuthConfig`, because it is about HTTP requests: core decides who
//! a credential belongs to; the layer decides whether a request may go on without one. Paths are
//! the application's: the library's default has no public path at all, so an application names
//! its own (the sample server passes the contract's).
//!
//! [`Policy::needs_auth`] is the one place that says whether a request without an actor is
//! refused.

use std::net::SocketAddr;

use portcullis_core::AuthEnv;

/// Who a request with no credentials at all is (`AUTH_FALLBACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Anonymous.
    #[default]
    None,
    /// The board (local trusted mode): every permission in every org. Only for requests
    /// addressed to loopback unless [`Policy::allow_remote_fallback`] is set.
    Board,
}

/// A policy that cannot be used. Never contains a value read from a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A variable does not parse.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What was expected.
        reason: &'static str,
    },
    /// Board fallback in production.
    #[error("AUTH_FALLBACK=board is refused in production")]
    FallbackInProduction,
    /// Board fallback on a non-loopback address without `AUTH_FALLBACK_ALLOW_REMOTE=true`.
    #[error(
        "AUTH_FALLBACK=board on non-loopback address {0} needs AUTH_FALLBACK_ALLOW_REMOTE=true"
    )]
    FallbackOnRemoteBind(SocketAddr),
    /// A setting of the builder that HTTP cannot carry (a header or cookie name, a realm).
    #[error("{setting}: {reason}")]
    Setting {
        /// The builder method.
        setting: &'static str,
        /// What was expected.
        reason: &'static str,
    },
}

/// The default realm of `WWW-Authenticate: Bearer realm="…"`.
pub const DEFAULT_REALM: &str = "portcullis";

/// The HTTP policy: plain data, checked when the layer is built
/// ([`AuthLayerBuilder::build`](crate::AuthLayerBuilder::build)).
///
/// ```
/// use portcullis_tower::{Fallback, Policy};
/// let policy = Policy::default()
///     .public_paths(["/", "/healthz"])
///     .fallback(Fallback::Board);
/// assert!(!policy.needs_auth("/healthz"));
/// assert!(policy.needs_auth("/healthz/x"));
/// assert!(policy.check_bind("0.0.0.0:8080".parse().unwrap()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) public_paths: Vec<String>,
    pub(crate) require_auth: bool,
    pub(crate) fallback: Fallback,
    pub(crate) allow_remote_fallback: bool,
    pub(crate) realm: String,
    pub(crate) api_key_header: String,
    pub(crate) access_cookie: String,
}

impl Default for Policy {
    /// Every path needs an actor; no fallback; `X-API-Key`, the `portcullis_access` cookie and
    /// realm `portcullis`.
    fn default() -> Self {
        Self {
            public_paths: Vec::new(),
            require_auth: true,
            fallback: Fallback::None,
            allow_remote_fallback: false,
            realm: DEFAULT_REALM.to_owned(),
            api_key_header: crate::credentials::API_KEY_HEADER.as_str().to_owned(),
            access_cookie: crate::credentials::ACCESS_COOKIE.to_owned(),
        }
    }
}

impl Policy {
    /// Adds exact-match public paths: they need no actor, and a bad credential there leaves
    /// the request anonymous (so that login works with a stale cookie).
    #[must_use]
    pub fn public_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.public_paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Whether every path but the public ones needs an actor (default `true`).
    #[must_use]
    pub fn require_auth(mut self, require: bool) -> Self {
        self.require_auth = require;
        self
    }

    /// Who a request with no credentials is (default [`Fallback::None`]).
    #[must_use]
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// Board fallback on a non-loopback bind and for any `Host` (default `false`).
    #[must_use]
    pub fn allow_remote_fallback(mut self, allow: bool) -> Self {
        self.allow_remote_fallback = allow;
        self
    }

    /// The realm of the `WWW-Authenticate` challenge (default `portcullis`).
    #[must_use]
    pub fn realm(mut self, realm: &str) -> Self {
        realm.clone_into(&mut self.realm);
        self
    }

    /// The header an API key is read from (default `x-api-key`).
    #[must_use]
    pub fn api_key_header(mut self, name: &str) -> Self {
        name.clone_into(&mut self.api_key_header);
        self
    }

    /// The cookie an access token is read from (default `portcullis_access`).
    #[must_use]
    pub fn access_cookie(mut self, name: &str) -> Self {
        name.clone_into(&mut self.access_cookie);
        self
    }

    /// Applies the contract's variables from the process environment: `AUTH_REQUIRE_AUTH`,
    /// `AUTH_REQUIRE_AUTH_EXCEPTIONS` (added to the public paths), `AUTH_FALLBACK`,
    /// `AUTH_FALLBACK_ALLOW_REMOTE`.
    pub fn with_env(self) -> Result<Self, PolicyError> {
        self.with_lookup(|name| std::env::var(name).ok())
    }

    /// [`with_env`](Self::with_env) through `lookup` (the environment, a file, a test's map).
    /// Unset and blank variables leave the setting as it is.
    ///
    /// ```
    /// use portcullis_tower::{Fallback, Policy};
    /// let policy = Policy::default()
    ///     .with_lookup(|name| (name == "AUTH_REQUIRE_AUTH_EXCEPTIONS").then(|| "/docs, /status".into()))
    ///     .unwrap();
    /// assert!(!policy.needs_auth("/docs") && policy.needs_auth("/"));
    /// ```
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PolicyError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("AUTH_REQUIRE_AUTH") {
            self.require_auth = boolean("AUTH_REQUIRE_AUTH", &v)?;
        }
        if let Some(v) = get("AUTH_REQUIRE_AUTH_EXCEPTIONS") {
            for path in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if !path.starts_with('/') {
                    return Err(PolicyError::Invalid {
                        var: "AUTH_REQUIRE_AUTH_EXCEPTIONS",
                        reason: "paths start with /",
                    });
                }
                self.public_paths.push(path.to_owned());
            }
        }
        if let Some(v) = get("AUTH_FALLBACK") {
            self.fallback = match v.trim().to_ascii_lowercase().as_str() {
                "none" => Fallback::None,
                "board" => Fallback::Board,
                _ => {
                    return Err(PolicyError::Invalid {
                        var: "AUTH_FALLBACK",
                        reason: "expected none or board",
                    });
                }
            };
        }
        if let Some(v) = get("AUTH_FALLBACK_ALLOW_REMOTE") {
            self.allow_remote_fallback = boolean("AUTH_FALLBACK_ALLOW_REMOTE", &v)?;
        }
        Ok(self)
    }

    /// Refuses board fallback in production (`AUTH_ENV`). The layer's builder checks it against
    /// its authenticator; a server may check earlier, before connecting to anything.
    pub fn check_env(&self, env: AuthEnv) -> Result<(), PolicyError> {
        if env == AuthEnv::Production && self.fallback == Fallback::Board {
            return Err(PolicyError::FallbackInProduction);
        }
        Ok(())
    }

    /// Refuses board fallback on a non-loopback address unless remote fallback is allowed.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), PolicyError> {
        if self.fallback == Fallback::Board
            && !addr.ip().is_loopback()
            && !self.allow_remote_fallback
        {
            return Err(PolicyError::FallbackOnRemoteBind(addr));
        }
        Ok(())
    }

    /// True when `path` is public: an exact match, never a prefix.
    pub fn is_public(&self, path: &str) -> bool {
        self.public_paths.iter().any(|p| p == path)
    }

    /// The one decision of whether a request for `path` without an authenticated actor is
    /// refused (401 `missing_credentials`): auth is required and the path is not public.
    pub fn needs_auth(&self, path: &str) -> bool {
        self.needs_auth_when(self.is_public(path))
    }

    /// [`needs_auth`](Self::needs_auth) for a path already known to be public or not: the
    /// layer matches the path once per request and reuses the answer.
    pub(crate) fn needs_auth_when(&self, public: bool) -> bool {
        self.require_auth && !public
    }

    /// Who a request with no credentials is: the board when configured and the request is
    /// addressed to loopback (or remote fallback is allowed), else anonymous.
    pub(crate) fn fallback_for(
        &self,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> portcullis_core::Actor {
        use portcullis_core::Actor;
        match self.fallback {
            // Only for a request addressed to loopback by name, unless remote use is allowed:
            // a DNS-rebound page reaches a loopback bind too (loopback.rs).
            Fallback::Board
                if self.allow_remote_fallback || crate::loopback::names_loopback(uri, headers) =>
            {
                Actor::Board
            }
            Fallback::Board | Fallback::None => Actor::Anonymous,
        }
    }
}

fn boolean(var: &'static str, v: &str) -> Result<bool, PolicyError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(PolicyError::Invalid {
            var,
            reason: "expected true or false",
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Policy, PolicyError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Policy::default().with_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_library_default_has_no_public_path_and_requires_auth() {
        let p = Policy::default();
        assert!(p.needs_auth("/") && p.needs_auth("/healthz") && p.needs_auth("/auth/login"));
        assert_eq!(p.fallback, Fallback::None);
        assert!(!p.allow_remote_fallback);
        assert_eq!(
            (
                p.realm.as_str(),
                p.api_key_header.as_str(),
                p.access_cookie.as_str()
            ),
            ("portcullis", "x-api-key", "portcullis_access")
        );
    }

    #[test]
    fn every_policy_variable_is_read() {
        let p = from(&[
            ("AUTH_REQUIRE_AUTH", "no"),
            ("AUTH_REQUIRE_AUTH_EXCEPTIONS", "/docs, /status,,"),
            ("AUTH_FALLBACK", " Board "),
            ("AUTH_FALLBACK_ALLOW_REMOTE", "true"),
        ])
        .unwrap();
        assert!(!p.require_auth);
        assert!(p.is_public("/docs") && p.is_public("/status"));
        assert_eq!(p.fallback, Fallback::Board);
        assert!(p.allow_remote_fallback);
        // Unset and blank leave the defaults.
        let p = from(&[("AUTH_FALLBACK", "  "), ("AUTH_REQUIRE_AUTH", "")]).unwrap();
        assert!(p.require_auth && p.fallback == Fallback::None);
    }

    #[test]
    fn exceptions_add_to_the_paths_given_in_code() {
        let map = |k: &str| (k == "AUTH_REQUIRE_AUTH_EXCEPTIONS").then(|| "/docs".to_owned());
        let p = Policy::default()
            .public_paths(["/healthz"])
            .with_lookup(map)
            .unwrap();
        assert!(!p.needs_auth("/healthz") && !p.needs_auth("/docs"));
    }

    #[test]
    fn public_paths_match_exactly_never_by_prefix() {
        let p = Policy::default().public_paths(["/docs", "/"]);
        assert!(!p.needs_auth("/docs") && !p.needs_auth("/"));
        for path in ["/docsX", "/docs/", "/docs/secret", "//", "/DOCS", ""] {
            assert!(p.needs_auth(path), "{path}");
        }
        let open = p.require_auth(false);
        assert!(!open.needs_auth("/anything") && open.is_public("/docs"));
    }

    #[test]
    fn bad_values_are_clear_errors_without_the_value() {
        for (var, value) in [
            ("AUTH_REQUIRE_AUTH", "maybe"),
            ("AUTH_REQUIRE_AUTH_EXCEPTIONS", "docs"),
            ("AUTH_FALLBACK", "admin"),
            ("AUTH_FALLBACK_ALLOW_REMOTE", "sometimes"),
        ] {
            match from(&[(var, value)]) {
                Err(e @ PolicyError::Invalid { var: v, .. }) => {
                    assert_eq!(v, var);
                    assert!(!e.to_string().contains(value), "{e}");
                }
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn production_refuses_board_fallback() {
        let board = from(&[("AUTH_FALLBACK", "board")]).unwrap();
        assert_eq!(
            board.check_env(AuthEnv::Production),
            Err(PolicyError::FallbackInProduction)
        );
        assert!(board.check_env(AuthEnv::Development).is_ok());
        assert!(Policy::default().check_env(AuthEnv::Production).is_ok());
    }

    #[test]
    fn board_fallback_is_refused_on_a_remote_bind_unless_allowed() {
        let c = from(&[("AUTH_FALLBACK", "board")]).unwrap();
        assert!(c.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(c.check_bind("[::1]:8080".parse().unwrap()).is_ok());
        let remote = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            c.check_bind(remote),
            Err(PolicyError::FallbackOnRemoteBind(remote))
        );
        let allowed = from(&[
            ("AUTH_FALLBACK", "board"),
            ("AUTH_FALLBACK_ALLOW_REMOTE", "true"),
        ])
        .unwrap();
        assert!(allowed.check_bind(remote).is_ok());
        assert!(
            Policy::default().check_bind(remote).is_ok(),
            "no fallback, no check"
        );
    }
}
