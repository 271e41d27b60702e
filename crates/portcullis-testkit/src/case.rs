//! Cases, tables of them, the check of one reply, and the runner over a harness.
//!
//! A case is a name, a line saying what it probes, the request headers (built by a closure from
//! the [`Fixture`]) and what must come back: the exact status, problem `code` and
//! `WWW-Authenticate` challenge of a refusal, or the actor of an acceptance (the controls that
//! prove a refusal is caused by the defect under test). No case may produce a 5xx it does not
//! expect (only [`UNAVAILABLE`], failing closed, is ever expected), and no refusal may echo the
//! credential. A table runs whole, then reports every failing case at once.

use std::collections::HashSet;

use serde_json::Value;

use crate::fixture::Fixture;

/// Request headers: name and raw value bytes (values need not be UTF-8).
pub type Headers = Vec<(String, Vec<u8>)>;

type Build = Box<dyn Fn(&Fixture) -> Headers>;

/// Which harness runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The `AuthLayer` through `oneshot`, on a stopped clock.
    Tower,
    /// The real `portcullis` binary over HTTP, on the wall clock.
    Server,
}

/// An actor the harness's echo (tower) or `/auth/whoami` (server) must describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// alice, by her token.
    Alice,
    /// alice's API key.
    AliceKey,
    /// The agent, by its run token or its own key.
    Agent,
    /// The board fallback.
    Board,
    /// The user of external issuer A ([`crate::idp::SUBJECT_A`]).
    IdpA,
    /// The service client of external issuer B ([`crate::idp::SUBJECT_B`]).
    IdpB,
}

/// Which `WWW-Authenticate` a 401 carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="portcullis"`: nothing was presented.
    Bare,
    /// `… error="invalid_token"`: a credential was presented.
    InvalidToken,
    /// No `WWW-Authenticate` at all: a refusal that says nothing about the credential (503).
    None,
}

impl Challenge {
    /// The exact header value (`None` for [`Challenge::None`]).
    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Bare => Some(r#"Bearer realm="portcullis""#),
            Self::InvalidToken => Some(r#"Bearer realm="portcullis", error="invalid_token""#),
            Self::None => None,
        }
    }
}

/// What a case must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// 200 with this actor.
    Actor(Who),
    /// A problem+json refusal: status, code, and (for a 401) the challenge.
    Problem(u16, &'static str, Challenge),
}

/// A 401 of a presented credential.
pub const fn no(code: &'static str) -> Want {
    Want::Problem(401, code, Challenge::InvalidToken)
}

/// 401 `invalid_token`.
pub const INVALID_TOKEN: Want = no("invalid_token");
/// 401 `invalid_api_key`.
pub const INVALID_API_KEY: Want = no("invalid_api_key");
/// 401 `invalid_credentials`.
pub const INVALID_CREDENTIALS: Want = no("invalid_credentials");
/// 401 `wrong_token_type`.
pub const WRONG_TOKEN_TYPE: Want = no("wrong_token_type");
/// 401 `token_expired`.
pub const TOKEN_EXPIRED: Want = no("token_expired");
/// 401 `token_revoked`.
pub const TOKEN_REVOKED: Want = no("token_revoked");
/// 401 `missing_credentials` with the bare challenge.
pub const MISSING: Want = Want::Problem(401, "missing_credentials", Challenge::Bare);
/// alice.
pub const ALICE: Want = Want::Actor(Who::Alice);
/// alice's API key.
pub const ALICE_KEY: Want = Want::Actor(Who::AliceKey);
/// The agent.
pub const AGENT: Want = Want::Actor(Who::Agent);
/// The board.
pub const BOARD: Want = Want::Actor(Who::Board);
/// External issuer A's user.
pub const IDP_A: Want = Want::Actor(Who::IdpA);
/// External issuer B's service client.
pub const IDP_B: Want = Want::Actor(Who::IdpB);
/// 503 `auth_unavailable`, no challenge, with `Retry-After`: failing closed.
pub const UNAVAILABLE: Want = Want::Problem(503, "auth_unavailable", Challenge::None);

