//! External issuers (OpenID Connect) through the library: tokens of a provider signed with
//! real keys, its JWKS served by an in-memory source that can rotate, fail and count, time
//! from a `ManualClock` (and, for the background refresh, tokio's paused clock).
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_core::ids::OrgId;
use portcullis_core::oidc::{
    ExternalKind, FetchError, FetchedJwks, IssuerAlgorithm, IssuerConfig, IssuerStatus, JwksSource,
    KeyFreshness, OrgMapping,
};
use portcullis_core::token::SigningKey;
use portcullis_core::{
    Actor, ActorKind, AuthConfig, AuthError, AuthMethod, Authenticator, Credential, ExternalActor,
    ManualClock, OrgScope, PermissionCatalog, PermissionSet, Roles, Secret, StoreError, TokenError,
};
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;
const A: &str = "https://idp-a.example/realms/acme";
const B: &str = "https://idp-b.example";
const AUD: &str = "portcullis-api";
/// What the in-memory source says when it is down.
const DOWN: &str = "https://idp-a.example/jwks: connection refused";

const RSA_PEM: &[u8] = include_bytes!("../src/token/testdata/rs256.pem");
const RSA_PUBLIC_PEM: &[u8] = include_bytes!("../src/token/testdata/rs256.pub.pem");
const EC_PEM: &[u8] = include_bytes!("../src/token/testdata/es256.pem");
const ED_PEM: &[u8] = include_bytes!("../src/token/testdata/eddsa.pem");

// ---------------------------------------------------------------------------------------
// The provider's side: keys, JWKS, tokens.

/// jsonwebtoken's crypto provider is chosen by the core from its features (a build with both
/// backends has no default); any core key constructor installs it.
fn crypto() {
    let _ = SigningKey::hs256(&Secret::random(32));
}

/// A signing key of a provider (or an attacker), its algorithm and the `kid` it is published
/// under.
struct Key {
    encoding: EncodingKey,
    alg: Algorithm,
    kid: String,
}

impl Key {
    fn new(encoding: impl FnOnce() -> EncodingKey, alg: Algorithm, kid: &str) -> Self {
        crypto();
        Self {
            encoding: encoding(),
            alg,
            kid: kid.to_owned(),
        }
    }

    fn rsa(kid: &str) -> Self {
        Self::new(
            || EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
            Algorithm::RS256,
            kid,
        )
    }

    fn ec(kid: &str) -> Self {
        Self::new(
            || EncodingKey::from_ec_pem(EC_PEM).unwrap(),
            Algorithm::ES256,
            kid,
        )
    }

    fn ed(kid: &str) -> Self {
        Self::new(
            || EncodingKey::from_ed_pem(ED_PEM).unwrap(),
            Algorithm::EdDSA,
            kid,
        )
    }

    /// Its JWK as providers publish it: `kid`, and `alg` stated.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    /// Its JWK without `alg`: it then verifies every algorithm of its kind.
    fn jwk_without_alg(&self) -> Jwk {
        let mut jwk = self.jwk();
        jwk.common.key_algorithm = None;
        jwk
    }

