//! The adversarial suite of the `AuthLayer` (issue 7, point 1), through `oneshot`: no network.
//!
//! The cases are the shared corpus of `portcullis-testkit` (issue 14, point 6): this file is
//! only the harness — an authenticator on a stopped clock with its secrets, keys and valid
//! tokens, and a request sent through the layer to an inner service that echoes the actor —
//! plus the cases only this harness can run (below, `confusion_with_real_signatures`), and the
//! external issuers' table (`corpus::external`: the sample server configures no issuer yet),
//! with both issuers' keys served from memory.
//! `tests/adversarial_server.rs` runs the same corpus against the real server over HTTP.

// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use portcullis_core::api_key::{self, ApiKeyPrefix, ApiKeyRecord, KeyOwner};
use portcullis_core::ids::{AgentId, OrgId, RunId, SessionId, UserId};
use portcullis_core::oidc::{
    ExternalKind, FetchError, FetchedJwks, IssuerAlgorithm, IssuerConfig, JwksSource, KeyFreshness,
    OrgMapping,
};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{AgentRecord, AgentStatus, Stores};
use portcullis_core::testing;
use portcullis_core::token::{
    AccessGrant, AgentGrant, JwtAlgorithm, KeyRing, SigningKey, TokenPolicy, UserTokenTtl,
    UserTokens, VerifyingKey,
};
use portcullis_core::{Actor, AuthConfig, Authenticator, ManualClock, Secret, UnixTime};
use portcullis_testkit::case::{INVALID_TOKEN, bearer};
use portcullis_testkit::corpus::{self, header};
use portcullis_testkit::idp::{self, Idps, Key};
use portcullis_testkit::jws::part;
use portcullis_testkit::{
    Alg, Fixture, Harness, Headers, Ids, Reply, Side, Table, assert_no_failures, run,
};
use portcullis_tower::{AuthLayer, Fallback};
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The fixed time of every fixture's clock.
const T0: UnixTime = 1_700_000_000;
const USER_SECRET: &str = "adversarial-user-jwt-secret-0123456789abcdef";
const AGENT_SECRET: &str = "adversarial-agent-jwt-secret-0123456789abcdef";
const ORG: &str = "acme";
const OTHER_ORG: &str = "globex";
const LEEWAY: u64 = 30;
/// A protected path (not public by default).
const PRIVATE: &str = "/api/v1/sessions";

/// Unit-test keys of portcullis-core (they protect nothing).
const RS_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pem");
const RS_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/eddsa.pem");
const ED_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/eddsa.pub.pem");
const ES_PRIV: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/es256.pem");
const ES_PUB: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/es256.pub.pem");

/// The external issuers' keys: A signs with the RSA test key, B with the P-256 one.
const IDPS: Idps = Idps {
    a_private: RS_PRIV,
    a_public: RS_PUB,
    b_private: ES_PRIV,
};
/// How old A's keys may get (B keeps the default, a day).
const A_MAX_KEY_AGE: u64 = 3600;
/// The time of the expired-keys fixture: A's keys, fetched at [`T0`], are one second too old.
const T_KEYS_EXPIRED: UnixTime = T0 + A_MAX_KEY_AGE + 1;

/// The external issuers a fixture configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Issuers {
    /// None: every JWT is ours.
    None,
    /// A and B, their keys fetched at start on a stopped clock.
    Fresh,
    /// A and B fetched at start; then A went down and its keys grew older than
    /// [`A_MAX_KEY_AGE`] (B's keys are still within their age).
    AExpired,
}

/// An issuer's JWKS served from memory: counts its fetches, and can be taken down.
struct MemoryJwks {
    body: Vec<u8>,
    up: AtomicBool,
    fetches: AtomicU64,
}

impl MemoryJwks {
    fn new(body: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            body,
            up: AtomicBool::new(true),
            fetches: AtomicU64::new(0),
        })
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl JwksSource for MemoryJwks {
    async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.up.load(Ordering::SeqCst) {
            return Err(FetchError("503 from the issuer".into()));
        }
        Ok(FetchedJwks {
            body: self.body.clone(),
            max_age: None,
        })
    }
}