/// One case.
pub struct Case {
    /// Unique in its table.
    pub name: String,
    /// What it probes.
    pub what: String,
    /// The outcome.
    pub want: Want,
    /// Where the server's outcome differs (a status only the HTTP stack produces).
    pub server_want: Option<Want>,
    /// A case only one harness can run, and why.
    pub only: Option<(Side, &'static str)>,
    build: Build,
}

impl Case {
    /// Runs only on `side`, for the reason `why`.
    pub fn only(&mut self, side: Side, why: &'static str) -> &mut Self {
        self.only = Some((side, why));
        self
    }

    /// Expects `want` from the server instead.
    pub fn on_server(&mut self, want: Want) -> &mut Self {
        self.server_want = Some(want);
        self
    }

    /// The outcome on `side`.
    pub fn want_on(&self, side: Side) -> Want {
        match (side, self.server_want) {
            (Side::Server, Some(w)) => w,
            _ => self.want,
        }
    }

    /// Whether `side` runs it.
    pub fn runs_on(&self, side: Side) -> bool {
        self.only.is_none_or(|(s, _)| s == side)
    }

    /// The request headers for `fx`.
    pub fn headers(&self, fx: &Fixture) -> Headers {
        (self.build)(fx)
    }
}

/// A table of cases.
#[derive(Default)]
pub struct Table(pub Vec<Case>);

impl Table {
    /// Adds a case; returns it for [`Case::only`] and [`Case::on_server`].
    pub fn add(
        &mut self,
        name: impl Into<String>,
        what: impl Into<String>,
        want: Want,
        build: impl Fn(&Fixture) -> Headers + 'static,
    ) -> &mut Case {
        self.0.push(Case {
            name: name.into(),
            what: what.into(),
            want,
            server_want: None,
            only: None,
            build: Box::new(build),
        });
        self.0.last_mut().unwrap()
    }

    /// Appends `other`'s cases, their names prefixed with `group`.
    pub fn extend(&mut self, group: &str, other: Table) {
        self.0.extend(other.0.into_iter().map(|mut c| {
            c.name = format!("{group}: {}", c.name);
            c
        }));
    }

    /// The same table behind board fallback: what is no credential at all becomes the board;
    /// every other expectation stays.
    pub fn with_board_fallback(mut self) -> Self {
        for case in &mut self.0 {
            let missing = |w: Want| matches!(w, Want::Problem(_, "missing_credentials", _));
            if missing(case.want) {
                case.want = BOARD;
                case.name = format!("{} (no credential: the board)", case.name);
            }
            if case.server_want.is_some_and(missing) {
                case.server_want = Some(BOARD);
            }
        }
        self
    }

    /// How many cases `side` runs.
    pub fn count_on(&self, side: Side) -> usize {
        self.0.iter().filter(|c| c.runs_on(side)).count()
    }
}

/// One header.
pub fn hv(name: &str, value: impl AsRef<[u8]>) -> (String, Vec<u8>) {
    (name.to_owned(), value.as_ref().to_vec())
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: impl AsRef<str>) -> Headers {
    vec![hv("authorization", format!("Bearer {}", token.as_ref()))]
}

/// `Authorization: <value>` (any bytes).
pub fn authorization(value: impl AsRef<[u8]>) -> Headers {
    vec![hv("authorization", value)]
}

/// `X-API-Key: <key>`.
pub fn x_api_key(key: impl AsRef<[u8]>) -> Headers {
    vec![hv("x-api-key", key)]
}

/// `Cookie: portcullis_access=<token>`.
pub fn access_cookie(token: impl AsRef<str>) -> Headers {
    vec![hv(
        "cookie",
        format!("portcullis_access={}", token.as_ref()),
    )]
}

/// What came back.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// How a harness sends a request (GET of a protected resource that echoes the actor as
/// `{"kind": …, "id": …}`, and `"issuer": …` for an external one) and which fixture it has.
// Only ever used generically, in the harness's own task: no `Send` bound needed.
#[allow(async_fn_in_trait)]
pub trait Harness {
    /// Which harness this is.
    const SIDE: Side;