    /// A token of `claims` signed with this key, its `alg` and `kid`, typed `JWT`.
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), Some("JWT"), claims)
    }

    /// A token signed with this key under any `alg` of its family, `kid` and `typ`.
    fn sign_as(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        typ: Option<&str>,
        claims: &Value,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A token with exactly this header and payload and this signature segment.
fn raw(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// An access token's claims as a Keycloak realm writes them: the catalog permission
/// `session:update` among scopes that are not permissions, and the role `viewer` (with one
/// the role table does not know).
fn claims(iss: &str) -> Value {
    json!({
        "iss": iss,
        "aud": AUD,
        "sub": "alice",
        "org": "acme",
        "iat": T0,
        "exp": T0 + 300,
        "scope": "openid profile email session:update",
        "realm_access": {"roles": ["viewer", "offline_access"]},
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// An issuer's JWKS in memory: swappable, switchable to failing, counting its fetches, and
/// reporting a `Cache-Control: max-age` if told one.
#[derive(Default)]
struct MemoryJwks {
    body: Mutex<Vec<u8>>,
    max_age: Mutex<Option<Duration>>,
    down: AtomicBool,
    fetches: AtomicU64,
}

impl MemoryJwks {
    fn serving(keys: &[Jwk]) -> Arc<Self> {
        let source = Arc::new(Self::default());
        source.serve(keys);
        source
    }

    fn serve(&self, keys: &[Jwk]) {
        let set = JwkSet {
            keys: keys.to_vec(),
        };
        self.serve_body(&serde_json::to_vec(&set).unwrap());
    }

    fn serve_body(&self, body: &[u8]) {
        *self.body.lock().unwrap() = body.to_vec();
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn set_max_age(&self, max_age: Option<Duration>) {
        *self.max_age.lock().unwrap() = max_age;
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl JwksSource for MemoryJwks {
    async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        // A real fetch waits: let concurrent requests pile up behind this one.
        tokio::task::yield_now().await;
        if self.down.load(Ordering::SeqCst) {
            return Err(FetchError(DOWN.to_owned()));
        }
        Ok(FetchedJwks {
            body: self.body.lock().unwrap().clone(),
            max_age: *self.max_age.lock().unwrap(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Our side: configuration, authenticator, expectations.

/// Issuer `iss` for audience [`AUD`], org from the `org` claim, roles from Keycloak's
/// `realm_access.roles`.
fn issuer(iss: &str) -> IssuerConfig {
    let mut config = IssuerConfig::new(iss, AUD, OrgMapping::Claim("org".into()));
    config.roles_claim = Some("realm_access.roles".into());
    config
}

/// An authenticator (at [`T0`] on a manual clock) for these issuers, each with its source;
/// not started.
fn build(issuers: &[(IssuerConfig, Arc<MemoryJwks>)]) -> (Authenticator, ManualClock) {
    let clock = ManualClock::new(T0);
    let mut config = common::config();
    for (issuer, _) in issuers {
        config = config.external_issuer(issuer.clone());
    }
    let mut builder = common::authenticator(config).clock(Arc::new(clock.clone()));
    for (issuer, source) in issuers {
        builder = builder.jwks_source(&issuer.issuer, source.clone());
    }
    (builder.build().unwrap(), clock)
}

/// One issuer, [`A`], with one RSA key (`a-rsa-1`), started.
struct Idp {
    auth: Authenticator,
    clock: ManualClock,
    source: Arc<MemoryJwks>,
    key: Key,
}

impl Idp {
    async fn start(config: IssuerConfig) -> Self {
        let key = Key::rsa("a-rsa-1");
        let source = MemoryJwks::serving(&[key.jwk()]);
        let (auth, clock) = build(&[(config, source.clone())]);
        assert_eq!(auth.start_issuers().await, vec![]);
        assert_eq!(source.fetches(), 1, "start-up fetches once");
        Self {
            auth,
            clock,
            source,
            key,
        }
    }

    async fn resolve(&self, token: &str) -> Result<Actor, AuthError> {
        self.auth.resolve(Credential::Bearer(token)).await
    }

    /// The token of `claims` signed with the provider's key.
    async fn resolve_claims(&self, claims: &Value) -> Result<Actor, AuthError> {
        self.resolve(&self.key.sign(claims)).await
    }

    fn status(&self) -> IssuerStatus {
        let mut all = self.auth.issuer_status();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }
}

fn status(
    issuer: &str,
    freshness: KeyFreshness,
    keys: usize,
    fetches: u64,
    age_secs: Option<u64>,
    last_error: Option<&str>,
) -> IssuerStatus {
    IssuerStatus {
        issuer: issuer.to_owned(),
        freshness,
        keys,
        fetches,
        age_secs,
        last_error: last_error.map(str::to_owned),
    }
}

fn permission(name: &str) -> PermissionSet {
    PermissionCatalog::seed().parse(name).unwrap()
}

fn role(name: &str) -> PermissionSet {
    Roles::default().get(name).unwrap()
}

/// The actor a token of [`claims`] (or what a test changed) resolves to.
fn external(issuer: &str, subject: &str, org: &str, permissions: PermissionSet) -> ExternalActor {
    ExternalActor {
        issuer: issuer.into(),
        subject: subject.into(),
        kind: ExternalKind::User,
        org_id: OrgId::from(org),
        permissions,
        expires_at: T0 + 300,
    }
}

/// What [`claims`] grant: `session:update` from the scopes, `viewer` from the roles.
fn alice_permissions() -> PermissionSet {
    permission("session:update") | role("viewer")
}

fn alice(issuer: &str) -> Actor {
    Actor::External(Arc::new(external(
        issuer,
        "alice",
        "acme",
        alice_permissions(),
    )))
}

fn invalid(e: TokenError) -> Result<Actor, AuthError> {
    Err(AuthError::InvalidToken(e))
}

// ---------------------------------------------------------------------------------------
// 1. The actor.

#[tokio::test]
async fn a_valid_token_resolves_to_an_external_user_with_its_scopes_and_roles() {
    let idp = Idp::start(issuer(A)).await;
    assert!(
        !role("viewer").contains(permission("session:update")),
        "the scope adds something the role does not"
    );
    let actor = idp.resolve_claims(&claims(A)).await.unwrap();
    assert_eq!(actor, alice(A));
    assert_eq!(actor.auth_method(), Some(AuthMethod::Oidc));
    assert_eq!(actor.kind(), ActorKind::User);
    assert_eq!(actor.issuer(), Some(A));
    assert_eq!(actor.id(), Some("alice"));
    assert_eq!(actor.org_scope(), Some(OrgScope::Org(&OrgId::from("acme"))));
    assert_eq!(actor.credential_expires_at(), Some(T0 + 300));
    assert_eq!(idp.source.fetches(), 1, "a known kid fetches nothing");
}

#[tokio::test]
async fn a_service_issuer_resolves_to_service_actors() {
    let mut config = issuer(A);
    config.kind = ExternalKind::Service;
    let idp = Idp::start(config).await;
    let actor = idp.resolve_claims(&claims(A)).await.unwrap();
    let expected = ExternalActor {
        kind: ExternalKind::Service,
        ..external(A, "alice", "acme", alice_permissions())
    };
    assert_eq!(actor, Actor::External(Arc::new(expected)));
    assert_eq!(actor.kind(), ActorKind::Service);
    assert_eq!(actor.auth_method(), Some(AuthMethod::Oidc));
}

#[tokio::test]
async fn a_fixed_org_is_used_whatever_the_token_says() {
    let mut config = issuer(A);
    config.org = OrgMapping::Fixed("tenant-7".into());
    let idp = Idp::start(config).await;
    let expected = Actor::External(Arc::new(external(
        A,
        "alice",
        "tenant-7",
        alice_permissions(),
    )));
    assert_eq!(idp.resolve_claims(&claims(A)).await, Ok(expected.clone()));
    let no_org = without(claims(A), "org");
    assert_eq!(idp.resolve_claims(&no_org).await, Ok(expected));
}

#[tokio::test]
async fn a_superadmin_role_grants_its_permissions_in_the_actors_org_only() {
    let idp = Idp::start(issuer(A)).await;
    let token = with(claims(A), "realm_access", json!({"roles": ["superadmin"]}));
    let actor = idp.resolve_claims(&token).await.unwrap();
    assert!(Roles::default().acts_in_every_org("superadmin"));
    assert_eq!(actor.permissions(), role("superadmin"));
    assert!(!actor.acts_in_every_org());
    assert_eq!(actor.org_scope(), Some(OrgScope::Org(&OrgId::from("acme"))));
    assert!(!actor.can_access_org(&OrgId::from("globex")));
}

#[tokio::test]
async fn scp_arrays_grant_permissions_and_scopes_can_be_switched_off() {
    let idp = Idp::start(issuer(A)).await;
    let scp = with(
        without(claims(A), "scope"),
        "scp",
        json!(["openid", "memory:delete", "admin:read"]),
    );
    let actor = idp.resolve_claims(&scp).await.unwrap();
    let expected = permission("memory:delete") | permission("admin:read") | role("viewer");
    assert_eq!(actor.permissions(), expected);

    let mut config = issuer(A);
    config.scope_permissions = false;
    let idp = Idp::start(config).await;
    let actor = idp.resolve_claims(&claims(A)).await.unwrap();
    assert_eq!(actor.permissions(), role("viewer"), "roles only");
}

#[tokio::test]
async fn a_namespaced_roles_claim_is_read_by_its_whole_name() {
    // Auth0 namespaces custom claims with a URL, dots and all.
    let claim = "https://portcullis.example.com/roles";
    let mut config = issuer(A);
    config.roles_claim = Some(claim.into());
    let idp = Idp::start(config).await;
    let token = with(without(claims(A), "realm_access"), claim, json!(["admin"]));
    let actor = idp.resolve_claims(&token).await.unwrap();
    assert_eq!(
        actor.permissions(),
        permission("session:update") | role("admin")
    );
}

// ---------------------------------------------------------------------------------------
// 2. The cache.

#[tokio::test]
async fn the_repeat_of_a_token_is_served_from_the_cache() {
    let idp = Idp::start(issuer(A)).await;
    let token = idp.key.sign(&claims(A));
    assert_eq!(idp.auth.resolve_cached(Credential::Bearer(&token)), None);
    let first = idp.resolve(&token).await.unwrap();
    assert_eq!(
        idp.auth.resolve_cached(Credential::Bearer(&token)),
        Some(first.clone())
    );
    assert_eq!(idp.resolve(&token).await, Ok(first));
    assert_eq!(
        idp.auth.resolve_cached(Credential::Cookie(&token)),
        None,
        "bearer only"
    );
    assert_eq!(idp.source.fetches(), 1);
}

#[tokio::test]
async fn a_cookie_never_carries_an_external_token() {
    let idp = Idp::start(issuer(A)).await;
    let token = idp.key.sign(&claims(A));
    let result = idp.auth.resolve(Credential::Cookie(&token)).await;
    assert_eq!(result, invalid(TokenError::UnknownKid), "verified as ours");
    assert_eq!(idp.source.fetches(), 1);
    assert_eq!(
        idp.resolve(&token).await,
        Ok(alice(A)),
        "as a bearer token it is A's"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Claims and types.

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    let result = idp.resolve_claims(&without(claims(A), "exp")).await;
    assert_eq!(result, invalid(TokenError::MissingClaim("exp")));
}

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    // Leeway 30 s: `exp` 29 s ago still passes, 30 s ago does not.
    let within = with(claims(A), "exp", json!(T0 - 29));
    let actor = idp.resolve_claims(&within).await.unwrap();
    assert_eq!(actor.credential_expires_at(), Some(T0 - 29));
    let beyond = with(claims(A), "exp", json!(T0 - 30));
    assert_eq!(
        idp.resolve_claims(&beyond).await,
        Err(AuthError::TokenExpired)
    );
}

#[tokio::test]
async fn a_token_expiring_is_no_longer_served_from_the_cache() {
    let idp = Idp::start(issuer(A)).await;
    let token = idp.key.sign(&claims(A));
    idp.resolve(&token).await.unwrap();
    idp.clock.advance(300 + 30);
    assert_eq!(idp.auth.resolve_cached(Credential::Bearer(&token)), None);
    assert_eq!(idp.resolve(&token).await, Err(AuthError::TokenExpired));
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
    let idp = Idp::start(issuer(A)).await;
    let within = with(claims(A), "nbf", json!(T0 + 30));
    assert_eq!(idp.resolve_claims(&within).await, Ok(alice(A)));
    let beyond = with(claims(A), "nbf", json!(T0 + 31));
    assert_eq!(
        idp.resolve_claims(&beyond).await,
        invalid(TokenError::NotYetValid)
    );
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused_beyond_the_leeway() {
    let idp = Idp::start(issuer(A)).await;
    let within = with(claims(A), "iat", json!(T0 + 30));
    assert_eq!(idp.resolve_claims(&within).await, Ok(alice(A)));
    let beyond = with(claims(A), "iat", json!(T0 + 31));
    assert_eq!(
        idp.resolve_claims(&beyond).await,
        invalid(TokenError::IssuedInFuture)
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    let other = with(claims(A), "aud", json!("account"));
    assert_eq!(
        idp.resolve_claims(&other).await,
        invalid(TokenError::WrongAudience)
    );
    let prefixed = with(claims(A), "aud", json!("portcullis-api:refresh"));
    assert_eq!(
        idp.resolve_claims(&prefixed).await,
        invalid(TokenError::WrongAudience)
    );
    let none = without(claims(A), "aud");
    assert_eq!(
        idp.resolve_claims(&none).await,
        invalid(TokenError::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn any_one_of_several_configured_audiences_is_accepted() {
    let mut config = issuer(A);
    config.audiences = vec![AUD.into(), "reports-api".into()];
    let idp = Idp::start(config).await;
    let second = with(claims(A), "aud", json!("reports-api"));
    assert_eq!(idp.resolve_claims(&second).await, Ok(alice(A)));
    let first = with(claims(A), "aud", json!(AUD));
    assert_eq!(idp.resolve_claims(&first).await, Ok(alice(A)));
    let neither = with(claims(A), "aud", json!("billing-api"));
    assert_eq!(
        idp.resolve_claims(&neither).await,
        invalid(TokenError::WrongAudience)
    );
}

#[tokio::test]
async fn an_audience_array_is_accepted_when_it_names_ours() {
    let idp = Idp::start(issuer(A)).await;
    let ours = with(claims(A), "aud", json!(["account", AUD]));
    assert_eq!(idp.resolve_claims(&ours).await, Ok(alice(A)));
    let not_ours = with(claims(A), "aud", json!(["account", "broker"]));
    assert_eq!(
        idp.resolve_claims(&not_ours).await,
        invalid(TokenError::WrongAudience)
    );
    let empty = with(claims(A), "aud", json!([]));
    assert_eq!(
        idp.resolve_claims(&empty).await,
        invalid(TokenError::WrongAudience)
    );
}

#[tokio::test]
async fn a_token_of_an_issuer_not_configured_is_taken_for_ours_and_refused() {
    let idp = Idp::start(issuer(A)).await;
    // Signed by A's key and naming A's kid, but `iss` is not A: routing makes it ours, and our
    // verification refuses a token our keys did not sign.
    let foreign = with(
        claims(A),
        "iss",
        json!("https://idp-a.example/realms/other"),
    );
    let result = idp.resolve_claims(&foreign).await;
    assert_eq!(result, invalid(TokenError::UnknownKid));
    let trailing_slash = with(claims(A), "iss", json!(format!("{A}/")));
    assert_eq!(
        idp.resolve_claims(&trailing_slash).await,
        invalid(TokenError::UnknownKid)
    );
    let no_iss = without(claims(A), "iss");
    assert_eq!(
        idp.resolve_claims(&no_iss).await,
        invalid(TokenError::UnknownKid)
    );
    assert_eq!(idp.source.fetches(), 1, "A's keys were never consulted");
}

#[tokio::test]
async fn a_token_without_the_org_claim_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    let missing = invalid(TokenError::MissingClaim("org"));
    assert_eq!(
        idp.resolve_claims(&without(claims(A), "org")).await,
        missing
    );
    assert_eq!(
        idp.resolve_claims(&with(claims(A), "org", json!(""))).await,
        missing
    );
    assert_eq!(
        idp.resolve_claims(&with(claims(A), "org", json!(42))).await,
        missing
    );
}

#[tokio::test]
async fn a_token_without_sub_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    let missing = invalid(TokenError::MissingClaim("sub"));
    assert_eq!(
        idp.resolve_claims(&without(claims(A), "sub")).await,
        missing
    );
    assert_eq!(
        idp.resolve_claims(&with(claims(A), "sub", json!(""))).await,
        missing
    );
}

#[tokio::test]
async fn a_token_typed_as_another_kind_of_jwt_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    for typ in [
        "logout+jwt",
        "application/logout+jwt",
        "id+jwt",
        "secevent+jwt",
    ] {
        let token = idp
            .key
            .sign_as(Algorithm::RS256, Some("a-rsa-1"), Some(typ), &claims(A));
        assert_eq!(
            idp.resolve(&token).await,
            Err(AuthError::WrongTokenType),
            "{typ}"
        );
    }
    // Generic and access types pass when at+jwt is not required.
    for typ in [None, Some("JWT"), Some("at+jwt")] {
        let token = idp
            .key
            .sign_as(Algorithm::RS256, Some("a-rsa-1"), typ, &claims(A));
        assert_eq!(idp.resolve(&token).await, Ok(alice(A)), "{typ:?}");
    }
}

#[tokio::test]
async fn require_at_jwt_refuses_generic_types_and_accepts_at_jwt() {
    let mut config = issuer(A);
    config.require_at_jwt = true;
    let idp = Idp::start(config).await;
    for typ in [Some("JWT"), None] {
        let token = idp
            .key
            .sign_as(Algorithm::RS256, Some("a-rsa-1"), typ, &claims(A));
        assert_eq!(
            idp.resolve(&token).await,
            Err(AuthError::WrongTokenType),
            "{typ:?}"
        );
    }
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let token = idp
            .key
            .sign_as(Algorithm::RS256, Some("a-rsa-1"), Some(typ), &claims(A));
        assert_eq!(idp.resolve(&token).await, Ok(alice(A)), "{typ}");
    }
}

#[tokio::test]
async fn a_token_altered_after_signing_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    let token = idp.key.sign(&claims(A));
    let (_, rest) = token.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "a-rsa-1"});
    let promoted = with(claims(A), "realm_access", json!({"roles": ["admin"]}));
    let forged = raw(&header, &promoted, signature);
    assert_eq!(
        idp.resolve(&forged).await,
        invalid(TokenError::BadSignature)
    );
}

// ---------------------------------------------------------------------------------------
// 4. Algorithms.

#[tokio::test]
async fn hs256_keyed_with_the_providers_public_key_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    // Algorithm confusion: the provider's public key, which anyone has, as an HMAC secret.
    let confused = Key::new(
        || EncodingKey::from_secret(RSA_PUBLIC_PEM),
        Algorithm::HS256,
        "a-rsa-1",
    );
    let token = confused.sign(&claims(A));
    assert_eq!(
        idp.resolve(&token).await,
        invalid(TokenError::AlgorithmNotAllowed)
    );
    // The same with the JWK's own bytes (`n`) as the secret.
    let jwk = serde_json::to_value(idp.key.jwk()).unwrap();
    let n = jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let confused = Key::new(|| EncodingKey::from_secret(&n), Algorithm::HS256, "a-rsa-1");
    let token = confused.sign(&claims(A));
    assert_eq!(
        idp.resolve(&token).await,
        invalid(TokenError::AlgorithmNotAllowed)
    );
    assert_eq!(idp.source.fetches(), 1, "refused before any key lookup");
}

#[tokio::test]
async fn an_algorithm_not_configured_is_refused() {
    // The key states no `alg`, so only the configuration can refuse RS384.
    let key = Key::rsa("a-rsa-1");
    let source = MemoryJwks::serving(&[key.jwk_without_alg()]);
    let (auth, _) = build(&[(issuer(A), source.clone())]);
    auth.start_issuers().await;
    let rs384 = key.sign_as(Algorithm::RS384, Some("a-rsa-1"), Some("JWT"), &claims(A));
    let result = auth.resolve(Credential::Bearer(&rs384)).await;
    assert_eq!(result, invalid(TokenError::AlgorithmNotAllowed));
    assert_eq!(source.fetches(), 1);

    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Rs384];
    let (auth, _) = build(&[(config, source)]);
    auth.start_issuers().await;
    assert_eq!(auth.resolve(Credential::Bearer(&rs384)).await, Ok(alice(A)));
}

#[tokio::test]
async fn a_key_stating_rs256_refuses_ps256_even_when_ps256_is_configured() {
    let stated = Key::rsa("stated-rs256");
    let open = Key::rsa("no-alg");
    let source = MemoryJwks::serving(&[stated.jwk(), open.jwk_without_alg()]);
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Ps256];
    let (auth, _) = build(&[(config, source.clone())]);
    auth.start_issuers().await;
    let ps256 = stated.sign_as(
        Algorithm::PS256,
        Some("stated-rs256"),
        Some("JWT"),
        &claims(A),
    );
    let result = auth.resolve(Credential::Bearer(&ps256)).await;
    assert_eq!(result, invalid(TokenError::AlgorithmNotAllowed));
    // The same key without a stated `alg` verifies PS256.
    let ps256 = open.sign_as(Algorithm::PS256, Some("no-alg"), Some("JWT"), &claims(A));
    assert_eq!(auth.resolve(Credential::Bearer(&ps256)).await, Ok(alice(A)));
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let idp = Idp::start(issuer(A)).await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "a-rsa-1"});
        let token = raw(&header, &claims(A), "");
        assert_eq!(
            idp.resolve(&token).await,
            invalid(TokenError::AlgNone),
            "{alg}"
        );
    }
    let header = json!({"alg": "HS512", "kid": "a-rsa-1"});
    let token = raw(&header, &claims(A), "c2ln");
    assert_eq!(
        idp.resolve(&token).await,
        invalid(TokenError::UnsupportedAlgorithm)
    );
    assert_eq!(idp.source.fetches(), 1);
}

// ---------------------------------------------------------------------------------------
// 5. Two issuers.

struct TwoIdps {
    auth: Authenticator,
    a_key: Key,
    a_source: Arc<MemoryJwks>,
    b_key: Key,
    b_source: Arc<MemoryJwks>,
}

/// A (RS256, `a-rsa-1`) and B (ES256 only, `b-ec-1`), started; `a_algorithms` for A.
async fn two_idps(a_algorithms: Vec<IssuerAlgorithm>) -> TwoIdps {
    let a_key = Key::rsa("a-rsa-1");
    let b_key = Key::ec("b-ec-1");
    let a_source = MemoryJwks::serving(&[a_key.jwk()]);
    let b_source = MemoryJwks::serving(&[b_key.jwk()]);
    let mut a = issuer(A);
    a.algorithms = a_algorithms;
    let mut b = issuer(B);
    b.algorithms = vec![IssuerAlgorithm::Es256];
    let (auth, _) = build(&[(a, a_source.clone()), (b, b_source.clone())]);
    assert_eq!(auth.start_issuers().await, vec![]);
    assert_eq!((a_source.fetches(), b_source.fetches()), (1, 1));
    TwoIdps {
        auth,
        a_key,
        a_source,
        b_key,
        b_source,
    }
}

#[tokio::test]
async fn each_issuers_tokens_resolve_through_its_own_keys() {
    let idps = two_idps(vec![IssuerAlgorithm::Rs256]).await;
    let resolve = |t: String| {
        let auth = idps.auth.clone();
        async move { auth.resolve(Credential::Bearer(&t)).await }
    };
    assert_eq!(resolve(idps.a_key.sign(&claims(A))).await, Ok(alice(A)));
    assert_eq!(resolve(idps.b_key.sign(&claims(B))).await, Ok(alice(B)));
    // Each key, under the other's `iss`, is unknown there.
    let err = resolve(idps.b_key.sign(&claims(A))).await;
    assert_eq!(
        err,
        invalid(TokenError::AlgorithmNotAllowed),
        "A takes no ES256"
    );
    let err = resolve(idps.a_key.sign(&claims(B))).await;
    assert_eq!(
        err,
        invalid(TokenError::AlgorithmNotAllowed),
        "B takes no RS256"
    );
    assert_eq!((idps.a_source.fetches(), idps.b_source.fetches()), (1, 1));
}

#[tokio::test]
async fn a_token_naming_a_with_bs_kid_is_refused_by_a_without_consulting_b() {
    let idps = two_idps(vec![IssuerAlgorithm::Rs256]).await;
    let auth = &idps.auth;
    // Signed by B's key, B's kid and alg, `iss` A: A takes no ES256, and looks no key up.
    let es256 = idps.b_key.sign(&claims(A));
    let result = auth.resolve(Credential::Bearer(&es256)).await;
    assert_eq!(result, invalid(TokenError::AlgorithmNotAllowed));
    assert_eq!((idps.a_source.fetches(), idps.b_source.fetches()), (1, 1));
    // Headed RS256 with B's kid: A does not have that kid; one refetch of A's keys, not B's.
    let rs256 = idps
        .a_key
        .sign_as(Algorithm::RS256, Some("b-ec-1"), Some("JWT"), &claims(A));
    let result = auth.resolve(Credential::Bearer(&rs256)).await;
    assert_eq!(result, invalid(TokenError::UnknownKid));
    assert_eq!((idps.a_source.fetches(), idps.b_source.fetches()), (2, 1));
}

#[tokio::test]
async fn a_token_naming_a_with_bs_kid_is_refused_even_when_a_takes_es256() {
    let idps = two_idps(vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256]).await;
    let es256 = idps.b_key.sign(&claims(A));
    let result = idps.auth.resolve(Credential::Bearer(&es256)).await;
    assert_eq!(result, invalid(TokenError::UnknownKid));
    assert_eq!((idps.a_source.fetches(), idps.b_source.fetches()), (2, 1));
    // B's own token is still B's.
    let ok = idps.b_key.sign(&claims(B));
    assert_eq!(
        idps.auth.resolve(Credential::Bearer(&ok)).await,
        Ok(alice(B))
    );
}

// ---------------------------------------------------------------------------------------
// 6. Keys named by the token itself.

#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_never_followed() {
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::EdDsa];
    let idp = Idp::start(config).await;
    let attacker = Key::ed("attacker-1");
    // The attacker's JWKS, where the headers point: never given to the authenticator, so
    // fetching it would take another source than the configured one.
    let attackers_jwks = MemoryJwks::serving(&[attacker.jwk()]);
    let jwks_url = "https://attacker.example/jwks.json";

    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("attacker-1".into());
    header.jku = Some(jwks_url.into());
    header.x5u = Some(jwks_url.into());
    header.jwk = Some(attacker.jwk());
    let token = jsonwebtoken::encode(&header, &claims(A), &attacker.encoding).unwrap();
    assert_eq!(idp.resolve(&token).await, invalid(TokenError::UnknownKid));
    assert_eq!(
        idp.source.fetches(),
        2,
        "one refetch of the configured JWKS"
    );

    // The same under the provider's own kid: the provider's key (RS256) decides.
    header.kid = Some("a-rsa-1".into());
    let token = jsonwebtoken::encode(&header, &claims(A), &attacker.encoding).unwrap();
    assert_eq!(
        idp.resolve(&token).await,
        invalid(TokenError::AlgorithmNotAllowed)
    );

    // And with no kid at all: the one EdDSA key of the issuer, which is none.
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims(A), &attacker.encoding).unwrap();
    assert_eq!(idp.resolve(&token).await, invalid(TokenError::UnknownKid));

    assert_eq!(attackers_jwks.fetches(), 0);
    assert_eq!(
        idp.source.fetches(),
        2,
        "the cooldown holds the second unknown kid"
    );
}

