//! The cookie protocol of the browser login flow, in one place: the access, refresh and CSRF
//! cookies that a login or refresh sets and a logout clears (read back by
//! [`credentials`](crate::credentials), checked by the layer).
//!
//! Access and refresh cookies are `HttpOnly` (no script can read them); the CSRF cookie is
//! readable so that the page can echo it in `X-CSRF-Token` (double submit, checked by the
//! layer on unsafe methods and by `/auth/refresh` when it uses the cookie). `Secure` follows
//! `AUTH_COOKIE_SECURE`.
//!
//! Each cookie's attributes are written once, in [`Jar`], and both [`issue`] and [`clear`]
//! build from it: a browser only replaces a cookie whose name, path and domain match, and a
//! clear that differs in `SameSite` or `Secure` from the set is at best confusing.

use crate::credentials::{ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE};
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, header::SET_COOKIE};

/// The attributes one cookie is set and cleared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jar {
    /// The cookie's name.
    pub name: &'static str,
    /// `Path`.
    pub path: &'static str,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`.
    pub same_site: SameSite,
}

/// The access token: every path, sent on top-level navigations (`Lax`).
pub const ACCESS: Jar = Jar {
    name: ACCESS_COOKIE,
    path: "/",
    http_only: true,
    same_site: SameSite::Lax,
};

/// The refresh token: only to `/auth/…` (refresh and logout), never cross-site.
pub const REFRESH: Jar = Jar {
    name: REFRESH_COOKIE,
    path: "/auth",
    http_only: true,
    same_site: SameSite::Strict,
};

/// The CSRF token: readable by the page, which echoes it in `X-CSRF-Token`.
pub const CSRF: Jar = Jar {
    name: CSRF_COOKIE,
    path: "/",
    http_only: false,
    same_site: SameSite::Lax,
};

impl Jar {
    fn cookie<'a>(&self, value: &'a str, secure: bool, max_age: Duration) -> Cookie<'a> {
        Cookie::build((self.name, value))
            .path(self.path)
            .http_only(self.http_only)
            .same_site(self.same_site)
            .secure(secure)
            .max_age(max_age)
            .build()
    }
}

fn set(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, v);
    }
}

/// What to set after a login or a refresh.
#[derive(Clone, Copy)]
pub struct Issued<'a> {
    /// The access token and its lifetime in seconds.
    pub access: (&'a str, u64),
    /// The refresh token and its lifetime in seconds.
    pub refresh: (&'a str, u64),
    /// The CSRF token.
    pub csrf: &'a str,
}

impl std::fmt::Debug for Issued<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(***)")
    }
}

/// Sets the three cookies.
///
/// ```
/// use portcullis_tower::cookies::{self, Issued};
/// let mut headers = http::HeaderMap::new();
/// cookies::issue(&mut headers, &Issued { access: ("a.b.c", 900), refresh: ("d.e.f", 3600), csrf: "x" }, true);
/// assert_eq!(headers.get_all(http::header::SET_COOKIE).iter().count(), 3);
/// ```
pub fn issue(headers: &mut HeaderMap, issued: &Issued<'_>, secure: bool) {
    let (access, access_secs) = issued.access;
    let (refresh, refresh_secs) = issued.refresh;
    for (jar, value, secs) in [
        (ACCESS, access, access_secs),
        (REFRESH, refresh, refresh_secs),
        // As long as the refresh cookie: the page needs it to refresh.
        (CSRF, issued.csrf, refresh_secs),
    ] {
        set(headers, &jar.cookie(value, secure, seconds(secs)));
    }
}

/// Clears the three cookies (logout, password change), each with the attributes it was set
/// with.
pub fn clear(headers: &mut HeaderMap, secure: bool) {
    for jar in [ACCESS, REFRESH, CSRF] {
        set(headers, &jar.cookie("", secure, Duration::ZERO));
    }
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(headers: &HeaderMap) -> Vec<Cookie<'static>> {
        headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect()
    }

    #[test]
    fn each_cookie_is_cleared_with_the_attributes_it_was_set_with() {
        for secure in [false, true] {
            let mut set = HeaderMap::new();
            issue(
                &mut set,
                &Issued {
                    access: ("a.b.c", 900),
                    refresh: ("d.e.f", 3600),
                    csrf: "token",
                },
                secure,
            );
            let mut cleared = HeaderMap::new();
            clear(&mut cleared, secure);
            let (set, cleared) = (lines(&set), lines(&cleared));
            assert_eq!(set.len(), 3);
            assert_eq!(cleared.len(), 3);
            for (s, c) in set.iter().zip(&cleared) {
                assert_eq!(s.name(), c.name());
                assert_eq!(s.path(), c.path(), "{}", s.name());
                assert_eq!(s.same_site(), c.same_site(), "{}", s.name());
                assert_eq!(s.http_only(), c.http_only(), "{}", s.name());
                assert_eq!(s.secure(), c.secure(), "{}", s.name());
                assert_eq!(s.domain(), c.domain(), "{}", s.name());
                assert_eq!(c.value(), "");
                assert_eq!(c.max_age(), Some(Duration::ZERO));
            }
            let refresh = cleared.iter().find(|c| c.name() == REFRESH_COOKIE).unwrap();
            assert_eq!(refresh.same_site(), Some(SameSite::Strict));
            assert_eq!(refresh.path(), Some("/auth"));
        }
    }
}
