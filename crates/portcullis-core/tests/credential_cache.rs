//! The resolved-credential cache: a repeat of a credential skips verification and the store
//! lookups, but every revocation, expiry and limit still takes effect exactly as without it.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use portcullis_core::api_key::{ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::cache::Invalidation;
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, RunId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::token::{AccessGrant, AgentGrant};
use portcullis_core::{Actor, AuthError, Authenticator, Clock, Credential, ManualClock, Secret};

const T0: u64 = 1_800_000_000;

struct Fx {
    auth: Authenticator,
    clock: ManualClock,
    user: UserId,
    org: OrgId,
    sid: SessionId,
}

async fn fx() -> Fx {
    fx_from(common::authenticator(
        common::config().agent_secret(Secret::random(32)),
    ))
    .await
}

/// [`fx`] over an authenticator `builder` makes (its clock set here), with one live session.
async fn fx_from(builder: portcullis_core::AuthenticatorBuilder) -> Fx {
    let clock = ManualClock::new(T0);
    let auth = builder.clock(Arc::new(clock.clone())).build().unwrap();
    let (user, org, sid) = (UserId::from("u1"), OrgId::from("acme"), SessionId::random());
    let session = SessionRecord::new(
        sid.clone(),
        user.clone(),
        org.clone(),
        KeyHash::of(b"refresh"),
        T0,
        7 * 86_400,
        false,
    );
    auth.stores().sessions.create(session).await.unwrap();
    Fx {
        auth,
        clock,
        user,
        org,
        sid,
    }
}

fn access(fx: &Fx) -> String {
    let grant = AccessGrant {
        user_id: &fx.user,
        email: "u@example.com",
        role: "user",
        org_id: &fx.org,
        session_id: &fx.sid,
    };
    let minted = fx.auth.user_tokens().mint_access(grant).unwrap();
    minted.token.expose().to_owned()
}

async fn key(fx: &Fx, owner: KeyOwner, rate_limit: Option<u32>) -> (String, ApiKeyId) {
    let (key, id, _) = common::insert_key(&fx.auth, |usual| ApiKeyRecord {
        created_by: fx.user.clone().into(),
        owner,
        org_id: fx.org.clone(),
        created_at: T0,
        expires_at: Some(T0 + 60),
        rate_limit_per_minute: rate_limit,
        ..usual
    })
    .await;
    (key, id)
}

#[tokio::test]
async fn a_resolved_token_is_served_from_the_cache_and_only_an_identical_one_hits() {
    let fx = fx().await;
    let token = access(&fx);
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    let actor = fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    assert_eq!(
        fx.auth.resolve_cached(Credential::Bearer(&token)),
        Some(actor)
    );
    // The cookie family is cached apart: its actor says `cookie`.
    assert!(fx.auth.resolve_cached(Credential::Cookie(&token)).is_none());
    // One changed character: never a hit, and refused the slow way.
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert!(
        fx.auth
            .resolve_cached(Credential::Bearer(&altered))
            .is_none()
    );
    assert!(fx.auth.resolve(Credential::Bearer(&altered)).await.is_err());
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    // 15 minutes plus the 30 s leeway.
    fx.clock.advance(15 * 60 + 30);
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenExpired)
    );
}

#[tokio::test]
async fn revoking_the_session_of_a_cached_token_takes_effect_at_once() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    fx.auth.revoke_session(&fx.sid).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenRevoked)
    );
}

#[tokio::test]
async fn denying_a_cached_tokens_jti_takes_effect_at_once() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    let jti = fx.auth.user_tokens().verify_access(&token).unwrap().jti;
    fx.auth.deny_token(&jti, T0 + 3600).await.unwrap();
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenRevoked)
    );
}

#[tokio::test]
async fn an_invalidation_from_another_instance_makes_cached_credentials_stale() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    // Another instance revoked it in the shared store and announced it.
    fx.auth.stores().sessions.revoke(&fx.sid).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_some());
    fx.auth
        .invalidate(&Invalidation::Session(fx.sid.clone()))
        .await;
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenRevoked)
    );
}

#[tokio::test]
async fn invalidate_all_makes_every_cached_credential_stale() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    fx.auth.invalidate_all();
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    // Still valid: the slow way answers, and caches it again.
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_some());
}

#[tokio::test]
async fn changes_behind_the_authenticators_back_are_seen_after_the_cache_ttl() {
    let fx = fx().await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    fx.auth.stores().sessions.revoke(&fx.sid).await.unwrap();
    // The default TTL is 30 s: the resolved entry is stale by then (the session cache's
    // own moka TTL runs on real time, so only the resolved layer is checked here).
    fx.clock.advance(30);
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
}

#[tokio::test]
async fn a_cached_api_key_is_refused_at_once_when_disabled_and_when_it_expires() {
    let fx = fx().await;
    let (raw, id) = key(&fx, KeyOwner::User(fx.user.clone()), None).await;
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::ApiKey(&raw)).is_some());
    fx.auth.set_api_key_enabled(&id, false).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::ApiKey(&raw)).is_none());
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::ApiKeyDisabled)
    );
    fx.auth.set_api_key_enabled(&id, true).await.unwrap();
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    fx.clock.advance(60);
    assert!(fx.auth.resolve_cached(Credential::ApiKey(&raw)).is_none());
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::ApiKeyExpired)
    );
}

