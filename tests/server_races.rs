//! Races against the real sample server (`portcullis serve`, SQLite): concurrent refreshes of
//! one refresh token, a logout while the session's token is in use, an agent terminated during
//! its run, and an API key disabled during a burst. Each test shows that whatever interleaving
//! happened, the outcome is one of the allowed ones, and that nothing started after a
//! revocation was answered is ever let through.
//!
//! The `portcullis` binary must be built (`cargo build -p portcullis-server`). The SQLite
//! database of the server is read with the library (`portcullis::sql`) to see which refresh
//! token a session holds, hence the `sqlite` feature.
//!
//! The tests run one at a time: each starts a server and several request loops on a small
//! machine, and every loop is bounded in requests and in time.
#![cfg(feature = "sqlite")]
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::contract::login_pair;
use common::{Options, Server, USER_PASSWORD, assert_problem, create_user, outcome, run, serial};
use portcullis::api_key::KeyHash;
use portcullis::ids::SessionId;
use portcullis::session::SessionRecord;
use serde_json::{Value, json};

/// Parallel `POST /auth/refresh` of one token (`PORTCULLIS_TEST_REFRESHERS` overrides it).
const REFRESHERS: usize = 16;
/// No request loop runs longer than this…
const LOOP_DEADLINE: Duration = Duration::from_secs(20);
/// …or makes more requests than this (per task).
const LOOP_MAX_REQUESTS: u64 = 3_000;
/// How long the loops keep going after the revocation was answered.
const AFTER_REVOCATION: Duration = Duration::from_millis(400);
/// At least this many requests must start after the revocation was answered (over all tasks).
const MIN_AFTER: usize = 20;

// ---------------------------------------------------------------------------------------------
// Setup

/// A client whose requests cannot hang the test.
fn client() -> reqwest::Client {
    common::client_with_timeout(Duration::from_secs(15))
}

/// The credential a request loop presents.
#[derive(Clone, Debug)]
enum Cred {
    Bearer(String),
    Key(String),
}

impl Cred {
    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::Bearer(t) => req.bearer_auth(t),
            Self::Key(k) => req.header("x-api-key", k),
        }
    }
}

async fn whoami(http: &reqwest::Client, s: &Server, cred: &Cred) -> (u16, String) {
    let res = cred
        .apply(http.get(s.url("/auth/whoami")))
        .send()
        .await
        .unwrap();
    outcome(res).await
}

/// Reads the session row straight from the server's SQLite database.
async fn session_row(s: &Server, sid: &str) -> SessionRecord {
    let url = format!("sqlite://{}/portcullis.db", s.dir.display());
    let sql = portcullis::sql::SqlStores::connect(&url).await.unwrap();
    let row = sql
        .stores()
        .sessions
        .get(&SessionId::from(sid))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("session {sid} is not in the database"));
    sql.pool().close().await;
    row
}