// ---------------------------------------------------------------------------------------
// 7. Unknown kids: rotation and floods.

#[tokio::test]
async fn an_unknown_kid_refetches_once_and_a_rotated_key_is_accepted() {
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256];
    let idp = Idp::start(config).await;
    let next = Key::ec("a-ec-2");

    // The provider rotates: the new key is published, tokens are signed with it.
    idp.source.serve(&[idp.key.jwk(), next.jwk()]);
    assert_eq!(idp.resolve(&next.sign(&claims(A))).await, Ok(alice(A)));
    assert_eq!(idp.source.fetches(), 2, "exactly one refetch");
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 2, 2, Some(0), None)
    );
    // Both keys now known: no more fetches.
    let bob = with(claims(A), "sub", json!("bob"));
    assert_eq!(
        idp.resolve(&next.sign(&bob)).await.unwrap().id(),
        Some("bob")
    );
    assert_eq!(idp.resolve_claims(&claims(A)).await, Ok(alice(A)));
    assert_eq!(idp.source.fetches(), 2);
}

#[tokio::test]
async fn a_burst_of_tokens_with_a_rotated_kid_is_accepted_after_one_fetch() {
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256];
    let idp = Idp::start(config).await;
    let next = Key::ec("a-ec-2");
    idp.source.serve(&[idp.key.jwk(), next.jwk()]);
    // Concurrent first requests with the new kid: the first fetches, the others wait on
    // that fetch and take its keys (within the cooldown, they could not fetch again).
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let token = next.sign(&with(claims(A), "sub", json!(format!("user-{i}"))));
        let auth = idp.auth.clone();
        tasks.spawn(async move { auth.resolve(Credential::Bearer(&token)).await });
    }
    let outcomes = tasks.join_all().await;
    let mut subjects: Vec<String> = outcomes
        .into_iter()
        .map(|r| r.unwrap().id().unwrap().to_owned())
        .collect();
    subjects.sort_unstable();
    let mut expected: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(subjects, expected);
    assert_eq!(idp.source.fetches(), 2, "one fetch for the whole burst");
}

