//! `Authenticator::rotate_refresh`: rotation, the grace window for retries (including the
//! sibling tokens that concurrent retries hand out), and reuse detection.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use portcullis_core::api_key::KeyHash;
use portcullis_core::ids::{OrgId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::{AuthError, Authenticator, ManualClock};

const T0: u64 = 1_800_000_000;

async fn login(grace: u64) -> (Authenticator, ManualClock, String) {
    let clock = ManualClock::new(T0);
    let auth = common::authenticator(common::config().refresh_reuse_grace_secs(grace))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (user, sid) = (UserId::from("u1"), SessionId::random());
    let first = auth.user_tokens().mint_refresh(&user, &sid, false).unwrap();
    let first = first.token.expose().to_owned();
    let session = SessionRecord::new(
        sid,
        user,
        OrgId::from("acme"),
        KeyHash::of(first.as_bytes()),
        T0,
        86_400,
        false,
    );
    auth.stores().sessions.create(session).await.unwrap();
    (auth, clock, first)
}

async fn rotate(auth: &Authenticator, token: &str) -> Result<String, AuthError> {
    let r = auth.rotate_refresh(token).await?;
    Ok(r.refresh.token.expose().to_owned())
}

#[tokio::test]
async fn each_refresh_rotates_and_the_new_token_carries_its_parent() {
    let (auth, _, r0) = login(10).await;
    let r1 = rotate(&auth, &r0).await.unwrap();
    let verified = auth.user_tokens().verify_refresh(&r1).unwrap();
    assert_eq!(verified.parent, Some(KeyHash::of(r0.as_bytes())));
    let r2 = rotate(&auth, &r1).await.unwrap();
    rotate(&auth, &r2).await.unwrap();
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_keep_the_session_whichever_token_they_keep() {
    let (auth, clock, r0) = login(10).await;
    // Both tabs present r0 within the grace: both get a token.
    let a = rotate(&auth, &r0).await.unwrap();
    clock.advance(2);
    let b = rotate(&auth, &r0).await.unwrap();
    // The session's current token is b; the browser may have kept a. Either works.
    clock.advance(2);
    let next = rotate(&auth, &a).await.unwrap();
    rotate(&auth, &next).await.unwrap();
    let _ = b;
}

#[tokio::test]
async fn a_sibling_presented_after_the_grace_is_reuse_and_revokes_the_session() {
    let (auth, clock, r0) = login(10).await;
    let a = rotate(&auth, &r0).await.unwrap();
    let b = rotate(&auth, &r0).await.unwrap();
    clock.advance(11);
    assert_eq!(rotate(&auth, &a).await, Err(AuthError::TokenRevoked));
    // The whole session is dead: the current token too.
    assert_eq!(rotate(&auth, &b).await, Err(AuthError::TokenRevoked));
}

#[tokio::test]
async fn a_replayed_token_after_the_grace_is_reuse_and_revokes_the_session() {
    let (auth, clock, r0) = login(10).await;
    let r1 = rotate(&auth, &r0).await.unwrap();
    clock.advance(11);
    assert_eq!(rotate(&auth, &r0).await, Err(AuthError::TokenRevoked));
    assert_eq!(rotate(&auth, &r1).await, Err(AuthError::TokenRevoked));
}

#[tokio::test]
async fn with_no_grace_any_replay_or_sibling_is_reuse() {
    let (auth, _, r0) = login(0).await;
    let r1 = rotate(&auth, &r0).await.unwrap();
    assert_eq!(rotate(&auth, &r0).await, Err(AuthError::TokenRevoked));
    assert_eq!(rotate(&auth, &r1).await, Err(AuthError::TokenRevoked));
}

#[tokio::test]
async fn an_access_token_or_garbage_is_not_a_refresh_token() {
    let (auth, _, _) = login(10).await;
    assert_eq!(
        rotate(&auth, "not.a.token").await,
        Err(AuthError::InvalidToken(
            portcullis_core::TokenError::Malformed
        ))
    );
}