/// Issuer A as `corpus::external` expects it: RS256 and ES256, org from a claim, users.
fn issuer_a() -> IssuerConfig {
    let mut a = IssuerConfig::new(
        idp::ISSUER_A,
        idp::AUDIENCE,
        OrgMapping::Claim(idp::ORG_CLAIM.into()),
    );
    a.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256];
    a.leeway_secs = LEEWAY;
    a.refresh.max_key_age_secs = A_MAX_KEY_AGE;
    // Refreshed at least this often: keys may not expire between two refreshes.
    a.refresh.max_secs = 600;
    a
}

/// Issuer B: ES256, a fixed org, service clients.
fn issuer_b() -> IssuerConfig {
    let mut b = IssuerConfig::new(idp::ISSUER_B, idp::AUDIENCE, OrgMapping::Fixed(ORG.into()));
    b.algorithms = vec![IssuerAlgorithm::Es256];
    b.kind = ExternalKind::Service;
    b.leeway_secs = LEEWAY;
    b
}

/// The core algorithm and test key pair of a ring (`None` for HS256).
fn keys_of(ring: Alg) -> Option<(JwtAlgorithm, &'static [u8], &'static [u8])> {
    match ring {
        Alg::Hs256 => None,
        Alg::Rs256 => Some((JwtAlgorithm::Rs256, RS_PRIV, RS_PUB)),
        Alg::EdDsa => Some((JwtAlgorithm::EdDsa, ED_PRIV, ED_PUB)),
        Alg::Es256 => Some((JwtAlgorithm::Es256, ES_PRIV, ES_PUB)),
    }
}

/// An authenticator on a stopped clock with two users, two agents (in two orgs), their keys and
/// valid tokens, behind an `AuthLayer` with `fallback`.
struct Tower {
    auth: Authenticator,
    fallback: Fallback,
    fx: Fixture,
    /// The JWKS sources of issuers A and B, when configured.
    sources: Option<[Arc<MemoryJwks>; 2]>,
}

impl Tower {
    async fn new(ring: Alg, fallback: Fallback) -> Self {
        Self::with_issuers(ring, fallback, Issuers::None).await
    }