#[tokio::test]
async fn an_unknown_kid_not_yet_published_is_refused_and_the_cooldown_holds_the_retry() {
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256];
    let idp = Idp::start(config).await;
    let next = Key::ec("a-ec-2");
    let token = next.sign(&claims(A));
    assert_eq!(idp.resolve(&token).await, invalid(TokenError::UnknownKid));
    assert_eq!(idp.source.fetches(), 2);
    // Published now, but within the cooldown: still refused, not fetched.
    idp.source.serve(&[idp.key.jwk(), next.jwk()]);
    idp.clock.advance(29);
    assert_eq!(idp.resolve(&token).await, invalid(TokenError::UnknownKid));
    assert_eq!(idp.source.fetches(), 2);
    idp.clock.advance(1);
    assert_eq!(idp.resolve(&token).await, Ok(alice(A)));
    assert_eq!(idp.source.fetches(), 3);
}

/// `count` tokens of issuer A with random kids, resolved concurrently: their outcomes.
async fn flood(auth: &Authenticator, key: &Key, count: usize) -> Vec<Result<Actor, AuthError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let kid = uuid::Uuid::new_v4().to_string();
        let token = key.sign_as(Algorithm::RS256, Some(&kid), Some("JWT"), &claims(A));
        let auth = auth.clone();
        tasks.spawn(async move { auth.resolve(Credential::Bearer(&token)).await });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let idp = Idp::start(issuer(A)).await;
    let refused = invalid(TokenError::UnknownKid);

    let outcomes = flood(&idp.auth, &idp.key, 200).await;
    assert_eq!(outcomes.len(), 200);
    assert!(outcomes.iter().all(|r| *r == refused), "{outcomes:?}");
    assert_eq!(idp.source.fetches(), 2, "one refetch for all 200");

    // The cooldown (30 s) counts from that fetch.
    idp.clock.advance(29);
    let outcomes = flood(&idp.auth, &idp.key, 200).await;
    assert!(outcomes.iter().all(|r| *r == refused));
    assert_eq!(idp.source.fetches(), 2, "still within the cooldown");

    idp.clock.advance(1);
    let outcomes = flood(&idp.auth, &idp.key, 200).await;
    assert!(outcomes.iter().all(|r| *r == refused));
    assert_eq!(idp.source.fetches(), 3, "one more after the cooldown");

    // Known kids were never held up.
    assert_eq!(idp.resolve_claims(&claims(A)).await, Ok(alice(A)));
    assert_eq!(idp.source.fetches(), 3);
}

