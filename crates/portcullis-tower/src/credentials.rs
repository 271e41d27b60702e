//! Which credentials a request carries: a pure function of its head, with no I/O, so it can be
//! fuzzed and tested on its own.
//!
//! Sources, in the contract's order: `X-API-Key`, `Authorization: Bearer` (the scheme is
//! case-insensitive, RFC 7235), and the access cookie. A bearer value with the API key prefix is
//! an API key; anything else there is a JWT. A source that is present but unreadable (two
//! `Authorization` headers, a non-Bearer scheme, bytes that are not visible ASCII) is an error,
//! never "no credential".

use std::borrow::Cow;

use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use portcullis_core::api_key::ApiKeyPrefix;
use portcullis_core::{AuthError, Credential, TokenError};
use subtle::ConstantTimeEq;

/// `X-API-Key`.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
/// `X-CSRF-Token`.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// The access-token cookie.
pub const ACCESS_COOKIE: &str = "portcullis_access";
/// The refresh-token cookie.
pub const REFRESH_COOKIE: &str = "portcullis_refresh";
/// The CSRF cookie (readable by the page's JavaScript, which echoes it in `X-CSRF-Token`).
pub const CSRF_COOKIE: &str = "portcullis_csrf";

/// Where the layer reads credentials besides `Authorization`: the API key header and the
/// access cookie (set on the layer's builder; the contract's names by default).
///
/// ```
/// use portcullis_tower::credentials::Sources;
/// assert_eq!(Sources::DEFAULT.api_key_header.as_str(), "x-api-key");
/// assert_eq!(Sources::DEFAULT.access_cookie, "portcullis_access");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The API key header (`X-API-Key`).
    pub api_key_header: HeaderName,
    /// The access-token cookie (`portcullis_access`).
    pub access_cookie: Cow<'static, str>,
}

impl Sources {
    /// The contract's names.
    pub const DEFAULT: Self = Self {
        api_key_header: API_KEY_HEADER,
        access_cookie: Cow::Borrowed(ACCESS_COOKIE),
    };
}

impl Default for Sources {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The credentials of one request, by source. Identical values from two sources count once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// From `X-API-Key`.
    pub api_key_header: Option<Credential<'a>>,
    /// From `Authorization: Bearer`.
    pub authorization: Option<Credential<'a>>,
    /// From the access cookie.
    pub cookie: Option<Credential<'a>>,
}

impl<'a> Credentials<'a> {
    /// True when no credential was presented at all.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The distinct credentials in the contract's order; the first one decides the actor.
    pub fn iter(&self) -> impl Iterator<Item = Credential<'a>> + '_ {
        let all = [self.api_key_header, self.authorization, self.cookie];
        all.into_iter().enumerate().filter_map(move |(i, c)| {
            let c = c?;
            // Skip a value already presented by an earlier source (`X-API-Key: k` with
            // `Bearer k`, or the same JWT as bearer and cookie).
            let dup = all[..i]
                .iter()
                .flatten()
                .any(|prev| value(prev) == value(&c));
            (!dup).then_some(c)
        })
    }
}

fn value<'a>(c: &Credential<'a>) -> &'a str {
    match *c {
        Credential::ApiKey(v) | Credential::Bearer(v) | Credential::Cookie(v) => v,
    }
}

/// Extracts the credentials of a request.
///
/// ```
/// use portcullis_core::{Credential, api_key::ApiKeyPrefix};
/// use portcullis_tower::credentials::extract;
/// let (parts, _) = http::Request::get("/")
///     .header("authorization", "bEaReR a.b.c")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let creds = extract(&parts, &ApiKeyPrefix::default()).unwrap();
/// assert_eq!(creds.authorization, Some(Credential::Bearer("a.b.c")));
/// ```
pub fn extract<'a>(parts: &'a Parts, prefix: &ApiKeyPrefix) -> Result<Credentials<'a>, AuthError> {
    extract_from(parts, prefix, &Sources::DEFAULT)
}