    async fn with_issuers(ring: Alg, fallback: Fallback, issuers: Issuers) -> Self {
        let mut config = AuthConfig::builder()
            .jwt_secret(Secret::from(USER_SECRET))
            .agent_secret(Secret::from(AGENT_SECRET));
        if let Some((alg, private, _)) = keys_of(ring) {
            config = config.jwt_signing_key(SigningKey::from_private_pem(alg, private).unwrap());
        }
        if issuers != Issuers::None {
            config = config
                .external_issuer(issuer_a())
                .external_issuer(issuer_b());
        }
        let clock = ManualClock::new(T0);
        let mut builder = Authenticator::builder()
            .config(config.build().unwrap())
            .clock(Arc::new(clock.clone()))
            .stores(Stores::memory());
        let sources = (issuers != Issuers::None).then(|| {
            [
                MemoryJwks::new(IDPS.jwks(Key::A)),
                MemoryJwks::new(IDPS.jwks(Key::B)),
            ]
        });
        if let Some([a, b]) = &sources {
            builder = builder
                .jwks_source(idp::ISSUER_A, a.clone())
                .jwks_source(idp::ISSUER_B, b.clone());
        }
        let auth = builder.build().unwrap();
        if let Some([a, _]) = &sources {
            assert!(auth.start_issuers().await.is_empty(), "the first fetches");
            if issuers == Issuers::AExpired {
                a.up.store(false, Ordering::SeqCst);
                clock.set(T_KEYS_EXPIRED);
                let status = auth.issuer_status();
                assert_eq!(status[0].freshness, KeyFreshness::Expired, "{status:?}");
                assert_eq!(status[1].freshness, KeyFreshness::Fresh, "{status:?}");
            }
        }
        let user_kid = auth.user_tokens().key_ring().active().kid().to_owned();
        let agent_kid = auth.agent_tokens().key_ring().active().kid().to_owned();
        if let Some((alg, _, public)) = keys_of(ring) {
            // The public PEM the confusion cases use really is the ring's key.
            let public = VerifyingKey::from_public_pem(alg, public).unwrap();
            assert_eq!(public.kid(), user_kid, "{ring:?} test keys do not match");
        }
        let stores = auth.stores().clone();
        let mut sids = Vec::new();
        for user in ["u-alice", "u-bob"] {
            let sid = SessionId::random();
            let record = SessionRecord::new(
                sid.clone(),
                UserId::from(user),
                OrgId::from(ORG),
                api_key::KeyHash::of(user.as_bytes()),
                T0,
                7 * 24 * 3600,
                false,
            );
            stores.sessions.create(record).await.unwrap();
            sids.push(sid);
        }
        let access = |user: &str, sid: &SessionId| {
            auth.user_tokens()
                .mint_access(AccessGrant {
                    user_id: &UserId::from(user),
                    email: &format!("{user}@example.com"),
                    role: "user",
                    org_id: &OrgId::from(ORG),
                    session_id: sid,
                })
                .unwrap()
                .token
                .expose()
                .to_owned()
        };
        let alice = access("u-alice", &sids[0]);
        let bob = access("u-bob", &sids[1]);
        let refresh = auth
            .user_tokens()
            .mint_refresh(&UserId::from("u-alice"), &sids[0], false)
            .unwrap()
            .token
            .expose()
            .to_owned();
        for (agent, org) in [("agent-7", ORG), ("agent-8", OTHER_ORG)] {
            let record = AgentRecord {
                id: AgentId::from(agent),
                org_id: OrgId::from(org),
                name: format!("{agent} the agent"),
                status: AgentStatus::Active,
                created_at: T0,
            };
            stores.agents.insert(record).await.unwrap();
        }
        let run_token = |agent: &str, company: &str, run: &str| {
            auth.agent_tokens()
                .mint(AgentGrant {
                    agent_id: &AgentId::from(agent),
                    company_id: &OrgId::from(company),
                    adapter_type: "claude",
                    run_id: &RunId::from(run),
                })
                .unwrap()
                .token
                .expose()
                .to_owned()
        };
        let run = run_token("agent-7", ORG, "run-7");
        let other_run = run_token("agent-8", OTHER_ORG, "run-8");
        let mut keys = Vec::new();
        for (id, owner) in [
            ("key-alice", KeyOwner::User(UserId::from("u-alice"))),
            ("key-bob", KeyOwner::User(UserId::from("u-bob"))),
            ("key-agent-7", KeyOwner::Agent(AgentId::from("agent-7"))),
        ] {
            let generated = api_key::generate(&ApiKeyPrefix::default());
            let record = ApiKeyRecord {
                name: id.to_owned(),
                created_by: UserId::from("u-alice").into(),
                owner,
                org_id: OrgId::from(ORG),
                created_at: T0,
                ..testing::api_key_record(id, generated.hash)
            };
            stores.api_keys.insert(record).await.unwrap();
            keys.push(generated.key.expose().to_owned());
        }
        let jwks = serde_json::to_value(auth.user_tokens().key_ring().jwks()).unwrap();
        let fx = Fixture {
            clock: if issuers == Issuers::AExpired {
                || T_KEYS_EXPIRED
            } else {
                || T0
            },
            leeway: LEEWAY,
            ring,
            user_secret: Some(USER_SECRET.as_bytes().to_vec()),
            agent_secret: AGENT_SECRET.as_bytes().to_vec(),
            public_pem: keys_of(ring).map(|(_, _, public)| public),
            jwk: jwks["keys"].get(0).cloned(),
            user_kid,
            agent_kid,
            org: ORG.to_owned(),
            other_org: OTHER_ORG.to_owned(),
            alice,
            bob,
            refresh,
            run,
            other_run,
            alice_key: keys[0].clone(),
            bob_key: keys[1].clone(),
            agent_key: keys[2].clone(),
            ids: Ids {
                alice: "u-alice".into(),
                bob: "u-bob".into(),
                alice_key: "key-alice".into(),
                agent: "agent-7".into(),
                other_agent: "agent-8".into(),
                board: Some("board".into()),
            },
        };
        fx.self_check();
        Self {
            auth,
            fallback,
            fx,
            sources,
        }
    }

    async fn hs256() -> Self {
        Self::new(Alg::Hs256, Fallback::None).await
    }
}

impl Harness for Tower {
    const SIDE: Side = Side::Tower;

    fn fixture(&self) -> &Fixture {
        &self.fx
    }

