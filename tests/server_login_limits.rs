//! Login limits of the sample server (`portcullis serve`), under bursts, through the real binary:
//!
//! - "at most 10 password checks a minute for one email, however many arrive at once — the
//!   rest 429": 200 concurrent wrong passwords for one email get exactly 10 × 401 (the checks
//!   that ran) and 190 × 429, in memory (SQLite) and on Redis (PostgreSQL + Redis, the burst
//!   split over two instances); unknown emails alike; `POST /auth/password` shares the slots;
//! - bounded hashing: 200 concurrent logins of distinct real users keep the process's peak
//!   resident memory (VmHWM) under 600 MB, and every answer is 200 or the documented 503 "busy".
//!
//! PostgreSQL (`PORTCULLIS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and Redis (`PORTCULLIS_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`) are needed by the Redis cases: under `CI=true` an
//! unreachable service fails the test; elsewhere the test says SKIPPED on stderr and returns.
//! The `portcullis` binary must be built (`cargo build -p portcullis-server`).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{
    Server, USER_PASSWORD, assert_problem, create_user, post_login, run, serial, with_pair,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Requests in each burst.
const BURST: usize = 200;
/// Password checks per email per minute (the contract).
const CHECKS: usize = 10;
/// The ceiling on the server's peak resident memory under a login burst.
const PEAK_RSS_LIMIT_KIB: u64 = 600 * 1024;

// ---------------------------------------------------------------------------------------------
// Setup

/// A client with room for a whole burst of connections.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(BURST)
        .build()
        .unwrap()
}

/// One answer of a burst: status, `code`, and the headers a refusal must carry.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: String,
    detail: String,
    retry_after: Option<u64>,
    ratelimit: Option<(u64, u64, u64)>,
}

async fn answer(res: reqwest::Response) -> Answer {
    let header = |name: &str| -> Option<u64> {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    };
    let status = res.status().as_u16();
    let retry_after = header("retry-after");
    let ratelimit = match (
        header("ratelimit-limit"),
        header("ratelimit-remaining"),
        header("ratelimit-reset"),
    ) {
        (Some(l), Some(r), Some(t)) => Some((l, r, t)),
        _ => None,
    };
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        code: body["code"].as_str().unwrap_or_default().to_owned(),
        detail: body["detail"].as_str().unwrap_or_default().to_owned(),
        retry_after,
        ratelimit,
    }
}

/// Sends `n` requests made by `make(i)` at once (every one in flight before any answer is
/// read); their answers.
async fn burst<F>(n: usize, make: F) -> Vec<Answer>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        let req = make(i);
        set.spawn(async move { answer(req.send().await.unwrap()).await });
    }
    set.join_all().await
}

/// How many answers had each (status, code).
fn tally(answers: &[Answer]) -> BTreeMap<(u16, String), usize> {
    let mut t = BTreeMap::new();
    for a in answers {
        *t.entry((a.status, a.code.clone())).or_insert(0) += 1;
    }
    t
}

/// Exactly `checked` answers are 401 `invalid_credentials` (the password checks that ran) and
/// the rest 429 `rate_limited` with `Retry-After` and `RateLimit-*`.
fn assert_checked_then_limited(answers: &[Answer], checked: usize, what: &str) {
    let t = tally(answers);
    let expected = BTreeMap::from([
        ((401, "invalid_credentials".to_owned()), checked),
        ((429, "rate_limited".to_owned()), answers.len() - checked),
    ]);
    assert_eq!(t, expected, "{what}: answers by (status, code)");
    for a in answers.iter().filter(|a| a.status == 429) {
        let retry = a.retry_after.expect("Retry-After on a 429");
        let (limit, remaining, reset) = a.ratelimit.expect("RateLimit-* on a 429");
        assert!((1..=60).contains(&retry), "{what}: {a:?}");
        assert_eq!((limit, remaining), (CHECKS as u64, 0), "{what}: {a:?}");
        assert!((1..=60).contains(&reset), "{what}: {a:?}");
    }
}

/// 200 concurrent wrong passwords for `email`, split round-robin over `servers`.
async fn wrong_password_burst(
    http: &reqwest::Client,
    servers: &[&Server],
    email: &str,
) -> Vec<Answer> {
    burst(BURST, |i| {
        http.post(servers[i % servers.len()].url("/auth/login"))
            .json(&json!({"email": email, "password": format!("wrong guess {i}")}))
    })
    .await
}

/// 200 concurrent `POST /auth/password` with a wrong current password, split over `servers`.
async fn wrong_current_password_burst(
    http: &reqwest::Client,
    servers: &[&Server],
    token: &str,
) -> Vec<Answer> {
    burst(BURST, |i| {
        http.post(servers[i % servers.len()].url("/auth/password"))
            .bearer_auth(token)
            .json(&json!({
                "current_password": format!("wrong guess {i}"),
                "new_password": "a brand new password",
            }))
    })
    .await
}

/// The `VmHWM` (peak resident set) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// One instance, SQLite, the in-memory throttle