// ---------------------------------------------------------------------------------------
// 8. The issuer down.

#[tokio::test]
async fn with_the_issuer_down_known_kids_work_and_new_kids_are_refused() {
    let mut config = issuer(A);
    config.algorithms = vec![IssuerAlgorithm::Rs256, IssuerAlgorithm::Es256];
    let idp = Idp::start(config).await;
    idp.source.set_down(true);
    idp.clock.advance(100);

    // Last good keys: a known kid still verifies.
    assert_eq!(idp.resolve_claims(&claims(A)).await, Ok(alice(A)));
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 1, 1, Some(100), None)
    );

    // A new kid: the refetch fails, 401.
    let next = Key::ec("a-ec-2");
    let new_kid = next.sign(&claims(A));
    let result = idp.resolve(&new_kid).await;
    assert_eq!(result, invalid(TokenError::UnknownKid));
    assert_eq!(result.unwrap_err().status(), 401);
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Stale, 1, 2, Some(100), Some(DOWN))
    );
    // Still the last good keys.
    let bob = with(claims(A), "sub", json!("bob"));
    assert_eq!(idp.resolve_claims(&bob).await.unwrap().id(), Some("bob"));

    // Recovery: the provider is back with the new key; the next fetch (after the cooldown)
    // takes it and the issuer is fresh again.
    idp.source.set_down(false);
    idp.source.serve(&[idp.key.jwk(), next.jwk()]);
    idp.clock.advance(30);
    assert_eq!(idp.resolve(&new_kid).await, Ok(alice(A)));
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 2, 3, Some(0), None)
    );
}