    async fn send(&self, headers: &Headers) -> Reply {
        // From a local client: board fallback is only for requests addressed to loopback.
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(PRIVATE)
            .header("host", "localhost");
        for (name, value) in headers {
            b = b.header(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let req = b.body(Full::default()).unwrap();
        let svc = ServiceBuilder::new()
            .layer(
                AuthLayer::builder(self.auth.clone())
                    .fallback(self.fallback)
                    .build()
                    .unwrap(),
            )
            .service(service_fn(echo));
        let (parts, body) = svc.oneshot(req).await.unwrap().into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Reply {
            status: parts.status.as_u16(),
            content_type: header("content-type"),
            www_authenticate: header("www-authenticate"),
            retry_after: header("retry-after"),
            body: body.collect().await.unwrap().to_bytes().to_vec(),
        }
    }
}

/// The inner service: echoes the actor the layer resolved.
async fn echo(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.extensions().get::<Actor>() {
        Some(actor) => {
            json!({"kind": actor.kind().as_str(), "id": actor.id(), "issuer": actor.issuer()})
        }
        None => json!({"kind": "no actor in extensions"}),
    };
    Ok(Response::new(Full::from(
        serde_json::to_vec(&body).unwrap(),
    )))
}

/// Tower only: a genuine RS256/EdDSA/ES256 signature under our HS256 kid. Signing with those
/// algorithms needs the token API (the corpus forges HMAC only); the server suite has no signer.
fn confusion_with_real_signatures() -> Table {
    let mut t = Table::default();
    for ring in [Alg::Rs256, Alg::EdDsa, Alg::Es256] {
        let alg = ring.jose();
        t.add(
            format!("claims {alg}, really signed with a {alg} key, under our HS256 kid"),
            "a genuine asymmetric signature naming our HMAC key",
            INVALID_TOKEN,
            move |fx| {
                let (core_alg, private, _) = keys_of(ring).unwrap();
                let key = SigningKey::from_private_pem(core_alg, private)
                    .unwrap()
                    .with_kid(&fx.user_kid);
                let forger = UserTokens::new(
                    KeyRing::new(key),
                    TokenPolicy {
                        issuer: "portcullis".into(),
                        audience: "portcullis-api".into(),
                        leeway_secs: LEEWAY,
                        max_token_bytes: 8192,
                    },
                    UserTokenTtl::default(),
                )
                .with_clock(Arc::new(ManualClock::new(T0)));
                let claims = part(&fx.alice, 1);
                let str_of = |name: &str| claims[name].as_str().unwrap().to_owned();
                let token = forger
                    .mint_access(AccessGrant {
                        user_id: &UserId::from(str_of("sub").as_str()),
                        email: &str_of("email"),
                        role: &str_of("role"),
                        org_id: &OrgId::from(str_of("org_id").as_str()),
                        session_id: &SessionId::from(str_of("sid").as_str()),
                    })
                    .unwrap();
                assert_eq!(part(token.token.expose(), 0)["alg"], alg);
                bearer(token.token.expose())
            },
        )
        .only(
            Side::Tower,
            "needs the token API to sign with an asymmetric key",
        );
    }
    t
}

/// The HS256 confusion table with this harness's own cases.
fn confusion_against_hs256() -> Table {
    let mut t = header::confusion_against_hs256();
    t.extend("tower only", confusion_with_real_signatures());
    t
}

/// Builds the HS256 fixture, runs the table, asserts nothing failed.
async fn run_group(group: &str, table: Table) {
    let h = Tower::hs256().await;
    assert_no_failures(&run(group, &h, &table).await);
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_every_casing_is_invalid_token() {
    run_group("alg none", header::alg_none()).await;
}

#[tokio::test]
async fn algorithm_confusion_is_invalid_token() {
    let mut failures = Vec::new();
    let h = Tower::hs256().await;
    failures.extend(run("confusion/HS256 ring", &h, &confusion_against_hs256()).await);
    for ring in [Alg::Rs256, Alg::EdDsa, Alg::Es256] {
        let h = Tower::new(ring, Fallback::None).await;
        let group = format!("confusion/{ring:?} ring");
        failures.extend(run(&group, &h, &header::confusion_against_asymmetric()).await);
    }
    assert_no_failures(&failures);
}

#[tokio::test]
async fn kid_injection_is_invalid_token() {
    run_group("kid injection", header::kid_injection()).await;
}

#[tokio::test]
async fn unknown_crit_is_invalid_token() {
    run_group("crit", header::unknown_crit()).await;
}

#[tokio::test]
async fn missing_wrong_typed_and_absurd_exp_nbf_iat() {
    run_group("exp/nbf/iat", corpus::claims::time_claims()).await;
}

#[tokio::test]
async fn wrong_iss_aud_type_and_missing_claims() {
    run_group("iss/aud/type", corpus::claims::iss_aud_type()).await;
}

#[tokio::test]
async fn token_kinds_and_families_never_cross() {
    run_group("token kinds", corpus::claims::token_kinds()).await;
}

#[tokio::test]
async fn tampered_truncated_and_extended_tokens_are_invalid_token() {
    run_group("tampered tokens", corpus::shape::tampered_tokens()).await;
}

#[tokio::test]
async fn duplicate_members_and_non_object_json_are_invalid_token() {
    run_group("json structure", corpus::shape::json_structure()).await;
}

#[tokio::test]
async fn tampered_truncated_extended_and_recased_api_keys() {
    run_group("api keys", corpus::api_keys::api_keys()).await;
}

#[tokio::test]
async fn garbage_empty_duplicated_huge_and_non_ascii_authorization() {
    run_group(
        "authorization headers",
        corpus::request::authorization_headers(),
    )
    .await;
}

#[tokio::test]
async fn conflicting_credentials_are_refused() {
    run_group(
        "conflicting credentials",
        corpus::request::conflicting_credentials(),
    )
    .await;
}

#[tokio::test]
async fn no_credential_is_missing_credentials() {
    run_group("no credential", corpus::request::no_credential()).await;
}

/// Every table again with board fallback on: every refusal stays the same 401 (never the
/// board), every control stays its actor, and only a request with no credential is the board.
#[tokio::test]
async fn with_board_fallback_every_bad_credential_is_still_401_never_the_board() {
    let mut all = corpus::hs256_all();
    all.extend("confusion", confusion_with_real_signatures());
    let h = Tower::new(Alg::Hs256, Fallback::Board).await;
    let mut failures = run("board fallback", &h, &all.with_board_fallback()).await;
    for ring in [Alg::Rs256, Alg::EdDsa] {
        let h = Tower::new(ring, Fallback::Board).await;
        let group = format!("board fallback/{ring:?} ring");
        let table = header::confusion_against_asymmetric().with_board_fallback();
        failures.extend(run(&group, &h, &table).await);
    }
    assert_no_failures(&failures);
}

/// External issuers: algorithm confusion with A's public key, the other issuer's key, `jku`/
/// `x5u`/`jwk` naming the attacker, unknown issuers, typing, the cookie. The attacker's key
/// is never fetched: only A's own JWKS is, at start and at most once more for unknown `kid`s
/// (the clock is stopped inside the cooldown); B's only at start.
#[tokio::test]
async fn external_issuer_tokens_are_verified_by_their_issuer_alone() {
    let h = Tower::with_issuers(Alg::Hs256, Fallback::None, Issuers::Fresh).await;
    let table = corpus::external::external_issuers(IDPS);
    let mut failures = run("external issuers", &h, &table).await;
    let [a, b] = h.sources.as_ref().unwrap();
    let status = h.auth.issuer_status();
    if a.fetches() != 2 || b.fetches() != 1 {
        failures.push(format!(
            "[external issuers] fetches: A {} (want 2: start, one unknown-kid refetch), \
             B {} (want 1: start); {status:?}",
            a.fetches(),
            b.fetches()
        ));
    }
    assert_no_failures(&failures);
}

/// A's keys too old to trust and A down: A's tokens are refused with 503 (fail closed) unless
/// something cheaper refuses them first; B and our own tokens are unaffected.
#[tokio::test]
async fn external_issuer_with_expired_keys_fails_closed() {
    let h = Tower::with_issuers(Alg::Hs256, Fallback::None, Issuers::AExpired).await;
    let table = corpus::external::expired_keys(IDPS);
    let mut failures = run("external issuers/expired keys", &h, &table).await;
    let [a, b] = h.sources.as_ref().unwrap();
    // A: at start, then once for the first token that met its expired keys (the stopped
    // clock stays inside the cooldown for the rest). B: at start only.
    if a.fetches() != 2 || b.fetches() != 1 {
        failures.push(format!(
            "[external issuers/expired keys] fetches: A {}, B {} (want A 2, B 1)",
            a.fetches(),
            b.fetches()
        ));
    }
    assert_no_failures(&failures);
}

/// The external table again behind board fallback: no forged external token is ever the board.
#[tokio::test]
async fn external_issuers_with_board_fallback_are_still_401_never_the_board() {
    let h = Tower::with_issuers(Alg::Hs256, Fallback::Board, Issuers::Fresh).await;
    let table = corpus::external::external_issuers(IDPS).with_board_fallback();
    assert_no_failures(&run("external issuers/board fallback", &h, &table).await);
}
