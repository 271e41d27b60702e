//! The login page at `/` and the admin console at `/admin`, driven in headless Chromium through
//! chromedriver.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`):
//! `scripts/install-browser` installs them. When they are missing the tests fail and say so; they
//! never skip silently. The test starts its own chromedriver on a free port and its own server
//! (tests/common), and leaves a screenshot of the signed-in page at `target/browser-login.png`
//! and one of each console screen at `target/console-*.png`.
#![cfg(unix)]
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long to wait for the page to reach a state.
const PATIENCE: Duration = Duration::from_secs(30);

/// Fails (never skips) when the browser is not installed, naming the script that installs it.
fn require_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return;
    }
    let msg = format!(
        "{} missing: the browser test needs Debian's chromium and chromium-driver; \
         run scripts/install-browser",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI: {msg}");
    }
    panic!("{msg}");
}

/// `target/` (this test runs from `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver child process, in its own process group so that the Chromium it starts goes
/// with it; the group is killed on drop.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
    /// Holds the log and Chromium's profile (`--user-data-dir`).
    dir: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        require_browser();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("chromedriver.log");
        let port = free_port();
        let out = File::create(&log).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            dir,
        };
        driver.wait_ready().await;
        driver
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited ({status}):\n{}", self.log_text());
            }
            if let Ok(res) = http.get(format!("{}/status", self.url)).send().await
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A headless Chromium session with a fresh profile.
    async fn browser(&self) -> Client {
        let profile = self.dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    // The network is closed: without these Chromium hangs on refused connections.
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1000,1400",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
        {
            Ok(c) => c,
            Err(e) => panic!("no browser session: {e}\n{}", self.log_text()),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh server, and a browser session on a chromedriver of its own (keep the driver: its
/// drop ends the browser).
async fn start() -> (Server, Driver, Client) {
    let server = Server::start();
    let driver = Driver::start().await;
    let c = driver.browser().await;
    (server, driver, c)
}

/// `textContent` of the element with this id.
async fn text_of(c: &Client, id: &str) -> String {
    let v = c
        .execute(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
            vec![json!(id)],
        )
        .await
        .unwrap();
    v.as_str()
        .unwrap_or_else(|| panic!("no element #{id}"))
        .to_owned()
}

async fn document_cookie(c: &Client) -> String {
    c.execute("return document.cookie;", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls a JavaScript expression until it is true; on timeout, fails with what the page shows.
async fn wait_until(c: &Client, what: &str, expr: &str) {
    let script = format!("return !!({expr});");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if c.execute(&script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; #error: {:?}; body: {}",
                text_of(c, "error").await,
                c.execute("return document.body.innerText;", vec![])
                    .await
                    .unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `fetch` from the page's own JavaScript (same origin, cookies on); `{status, body}` where
/// `body` is the parsed JSON or null.
async fn page_fetch(c: &Client, method: &str, path: &str, headers: Value, body: Value) -> Value {
    const JS: &str = r#"
        const [method, path, headers, body, done] = arguments;
        fetch(path, {
            method,
            headers,
            body: body === null ? undefined : JSON.stringify(body),
            credentials: "same-origin",
        })
            .then(async (r) => {
                const text = await r.text();
                let json = null;
                try { json = JSON.parse(text); } catch (_) { json = null; }
                done({ status: r.status, body: json, text });
            })
            .catch((e) => done({ status: 0, error: String(e) }));
    "#;
    c.execute_async(JS, vec![json!(method), json!(path), headers, body])
        .await
        .unwrap()
}

/// The element with this id.
async fn element(c: &Client, id: &str) -> fantoccini::elements::Element {
    c.find(Locator::Id(id)).await.unwrap()
}

/// Clicks the element with this id.
async fn click(c: &Client, id: &str) {
    element(c, id).await.click().await.unwrap();
}

/// Empties the input with this id.
async fn clear(c: &Client, id: &str) {
    element(c, id).await.clear().await.unwrap();
}

/// Types `text` into the input with this id.
async fn type_into(c: &Client, id: &str, text: &str) {
    element(c, id).await.send_keys(text).await.unwrap();
}

/// Opens `/` and signs in as the admin through the form.
async fn sign_in(c: &Client, server: &Server, remember: bool) {
    c.goto(&server.url("/")).await.unwrap();
    wait_until(
        c,
        "the sign-in form",
        "!document.getElementById('signed-out').hidden",
    )
    .await;
    for id in ["email", "password"] {
        clear(c, id).await;
    }
    type_into(c, "email", ADMIN_EMAIL).await;
    type_into(c, "password", ADMIN_PASSWORD).await;
    if remember {
        click(c, "remember").await;
    }
    click(c, "login").await;
    wait_until(
        c,
        "the signed-in state",
        "!document.getElementById('signed-in').hidden \
         && document.getElementById('whoami').textContent.length > 0",
    )
    .await;
}

/// Creates a memory through the page's form; the JSON the page shows.
async fn create_memory(c: &Client, content: &str) -> Value {
    c.execute(
        "document.getElementById('memory-result').textContent = '';",
        vec![],
    )
    .await
    .unwrap();
    type_into(c, "memory-content", content).await;
    click(c, "create-memory").await;
    wait_until(
        c,
        "the created memory",
        "document.getElementById('memory-result').textContent.length > 0",
    )
    .await;
    serde_json::from_str(&text_of(c, "memory-result").await).unwrap()
}

/// The admin's memories, as the server has them (bearer token, no browser).
async fn server_memories(server: &Server, token: &str) -> Vec<Value> {
    let res = server
        .client()
        .get(server.url("/api/v1/memories"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn assert_only_csrf_readable(cookies: &str) {
    assert!(
        cookies.contains("portcullis_csrf="),
        "document.cookie lacks the CSRF cookie: {cookies:?}"
    );
    for hidden in ["portcullis_access", "portcullis_refresh"] {
        assert!(
            !cookies.contains(hidden),
            "JavaScript can read {hidden}: {cookies:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_signs_in_creates_a_memory_and_signs_out_with_cookies_js_cannot_read() {
    let (server, _driver, c) = start().await;
    let admin_token = server.admin_token().await;

    // Signed out at first: the page says so and JavaScript sees no cookie.
    c.goto(&server.url("/")).await.unwrap();
    wait_until(
        &c,
        "the sign-in form",
        "!document.getElementById('signed-out').hidden",
    )
    .await;
    assert_eq!(document_cookie(&c).await, "");
    assert_eq!(text_of(&c, "error").await, "", "no error before signing in");
    let shot = c.screenshot().await.unwrap();
    std::fs::write(target_dir().join("browser-login-form.png"), shot).unwrap();

    // A wrong password: the page shows the problem's detail and code, and stays signed out.
    type_into(&c, "email", ADMIN_EMAIL).await;
    type_into(&c, "password", "not the password").await;
    click(&c, "login").await;
    wait_until(
        &c,
        "the login error",
        "document.getElementById('error').textContent.length > 0",
    )
    .await;
    let error = text_of(&c, "error").await;
    assert!(error.contains("(invalid_credentials)"), "{error:?}");
    assert!(
        c.execute(
            "return document.getElementById('signed-in').hidden;",
            vec![]
        )
        .await
        .unwrap()
            == json!(true)
    );
    assert_eq!(document_cookie(&c).await, "");

    // Sign in through the form; whoami shows a cookie-authenticated user.
    sign_in(&c, &server, true).await;
    let who: Value = serde_json::from_str(&text_of(&c, "whoami").await).unwrap();
    assert_eq!(who["kind"], "user", "{who}");
    assert_eq!(who["auth_method"], "cookie", "{who}");
    assert_eq!(who["org_id"], "default", "{who}");
    assert!(who["session_id"].is_string(), "{who}");
    assert!(
        who["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("memory:create")),
        "{who}"
    );
    assert_eq!(text_of(&c, "error").await, "");

    // JavaScript reads the CSRF cookie and nothing else, and the debug line shows the same.
    let cookies = document_cookie(&c).await;
    assert_only_csrf_readable(&cookies);
    assert_eq!(text_of(&c, "cookies").await, cookies);
    // The browser does hold the access cookie (HttpOnly): it is just out of JavaScript's reach.
    let access = c.get_named_cookie("portcullis_access").await.unwrap();
    assert_eq!(access.http_only(), Some(true), "{access:?}");

    // Create a memory with the CSRF header; the page shows it and the server has it.
    let content = format!("remember the browser test {}", std::process::id());
    let memory = create_memory(&c, &content).await;
    assert_eq!(memory["content"], content.as_str(), "{memory}");
    assert_eq!(memory["org_id"], "default", "{memory}");
    assert_eq!(text_of(&c, "error").await, "");
    let stored = server_memories(&server, &admin_token).await;
    assert!(
        stored
            .iter()
            .any(|m| m["id"] == memory["id"] && m["content"] == content.as_str()),
        "the server lacks {memory}: {stored:?}"
    );
    c.execute(
        "document.getElementById('memory-result').scrollIntoView({block: 'end'});",
        vec![],
    )
    .await
    .unwrap();
    let shot = c.screenshot().await.unwrap();
    std::fs::write(target_dir().join("browser-login.png"), shot).unwrap();

    // An access cookie gone (as if expired): the page refreshes through the refresh cookie once
    // and retries, and gets a new access cookie.
    c.delete_cookie("portcullis_access").await.unwrap();
    let second = create_memory(&c, "made after a refresh").await;
    assert_eq!(second["content"], "made after a refresh", "{second}");
    assert_eq!(text_of(&c, "error").await, "");
    let renewed = c.get_named_cookie("portcullis_access").await.unwrap();
    assert_ne!(renewed.value(), access.value(), "no new access cookie");
    assert_only_csrf_readable(&document_cookie(&c).await);
    let stored = server_memories(&server, &admin_token).await;
    assert!(stored.iter().any(|m| m["id"] == second["id"]), "{stored:?}");

    // Under /auth the browser also holds the refresh cookie (Path=/auth), HttpOnly too.
    c.goto(&server.url("/auth/whoami")).await.unwrap();
    let jar = c.get_all_cookies().await.unwrap();
    let named = |name: &str| {
        jar.iter()
            .find(|k| k.name() == name)
            .unwrap_or_else(|| panic!("no {name} cookie under /auth: {jar:?}"))
            .clone()
    };
    let access = named("portcullis_access");
    let refresh = named("portcullis_refresh");
    assert_eq!(access.http_only(), Some(true), "{access:?}");
    assert_eq!(refresh.http_only(), Some(true), "{refresh:?}");
    assert_only_csrf_readable(&document_cookie(&c).await);

    // Back on `/`, the page finds the session that the cookies carry.
    c.goto(&server.url("/")).await.unwrap();
    wait_until(
        &c,
        "the signed-in state on load",
        "!document.getElementById('signed-in').hidden",
    )
    .await;
    let who: Value = serde_json::from_str(&text_of(&c, "whoami").await).unwrap();
    assert_eq!(who["auth_method"], "cookie", "{who}");

    // Sign out: back to the form, the cookies are gone, and the session is dead.
    click(&c, "logout").await;
    wait_until(
        &c,
        "the sign-in form after signing out",
        "!document.getElementById('signed-out').hidden",
    )
    .await;
    assert_eq!(text_of(&c, "error").await, "");
    assert_eq!(text_of(&c, "whoami").await, "");
    let cookies = document_cookie(&c).await;
    assert!(
        !cookies.contains("portcullis_csrf"),
        "logout left {cookies:?}"
    );
    let res = page_fetch(&c, "GET", "/auth/whoami", json!({}), Value::Null).await;
    assert_eq!(res["status"], 401, "whoami after logout: {res}");
    // The refresh cookie (Path=/auth, SameSite=Strict) is gone from the browser too.
    c.goto(&server.url("/auth/whoami")).await.unwrap();
    let jar = c.get_all_cookies().await.unwrap();
    assert!(
        jar.iter().all(|k| !k.name().starts_with("portcullis_")),
        "logout left {jar:?}"
    );

    // The tokens the cookies held are dead server-side too, not just forgotten by the browser.
    let res = server
        .client()
        .get(server.url("/auth/whoami"))
        .header("cookie", format!("portcullis_access={}", access.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the old access cookie still works");
    let res = server
        .client()
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh.value()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the old refresh token still works");

    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_requests_from_the_page_without_the_csrf_header_are_refused() {
    let (server, _driver, c) = start().await;
    sign_in(&c, &server, false).await;
    let csrf = document_cookie(&c)
        .await
        .split("; ")
        .find_map(|kv| kv.strip_prefix("portcullis_csrf=").map(str::to_owned))
        .unwrap();
    let json_only = json!({"Content-Type": "application/json"});

    // No header, then a wrong one: 403 csrf_failed, and nothing is created.
    for headers in [
        json_only.clone(),
        json!({"Content-Type": "application/json", "X-CSRF-Token": "not-the-token"}),
    ] {
        let res = page_fetch(
            &c,
            "POST",
            "/api/v1/memories",
            headers.clone(),
            json!({"content": "forged"}),
        )
        .await;
        assert_eq!(res["status"], 403, "{headers}: {res}");
        assert_eq!(res["body"]["code"], "csrf_failed", "{headers}: {res}");
    }

    // Logout is an unsafe method too: without the header the session survives.
    let res = page_fetch(&c, "POST", "/auth/logout", json!({}), Value::Null).await;
    assert_eq!(res["status"], 403, "logout without CSRF: {res}");
    assert_eq!(res["body"]["code"], "csrf_failed", "{res}");
    let res = page_fetch(&c, "GET", "/auth/whoami", json!({}), Value::Null).await;
    assert_eq!(res["status"], 200, "whoami after a refused logout: {res}");

    // A refresh through the cookie needs the header too; and a text/plain body (what a form of
    // another site can post) is 415 even with it. Neither sets a cookie.
    let before = document_cookie(&c).await;
    let res = page_fetch(&c, "POST", "/auth/refresh", json!({}), Value::Null).await;
    assert_eq!(res["status"], 403, "refresh without CSRF: {res}");
    assert_eq!(res["body"]["code"], "csrf_failed", "{res}");
    let res = page_fetch(
        &c,
        "POST",
        "/auth/refresh",
        json!({"Content-Type": "text/plain", "X-CSRF-Token": csrf}),
        json!({"refresh_token": "planted"}),
    )
    .await;
    assert_eq!(res["status"], 415, "text/plain refresh: {res}");
    assert_eq!(res["body"]["code"], "unsupported_media_type", "{res}");
    assert_eq!(
        document_cookie(&c).await,
        before,
        "a refused refresh set cookies"
    );

    // The same request with the cookie's value in the header goes through.
    let res = page_fetch(
        &c,
        "POST",
        "/api/v1/memories",
        json!({"Content-Type": "application/json", "X-CSRF-Token": csrf}),
        json!({"content": "with the header"}),
    )
    .await;
    assert_eq!(res["status"], 201, "{res}");
    let memories = server_memories(&server, &server.admin_token().await).await;
    assert!(
        memories.iter().all(|m| m["content"] != "forged"),
        "{memories:?}"
    );
    assert!(
        memories.iter().any(|m| m["content"] == "with the header"),
        "{memories:?}"
    );
    // And so does the refresh: a new CSRF cookie.
    let res = page_fetch(
        &c,
        "POST",
        "/auth/refresh",
        json!({"X-CSRF-Token": csrf}),
        Value::Null,
    )
    .await;
    assert_eq!(res["status"], 200, "refresh with the header: {res}");
    assert_ne!(document_cookie(&c).await, before, "no new cookies");

    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_shows_the_form_again_and_signing_in_again_works() {
    let (server, _driver, c) = start().await;
    sign_in(&c, &server, false).await;
    let who: Value = serde_json::from_str(&text_of(&c, "whoami").await).unwrap();
    let user_id = who["id"].as_str().unwrap().to_owned();

    // The admin's sessions are revoked elsewhere; the browser still holds the dead cookies.
    let token = server.admin_token().await;
    let res = server
        .client()
        .post(server.url(&format!("/admin/users/{user_id}/revoke-sessions")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());

    // On load the page finds no live session (whoami 401, the refresh 401 too): the form, no error.
    c.goto(&server.url("/")).await.unwrap();
    wait_until(
        &c,
        "the sign-in form with dead cookies",
        "!document.getElementById('signed-out').hidden",
    )
    .await;
    assert_eq!(text_of(&c, "error").await, "");

    // Signing in again works even though the browser still sends the dead cookies with it.
    sign_in(&c, &server, false).await;
    let again: Value = serde_json::from_str(&text_of(&c, "whoami").await).unwrap();
    assert_eq!(again["auth_method"], "cookie", "{again}");
    assert_ne!(again["session_id"], who["session_id"], "{again}");
    let memory = create_memory(&c, "after signing in again").await;
    assert_eq!(memory["content"], "after signing in again", "{memory}");

    c.close().await.unwrap();
}

/// Saves a screenshot of the page as `target/<name>.png`.
async fn screenshot(c: &Client, name: &str) {
    let shot = c.screenshot().await.unwrap();
    std::fs::write(target_dir().join(format!("{name}.png")), shot).unwrap();
}

/// Opens a console screen through its tab and waits until its data are shown.
async fn console_screen(c: &Client, name: &str) {
    c.find(Locator::Css(&format!("nav a[data-screen={name}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        c,
        &format!("the {name} screen"),
        &format!("document.body.dataset.loaded === '{name}'"),
    )
    .await;
    assert_eq!(
        text_of(c, "error").await,
        "",
        "the {name} screen shows an error"
    );
}

/// The text of the row of table body `tbody` that contains `needle`; "" when there is none.
async fn row_text(c: &Client, tbody: &str, needle: &str) -> String {
    c.execute(
        "const [tbody, needle] = arguments; \
         const tr = [...document.getElementById(tbody).rows].find((r) => r.textContent.includes(needle)); \
         return tr ? tr.innerText : '';",
        vec![json!(tbody), json!(needle)],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap()
    .to_owned()
}

/// Waits until the row of `tbody` containing `needle` also contains `want`.
async fn wait_row(c: &Client, tbody: &str, needle: &str, want: &str) {
    wait_until(
        c,
        &format!("{want:?} in the row of {needle:?}"),
        &format!(
            "[...document.getElementById({tbody:?}).rows].some((r) => r.textContent.includes({needle:?}) \
             && r.innerText.includes({want:?}))"
        ),
    )
    .await;
}

/// Clicks the button `label` in the row of `tbody` containing `needle` (a real click, so that
/// a `confirm` it opens is a real dialog); accepts that dialog when `confirm`.
async fn click_in_row(c: &Client, tbody: &str, needle: &str, label: &str, confirm: bool) {
    let xpath = format!(
        "//tbody[@id='{tbody}']/tr[contains(., '{needle}')]//button[normalize-space(.)='{label}']"
    );
    c.find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {label} button for {needle}: {e}"))
        .click()
        .await
        .unwrap();
    if confirm {
        let deadline = Instant::now() + PATIENCE;
        while c.accept_alert().await.is_err() {
            assert!(Instant::now() < deadline, "no confirmation for {label}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for the key the console shows once, and returns it.
async fn shown_key(c: &Client, not: &str) -> String {
    wait_until(
        c,
        "the new key",
        &format!(
            "!document.getElementById('new-key').hidden \
             && document.getElementById('new-key-value').textContent.startsWith('ck_') \
             && document.getElementById('new-key-value').textContent !== {not:?}"
        ),
    )
    .await;
    text_of(c, "new-key-value").await
}

/// `GET /api/v1/memories` with `key`: its status and, on an error, its `code`.
async fn with_key(server: &Server, key: &str) -> (u16, String) {
    let res = server
        .client()
        .get(server.url("/api/v1/memories"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    common::outcome(res).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_manages_keys_agents_and_sessions_through_the_cookie_flow() {
    use common::contract::{create_agent, login_pair, new_user, start_run, str_of};

    let (server, _driver, c) = start().await;
    let admin = server.admin_token().await;
    // A user with a live session, and an agent with a run token, made over the API.
    let ann = "ann@example.com";
    let (ann_id, _) = new_user(&server, &admin, ann, "user", "default").await;
    let (_, ann_refresh) = login_pair(&server, ann, common::USER_PASSWORD).await;
    let agent = create_agent(&server, &admin, None).await;
    let agent_id = str_of(&agent, "agent_id");
    let run_token = str_of(&start_run(&server, &admin, &agent_id).await, "token");

    // Signed out, the console sends the browser to the login page.
    c.goto(&server.url("/admin")).await.unwrap();
    wait_until(&c, "the login page", "location.pathname === '/'").await;

    // Signed in, the login page links to the console; it opens on the users.
    sign_in(&c, &server, false).await;
    c.find(Locator::Css("#admin-link a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &c,
        "the users screen",
        "document.body.dataset.loaded === 'users'",
    )
    .await;
    assert_eq!(text_of(&c, "error").await, "");
    assert!(text_of(&c, "who").await.contains("org default"));
    let row = row_text(&c, "users-rows", ann).await;
    assert!(row.contains("user") && row.contains(&ann_id), "{row:?}");
    assert!(!row_text(&c, "users-rows", ADMIN_EMAIL).await.is_empty());

    // Ann's sessions: the two she has (`new_user` signed in once too).
    click_in_row(&c, "users-rows", ann, "Sessions", false).await;
    wait_until(
        &c,
        "ann's sessions",
        "document.getElementById('user-sessions-title').textContent.endsWith(': 2')",
    )
    .await;
    screenshot(&c, "console-users").await;

    // Revoke them: the list empties and her refresh token is dead.
    click_in_row(&c, "users-rows", ann, "Revoke sessions", true).await;
    wait_until(
        &c,
        "ann's sessions revoked",
        "document.getElementById('user-sessions-title').textContent.endsWith(': 0')",
    )
    .await;
    assert!(text_of(&c, "message").await.contains(ann));
    let res = common::contract::refresh(&server, &ann_refresh).await;
    assert_eq!(res.status(), 401, "ann's refresh after the revoke");

    // Create a key: shown once, it works, and after a reload it is gone from the page.
    console_screen(&c, "keys").await;
    type_into(&c, "key-name", "console key").await;
    click(&c, "key-perm-memory:list").await;
    click(&c, "create-key").await;
    let key = shown_key(&c, "").await;
    assert_eq!(with_key(&server, &key).await, (200, String::new()));
    click(&c, "copy-key").await;
    wait_until(
        &c,
        "the copy",
        "document.getElementById('copy-state').textContent.length > 0",
    )
    .await;
    wait_row(&c, "keys-rows", "console key", "enabled").await;
    assert!(
        row_text(&c, "keys-rows", "console key")
            .await
            .contains("memory:list")
    );
    screenshot(&c, "console-key-created").await;
    c.refresh().await.unwrap();
    wait_until(
        &c,
        "the keys again",
        "document.body.dataset.loaded === 'keys'",
    )
    .await;
    let html: String = c
        .execute("return document.documentElement.outerHTML;", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !html.contains(&key),
        "the key is shown again after a reload"
    );
    assert!(!row_text(&c, "keys-rows", "console key").await.is_empty());
    screenshot(&c, "console-keys").await;

    // Disable it (401 api_key_disabled), enable it again.
    click_in_row(&c, "keys-rows", "console key", "Disable", false).await;
    wait_row(&c, "keys-rows", "console key", "disabled").await;
    assert_eq!(
        with_key(&server, &key).await,
        (401, "api_key_disabled".into())
    );
    click_in_row(&c, "keys-rows", "console key", "Enable", false).await;
    wait_row(&c, "keys-rows", "console key", "enabled").await;
    assert_eq!(with_key(&server, &key).await.0, 200);

    // Reroll: a new secret shown once; the old one is dead at once.
    click_in_row(&c, "keys-rows", "console key", "Reroll", true).await;
    let rerolled = shown_key(&c, &key).await;
    assert_eq!(
        with_key(&server, &key).await,
        (401, "invalid_api_key".into())
    );
    assert_eq!(with_key(&server, &rerolled).await.0, 200);

    // Delete: gone from the list, dead.
    click_in_row(&c, "keys-rows", "console key", "Delete", true).await;
    wait_until(
        &c,
        "the key gone",
        "!document.getElementById('keys-rows').textContent.includes('console key')",
    )
    .await;
    assert_eq!(with_key(&server, &rerolled).await.0, 401);

    // Terminate the agent: its run token gets 401 agent_terminated.
    console_screen(&c, "agents").await;
    wait_row(&c, "agents-rows", &agent_id, "active").await;
    screenshot(&c, "console-agents").await;
    click_in_row(&c, "agents-rows", &agent_id, "Terminate", true).await;
    wait_row(&c, "agents-rows", &agent_id, "terminated").await;
    let res = server
        .client()
        .get(server.url("/auth/whoami"))
        .bearer_auth(&run_token)
        .send()
        .await
        .unwrap();
    common::assert_problem(res, 401, "agent_terminated").await;

    // The admin's own sessions: this one, marked.
    console_screen(&c, "sessions").await;
    let current = row_text(&c, "sessions-rows", "this session").await;
    assert!(current.contains("HeadlessChrome"), "{current:?}");
    screenshot(&c, "console-sessions").await;

    // The audit log shows what was done here (written behind: look again until it is there).
    let expected = [
        "api_key.created",
        "api_key.disabled",
        "api_key.enabled",
        "api_key.deleted",
        "api_key.rerolled",
        "agent.terminated",
        "sessions.revoked",
    ];
    let deadline = Instant::now() + PATIENCE;
    loop {
        console_screen(&c, "audit").await;
        let log = text_of(&c, "audit-rows").await;
        if expected.iter().all(|a| log.contains(a)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log lacks some of {expected:?}: {log}"
        );
        console_screen(&c, "users").await;
    }
    let first = row_text(&c, "audit-rows", "agent.terminated").await;
    assert!(first.contains(&agent_id), "{first:?}");
    screenshot(&c, "console-audit").await;

    c.close().await.unwrap();
}