#[test]
fn burst_of_200_wrong_passwords_is_10_checks_401_and_190_429_in_memory() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let http = client();
        let admin = s.admin_token().await;
        create_user(&http, &s, &admin, "victim@example.com").await;

        let answers = wrong_password_burst(&http, &[&s], "victim@example.com").await;
        assert_checked_then_limited(&answers, CHECKS, "known email");

        // The right password is refused too until the window closes: it would be an 11th check.
        assert_problem(
            post_login(&http, &s, "victim@example.com", USER_PASSWORD).await,
            429,
            "rate_limited",
        )
        .await;

        // An email with no account is throttled the same way: a 429 says nothing about it.
        let answers = wrong_password_burst(&http, &[&s], "nobody@example.com").await;
        assert_checked_then_limited(&answers, CHECKS, "unknown email");
        // Case and spaces do not make another email.
        assert_problem(
            post_login(&http, &s, "  NOBODY@Example.com ", "x").await,
            429,
            "rate_limited",
        )
        .await;
    });
}

#[test]
fn burst_of_200_wrong_current_passwords_shares_the_10_checks_in_memory() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let http = client();
        let admin = s.admin_token().await;
        create_user(&http, &s, &admin, "changer@example.com").await;
        // The login is the first of the 10 checks of this minute for the email.
        let token = s.access_token("changer@example.com", USER_PASSWORD).await;

        let answers = wrong_current_password_burst(&http, &[&s], &token).await;
        assert_checked_then_limited(&answers, CHECKS - 1, "password change");

        // The slots are the login's too: a login for the email is now 429.
        assert_problem(
            post_login(&http, &s, "changer@example.com", USER_PASSWORD).await,
            429,
            "rate_limited",
        )
        .await;
    });
}

// ---------------------------------------------------------------------------------------------
// Two instances, PostgreSQL and Redis: one count for both

#[test]
fn burst_of_200_wrong_passwords_over_two_instances_is_10_checks_401_and_190_429_on_redis() {
    with_pair("sll", async |a, b, admin| {
        let http = client();
        create_user(&http, a, &admin, "victim@example.com").await;

        let answers = wrong_password_burst(&http, &[a, b], "victim@example.com").await;
        assert_checked_then_limited(&answers, CHECKS, "known email, two instances");
        let answers = wrong_password_burst(&http, &[a, b], "nobody@example.com").await;
        assert_checked_then_limited(&answers, CHECKS, "unknown email, two instances");
    });
}

#[test]
fn burst_of_200_wrong_current_passwords_over_two_instances_shares_the_10_checks_on_redis() {
    with_pair("sll", async |a, b, admin| {
        let http = client();
        create_user(&http, a, &admin, "changer@example.com").await;
        let token = b.access_token("changer@example.com", USER_PASSWORD).await;

        let answers = wrong_current_password_burst(&http, &[a, b], &token).await;
        assert_checked_then_limited(&answers, CHECKS - 1, "password change, two instances");
    });
}

// ---------------------------------------------------------------------------------------------
// Bounded hashing

#[test]
fn burst_of_200_logins_of_distinct_users_peaks_under_600_mb_and_sheds_only_as_busy() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let http = client();
        let admin = s.admin_token().await;
        eprintln!("after start: VmHWM {} MiB", peak_rss_kib(s.pid()) / 1024);
        let emails: Vec<String> = (0..BURST).map(|i| format!("user{i}@example.com")).collect();
        // The users, a few at a time (creating them hashes too).
        for chunk in emails.chunks(8) {
            let mut set = JoinSet::new();
            for email in chunk {
                let (http, url, admin, email) =
                    (http.clone(), s.url("/users"), admin.clone(), email.clone());
                set.spawn(async move {
                    let res = http
                        .post(url)
                        .bearer_auth(admin)
                        .json(&json!({"email": email, "password": USER_PASSWORD, "role": "user"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201, "create {email}");
                });
            }
            set.join_all().await;
        }

        eprintln!(
            "after creating users: VmHWM {} MiB",
            peak_rss_kib(s.pid()) / 1024
        );
        let started = std::time::Instant::now();
        let answers = burst(BURST, |i| {
            http.post(s.url("/auth/login"))
                .json(&json!({"email": emails[i], "password": USER_PASSWORD}))
        })
        .await;
        let took = started.elapsed();
        let peak = peak_rss_kib(s.pid());
        let t = tally(&answers);
        eprintln!(
            "{BURST} concurrent logins in {took:.1?}: VmHWM {} MiB, answers {t:?}",
            peak / 1024
        );

        assert!(
            peak < PEAK_RSS_LIMIT_KIB,
            "peak RSS {} MiB under {BURST} concurrent logins",
            peak / 1024
        );
        for a in &answers {
            match (a.status, a.code.as_str()) {
                (200, _) => {}
                (503, "auth_unavailable") => {
                    assert!(a.detail.contains("busy"), "{a:?}");
                    assert!(a.retry_after.is_some(), "Retry-After on a 503: {a:?}");
                }
                _ => panic!("neither 200 nor the busy 503: {a:?}"),
            }
        }
        let ok = t.get(&(200, String::new())).copied().unwrap_or(0);
        assert!(ok >= 2, "at least a couple of logins get through: {t:?}");
    });
}
