//! The browser half of the login flow: the access, refresh and CSRF cookies.
//!
//! Access and refresh cookies are `HttpOnly` (no script can read them); the CSRF cookie is
//! readable so that the page can echo it in `X-CSRF-Token` (double submit, checked by the
//! layer on unsafe methods). `Secure` follows `AUTH_COOKIE_SECURE`.

use axum::http::{HeaderMap, HeaderValue, header::SET_COOKIE};
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use portcullis::credentials::{ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE};

/// The refresh cookie goes only to `/auth/…` (refresh and logout).
const REFRESH_PATH: &str = "/auth";

fn set(headers: &mut HeaderMap, cookie: Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, v);
    }
}

/// What to set after a login or a refresh.
pub struct Issued<'a> {
    /// The access token and its lifetime in seconds.
    pub access: (&'a str, u64),
    /// The refresh token and its lifetime in seconds.
    pub refresh: (&'a str, u64),
    /// The CSRF token.
    pub csrf: &'a str,
}

/// Sets the three cookies.
pub fn issue(headers: &mut HeaderMap, issued: &Issued<'_>, secure: bool) {
    let (access, access_secs) = issued.access;
    let (refresh, refresh_secs) = issued.refresh;
    set(
        headers,
        Cookie::build((ACCESS_COOKIE, access))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(seconds(access_secs))
            .build(),
    );
    set(
        headers,
        Cookie::build((REFRESH_COOKIE, refresh))
            .path(REFRESH_PATH)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(seconds(refresh_secs))
            .build(),
    );
    set(
        headers,
        Cookie::build((CSRF_COOKIE, issued.csrf))
            .path("/")
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(seconds(refresh_secs))
            .build(),
    );
}

/// Clears the three cookies (logout, password change).
pub fn clear(headers: &mut HeaderMap, secure: bool) {
    for (name, path, http_only) in [
        (ACCESS_COOKIE, "/", true),
        (REFRESH_COOKIE, REFRESH_PATH, true),
        (CSRF_COOKIE, "/", false),
    ] {
        set(
            headers,
            Cookie::build((name, ""))
                .path(path)
                .http_only(http_only)
                .same_site(SameSite::Lax)
                .secure(secure)
                .max_age(Duration::ZERO)
                .build(),
        );
    }
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}