#[tokio::test]
async fn a_rate_limited_key_is_never_served_from_the_cache() {
    let fx = fx().await;
    let (raw, _) = key(&fx, KeyOwner::User(fx.user.clone()), Some(2)).await;
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::ApiKey(&raw)).is_none());
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    assert!(matches!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::RateLimited(_))
    ));
}

#[tokio::test]
async fn terminating_an_agent_kills_its_cached_run_token_and_key_at_once() {
    let fx = fx().await;
    let agent = AgentId::from("agent-1");
    common::insert_agent(&fx.auth, &agent, &fx.org, T0).await;
    let run = RunId::from("run-1");
    let minted = fx
        .auth
        .agent_tokens()
        .mint(AgentGrant {
            agent_id: &agent,
            company_id: &fx.org,
            adapter_type: "local",
            run_id: &run,
        })
        .unwrap();
    let token = minted.token.expose().to_owned();
    let (raw, _) = key(&fx, KeyOwner::Agent(agent.clone()), None).await;
    for cred in [Credential::Bearer(&token), Credential::ApiKey(&raw)] {
        let actor = fx.auth.resolve(cred).await.unwrap();
        assert!(matches!(actor, Actor::Agent(_)));
        assert!(fx.auth.resolve_cached(cred).is_some());
    }
    fx.auth.terminate_agent(&agent).await.unwrap();
    for cred in [Credential::Bearer(&token), Credential::ApiKey(&raw)] {
        assert!(fx.auth.resolve_cached(cred).is_none());
        assert_eq!(fx.auth.resolve(cred).await, Err(AuthError::AgentTerminated));
    }
}

#[tokio::test]
async fn a_zero_size_cache_caches_nothing() {
    let fx = fx_from(
        Authenticator::builder().cache(portcullis_core::cache::CacheConfig {
            resolved_bytes: 0,
            ..Default::default()
        }),
    )
    .await;
    let token = access(&fx);
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    assert!(fx.auth.resolve_cached(Credential::Bearer(&token)).is_none());
    assert_eq!(fx.clock.now(), T0);
}

/// A denylist that counts the questions it is asked.
struct Counting {
    inner: Arc<dyn portcullis_core::store::Denylist>,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl portcullis_core::store::Denylist for Counting {
    async fn deny(
        &self,
        jti: &portcullis_core::ids::TokenId,
        expires_at: u64,
    ) -> Result<(), portcullis_core::StoreError> {
        self.inner.deny(jti, expires_at).await
    }
    async fn is_denied(
        &self,
        jti: &portcullis_core::ids::TokenId,
        now: u64,
    ) -> Result<bool, portcullis_core::StoreError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.is_denied(jti, now).await
    }
}

/// First-seen tokens ask the denylist store directly (no cache entry per new `jti`); a token
/// re-resolved after a revocation elsewhere goes through the denylist cache; a denied token
/// presented again and again is refused without asking the store again.
#[tokio::test]
async fn first_seen_tokens_ask_the_denylist_store_and_a_replayed_denial_does_not() {
    let mut stores = portcullis_core::store::Stores::memory();
    let counting = Arc::new(Counting {
        inner: stores.denylist.clone(),
        asked: Default::default(),
    });
    stores.denylist = counting.clone();
    let asked = || counting.asked.load(std::sync::atomic::Ordering::SeqCst);
    let fx = fx_from(common::authenticator(common::config()).stores(stores)).await;

    // Two first-seen tokens: one question each; the repeat is a resolved-cache hit.
    let (a, b) = (access(&fx), access(&fx));
    fx.auth.resolve(Credential::Bearer(&a)).await.unwrap();
    fx.auth.resolve(Credential::Bearer(&b)).await.unwrap();
    fx.auth.resolve(Credential::Bearer(&a)).await.unwrap();
    assert_eq!(asked(), 2);

    // A revocation elsewhere makes both cached actors stale: each is re-resolved once through
    // the denylist cache (one question each, then cached), not once per request.
    fx.auth
        .invalidate(&Invalidation::Session(SessionId::random()))
        .await;
    for _ in 0..3 {
        fx.auth.resolve(Credential::Bearer(&a)).await.unwrap();
        fx.auth.resolve(Credential::Bearer(&b)).await.unwrap();
    }
    assert_eq!(asked(), 4);
    fx.auth
        .invalidate(&Invalidation::Session(SessionId::random()))
        .await;
    fx.auth.resolve(Credential::Bearer(&a)).await.unwrap();
    assert_eq!(
        asked(),
        4,
        "the second re-resolution is a denylist-cache hit"
    );

    // A token denied before it was ever seen: refused, and its replays cost no question.
    let c = access(&fx);
    let jti = fx.auth.user_tokens().verify_access(&c).unwrap().jti;
    fx.auth.deny_token(&jti, T0 + 3600).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            fx.auth.resolve(Credential::Bearer(&c)).await,
            Err(AuthError::TokenRevoked)
        );
    }
    assert_eq!(asked(), 5);
}