/// [`extract`] with the API key header and access cookie of `sources`.
///
/// ```
/// use portcullis_core::{Credential, api_key::ApiKeyPrefix};
/// use portcullis_tower::credentials::{Sources, extract_from};
/// let sources = Sources { api_key_header: http::HeaderName::from_static("x-key"), ..Sources::DEFAULT };
/// let (parts, _) = http::Request::get("/").header("x-key", "ck_1").body(()).unwrap().into_parts();
/// let creds = extract_from(&parts, &ApiKeyPrefix::default(), &sources).unwrap();
/// assert_eq!(creds.api_key_header, Some(Credential::ApiKey("ck_1")));
/// ```
pub fn extract_from<'a>(
    parts: &'a Parts,
    prefix: &ApiKeyPrefix,
    sources: &Sources,
) -> Result<Credentials<'a>, AuthError> {
    extract_headers(&parts.headers, prefix, sources)
}

/// [`extract_from`] given only the request's headers (all it reads).
pub fn extract_headers<'a>(
    headers: &'a HeaderMap,
    prefix: &ApiKeyPrefix,
    sources: &Sources,
) -> Result<Credentials<'a>, AuthError> {
    // One pass over the few headers a request carries, not a hashed lookup per source: the
    // three lookups were ~470 instructions of the cached API-key path (BENCHMARKS.md).
    let (mut key, mut auth, mut cookies) = (Found::Absent, Found::Absent, false);
    for (name, value) in headers {
        if *name == sources.api_key_header {
            key.add(value);
        }
        if *name == AUTHORIZATION {
            auth.add(value);
        } else if *name == COOKIE {
            cookies = true;
        }
    }
    Ok(Credentials {
        api_key_header: api_key_header(key.single())?,
        authorization: authorization(auth.single(), prefix)?,
        cookie: if cookies {
            cookie(headers, &sources.access_cookie)?.map(Credential::Cookie)
        } else {
            None
        },
    })
}

/// The values one header name had, as far as a credential source cares.
#[derive(Clone, Copy)]
enum Found<'a> {
    Absent,
    One(&'a HeaderValue),
    Many,
}

impl<'a> Found<'a> {
    fn add(&mut self, value: &'a HeaderValue) {
        *self = match self {
            Found::Absent => Found::One(value),
            _ => Found::Many,
        };
    }

    /// The one value, `Err` for two or more (as [`single`]).
    fn single(self) -> Result<Option<&'a HeaderValue>, ()> {
        match self {
            Found::Absent => Ok(None),
            Found::One(value) => Ok(Some(value)),
            Found::Many => Err(()),
        }
    }
}

/// The one value of header `name`, `Err` for two or more. Not read with
/// `HeaderValue::to_str` here: a token or key is checked in one pass (see [`graphic`]).
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    Ok(Some(first))
}

/// `bytes` as text if every byte is visible ASCII other than space: what a token or a key
/// is made of. A fold without an early exit and with one comparison a byte, so that it
/// vectorises: on a 300-byte JWT, `HeaderValue::to_str` and then `str::contains(' ')` were
/// ~1 300 instructions a request in the HTTP bench's callgrind profile (BENCHMARKS.md), and
/// this is a few dozen, plus `from_utf8`'s ASCII path.
fn graphic(bytes: &[u8]) -> Option<&str> {
    let graphic = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(b'!') < b'~' - b'!' + 1));
    if graphic {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// The API key header's credential, given its [`single`] value.
fn api_key_header(
    found: Result<Option<&HeaderValue>, ()>,
) -> Result<Option<Credential<'_>>, AuthError> {
    match found {
        Ok(None) => Ok(None),
        // A key is visible ASCII without spaces (one with a space could never parse).
        Ok(Some(v)) => match graphic(v.as_bytes().trim_ascii()) {
            Some(key) if !key.is_empty() => Ok(Some(Credential::ApiKey(key))),
            _ => Err(AuthError::InvalidApiKey),
        },
        Err(()) => Err(AuthError::InvalidApiKey),
    }
}