/// The server's log lines at WARN or ERROR.
fn warnings(s: &Server) -> String {
    s.output()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tally(outcomes: &[(u16, String)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (status, code) in outcomes {
        *m.entry(format!("{status} {code}").trim().to_owned())
            .or_default() += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// (a) concurrent refreshes of one refresh token

/// One answer to one of the parallel refreshes.
struct Refreshed {
    status: u16,
    code: String,
    /// The pair, on a 200.
    pair: Option<(String, String)>,
}

/// `POST path` with `body` as `admin`; asserts the 201 (`what` names the request) and returns
/// the body.
async fn created(
    http: &reqwest::Client,
    s: &Server,
    admin: &str,
    path: &str,
    body: Value,
    what: &str,
) -> Value {
    let res = http
        .post(s.url(path))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{what}");
    res.json().await.unwrap()
}

/// Asserts every answer of a refresh race is a 200 or a 401 (showing the server's warnings
/// otherwise); the pairs the 200s handed out.
fn pairs_of(s: &Server, answers: &[Refreshed]) -> Vec<(String, String)> {
    for a in answers {
        assert!(
            a.status == 200 || a.status == 401,
            "a concurrent refresh answered {} {}: only 200 or 401 are allowed; \
             the server's warnings:\n{}",
            a.status,
            a.code,
            warnings(s)
        );
    }
    answers.iter().filter_map(|a| a.pair.clone()).collect()
}

/// Logs in as `email` and fires [`REFRESHERS`] parallel refreshes of its refresh token, each on
/// its own warmed-up connection, released together. The session id, and the answers.
async fn refresh_race(s: &Server, email: &str) -> (String, String, Vec<Refreshed>) {
    let refreshers = refreshers();
    let (access, refresh_token) = login_pair(s, email, USER_PASSWORD).await;
    let http = client();
    let res = http
        .get(s.url("/auth/whoami"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let me: Value = res.json().await.unwrap();
    let sid = me["session_id"].as_str().expect("session_id").to_owned();

    let barrier = Arc::new(tokio::sync::Barrier::new(refreshers));
    let tasks: Vec<_> = (0..refreshers)
        .map(|_| {
            let (barrier, token) = (barrier.clone(), refresh_token.clone());
            let (refresh_url, health) = (s.url("/auth/refresh"), s.url("/healthz"));
            tokio::spawn(async move {
                // One connection per task, opened before the start line.
                let http = client();
                assert_eq!(http.get(&health).send().await.unwrap().status(), 200);
                barrier.wait().await;
                let res = http
                    .post(&refresh_url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                let pair = (status == 200).then(|| {
                    (
                        body["access_token"].as_str().unwrap().to_owned(),
                        body["refresh_token"].as_str().unwrap().to_owned(),
                    )
                });
                let code = body["code"].as_str().unwrap_or_default().to_owned();
                Refreshed { status, code, pair }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    (sid, refresh_token, answers)
}

fn refreshers() -> usize {
    std::env::var("PORTCULLIS_TEST_REFRESHERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REFRESHERS)
}

fn race_tally(answers: &[Refreshed]) -> BTreeMap<String, usize> {
    let outcomes: Vec<_> = answers.iter().map(|a| (a.status, a.code.clone())).collect();
    tally(&outcomes)
}

/// Every refresh inside the grace window is a legitimate retry: 200 (or 401), never a 5xx.
///
/// Known failure (reported, not fixed here): the SQL session store gives up after losing its
/// compare-and-swap 8 times (`REFRESH_ATTEMPTS` in crates/portcullis-sql/src/stores.rs) and the
/// server answers 503 `auth_unavailable`: about 1 run in 7 with 16 refreshers on SQLite, every
/// run with `PORTCULLIS_TEST_REFRESHERS=48`.
#[test]
fn concurrent_refreshes_within_the_grace_window_keep_the_session_alive() {
    let _serial = serial();
    run(async {
        let s =
            Server::start_with(Options::default().env("AUTH_REFRESH_REUSE_GRACE_SECONDS", "10"));
        let admin = s.admin_token().await;
        create_user(&client(), &s, &admin, "race-grace@example.com").await;
        let (sid, original, answers) = refresh_race(&s, "race-grace@example.com").await;
        let counts = race_tally(&answers);
        println!(
            "(a) grace 10 s, {} parallel refreshes of one token: {counts:?}",
            answers.len()
        );

        let pairs = pairs_of(&s, &answers);
        assert!(!pairs.is_empty(), "no refresh succeeded: {counts:?}");
        // Within the grace window none of them is reuse of a stolen token: nothing revoked.
        assert!(
            !answers.iter().any(|a| a.code == "token_revoked"),
            "a refresh inside the grace window revoked the session: {counts:?}"
        );

        // The session is alive: every access token handed out works…
        let http = client();
        for (access, _) in &pairs {
            let (status, code) = whoami(&http, &s, &Cred::Bearer(access.clone())).await;
            assert_eq!(
                (status, code.as_str()),
                (200, ""),
                "an access token from the race"
            );
        }
        // …and the session's current refresh token is one that some answer carried (the last
        // rotation's): no rotation was lost between the store and the client.
        let row = session_row(&s, &sid).await;
        assert!(!row.revoked, "the session was revoked");
        let current: Vec<_> = pairs
            .iter()
            .filter(|(_, r)| KeyHash::of(r.as_bytes()) == row.current)
            .collect();
        assert_eq!(
            current.len(),
            1,
            "the session's current refresh token must be exactly one of the {} handed out",
            pairs.len()
        );
        assert_eq!(
            row.parent,
            Some(KeyHash::of(original.as_bytes())),
            "every rotation within the grace starts from the original token"
        );
        // That pair goes on: it rotates, and its successor's access token works.
        let res = http
            .post(s.url("/auth/refresh"))
            .json(&json!({"refresh_token": current[0].1}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "the current refresh token after the race"
        );
        let next: Value = res.json().await.unwrap();
        let access = next["access_token"].as_str().unwrap().to_owned();
        let (status, _) = whoami(&http, &s, &Cred::Bearer(access)).await;
        assert_eq!(status, 200, "the access token of the next rotation");
    });
}

#[test]
fn concurrent_refreshes_without_a_grace_window_rotate_at_most_once() {
    let _serial = serial();
    run(async {
        let s = Server::start_with(Options::default().env("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0"));
        let admin = s.admin_token().await;
        create_user(&client(), &s, &admin, "race-nograce@example.com").await;
        let (sid, _, answers) = refresh_race(&s, "race-nograce@example.com").await;
        let counts = race_tally(&answers);

        let pairs = pairs_of(&s, &answers);
        assert!(
            pairs.len() <= 1,
            "{} of {} refreshes of one token succeeded without a grace window: {counts:?}",
            pairs.len(),
            answers.len()
        );
        let reuse = answers.iter().any(|a| a.code == "token_revoked");
        let http = client();
        let row = session_row(&s, &sid).await;
        let outcome = if reuse {
            // The allowed outcome when a second presentation was seen as reuse: the whole
            // session is dead — the one pair handed out included, access and refresh.
            assert!(row.revoked, "reuse was reported but the session is live");
            for (access, refresh_token) in &pairs {
                let (status, code) = whoami(&http, &s, &Cred::Bearer(access.clone())).await;
                assert_eq!(
                    (status, code.as_str()),
                    (401, "token_revoked"),
                    "the access token handed out before the reuse was detected"
                );
                let res = http
                    .post(s.url("/auth/refresh"))
                    .json(&json!({"refresh_token": refresh_token}))
                    .send()
                    .await
                    .unwrap();
                assert_problem(res, 401, "token_revoked").await;
            }
            "reuse detected, whole session revoked"
        } else {
            // Otherwise the one rotation stands and its pair works.
            assert!(!row.revoked, "the session was revoked without a reuse");
            assert_eq!(pairs.len(), 1, "no refresh succeeded: {counts:?}");
            let (access, refresh_token) = &pairs[0];
            assert_eq!(row.current, KeyHash::of(refresh_token.as_bytes()));
            let (status, _) = whoami(&http, &s, &Cred::Bearer(access.clone())).await;
            assert_eq!(status, 200, "the one rotated pair's access token");
            "one rotation, the session lives"
        };
        println!(
            "(a) grace 0, {} parallel refreshes of one token: {counts:?} -> {outcome}",
            answers.len()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Request loops around a revocation

/// One request of a loop.
struct Sample {
    what: &'static str,
    start: Instant,
    end: Instant,
    status: u16,
    code: String,
}

/// Request loops on `GET /auth/whoami`, each with its own connection, until stopped.
struct Hammer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
}

impl Hammer {
    /// `loops` tasks per credential.
    fn start(s: &Server, creds: &[(&'static str, Cred)], loops: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + LOOP_DEADLINE;
        let mut tasks = Vec::new();
        for (what, cred) in creds {
            for _ in 0..loops {
                let (what, cred, url) = (*what, cred.clone(), s.url("/auth/whoami"));
                let (stop, sent) = (stop.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    let http = client();
                    let mut samples = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst)
                        && n < LOOP_MAX_REQUESTS
                        && Instant::now() < deadline
                    {
                        let start = Instant::now();
                        let res = cred.apply(http.get(&url)).send().await.unwrap();
                        let (status, code) = outcome(res).await;
                        samples.push(Sample {
                            what,
                            start,
                            end: Instant::now(),
                            status,
                            code,
                        });
                        n += 1;
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                    samples
                }));
            }
        }
        Self { stop, sent, tasks }
    }

    /// Waits until the loops made `n` requests in all (bounded).
    async fn warm_up(&self, n: u64) {
        let start = Instant::now();
        while self.sent.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the request loops made {} requests in 10 s",
                self.sent.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn finish(self) -> Vec<Sample> {
        tokio::time::sleep(AFTER_REVOCATION).await;
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all
    }
}

/// Checks the samples of loops around one revocation, sent at `sent` and answered at `done`:
/// before it was sent, only 200; while it was in flight, 200 or 401 `code`; after it was
/// answered, only 401 `code`. Prints and returns a summary.
fn check_revocation(
    label: &str,
    samples: &[&Sample],
    sent: Instant,
    done: Instant,
    code: &str,
) -> String {
    let (mut before, mut during, mut after) = (Vec::new(), Vec::new(), Vec::new());
    for smp in samples {
        let got = (smp.status, smp.code.as_str());
        if smp.end < sent {
            assert_eq!(
                got,
                (200, ""),
                "{label}: {} answered before the revocation was sent",
                smp.what
            );
            before.push(got);
        } else if smp.start > done {
            assert_eq!(
                got,
                (401, code),
                "{label}: {} started {:?} after the revocation was answered",
                smp.what,
                smp.start - done
            );
            after.push(got);
        } else {
            assert!(
                got == (200, "") || got == (401, code),
                "{label}: {} in flight across the revocation answered {got:?}; \
                 only 200 or 401 {code} are allowed",
                smp.what
            );
            during.push(got);
        }
    }
    assert!(
        before.len() >= 10,
        "{label}: only {} requests before the revocation",
        before.len()
    );
    assert!(
        after.len() >= MIN_AFTER,
        "{label}: only {} requests started after the revocation was answered",
        after.len()
    );
    // The first refusal, relative to when the revocation request was sent.
    let first_refusal = samples
        .iter()
        .filter(|s| s.status == 401)
        .map(|s| s.end)
        .min()
        .map(|t| t.saturating_duration_since(sent));
    let during_ok = during.iter().filter(|g| g.0 == 200).count();
    let summary = format!(
        "{label}: {} requests; {} before the revocation (all 200); {} in flight across it \
         ({during_ok} x 200, {} x 401 {code}); {} started after its answer (all 401 {code}); \
         revocation took {:?}; first 401 {:?} after it was sent",
        samples.len(),
        before.len(),
        during.len(),
        during.len() - during_ok,
        after.len(),
        done - sent,
        first_refusal.unwrap_or_default(),
    );
    println!("{summary}");
    summary
}

// ---------------------------------------------------------------------------------------------
// (b) logout while the session's token is in use

#[test]
fn a_logout_during_requests_refuses_every_request_started_after_it() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let admin = s.admin_token().await;
        create_user(&client(), &s, &admin, "revoke-race@example.com").await;
        let token = s
            .access_token("revoke-race@example.com", USER_PASSWORD)
            .await;
        let bystander = s.admin_token().await;
        let hammer = Hammer::start(
            &s,
            &[
                ("the user's access token", Cred::Bearer(token.clone())),
                (
                    "the admin's token (other session)",
                    Cred::Bearer(bystander.clone()),
                ),
            ],
            2,
        );
        hammer.warm_up(100).await;
        let sent = Instant::now();
        let res = client()
            .post(s.url("/auth/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let done = Instant::now();
        assert_eq!(res.status(), 204, "logout");
        let samples = hammer.finish().await;
        let (mine, others): (Vec<&Sample>, Vec<&Sample>) = samples
            .iter()
            .partition(|s| s.what == "the user's access token");
        check_revocation("(b) logout", &mine, sent, done, "token_revoked");
        // Another session of another user is untouched throughout.
        for smp in &others {
            assert_eq!(
                (smp.status, smp.code.as_str()),
                (200, ""),
                "{} during the logout",
                smp.what
            );
        }
        println!("(b) the other session: {} requests, all 200", others.len());
    });
}

// ---------------------------------------------------------------------------------------------
// (c) an agent terminated during its run

#[test]
fn terminating_an_agent_during_its_run_refuses_every_request_started_after_it() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let admin = s.admin_token().await;
        let http = client();
        let agent = created(
            &http,
            &s,
            &admin,
            "/agents",
            json!({"name": "racer"}),
            "create agent",
        )
        .await;
        let agent_id = agent["agent_id"].as_str().unwrap().to_owned();
        let run = created(
            &http,
            &s,
            &admin,
            &format!("/agents/{agent_id}/runs"),
            json!({"adapter_type": "process"}),
            "start a run",
        )
        .await;
        let run_token = run["token"].as_str().unwrap().to_owned();
        // A key owned by the agent dies with it too.
        let key = created(
            &http,
            &s,
            &admin,
            "/api-keys",
            json!({"name": "agent key", "permissions": ["memory:read"], "agent_id": agent_id}),
            "create the agent's key",
        )
        .await;
        let agent_key = key["api_key"].as_str().unwrap().to_owned();
        for cred in [
            Cred::Bearer(run_token.clone()),
            Cred::Key(agent_key.clone()),
        ] {
            let (status, _) = whoami(&http, &s, &cred).await;
            assert_eq!(status, 200, "{cred:?} before the run");
        }

        let hammer = Hammer::start(
            &s,
            &[
                ("the run token", Cred::Bearer(run_token)),
                ("the agent's API key", Cred::Key(agent_key)),
            ],
            2,
        );
        hammer.warm_up(100).await;
        let sent = Instant::now();
        let res = http
            .post(s.url(&format!("/agents/{agent_id}/terminate")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let done = Instant::now();
        assert_eq!(res.status(), 204, "terminate");
        let samples = hammer.finish().await;
        for what in ["the run token", "the agent's API key"] {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.what == what).collect();
            check_revocation(
                &format!("(c) terminate, {what}"),
                &mine,
                sent,
                done,
                "agent_terminated",
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// (d) an API key disabled during a burst

#[test]
fn disabling_a_key_during_a_burst_refuses_every_request_started_after_it() {
    let _serial = serial();
    run(async {
        let s = Server::start();
        let admin = s.admin_token().await;
        let http = client();
        let key = created(
            &http,
            &s,
            &admin,
            "/api-keys",
            json!({"name": "burst", "permissions": ["memory:read", "memory:list"]}),
            "create key",
        )
        .await;
        let (key_id, api_key) = (
            key["key_id"].as_str().unwrap().to_owned(),
            key["api_key"].as_str().unwrap().to_owned(),
        );

        let hammer = Hammer::start(&s, &[("the key", Cred::Key(api_key.clone()))], 8);
        hammer.warm_up(200).await;
        let sent = Instant::now();
        let res = http
            .patch(s.url(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        let done = Instant::now();
        assert_eq!(res.status(), 200, "PATCH enabled=false");
        let samples = hammer.finish().await;
        let all: Vec<&Sample> = samples.iter().collect();
        check_revocation(
            "(d) key disabled, 8 loops",
            &all,
            sent,
            done,
            "api_key_disabled",
        );

        // And back: enabling it again lets it in again (the refusal was not cached for good).
        let res = http
            .patch(s.url(&format!("/api-keys/{key_id}")))
            .bearer_auth(&admin)
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "PATCH enabled=true");
        let (status, code) = whoami(&http, &s, &Cred::Key(api_key)).await;
        assert_eq!((status, code.as_str()), (200, ""), "the key enabled again");
    });
}