    /// The secrets, tokens and ids of this harness.
    fn fixture(&self) -> &Fixture;

    /// Sends one request with `headers`.
    async fn send(&self, headers: &Headers) -> Reply;
}

/// Runs every case of `table` that `h` runs; the failures, one line each.
pub async fn run<H: Harness>(group: &str, h: &H, table: &Table) -> Vec<String> {
    let fx = h.fixture();
    let mut failures = Vec::new();
    let mut names = HashSet::new();
    for case in table.0.iter() {
        assert!(
            names.insert(case.name.as_str()),
            "{group}: duplicate case name {:?}",
            case.name
        );
        if !case.runs_on(H::SIDE) {
            continue;
        }
        let headers = case.headers(fx);
        let want = case.want_on(H::SIDE);
        let r = h.send(&headers).await;
        if let Err(why) = check(fx, &r, want, &headers) {
            let mut body = String::from_utf8_lossy(&r.body).into_owned();
            body.truncate(400);
            failures.push(format!(
                "[{group}] {} — {}\n    expected {want:?}, got {} (WWW-Authenticate: {:?}): {why}\n    body: {body}",
                case.name, case.what, r.status, r.www_authenticate,
            ));
        }
    }
    println!(
        "{group}: {} cases, {} failed",
        table.count_on(H::SIDE),
        failures.len()
    );
    failures
}

/// Why `r` is not what `want` says, if it is not.
pub fn check(fx: &Fixture, r: &Reply, want: Want, presented: &Headers) -> Result<(), String> {
    let expected_5xx = matches!(want, Want::Problem(s, _, _) if s == r.status);
    if r.status >= 500 && !expected_5xx {
        return Err("a 5xx".into());
    }
    let doc: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    match want {
        Want::Actor(who) => {
            if r.status != 200 {
                return Err("not a 200".into());
            }
            use crate::idp::{ISSUER_A, ISSUER_B, SUBJECT_A, SUBJECT_B};
            let (kind, id, issuer) = match who {
                Who::Alice => ("user", Some(fx.ids.alice.as_str()), None),
                Who::AliceKey => ("api_key", Some(fx.ids.alice_key.as_str()), None),
                Who::Agent => ("agent", Some(fx.ids.agent.as_str()), None),
                Who::Board => ("board", fx.ids.board.as_deref(), None),
                Who::IdpA => ("user", Some(SUBJECT_A), Some(ISSUER_A)),
                Who::IdpB => ("service", Some(SUBJECT_B), Some(ISSUER_B)),
            };
            if doc["kind"] != kind || id.is_some_and(|id| doc["id"] != id) {
                return Err(format!("actor {doc}"));
            }
            if issuer.is_some_and(|iss| doc["issuer"] != iss) {
                return Err(format!("actor of another issuer {doc}"));
            }
        }
        Want::Problem(status, code, challenge) => {
            if r.status != status {
                return Err("wrong status".into());
            }
            if r.content_type.as_deref() != Some("application/problem+json") {
                return Err(format!("content-type {:?}", r.content_type));
            }
            if doc["code"] != code {
                return Err(format!("code {}", doc["code"]));
            }
            if doc["status"] != status {
                return Err(format!("status member {}", doc["status"]));
            }
            let expected = challenge.header();
            if (status == 401 || expected.is_none()) && r.www_authenticate.as_deref() != expected {
                return Err(format!("challenge, expected {expected:?}"));
            }
            // Failing closed says when to come back.
            if status == 503
                && r.retry_after
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none()
            {
                return Err(format!("Retry-After {:?}", r.retry_after));
            }
            // A refusal never echoes what was presented.
            let body = String::from_utf8_lossy(&r.body);
            for (_, value) in presented {
                let value = String::from_utf8_lossy(value);
                for piece in value.split([' ', ';', '=', ',']) {
                    if piece.len() >= 16 && body.contains(piece) {
                        return Err("the body echoes the credential".into());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fails with every failure listed.
#[track_caller]
pub fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