#[tokio::test]
async fn a_fetched_document_that_is_not_a_key_set_keeps_the_last_good_keys() {
    let idp = Idp::start(issuer(A)).await;
    for body in [
        &b"<html>503 Service Unavailable</html>"[..],
        b"{\"keys\": []}",
    ] {
        idp.source.serve_body(body);
        idp.clock.advance(30);
        let unknown = idp
            .key
            .sign_as(Algorithm::RS256, Some("rotated"), Some("JWT"), &claims(A));
        assert_eq!(idp.resolve(&unknown).await, invalid(TokenError::UnknownKid));
        let status = idp.status();
        assert_eq!((status.freshness, status.keys), (KeyFreshness::Stale, 1));
        assert!(status.last_error.is_some());
        let sub = format!("user-{}", status.fetches);
        let known = with(claims(A), "sub", json!(sub));
        assert_eq!(
            idp.resolve_claims(&known).await.unwrap().id(),
            Some(sub.as_str())
        );
    }
    assert_eq!(idp.source.fetches(), 3);
}

// ---------------------------------------------------------------------------------------
// 9. Expired and never-fetched keys.

#[tokio::test]
async fn keys_not_refreshed_for_longer_than_max_key_age_are_refused_with_503() {
    let mut config = issuer(A);
    config.refresh.max_key_age_secs = 3_600;
    config.refresh.max_secs = 600;
    let idp = Idp::start(config).await;
    idp.source.set_down(true);

    // At exactly the maximum age the keys still count.
    idp.clock.advance(3_600);
    let token = idp.key.sign(&with(claims(A), "exp", json!(T0 + 7_200)));
    let actor = idp.resolve(&token).await.unwrap();
    assert_eq!(actor.id(), Some("alice"));
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 1, 1, Some(3_600), None)
    );

    idp.clock.advance(1);
    let other = idp.key.sign(&with(claims(A), "exp", json!(T0 + 7_201)));
    let expected = AuthError::Unavailable(StoreError::Unavailable(format!(
        "the keys of {A} are older than allowed and cannot be refreshed"
    )));
    // Expired keys are refetched first (once per cooldown); the provider is down: 503.
    let err = idp.resolve(&other).await.unwrap_err();
    assert_eq!(err, expected);
    assert_eq!((err.status(), err.code()), (503, "auth_unavailable"));
    // An unknown kid too, without another fetch within the cooldown.
    let new_kid = idp.key.sign_as(
        Algorithm::RS256,
        Some("k9"),
        Some("JWT"),
        &with(claims(A), "exp", json!(T0 + 7_200)),
    );
    assert_eq!(idp.resolve(&new_kid).await, Err(expected));
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Expired, 1, 2, Some(3_601), Some(DOWN))
    );
}

