//! Revocations and their announcement to other instances: a revoking call succeeds only once
//! its invalidation sink confirmed it, fails (an error the server answers 503) otherwise, and
//! holds on this instance either way; repeating the call announces again.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use portcullis_core::api_key::{ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::cache::{Invalidation, InvalidationSink};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::token::AccessGrant;
use portcullis_core::{AuthError, Authenticator, Credential, Secret, StoreError};

/// Records what it was asked to announce; refuses (like an unreachable Redis) while `down`.
#[derive(Default)]
struct Sink {
    down: AtomicBool,
    published: std::sync::Mutex<Vec<Invalidation>>,
}

#[async_trait]
impl InvalidationSink for Sink {
    async fn publish(&self, what: &Invalidation) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "redis at test: publish: down".into(),
            ));
        }
        self.published.lock().unwrap().push(what.clone());
        Ok(())
    }
}

impl Sink {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    fn take(&self) -> Vec<Invalidation> {
        std::mem::take(&mut *self.published.lock().unwrap())
    }
}

struct Fx {
    auth: Authenticator,
    sink: Arc<Sink>,
    user: UserId,
    org: OrgId,
}

fn fx() -> Fx {
    let sink = Arc::new(Sink::default());
    let auth = common::authenticator(common::config().agent_secret(Secret::random(32)))
        .invalidation_sink(sink.clone())
        .build()
        .unwrap();
    Fx {
        auth,
        sink,
        user: UserId::from("u1"),
        org: OrgId::from("acme"),
    }
}

async fn session_token(fx: &Fx) -> (SessionId, String) {
    let sid = SessionId::random();
    let now = fx.auth.clock().now();
    let record = SessionRecord::new(
        sid.clone(),
        fx.user.clone(),
        fx.org.clone(),
        KeyHash::of(sid.as_str().as_bytes()),
        now,
        3600,
        false,
    );
    fx.auth.stores().sessions.create(record).await.unwrap();
    let grant = AccessGrant {
        user_id: &fx.user,
        email: "u@example.com",
        role: "user",
        org_id: &fx.org,
        session_id: &sid,
    };
    let token = fx.auth.user_tokens().mint_access(grant).unwrap();
    (sid, token.token.expose().to_owned())
}

async fn key(fx: &Fx, owner: KeyOwner) -> (String, ApiKeyId, KeyHash) {
    common::insert_key(&fx.auth, |usual| ApiKeyRecord {
        created_by: fx.user.clone().into(),
        owner,
        org_id: fx.org.clone(),
        created_at: fx.auth.clock().now(),
        ..usual
    })
    .await
}

fn unavailable<T: std::fmt::Debug>(got: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(got, Err(StoreError::Unavailable(_))),
        "{what}: want Unavailable, got {got:?}"
    );
}

#[tokio::test]
async fn a_logout_whose_announcement_fails_is_unavailable_holds_here_and_announces_when_repeated() {
    let fx = fx();
    let (sid, token) = session_token(&fx).await;
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    fx.sink.set_down(true);
    unavailable(fx.auth.revoke_session(&sid).await, "revoke_session");
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenRevoked),
        "dead on this instance even though the others were not told"
    );
    fx.sink.set_down(false);
    assert!(fx.auth.revoke_session(&sid).await.unwrap());
    assert_eq!(fx.sink.take(), [Invalidation::Session(sid)]);
}

#[tokio::test]
async fn revoking_a_users_sessions_or_denying_a_token_fails_while_unannounced_and_retries_announce()
{
    let fx = fx();
    let (_, token) = session_token(&fx).await;
    fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
    fx.sink.set_down(true);
    unavailable(
        fx.auth.revoke_user_sessions(&fx.user).await,
        "revoke_user_sessions",
    );
    let jti = TokenId::random();
    unavailable(fx.auth.deny_token(&jti, u64::MAX).await, "deny_token");
    assert_eq!(
        fx.auth.resolve(Credential::Bearer(&token)).await,
        Err(AuthError::TokenRevoked)
    );
    fx.sink.set_down(false);
    fx.auth.revoke_user_sessions(&fx.user).await.unwrap();
    fx.auth.deny_token(&jti, u64::MAX).await.unwrap();
    assert_eq!(
        fx.sink.take(),
        [
            Invalidation::UserSessions(fx.user.clone()),
            Invalidation::Token(jti)
        ]
    );
}

#[tokio::test]
async fn terminating_an_agent_fails_while_unannounced_and_the_retry_finds_it_and_announces() {
    let fx = fx();
    let agent = AgentId::from("agent-1");
    common::insert_agent(&fx.auth, &agent, &fx.org, 0).await;
    let (raw, _, _) = key(&fx, KeyOwner::Agent(agent.clone())).await;
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    fx.sink.set_down(true);
    unavailable(fx.auth.terminate_agent(&agent).await, "terminate_agent");
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::AgentTerminated)
    );
    fx.sink.set_down(false);
    assert!(
        fx.auth.terminate_agent(&agent).await.unwrap(),
        "still found"
    );
    assert_eq!(fx.sink.take(), [Invalidation::Agent(agent)]);
}

#[tokio::test]
async fn disabling_a_key_fails_while_unannounced_and_the_retry_announces() {
    let fx = fx();
    let (raw, id, hash) = key(&fx, KeyOwner::User(fx.user.clone())).await;
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    fx.sink.set_down(true);
    unavailable(fx.auth.set_api_key_enabled(&id, false).await, "disable");
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::ApiKeyDisabled)
    );
    fx.sink.set_down(false);
    assert!(fx.auth.set_api_key_enabled(&id, false).await.unwrap());
    assert_eq!(fx.sink.take(), [Invalidation::ApiKey(hash)]);
}

/// The delete a client repeats after a 503 must find the key, announce, and only then delete
/// it: a delete that removed the record before failing to announce would make the retry a
/// "no such key" that announces nothing, leaving other instances on their cached copy.
#[tokio::test]
async fn a_delete_whose_announcement_fails_keeps_the_key_disabled_so_the_retry_announces_and_deletes()
 {
    let fx = fx();
    let (raw, id, hash) = key(&fx, KeyOwner::User(fx.user.clone())).await;
    fx.auth.resolve(Credential::ApiKey(&raw)).await.unwrap();
    fx.sink.set_down(true);
    unavailable(fx.auth.delete_api_key(&id).await, "delete");
    let kept = fx.auth.stores().api_keys.get(&id).await.unwrap();
    assert_eq!(
        kept.map(|r| r.enabled),
        Some(false),
        "still there, disabled"
    );
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::ApiKeyDisabled)
    );
    fx.sink.set_down(false);
    assert!(
        fx.auth.delete_api_key(&id).await.unwrap(),
        "the retry finds it"
    );
    assert!(fx.auth.stores().api_keys.get(&id).await.unwrap().is_none());
    assert_eq!(
        fx.auth.resolve(Credential::ApiKey(&raw)).await,
        Err(AuthError::InvalidApiKey)
    );
    // Disabled (confirmed), then gone (so that caches say so).
    assert_eq!(
        fx.sink.take(),
        [Invalidation::ApiKey(hash), Invalidation::ApiKey(hash)]
    );
    assert!(!fx.auth.delete_api_key(&id).await.unwrap(), "already gone");
    assert!(fx.sink.take().is_empty());
}
