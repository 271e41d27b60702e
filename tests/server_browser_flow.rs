//! The browser flow and board mode against the real `portcullis` binary over HTTP (issue 12,
//! points 5 and 6; `/work/shared/CONTRACT.md`):
//!
//! - `POST /auth/refresh` takes JSON only (415 otherwise) or the refresh cookie, and the cookie
//!   only with `X-CSRF-Token` equal to the `portcullis_csrf` cookie (403 `csrf_failed`);
//! - a `portcullis_access` cookie is a presented credential even beside cookies that are not
//!   ASCII;
//! - logout clears each cookie with the attributes it was set with;
//! - the board fallback answers only requests addressed to loopback unless
//!   `AUTH_FALLBACK_ALLOW_REMOTE=true` (DNS rebinding).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, assert_problem};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NO_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const BAD_CREDENTIAL_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

/// A server in board mode (its bind is loopback, so no `AUTH_FALLBACK_ALLOW_REMOTE` needed).
fn board(extra: &[(&str, &str)]) -> Server {
    let mut opts = Options::default().env("AUTH_FALLBACK", "board");
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    Server::start_with(opts)
}

/// A login as the admin: the body and the `Set-Cookie` lines.
async fn login(srv: &Server) -> (Value, Vec<String>) {
    let res = srv
        .client()
        .post(srv.url("/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(res.headers());
    (res.json().await.unwrap(), cookies)
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The `Set-Cookie` line of cookie `name`.
fn cookie_line<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name} in {lines:?}"))
}

fn cookie_value(line: &str) -> &str {
    line.split(';').next().unwrap().split_once('=').unwrap().1
}

/// The attributes of a `Set-Cookie` line that must be equal when it is cleared: lowercased,
/// sorted, without `Max-Age` and `Expires`.
fn identity_attrs(line: &str) -> Vec<String> {
    let mut attrs: Vec<String> = line
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase().replace(' ', ""))
        .filter(|a| !a.starts_with("max-age=") && !a.starts_with("expires="))
        .collect();
    attrs.sort();
    attrs
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A 401 `missing_credentials` with the no-credential challenge (see [`refused`]).
async fn refused_without_credentials(res: reqwest::Response) {
    refused(
        res,
        401,
        "missing_credentials",
        Some(NO_CREDENTIAL_CHALLENGE),
    )
    .await;
}

/// A problem with its status, code and exact `WWW-Authenticate`, and no `Set-Cookie`.
async fn refused(res: reqwest::Response, status: u16, code: &str, challenge: Option<&str>) {
    assert_eq!(header(&res, "www-authenticate"), challenge, "{code}");
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a refusal set cookies: {:?}",
        set_cookies(res.headers())
    );
    assert_problem(res, status, code).await;
}

/// `GET /auth/whoami` with these headers.
async fn whoami(srv: &Server, headers: &[(&str, &[u8])]) -> reqwest::Response {
    get_with(srv, "/auth/whoami", headers).await
}

/// `GET path` with these extra headers.
async fn get_with(srv: &Server, path: &str, headers: &[(&str, &[u8])]) -> reqwest::Response {
    let mut req = srv.client().get(srv.url(path));
    for (k, v) in headers {
        req = req.header(*k, HeaderValue::from_bytes(v).unwrap());
    }
    req.send().await.unwrap()
}

async fn assert_board(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 200, "{what}");
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["kind"], "board", "{what}: {me}");
    assert_eq!(me["auth_method"], "fallback", "{what}: {me}");
}

/// One raw HTTP/1.x exchange (for what `reqwest` will not send: an absolute-form target, no
/// `Host`); the status code.
async fn raw_status(srv: &Server, request: &str) -> u16 {
    let addr = srv.base.strip_prefix("http://").unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// 5. Refresh: JSON or the cookie with X-CSRF-Token
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_with_a_body_that_is_not_json_is_415_and_sets_no_cookie() {
    let srv = Server::start();
    let (pair, _) = login(&srv).await;
    let r0 = str_of(&pair, "refresh_token");
    let body = json!({ "refresh_token": r0 }).to_string();
    // What a cross-site form can post without a preflight, and a body with no type at all.
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/json"),
        None,
    ] {
        let mut req = srv
            .client()
            .post(srv.url("/auth/refresh"))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        refused(
            req.send().await.unwrap(),
            415,
            "unsupported_media_type",
            None,
        )
        .await;
    }
    // text/plain with no body at all, and with the refresh cookie and CSRF header: still 415.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    refused(res, 415, "unsupported_media_type", None).await;
    // The token was not spent by any of them: it rotates once now, as JSON.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("set-cookie").is_some());
    let next: Value = res.json().await.unwrap();
    assert_ne!(str_of(&next, "refresh_token"), r0);
}