#[tokio::test]
async fn an_issuer_never_fetched_is_pending_and_refuses_its_tokens_with_503() {
    let key = Key::rsa("a-rsa-1");
    let source = MemoryJwks::serving(&[key.jwk()]);
    source.set_down(true);
    let (auth, clock) = build(&[(issuer(A), source.clone())]);
    let failed = auth.start_issuers().await;
    assert_eq!(failed, vec![(A.to_owned(), FetchError(DOWN.into()))]);
    assert_eq!(
        auth.issuer_status(),
        vec![status(A, KeyFreshness::Pending, 0, 1, None, Some(DOWN))]
    );

    // No keys at all: the fault is ours, not the token's (one refetch, which fails too): 503.
    let never = AuthError::Unavailable(StoreError::Unavailable(format!(
        "the keys of {A} have never been fetched"
    )));
    let err = auth
        .resolve(Credential::Bearer(&key.sign(&claims(A))))
        .await
        .unwrap_err();
    assert_eq!(err, never);
    assert_eq!((err.status(), err.code()), (503, "auth_unavailable"));
    assert_eq!(
        auth.issuer_status(),
        vec![status(A, KeyFreshness::Pending, 0, 2, None, Some(DOWN))]
    );

    // Long after, still pending (never expired: there is nothing to expire) and still 503.
    clock.advance(100_000);
    let err = auth
        .resolve(Credential::Bearer(&key.sign(&with(
            claims(A),
            "exp",
            json!(T0 + 200_000),
        ))))
        .await
        .unwrap_err();
    assert_eq!(err, never);
    assert_eq!(auth.issuer_status()[0].freshness, KeyFreshness::Pending);
    assert_eq!(auth.issuer_status()[0].fetches, 3);

    // Once the provider answers, the next fetch makes it fresh.
    source.set_down(false);
    clock.advance(30);
    let token = key.sign(&with(claims(A), "exp", json!(T0 + 200_000)));
    let actor = auth.resolve(Credential::Bearer(&token)).await.unwrap();
    assert_eq!(actor.issuer(), Some(A));
    assert_eq!(
        auth.issuer_status(),
        vec![status(A, KeyFreshness::Fresh, 1, 4, Some(0), None)]
    );
}

// ---------------------------------------------------------------------------------------
// 10. Start-up and the background refresh.

#[tokio::test]
async fn start_issuers_names_the_issuers_whose_first_fetch_failed() {
    let a_key = Key::rsa("a-rsa-1");
    let b_key = Key::ec("b-ec-1");
    let a_source = MemoryJwks::serving(&[a_key.jwk()]);
    let b_source = MemoryJwks::serving(&[b_key.jwk()]);
    b_source.set_down(true);
    let mut b = issuer(B);
    b.algorithms = vec![IssuerAlgorithm::Es256];
    let (auth, _) = build(&[(issuer(A), a_source.clone()), (b, b_source.clone())]);
    assert_eq!(
        auth.start_issuers().await,
        vec![(B.to_owned(), FetchError(DOWN.into()))]
    );
    assert_eq!(
        auth.issuer_status(),
        vec![
            status(A, KeyFreshness::Fresh, 1, 1, Some(0), None),
            status(B, KeyFreshness::Pending, 0, 1, None, Some(DOWN)),
        ]
    );
    assert_eq!(
        auth.resolve(Credential::Bearer(&a_key.sign(&claims(A))))
            .await,
        Ok(alice(A))
    );
}

#[tokio::test]
async fn start_issuers_is_empty_when_every_issuer_answers() {
    let a_source = MemoryJwks::serving(&[Key::rsa("a-rsa-1").jwk()]);
    let b_source = MemoryJwks::serving(&[Key::ec("b-ec-1").jwk()]);
    let (auth, _) = build(&[(issuer(A), a_source.clone()), (issuer(B), b_source.clone())]);
    assert_eq!(
        auth.issuer_status(),
        vec![
            status(A, KeyFreshness::Pending, 0, 0, None, None),
            status(B, KeyFreshness::Pending, 0, 0, None, None),
        ]
    );
    assert_eq!(auth.start_issuers().await, vec![]);
    assert_eq!(
        auth.issuer_status(),
        vec![
            status(A, KeyFreshness::Fresh, 1, 1, Some(0), None),
            status(B, KeyFreshness::Fresh, 1, 1, Some(0), None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_background_refresh_follows_cache_control_and_retries_failures() {
    let key = Key::rsa("a-rsa-1");
    let source = MemoryJwks::serving(&[key.jwk()]);
    source.set_max_age(Some(Duration::from_secs(120)));
    let (auth, _) = build(&[(issuer(A), source.clone())]);
    assert_eq!(auth.start_issuers().await, vec![]);
    let sleep = |s| tokio::time::sleep(Duration::from_secs(s));

    // max-age 120 s, within [min 60, max 3600]: honoured.
    sleep(119).await;
    assert_eq!(source.fetches(), 1);
    sleep(2).await; // t = 121
    assert_eq!(source.fetches(), 2);

    // Down at the next refresh (t = 240): retried every 10 s, the last good keys kept.
    source.set_down(true);
    sleep(120).await; // t = 241
    assert_eq!(source.fetches(), 3);
    assert_eq!(auth.issuer_status()[0].freshness, KeyFreshness::Stale);
    sleep(10).await; // t = 251
    assert_eq!(source.fetches(), 4);

    // Back, saying max-age 5 s: clamped to the 60 s minimum.
    source.set_down(false);
    source.set_max_age(Some(Duration::from_secs(5)));
    sleep(10).await; // t = 261, fetched at 260
    assert_eq!(source.fetches(), 5);
    assert_eq!(auth.issuer_status()[0].freshness, KeyFreshness::Fresh);
    sleep(58).await; // t = 319
    assert_eq!(source.fetches(), 5);
    sleep(2).await; // t = 321
    assert_eq!(source.fetches(), 6);

    // No max-age: the 3600 s maximum.
    source.set_max_age(None);
    sleep(60).await; // t = 381, fetched at 380
    assert_eq!(source.fetches(), 7);
    sleep(3_598).await;
    assert_eq!(source.fetches(), 7);
    sleep(2).await;
    assert_eq!(source.fetches(), 8);

    // Dropping the authenticator stops it.
    drop(auth);
    sleep(100_000).await;
    assert_eq!(source.fetches(), 8);
}

#[tokio::test(start_paused = true)]
async fn expired_keys_recover_when_the_background_refresh_succeeds() {
    let mut config = issuer(A);
    config.refresh.max_key_age_secs = 3_600;
    config.refresh.max_secs = 1_800;
    let idp = Idp::start(config).await;
    idp.source.set_down(true);
    idp.clock.advance(3_601);
    let token = idp.key.sign(&with(claims(A), "exp", json!(T0 + 7_200)));
    assert!(matches!(
        idp.resolve(&token).await,
        Err(AuthError::Unavailable(_))
    ));
    assert_eq!(idp.status().freshness, KeyFreshness::Expired);

    // That request refetched (and failed): the background refresh retries 10 s later, and
    // fails again, still expired.
    assert_eq!(idp.status().fetches, 2);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Expired, 1, 3, Some(3_601), Some(DOWN))
    );
    // Its next retry succeeds.
    idp.source.set_down(false);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 1, 4, Some(0), None)
    );
    let actor = idp.resolve(&token).await.unwrap();
    assert_eq!(actor.issuer(), Some(A));
}