/// The `Authorization` header's credential, given its [`single`] value.
fn authorization<'a>(
    found: Result<Option<&'a HeaderValue>, ()>,
    prefix: &ApiKeyPrefix,
) -> Result<Option<Credential<'a>>, AuthError> {
    let malformed = || AuthError::InvalidToken(TokenError::Malformed);
    let Some(value) = found.map_err(|()| malformed())? else {
        return Ok(None);
    };
    let v = value.as_bytes();
    let (scheme, rest) = match memchr::memchr(b' ', v) {
        Some(space) => (&v[..space], &v[space + 1..]),
        None => (v, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Basic, Digest, …: a credential, but not one this service accepts; unreadable bytes
        // are malformed whatever the scheme.
        return Err(match value.to_str() {
            Ok(_) => AuthError::UnsupportedScheme,
            Err(_) => malformed(),
        });
    }
    // Spaces around the token are allowed (`Bearer  t `); a tab is not a space here.
    let from = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let to = rest
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(from, |last| last + 1);
    let token = &rest[from..to];
    // No space or other byte a token cannot hold (`Bearer a b` is malformed, not `a`).
    let token = graphic(token)
        .filter(|t| !t.is_empty())
        .ok_or_else(malformed)?;
    Ok(Some(if prefix.matches(token) {
        Credential::ApiKey(token)
    } else {
        Credential::Bearer(token)
    }))
}