#[tokio::test]
async fn refresh_by_cookie_without_or_with_a_wrong_csrf_header_is_403_csrf_failed() {
    let srv = Server::start();
    let (_, cookies) = login(&srv).await;
    let r0 = cookie_value(cookie_line(&cookies, "portcullis_refresh")).to_owned();
    let csrf = cookie_value(cookie_line(&cookies, "portcullis_csrf")).to_owned();
    let jar = format!("portcullis_refresh={r0}; portcullis_csrf={csrf}");
    let refresh = |cookie: String, token: Option<&str>| {
        let mut req = srv
            .client()
            .post(srv.url("/auth/refresh"))
            .header("cookie", cookie);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t.to_owned());
        }
        req.send()
    };
    for (what, cookie, token) in [
        ("no header", jar.clone(), None),
        ("a wrong header", jar.clone(), Some("not-the-token")),
        ("an empty header", jar.clone(), Some("")),
        (
            "a header but no CSRF cookie",
            format!("portcullis_refresh={r0}"),
            Some(csrf.as_str()),
        ),
        (
            "the header naming another CSRF cookie",
            format!("portcullis_refresh={r0}; portcullis_csrf=other"),
            Some(csrf.as_str()),
        ),
    ] {
        let res = refresh(cookie, token).await.unwrap();
        assert_eq!(res.status(), 403, "{what}");
        refused(res, 403, "csrf_failed", None).await;
    }
    // An empty JSON body is the cookie flow too, and needs the header as well.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header("cookie", jar.clone())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    refused(res, 403, "csrf_failed", None).await;

    // With it: 200, a new pair in the body and in the cookies, and r0 is what rotated (the
    // refusals above did not spend it).
    let res = refresh(jar.clone(), Some(&csrf)).await.unwrap();
    assert_eq!(res.status(), 200);
    let new_cookies = set_cookies(res.headers());
    let pair: Value = res.json().await.unwrap();
    let r1 = str_of(&pair, "refresh_token");
    assert_ne!(r1, r0);
    assert_eq!(
        cookie_value(cookie_line(&new_cookies, "portcullis_refresh")),
        r1
    );
    assert_eq!(
        cookie_value(cookie_line(&new_cookies, "portcullis_access")),
        str_of(&pair, "access_token")
    );
    let csrf1 = cookie_value(cookie_line(&new_cookies, "portcullis_csrf"));
    // The next one, with the new cookies and the empty JSON body the page used to send.
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header(
            "cookie",
            format!("portcullis_refresh={r1}; portcullis_csrf={csrf1}"),
        )
        .header("x-csrf-token", csrf1)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refresh_with_no_token_anywhere_is_401_missing_credentials() {
    let srv = Server::start();
    let res = srv
        .client()
        .post(srv.url("/auth/refresh"))
        .header("x-csrf-token", "abc")
        .header("cookie", "portcullis_csrf=abc")
        .send()
        .await
        .unwrap();
    refused_without_credentials(res).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Cookies beside bytes that are not ASCII
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_cookie_that_is_not_ascii_beside_a_bad_access_cookie_in_board_mode_is_401_not_the_board()
{
    let srv = board(&[]);
    for cookie in [
        &b"name=\xc3\xa9t\xc3\xa9; portcullis_access=a.b.c"[..],
        b"portcullis_access=a.b.c; junk=\xff\xfe",
        b"portcullis_access=\xc3\xa9.b.c",
    ] {
        let res = whoami(&srv, &[("cookie", cookie)]).await;
        refused(res, 401, "invalid_token", Some(BAD_CREDENTIAL_CHALLENGE)).await;
    }
    // Two Cookie headers, the non-ASCII one first (HTTP/2 sends them so).
    let res = srv
        .client()
        .get(srv.url("/auth/whoami"))
        .header("cookie", HeaderValue::from_bytes(b"junk=\xff").unwrap())
        .header("cookie", "portcullis_access=a.b.c")
        .send()
        .await
        .unwrap();
    refused(res, 401, "invalid_token", Some(BAD_CREDENTIAL_CHALLENGE)).await;
    // The control: the non-ASCII cookie alone is no credential, so the board.
    assert_board(
        whoami(&srv, &[("cookie", b"name=\xc3\xa9t\xc3\xa9")]).await,
        "non-ASCII cookie alone",
    )
    .await;
}

#[tokio::test]
async fn a_cookie_that_is_not_ascii_beside_a_good_access_cookie_is_that_user() {
    for srv in [Server::start(), board(&[])] {
        let (pair, _) = login(&srv).await;
        let access = str_of(&pair, "access_token");
        let cookie = format!("name=\u{e9}t\u{e9}; portcullis_access={access}; x=\u{1f36a}");
        let res = whoami(&srv, &[("cookie", cookie.as_bytes())]).await;
        assert_eq!(res.status(), 200);
        let me: Value = res.json().await.unwrap();
        assert_eq!(me["kind"], "user", "{me}");
        assert_eq!(me["auth_method"], "cookie", "{me}");
        assert!(me["session_id"].is_string(), "{me}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Logout clears each cookie as it was set
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_clears_each_cookie_with_the_attributes_it_was_set_with() {
    for secure in ["false", "true"] {
        let srv = Server::start_with(Options::default().env("AUTH_COOKIE_SECURE", secure));
        let (pair, set) = login(&srv).await;
        let res = srv
            .client()
            .post(srv.url("/auth/logout"))
            .bearer_auth(str_of(&pair, "access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        let cleared = set_cookies(res.headers());
        for name in ["portcullis_access", "portcullis_refresh", "portcullis_csrf"] {
            let (s, c) = (cookie_line(&set, name), cookie_line(&cleared, name));
            assert_eq!(cookie_value(c), "", "{c}");
            assert!(c.to_ascii_lowercase().contains("max-age=0"), "{c}");
            assert_eq!(
                identity_attrs(c),
                identity_attrs(s),
                "{name}: set {s}, cleared {c}"
            );
        }
        let refresh = identity_attrs(cookie_line(&cleared, "portcullis_refresh"));
        for attr in ["samesite=strict", "path=/auth", "httponly"] {
            assert!(refresh.contains(&attr.to_owned()), "{refresh:?}");
        }
        assert_eq!(
            refresh.contains(&"secure".to_owned()),
            secure == "true",
            "{refresh:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Board mode and the Host
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn board_mode_with_a_host_that_is_not_loopback_is_401_missing_credentials() {
    let srv = board(&[]);
    for host in [
        &b"evil.example"[..],
        b"evil.example:8080",
        b"localhost.evil.com",
        b"127.0.0.1.evil.com:8080",
        b"10.0.0.1:8080",
    ] {
        // Refused as no credential, and it does not reach a board-only action either.
        for path in ["/auth/whoami", "/admin/stats"] {
            let res = get_with(&srv, path, &[("host", host)]).await;
            refused_without_credentials(res).await;
        }
    }
    // A public path stays public, as the anonymous actor.
    let res = get_with(&srv, "/healthz", &[("host", b"evil.example")]).await;
    assert_eq!(res.status(), 200);
    // An absolute-form target naming another host, and no Host at all (HTTP/1.0).
    for request in [
        "GET http://evil.example/auth/whoami HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        "GET http://evil.example:8080/auth/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "GET /auth/whoami HTTP/1.0\r\n\r\n",
    ] {
        assert_eq!(raw_status(&srv, request).await, 401, "{request:?}");
    }
}

#[tokio::test]
async fn board_mode_with_a_loopback_host_is_the_board() {
    let srv = board(&[]);
    // What reqwest sends by itself: the bind, 127.0.0.1:PORT.
    assert_board(whoami(&srv, &[]).await, "the default host").await;
    for host in [
        "localhost:1234",
        "localhost",
        "LOCALHOST:8080",
        "127.0.0.1",
        "127.0.0.2:80",
        "[::1]:8080",
    ] {
        assert_board(whoami(&srv, &[("host", host.as_bytes())]).await, host).await;
    }
    let request = "GET http://localhost:8080/auth/whoami HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_status(&srv, request).await, 200);
}

#[tokio::test]
async fn board_mode_with_remote_allowed_is_the_board_for_any_host() {
    let srv = board(&[("AUTH_FALLBACK_ALLOW_REMOTE", "true")]);
    for host in ["evil.example", "evil.example:8080", "10.0.0.1"] {
        assert_board(whoami(&srv, &[("host", host.as_bytes())]).await, host).await;
    }
    assert_eq!(
        raw_status(&srv, "GET /auth/whoami HTTP/1.0\r\n\r\n").await,
        200
    );
}
