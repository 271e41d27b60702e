//! `GET /metrics` of the sample server: started with `PORTCULLIS_METRICS_BIND` on a free port,
//! SQLite and Redis (for the invalidation series), it is sent a known mix of requests and its
//! Prometheus text must hold every `portcullis_…` series with exactly the counts that mix makes;
//! the main port must not serve it.
//!
//! Needs Redis (`PORTCULLIS_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`): under `CI=true`
//! an unreachable Redis fails the test; elsewhere it says SKIPPED and returns. The `portcullis`
//! binary must be built (`cargo build -p portcullis-server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, assert_problem, post_login, redis_addr,
    redis_ping, redis_url, run, service_unreachable,
};
use serde_json::{Value, json};

/// `name{a="x",b="y"}` (labels sorted) → value, for every `portcullis_` sample.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with("portcullis_") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let mut labels: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                (name, labels.join(","))
            }
            None => (series, String::new()),
        };
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        out.insert(format!("{name}{{{labels}}}"), value);
    }
    out
}

async fn refresh(http: &reqwest::Client, s: &Server, token: &str) -> reqwest::Response {
    http.post(s.url("/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

#[test]
fn every_series_counts_a_known_mix_exactly() {
    if let Err(e) = redis_ping(&redis_addr(&redis_url())) {
        service_unreachable("Redis", e);
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_bind = format!("127.0.0.1:{port}");
    let prefix = format!("pc-metrics-{}:", uuid::Uuid::new_v4().simple());
    let s = Server::start_with(
        Options::default()
            .env("PORTCULLIS_METRICS_BIND", &metrics_bind)
            .env("REDIS_URL", &redis_url())
            .env("PORTCULLIS_REDIS_PREFIX", &prefix),
    );
    run(async {
        let http = s.client();
        // A login, and a wrong password.
        let pair: Value = post_login(&http, &s, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        let access = pair["access_token"].as_str().unwrap().to_owned();
        let refresh1 = pair["refresh_token"].as_str().unwrap().to_owned();
        let res = post_login(&http, &s, ADMIN_EMAIL, "not the password").await;
        assert_problem(res, 401, "invalid_credentials").await;
        // No credential, and a bearer that is not a token.
        let res = http.get(s.url("/api/v1/memories")).send().await.unwrap();
        assert_problem(res, 401, "missing_credentials").await;
        let res = http
            .get(s.url("/api/v1/memories"))
            .bearer_auth("not.a.jwt")
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "invalid_token").await;
        // The access token: an API key made with it, then whoami twice (cached).
        let res = http
            .post(s.url("/api-keys"))
            .bearer_auth(&access)
            .json(&json!({"name": "reader", "permissions": ["memory:read", "memory:list"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let key = res.json::<Value>().await.unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..2 {
            let res = http
                .get(s.url("/auth/whoami"))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        // The API key twice (the second from the resolved-credential cache).
        for _ in 0..2 {
            let res = http
                .get(s.url("/api/v1/memories"))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        // Two rotations, then the first refresh token again: a reuse, which revokes the
        // session everywhere (one invalidation, sent and heard through Redis).
        let r2: Value = refresh(&http, &s, &refresh1).await.json().await.unwrap();
        let r2 = r2["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(refresh(&http, &s, &r2).await.status(), 200);
        assert_problem(refresh(&http, &s, &refresh1).await, 401, "token_revoked").await;
        // The session's access token is refused at once.
        let res = http
            .get(s.url("/auth/whoami"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "token_revoked").await;
        // Ten password checks for one email are allowed a minute; the eleventh is throttled.
        for _ in 0..10 {
            let res = post_login(&http, &s, "nobody@example.com", "guess").await;
            assert_problem(res, 401, "invalid_credentials").await;
        }
        let res = post_login(&http, &s, "nobody@example.com", "guess").await;
        assert_problem(res, 429, "rate_limited").await;
        // The main port does not serve the metrics: it is a protected path like any other.
        let res = http.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body = res.text().await.unwrap();
        assert!(!body.contains("portcullis_"), "{body}");

        let res = http
            .get(format!("http://{metrics_bind}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
        );
        let got = parse(&res.text().await.unwrap());
        let want: BTreeMap<String, f64> = [
            // Logins, refreshes and the throttled email: public paths, no credential.
            (
                r#"portcullis_decisions_total{credential="none",outcome="ok"}"#,
                16.0,
            ),
            // `/api/v1/memories` and the main port's `/metrics` without a credential.
            (
                r#"portcullis_decisions_total{credential="none",outcome="missing_credentials"}"#,
                2.0,
            ),
            (
                r#"portcullis_decisions_total{credential="bearer",outcome="invalid_token"}"#,
                1.0,
            ),
            (
                r#"portcullis_decisions_total{credential="bearer",outcome="ok"}"#,
                3.0,
            ),
            (
                r#"portcullis_decisions_total{credential="bearer",outcome="token_revoked"}"#,
                1.0,
            ),
            (
                r#"portcullis_decisions_total{credential="api_key",outcome="ok"}"#,
                2.0,
            ),
            // Resolutions that waited: the bad token, the first use, the use after the reuse;
            // the key's first use.
            (
                r#"portcullis_resolve_duration_seconds_count{credential="bearer"}"#,
                3.0,
            ),
            (
                r#"portcullis_resolve_duration_seconds_count{credential="api_key"}"#,
                1.0,
            ),
            (
                r#"portcullis_cache_hits_total{cache="resolved_bearer"}"#,
                2.0,
            ),
            (
                r#"portcullis_cache_misses_total{cache="resolved_bearer"}"#,
                3.0,
            ),
            (
                r#"portcullis_cache_hits_total{cache="resolved_api_key"}"#,
                1.0,
            ),
            (
                r#"portcullis_cache_misses_total{cache="resolved_api_key"}"#,
                1.0,
            ),
            (r#"portcullis_cache_misses_total{cache="api_keys"}"#, 1.0),
            (r#"portcullis_cache_misses_total{cache="sessions"}"#, 2.0),
            // The access token's first use asks the denylist store directly (first-seen tokens
            // fill no denylist cache entry); after the reuse its session is refused first.
            (r#"portcullis_cache_misses_total{cache="denylist"}"#, 0.0),
            (r#"portcullis_cache_entries{cache="resolved_bearer"}"#, 1.0),
            (r#"portcullis_cache_entries{cache="resolved_cookie"}"#, 0.0),
            (r#"portcullis_cache_entries{cache="resolved_api_key"}"#, 1.0),
            (r#"portcullis_cache_entries{cache="api_keys"}"#, 1.0),
            (r#"portcullis_cache_entries{cache="sessions"}"#, 1.0),
            (r#"portcullis_cache_entries{cache="agents"}"#, 0.0),
            (r#"portcullis_cache_entries{cache="denylist"}"#, 0.0),
            (r#"portcullis_store_errors_total{store="api_keys"}"#, 0.0),
            (r#"portcullis_store_errors_total{store="sessions"}"#, 0.0),
            (r#"portcullis_store_errors_total{store="agents"}"#, 0.0),
            (r#"portcullis_store_errors_total{store="denylist"}"#, 0.0),
            (r#"portcullis_store_errors_total{store="rate_limits"}"#, 0.0),
            (r#"portcullis_unavailable_total{}"#, 0.0),
            (r#"portcullis_login_throttled_total{}"#, 1.0),
            (r#"portcullis_refresh_reuse_detected_total{}"#, 1.0),
            (r#"portcullis_invalidations_sent_total{}"#, 1.0),
            (r#"portcullis_invalidations_received_total{}"#, 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // Histogram buckets and sums vary with timing: compared apart.
        let counted: BTreeMap<String, f64> = got
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("portcullis_resolve_duration_seconds_bucket")
                    && !k.starts_with("portcullis_resolve_duration_seconds_sum")
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        // The counts that moved are exactly those; every other series reads 0.
        let moved = |m: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
            m.iter()
                .filter(|(_, v)| **v != 0.0)
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        assert_eq!(moved(&counted), moved(&want), "{:#?}", got);
        // Every series is scraped from the start, at 0 until its first event (the server binds
        // the recorder's handles when it installs it): those above, and every decision.
        for k in want.keys() {
            assert!(got.contains_key(k), "{k} is not scraped: {got:#?}");
        }
        for credential in portcullis::metrics::CREDENTIALS {
            for outcome in portcullis::metrics::OUTCOMES {
                let k = format!(
                    r#"portcullis_decisions_total{{credential="{credential}",outcome="{outcome}"}}"#
                );
                assert!(got.contains_key(&k), "{k} is not scraped");
            }
        }
        for kind in ["bearer", "api_key"] {
            let inf = format!(
                r#"portcullis_resolve_duration_seconds_bucket{{credential="{kind}",le="+Inf"}}"#
            );
            let count =
                format!(r#"portcullis_resolve_duration_seconds_count{{credential="{kind}"}}"#);
            assert_eq!(got.get(&inf), got.get(&count), "{inf}");
            let sum = format!(r#"portcullis_resolve_duration_seconds_sum{{credential="{kind}"}}"#);
            assert!(got[&sum] > 0.0 && got[&sum] < 10.0, "{sum} = {}", got[&sum]);
        }
    });
}