/// The value of cookie `name` across every `Cookie` header. An empty value counts as absent
/// (that is how a cleared cookie arrives); two different values are an error, and so is a value
/// that is not visible ASCII (present but unreadable, never absent).
///
/// Headers are read as bytes, pair by pair: another application's cookie with bytes that are
/// not ASCII must not hide ours beside it (in board mode that would turn a presented, bad
/// credential into the board).
///
/// ```
/// use portcullis_tower::credentials::cookie;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("cookie", http::HeaderValue::from_bytes(b"n=\xc3\xa9; portcullis_access=a.b.c").unwrap());
/// assert_eq!(cookie(&headers, "portcullis_access"), Ok(Some("a.b.c")));
/// ```
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let unreadable = || AuthError::InvalidToken(TokenError::Malformed);
    let mut found: Option<&str> = None;
    for header in headers.get_all(COOKIE) {
        // `;` and `=` are ASCII, so they never occur inside a multi-byte UTF-8 sequence or
        // obs-text: splitting bytes finds the same pairs a browser wrote. memchr, because a
        // closure-per-byte split costs several times the old `to_str` path on a 400-byte JWT.
        let bytes = header.as_bytes();
        let mut start = 0;
        for end in memchr::memchr_iter(b';', bytes).chain([bytes.len()]) {
            let pair = &bytes[start..end];
            start = end + 1;
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            let (k, v) = (&pair[..eq], &pair[eq + 1..]);
            if k.trim_ascii() != name.as_bytes() {
                continue;
            }
            let v = v.trim_ascii();
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            if v.is_empty() {
                continue;
            }
            // Our cookies are visible ASCII (RFC 6265 cookie-octets and more); anything else
            // under our name was not written by us.
            // A fold, not `all`: without the early exit the check vectorises.
            if !v.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
                return Err(unreadable());
            }
            let v = std::str::from_utf8(v).map_err(|_| unreadable())?;
            match found {
                Some(prev) if prev != v => return Err(unreadable()),
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

/// True for methods that change state and so need CSRF protection under cookie auth.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// True when `X-CSRF-Token` equals the CSRF cookie (constant time; both must be non-empty).
pub fn csrf_matches(headers: &HeaderMap) -> bool {
    let (Ok(Some(header)), Ok(Some(cookie))) =
        (single(headers, &CSRF_HEADER), cookie(headers, CSRF_COOKIE))
    else {
        return false;
    };
    header
        .to_str()
        .is_ok_and(|h| !h.is_empty() && bool::from(h.as_bytes().ct_eq(cookie.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(headers: &[(&str, &[u8])]) -> Parts {
        let mut b = http::Request::post("/x");
        for (k, v) in headers {
            b = b.header(*k, http::HeaderValue::from_bytes(v).unwrap());
        }
        b.body(()).unwrap().into_parts().0
    }

    fn ex(headers: &[(&str, &[u8])]) -> Result<Vec<Credential<'static>>, AuthError> {
        let p = Box::leak(Box::new(parts(headers)));
        extract(p, &ApiKeyPrefix::default()).map(|c| c.iter().collect())
    }

    #[test]
    fn no_headers_is_no_credential() {
        assert_eq!(ex(&[]), Ok(vec![]));
        assert!(
            extract(&parts(&[]), &ApiKeyPrefix::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_shape_picks_the_kind() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let v = format!("{scheme} a.b.c");
            assert_eq!(
                ex(&[("authorization", v.as_bytes())]),
                Ok(vec![Credential::Bearer("a.b.c")])
            );
        }
        assert_eq!(
            ex(&[("authorization", b"Bearer ck_abc")]),
            Ok(vec![Credential::ApiKey("ck_abc")])
        );
        assert_eq!(
            ex(&[("x-api-key", b"ck_abc")]),
            Ok(vec![Credential::ApiKey("ck_abc")])
        );
    }

    #[test]
    fn other_schemes_and_malformed_bearers_are_errors_not_absence() {
        assert_eq!(
            ex(&[("authorization", b"Basic dXNlcjpwYXNz")]),
            Err(AuthError::UnsupportedScheme)
        );
        let malformed = Err(AuthError::InvalidToken(TokenError::Malformed));
        assert_eq!(ex(&[("authorization", b"Bearer")]), malformed);
        assert_eq!(ex(&[("authorization", b"Bearer ")]), malformed);
        assert_eq!(ex(&[("authorization", b"Bearer a b")]), malformed);
        assert_eq!(ex(&[("authorization", b"Bearer \xff\xfe")]), malformed);
        assert_eq!(
            ex(&[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b")
            ]),
            malformed
        );
        assert_eq!(ex(&[("x-api-key", b"")]), Err(AuthError::InvalidApiKey));
        assert_eq!(
            ex(&[("x-api-key", b"a"), ("x-api-key", b"b")]),
            Err(AuthError::InvalidApiKey)
        );
    }

    #[test]
    fn the_access_cookie_is_found_among_others_and_empty_is_absent() {
        assert_eq!(
            ex(&[("cookie", b"theme=dark; portcullis_access=t.o.k; x=1")]),
            Ok(vec![Credential::Cookie("t.o.k")])
        );
        assert_eq!(ex(&[("cookie", b"portcullis_access=")]), Ok(vec![]));
        assert_eq!(
            ex(&[
                ("cookie", b"\xffjunk"),
                ("cookie", b"portcullis_access=a.b.c")
            ]),
            Ok(vec![Credential::Cookie("a.b.c")])
        );
        assert_eq!(
            ex(&[(
                "cookie",
                b"portcullis_access=a.b.c; portcullis_access=d.e.f"
            )]),
            Err(AuthError::InvalidToken(TokenError::Malformed))
        );
    }

    #[test]
    fn cookies_beside_bytes_that_are_not_ascii_are_still_found() {
        let found = Ok(vec![Credential::Cookie("a.b.c")]);
        for header in [
            &b"name=\xc3\xa9t\xc3\xa9; portcullis_access=a.b.c"[..],
            b"portcullis_access=a.b.c; x=\xff\xfe",
            b"\xff\xff; portcullis_access=a.b.c",
            b"x=\x80;portcullis_access=\"a.b.c\";y=\xfe",
            b"\tportcullis_access=a.b.c\t;\xe2\x82\xac=1",
        ] {
            assert_eq!(ex(&[("cookie", header)]), found, "{header:?}");
        }
        // The CSRF cookie too.
        assert!(csrf_matches(
            &parts(&[
                ("x-csrf-token", b"abc"),
                ("cookie", b"t=\xc3\xa9; portcullis_csrf=abc")
            ])
            .headers
        ));
        // A name that only contains ours, or ours in another cookie's value, is not ours.
        assert_eq!(ex(&[("cookie", b"xportcullis_access=a.b.c")]), Ok(vec![]));
        assert_eq!(ex(&[("cookie", b"x=portcullis_access=a.b.c")]), Ok(vec![]));
    }

    #[test]
    fn our_cookie_with_bytes_that_are_not_visible_ascii_is_an_error_not_absence() {
        let malformed = Err(AuthError::InvalidToken(TokenError::Malformed));
        for header in [
            &b"portcullis_access=a.b.\xc3\xa9"[..],
            b"portcullis_access=\xff",
            b"theme=dark; portcullis_access=a b",
            b"portcullis_access=a\tb",
        ] {
            assert_eq!(ex(&[("cookie", header)]), malformed, "{header:?}");
        }
        assert!(!csrf_matches(
            &parts(&[
                ("x-csrf-token", b"abc"),
                ("cookie", b"portcullis_csrf=abc\xff")
            ])
            .headers
        ));
    }

    #[test]
    fn identical_values_from_two_sources_count_once_in_order() {
        assert_eq!(
            ex(&[
                ("authorization", b"Bearer a.b.c"),
                ("cookie", b"portcullis_access=a.b.c")
            ]),
            Ok(vec![Credential::Bearer("a.b.c")])
        );
        assert_eq!(
            ex(&[
                ("cookie", b"portcullis_access=x.y.z"),
                ("authorization", b"Bearer a.b.c"),
                ("x-api-key", b"ck_1")
            ]),
            Ok(vec![
                Credential::ApiKey("ck_1"),
                Credential::Bearer("a.b.c"),
                Credential::Cookie("x.y.z")
            ])
        );
    }

    #[test]
    fn csrf_needs_equal_non_empty_header_and_cookie() {
        assert!(csrf_matches(
            &parts(&[("x-csrf-token", b"abc"), ("cookie", b"portcullis_csrf=abc")]).headers
        ));
        assert!(!csrf_matches(
            &parts(&[("x-csrf-token", b"abd"), ("cookie", b"portcullis_csrf=abc")]).headers
        ));
        assert!(!csrf_matches(
            &parts(&[("cookie", b"portcullis_csrf=abc")]).headers
        ));
        assert!(!csrf_matches(&parts(&[("x-csrf-token", b"abc")]).headers));
        assert!(!csrf_matches(
            &parts(&[("x-csrf-token", b""), ("cookie", b"portcullis_csrf=")]).headers
        ));
        assert!(is_unsafe(&Method::POST) && is_unsafe(&Method::DELETE) && !is_unsafe(&Method::GET));
    }

    proptest! {
        #[test]
        fn extract_never_panics_on_any_header_bytes(
            auth in proptest::collection::vec(any::<u8>(), 0..200),
            key in proptest::collection::vec(any::<u8>(), 0..200),
            cookie in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut map = HeaderMap::new();
            for (name, v) in [(AUTHORIZATION, auth), (API_KEY_HEADER, key), (COOKIE, cookie)] {
                if let Ok(v) = http::HeaderValue::from_bytes(&v) {
                    map.append(name, v);
                }
            }
            let mut p = parts(&[]);
            p.headers = map;
            let _ = extract(&p, &ApiKeyPrefix::default());
            let _ = csrf_matches(&p.headers);
        }

        /// Byte-wise reading agrees with the reading it replaced (`HeaderValue::to_str`, then
        /// `split_once`, `trim_matches`, `contains`), but for one intended difference: a
        /// token or key holding a tab or an inner space is refused at once, since it could
        /// never verify or parse, rather than passed on to fail there.
        #[test]
        fn byte_wise_reading_agrees_with_the_text_reading(
            scheme in prop_oneof![Just(&b"Bearer"[..]), Just(&b"bEaReR"[..]), Just(&b"Basic"[..]), Just(&b""[..]), Just(&b"Bear\xffer"[..])],
            body in proptest::collection::vec(
                prop_oneof![Just(b' '), Just(b'\t'), Just(b'a'), Just(b'.'), Just(b'_'), Just(b'c'), Just(b'k'), Just(0xffu8), Just(0x01u8), Just(0x7fu8)],
                0..12,
            ),
            in_key_header in any::<bool>(),
        ) {
            let mut value = scheme.to_vec();
            value.extend_from_slice(&body);
            let Ok(header) = http::HeaderValue::from_bytes(&value) else { return Ok(()) };
            let prefix = ApiKeyPrefix::default();
            let mut headers = HeaderMap::new();
            if in_key_header {
                headers.insert(API_KEY_HEADER, header.clone());
                let old = match header.to_str().map(str::trim) {
                    Ok(v) if !v.is_empty() && !v.contains([' ', '\t']) => Ok(Some(Credential::ApiKey(v))),
                    _ => Err(AuthError::InvalidApiKey),
                };
                prop_assert_eq!(api_key_header(single(&headers, &API_KEY_HEADER)), old);
            } else {
                headers.insert(AUTHORIZATION, header.clone());
                let malformed = Err(AuthError::InvalidToken(TokenError::Malformed));
                let old = match header.to_str() {
                    Err(_) => malformed.clone(),
                    Ok(v) => {
                        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
                        let token = rest.trim_matches(' ');
                        if !scheme.eq_ignore_ascii_case("bearer") {
                            Err(AuthError::UnsupportedScheme)
                        } else if token.is_empty() || token.contains([' ', '\t']) {
                            malformed.clone()
                        } else if prefix.matches(token) {
                            Ok(Some(Credential::ApiKey(token)))
                        } else {
                            Ok(Some(Credential::Bearer(token)))
                        }
                    }
                };
                prop_assert_eq!(authorization(single(&headers, &AUTHORIZATION), &prefix), old);
            }
        }

        /// The one pass over the headers reads what a lookup per source reads, whatever the
        /// headers, their order and repeats (and with the key header named `authorization`
        /// or `cookie`, which the builder refuses but `Sources` can still be made with).
        #[test]
        fn one_pass_agrees_with_a_lookup_per_source(
            headers in proptest::collection::vec(
                (
                    prop_oneof![Just("authorization"), Just("x-api-key"), Just("cookie"), Just("host"), Just("x-other")],
                    prop_oneof![
                        Just(&b"Bearer a.b.c"[..]), Just(&b"Bearer pk_1"[..]), Just(&b"pk_1"[..]), Just(&b"Basic x"[..]),
                        Just(&b"portcullis_access=a.b.c"[..]), Just(&b"portcullis_access=d.e.f; x=1"[..]), Just(&b""[..]), Just(&b"\xff"[..]),
                    ],
                ),
                0..6,
            ),
            key_header in prop_oneof![Just("x-api-key"), Just("x-other"), Just("authorization"), Just("cookie")],
        ) {
            let mut map = HeaderMap::new();
            for (name, value) in &headers {
                map.append(HeaderName::from_static(name), HeaderValue::from_bytes(value).unwrap());
            }
            let sources = Sources { api_key_header: HeaderName::from_static(key_header), ..Sources::DEFAULT };
            let prefix = ApiKeyPrefix::default();
            let lookups = (|| {
                Ok(Credentials {
                    api_key_header: api_key_header(single(&map, &sources.api_key_header))?,
                    authorization: authorization(single(&map, &AUTHORIZATION), &prefix)?,
                    cookie: cookie(&map, &sources.access_cookie)?.map(Credential::Cookie),
                })
            })();
            prop_assert_eq!(extract_headers(&map, &prefix, &sources), lookups);
        }

        #[test]
        fn a_huge_authorization_header_is_an_error_or_a_bearer_never_a_panic(n in 0usize..100_000) {
            let v = format!("Bearer {}", "a".repeat(n));
            let p = parts(&[("authorization", v.as_bytes())]);
            let r = extract(&p, &ApiKeyPrefix::default());
            prop_assert!(r.is_err() || r.unwrap().authorization.is_some());
        }
    }
}