// ---------------------------------------------------------------------------------------
// 11. Configuration from JSON.

#[tokio::test]
async fn an_issuer_configured_in_json_resolves_end_to_end() {
    let json = format!(
        r#"[{{
            "issuer": "{A}",
            "audiences": ["portcullis-api", "reports-api"],
            "algorithms": ["ES256"],
            "leeway_secs": 5,
            "kind": "service",
            "subject_claim": "client_id",
            "org": {{"claim": "tenant"}},
            "roles_claim": "resource_access.portcullis.roles",
            "require_at_jwt": true,
            "refresh": {{"unknown_kid_cooldown_secs": 5}}
        }}]"#
    );
    let issuers = IssuerConfig::parse_list(&json).unwrap();
    let from_env =
        AuthConfig::from_lookup(|name| (name == "AUTH_OIDC_ISSUERS").then(|| json.clone()))
            .unwrap();
    assert_eq!(
        from_env.issuers, issuers,
        "AUTH_OIDC_ISSUERS reads the same list"
    );

    let key = Key::ec("ci-ec-1");
    let source = MemoryJwks::serving(&[key.jwk()]);
    let (auth, clock) = build(&[(issuers[0].clone(), source.clone())]);
    assert_eq!(auth.start_issuers().await, vec![]);

    let claims = json!({
        "iss": A,
        "aud": ["reports-api"],
        "client_id": "ci-bot",
        "tenant": "acme",
        "exp": T0 + 300,
        "scope": "admin:read",
        "resource_access": {"portcullis": {"roles": ["user"]}},
    });
    let token = key.sign_as(Algorithm::ES256, Some("ci-ec-1"), Some("at+jwt"), &claims);
    let actor = auth.resolve(Credential::Bearer(&token)).await.unwrap();
    let expected = ExternalActor {
        issuer: A.into(),
        subject: "ci-bot".into(),
        kind: ExternalKind::Service,
        org_id: OrgId::from("acme"),
        permissions: permission("admin:read") | role("user"),
        expires_at: T0 + 300,
    };
    assert_eq!(actor, Actor::External(Arc::new(expected)));
    assert_eq!(actor.kind(), ActorKind::Service);

    // The JSON's other settings hold: at+jwt required, 5 s leeway, a 5 s cooldown.
    let generic = key.sign_as(Algorithm::ES256, Some("ci-ec-1"), Some("JWT"), &claims);
    assert_eq!(
        auth.resolve(Credential::Bearer(&generic)).await,
        Err(AuthError::WrongTokenType)
    );
    clock.advance(300 + 4);
    let fresh = with(claims.clone(), "client_id", json!("ci-bot-2"));
    let token = key.sign_as(Algorithm::ES256, Some("ci-ec-1"), Some("at+jwt"), &fresh);
    assert!(
        auth.resolve(Credential::Bearer(&token)).await.is_ok(),
        "within 5 s leeway"
    );
    clock.advance(1);
    let token = key.sign_as(Algorithm::ES256, Some("ci-ec-1"), Some("at+jwt"), &claims);
    assert_eq!(
        auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenExpired)
    );
    let unknown = key.sign_as(Algorithm::ES256, Some("gone"), Some("at+jwt"), &claims);
    for _ in 0..2 {
        let result = auth.resolve(Credential::Bearer(&unknown)).await;
        assert_eq!(result, invalid(TokenError::UnknownKid));
    }
    assert_eq!(source.fetches(), 2);
    clock.advance(5);
    auth.resolve(Credential::Bearer(&unknown))
        .await
        .unwrap_err();
    assert_eq!(source.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_for_an_unknown_kid_is_retried_in_the_background() {
    let idp = Idp::start(issuer(A)).await;
    idp.source.set_down(true);
    let new_kid = idp
        .key
        .sign_as(Algorithm::RS256, Some("k9"), Some("JWT"), &claims(A));
    assert_eq!(
        idp.resolve(&new_kid).await,
        Err(AuthError::InvalidToken(TokenError::UnknownKid))
    );
    assert_eq!(idp.status().freshness, KeyFreshness::Stale);
    // The provider is back: the retry `retry_secs` (10 s) after that failed fetch — not
    // the hour the start-up fetch scheduled — makes the keys fresh again.
    idp.source.set_down(false);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        idp.status(),
        status(A, KeyFreshness::Fresh, 1, 3, Some(0), None)
    );
}

#[tokio::test]
async fn a_cached_resolution_is_not_served_past_the_issuers_key_age() {
    let mut config = issuer(A);
    config.refresh.max_key_age_secs = 3_600;
    config.refresh.max_secs = 600;
    let idp = Idp::start(config).await;
    let token = idp.key.sign(&with(claims(A), "exp", json!(T0 + 7_200)));
    idp.source.set_down(true);
    // Resolved (and cached) 10 s before the keys stop being trusted, well within the cache's
    // own lifetime.
    idp.clock.advance(3_590);
    idp.resolve(&token).await.unwrap();
    assert!(
        idp.auth
            .resolve_cached(Credential::Bearer(&token))
            .is_some()
    );
    idp.clock.advance(10);
    assert!(
        idp.auth
            .resolve_cached(Credential::Bearer(&token))
            .is_some(),
        "at exactly the maximum age the keys still count"
    );
    idp.clock.advance(1);
    assert!(
        idp.auth
            .resolve_cached(Credential::Bearer(&token))
            .is_none(),
        "expired keys: the cache no longer answers for them"
    );
    assert!(matches!(
        idp.resolve(&token).await,
        Err(AuthError::Unavailable(_))
    ));
}
