//! The conformance suite every store backend must pass, written once.
//!
//! A backend crate runs it with [`store_conformance_tests!`](crate::store_conformance_tests),
//! giving an async factory that returns fresh, isolated [`Stores`]; a backend that may be
//! unreachable (a server) gives one that returns `Option<Stores>`, so that its tests are
//! skipped rather than run on something else:
//!
//! ```text
//! portcullis_core::store_conformance_tests!(async { my_backend::fresh_stores().await });
//! portcullis_core::store_conformance_tests!(optional: async { my_server::connect().await });
//! ```
//!
//! The limits ([`limits`]) and the cross-instance invalidations ([`invalidation`]) have
//! suites of their own, in the same style.

// A test suite: a store call that fails is a failed test, so unwrapping is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use super::Stores;
use super::{AgentRecord, AgentStatus, Credits, RefreshResult};
use crate::api_key::{self, ApiKeyPrefix, ApiKeyRecord, KeyCreator, KeyHash, KeyOwner, KeysOf};
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, StoreError};
use crate::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use crate::permission::seed;
use crate::session::{RefreshRejection, SessionRecord};

pub mod invalidation;
pub mod limits;

fn now() -> u64 {
    SystemClock.now()
}

fn key_record(owner: KeyOwner, expires_at: Option<u64>) -> (ApiKeyRecord, String) {
    let generated = api_key::generate(&ApiKeyPrefix::default());
    let record = ApiKeyRecord {
        id: ApiKeyId::random(),
        name: "conformance".into(),
        hash: generated.hash,
        display_prefix: generated.display_prefix.clone(),
        created_by: match &owner {
            KeyOwner::User(u) => KeyCreator::user(u.clone()),
            KeyOwner::Agent(_) => KeyCreator::user(UserId::random()),
        },
        owner,
        org_id: OrgId::from("acme"),
        permissions: seed::MEMORY_ALL,
        created_at: now(),
        expires_at,
        enabled: true,
        rate_limit_per_minute: Some(60),
        last_used_at: None,
        remaining: None,
    };
    (record, generated.key.expose().to_owned())
}

fn session(user: &UserId, first: KeyHash) -> SessionRecord {
    SessionRecord::new(
        SessionId::random(),
        user.clone(),
        "acme".into(),
        first,
        now(),
        3_600,
        false,
    )
}

/// Create, then look up by hash and by id; a duplicate hash is a conflict.
pub async fn api_key_create_and_lookup(s: &Stores) {
    let owner = KeyOwner::User(UserId::random());
    let (rec, key) = key_record(owner.clone(), None);
    s.api_keys.insert(rec.clone()).await.unwrap();
    let found = s
        .api_keys
        .find_by_hash(&KeyHash::of(key.as_bytes()))
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&rec));
    assert_eq!(s.api_keys.get(&rec.id).await.unwrap().as_ref(), Some(&rec));
    assert_eq!(
        s.api_keys
            .find_by_hash(&KeyHash::of(b"unknown"))
            .await
            .unwrap(),
        None
    );
    let dup = ApiKeyRecord {
        id: ApiKeyId::random(),
        ..rec.clone()
    };
    assert!(matches!(
        s.api_keys.insert(dup).await,
        Err(StoreError::Conflict(_))
    ));
    let (second, _) = key_record(owner.clone(), None);
    s.api_keys.insert(second.clone()).await.unwrap();
    // A key made by the second key: the user's, but not the user's own making.
    let KeyOwner::User(user) = &owner else {
        unreachable!()
    };
    let (mut child, _) = key_record(owner.clone(), None);
    child.created_by = KeyCreator {
        actor: second.id.as_str().to_owned(),
        user: Some(user.clone()),
    };
    s.api_keys.insert(child.clone()).await.unwrap();
    let ids = |v: Vec<ApiKeyRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let mut by_user = ids(s.api_keys.list(&KeysOf::User(user.clone())).await.unwrap());
    by_user.sort();
    let mut expected = vec![rec.id.clone(), second.id.clone(), child.id.clone()];
    expected.sort();
    assert_eq!(by_user, expected, "a user lists what it and its keys made");
    let by_user_itself = ids(s
        .api_keys
        .list(&KeysOf::Actor(user.as_str().to_owned()))
        .await
        .unwrap());
    assert_eq!(by_user_itself.len(), 2);
    assert!(!by_user_itself.contains(&child.id));
    let by_key = ids(s
        .api_keys
        .list(&KeysOf::Actor(second.id.as_str().to_owned()))
        .await
        .unwrap());
    assert_eq!(by_key, vec![child.id.clone()], "a key lists what it made");
    assert!(
        s.api_keys
            .list(&KeysOf::User(UserId::random()))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Keys are counted per org and in every org, enabled or not; a deleted key is not.
pub async fn api_key_count(s: &Stores) {
    let org = OrgId::from(format!("count-{}", ApiKeyId::random()));
    let other = OrgId::from(format!("count-{}", ApiKeyId::random()));
    assert_eq!(s.api_keys.count(Some(&org)).await.unwrap(), 0);
    let before_all = s.api_keys.count(None).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (mut rec, _) = key_record(KeyOwner::User(UserId::random()), None);
        rec.org_id = org.clone();
        ids.push(rec.id.clone());
        s.api_keys.insert(rec).await.unwrap();
    }
    let (mut elsewhere, _) = key_record(KeyOwner::User(UserId::random()), None);
    elsewhere.org_id = other.clone();
    s.api_keys.insert(elsewhere).await.unwrap();
    assert_eq!(s.api_keys.count(Some(&org)).await.unwrap(), 3);
    assert_eq!(s.api_keys.count(Some(&other)).await.unwrap(), 1);
    assert!(s.api_keys.count(None).await.unwrap() >= before_all + 4);
    assert!(s.api_keys.set_enabled(&ids[0], false).await.unwrap());
    assert_eq!(s.api_keys.count(Some(&org)).await.unwrap(), 3);
    assert!(s.api_keys.delete(&ids[1]).await.unwrap());
    assert_eq!(s.api_keys.count(Some(&org)).await.unwrap(), 2);
}

/// An expired key is stored as such and refused by `check_usable`.
pub async fn api_key_expiry(s: &Stores) {
    let (rec, _) = key_record(KeyOwner::User(UserId::random()), Some(now() - 1));
    s.api_keys.insert(rec.clone()).await.unwrap();
    let found = s.api_keys.find_by_hash(&rec.hash).await.unwrap().unwrap();
    assert_eq!(found.check_usable(now()), Err(AuthError::ApiKeyExpired));
}

/// Disable and re-enable; unknown ids report false.
pub async fn api_key_disable(s: &Stores) {
    let (rec, _) = key_record(KeyOwner::User(UserId::random()), None);
    s.api_keys.insert(rec.clone()).await.unwrap();
    assert!(s.api_keys.set_enabled(&rec.id, false).await.unwrap());
    let found = s.api_keys.find_by_hash(&rec.hash).await.unwrap().unwrap();
    assert_eq!(found.check_usable(now()), Err(AuthError::ApiKeyDisabled));
    assert!(s.api_keys.set_enabled(&rec.id, true).await.unwrap());
    let found = s.api_keys.find_by_hash(&rec.hash).await.unwrap().unwrap();
    assert_eq!(found.check_usable(now()), Ok(()));
    assert!(
        !s.api_keys
            .set_enabled(&ApiKeyId::random(), false)
            .await
            .unwrap()
    );
}

/// Delete removes the key for good.
pub async fn api_key_revoke(s: &Stores) {
    let (rec, _) = key_record(KeyOwner::Agent(AgentId::random()), None);
    s.api_keys.insert(rec.clone()).await.unwrap();
    assert!(s.api_keys.delete(&rec.id).await.unwrap());
    assert_eq!(s.api_keys.find_by_hash(&rec.hash).await.unwrap(), None);
    assert!(!s.api_keys.delete(&rec.id).await.unwrap());
}

/// A reroll gives the key a new hash: the same id and record but the hash and display prefix;
/// the replaced hash is found (with its deadline) by `find_presented` only when the reroll
/// kept it, never by `find_by_hash`; a second reroll keeps only the newest replaced hash; a
/// reroll without overlap forgets it; deleting the key forgets every hash.
pub async fn api_key_reroll(s: &Stores) {
    let (rec, key) = key_record(KeyOwner::User(UserId::random()), Some(now() + 3_600));
    s.api_keys.insert(rec.clone()).await.unwrap();
    let h0 = KeyHash::of(key.as_bytes());
    assert_eq!(s.api_keys.previous_hash(&rec.id).await.unwrap(), None);
    assert_eq!(
        s.api_keys.find_presented(&h0).await.unwrap(),
        Some((rec.clone(), None))
    );

    // Reroll with an overlap: the old hash is kept until its deadline.
    let first = api_key::generate(&ApiKeyPrefix::default());
    let until = now() + 60;
    assert!(
        s.api_keys
            .reroll(&rec.id, first.hash, &first.display_prefix, Some(until))
            .await
            .unwrap()
    );
    let rerolled = ApiKeyRecord {
        hash: first.hash,
        display_prefix: first.display_prefix.clone(),
        ..rec.clone()
    };
    assert_eq!(
        s.api_keys.get(&rec.id).await.unwrap().as_ref(),
        Some(&rerolled)
    );
    assert_eq!(
        s.api_keys.find_by_hash(&first.hash).await.unwrap().as_ref(),
        Some(&rerolled)
    );
    assert_eq!(
        s.api_keys.find_by_hash(&h0).await.unwrap(),
        None,
        "find_by_hash finds current hashes only"
    );
    assert_eq!(
        s.api_keys.find_presented(&first.hash).await.unwrap(),
        Some((rerolled.clone(), None))
    );
    assert_eq!(
        s.api_keys.find_presented(&h0).await.unwrap(),
        Some((rerolled.clone(), Some(until)))
    );
    assert_eq!(
        s.api_keys.previous_hash(&rec.id).await.unwrap(),
        Some((h0, until))
    );

    // A second reroll within the overlap: only the newest replaced hash survives.
    let second = api_key::generate(&ApiKeyPrefix::default());
    let until2 = now() + 120;
    assert!(
        s.api_keys
            .reroll(&rec.id, second.hash, &second.display_prefix, Some(until2))
            .await
            .unwrap()
    );
    assert_eq!(s.api_keys.find_presented(&h0).await.unwrap(), None);
    let (found, deadline) = s
        .api_keys
        .find_presented(&first.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.hash, deadline), (second.hash, Some(until2)));
    assert_eq!(
        s.api_keys.previous_hash(&rec.id).await.unwrap(),
        Some((first.hash, until2))
    );

    // Without an overlap, the replaced hash is forgotten at once (and so is the kept one).
    let third = api_key::generate(&ApiKeyPrefix::default());
    assert!(
        s.api_keys
            .reroll(&rec.id, third.hash, &third.display_prefix, None)
            .await
            .unwrap()
    );
    assert_eq!(s.api_keys.find_presented(&second.hash).await.unwrap(), None);
    assert_eq!(s.api_keys.find_presented(&first.hash).await.unwrap(), None);
    assert_eq!(s.api_keys.previous_hash(&rec.id).await.unwrap(), None);
    let (found, deadline) = s
        .api_keys
        .find_presented(&third.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.permissions, found.expires_at, deadline),
        (rec.id.clone(), rec.permissions, rec.expires_at, None)
    );

    // An unknown key is not rerolled; a deleted key leaves no hash behind.
    let other = api_key::generate(&ApiKeyPrefix::default());
    assert!(
        !s.api_keys
            .reroll(
                &ApiKeyId::random(),
                other.hash,
                &other.display_prefix,
                Some(until)
            )
            .await
            .unwrap()
    );
    let fourth = api_key::generate(&ApiKeyPrefix::default());
    assert!(
        s.api_keys
            .reroll(&rec.id, fourth.hash, &fourth.display_prefix, Some(until))
            .await
            .unwrap()
    );
    assert!(s.api_keys.delete(&rec.id).await.unwrap());
    assert_eq!(s.api_keys.find_presented(&third.hash).await.unwrap(), None);
    assert_eq!(s.api_keys.find_presented(&fourth.hash).await.unwrap(), None);
    assert_eq!(s.api_keys.previous_hash(&rec.id).await.unwrap(), None);
}

/// `touch` records the latest use and never goes back in time.
pub async fn api_key_touch(s: &Stores) {
    let (rec, _) = key_record(KeyOwner::User(UserId::random()), None);
    s.api_keys.insert(rec.clone()).await.unwrap();
    let t = now();
    s.api_keys
        .touch(&[(rec.id.clone(), t), (ApiKeyId::random(), t)])
        .await
        .unwrap();
    s.api_keys
        .touch(&[(rec.id.clone(), t - 100)])
        .await
        .unwrap();
    let found = s.api_keys.get(&rec.id).await.unwrap().unwrap();
    assert_eq!(found.last_used_at, Some(t));
}

/// Credits: stored with the key, taken all-or-nothing, never below zero; a key without
/// credits is unlimited and untouched; a reroll keeps the count; a missing key is not found.
pub async fn api_key_credits(s: &Stores) {
    let (plain, _) = key_record(KeyOwner::User(UserId::random()), None);
    s.api_keys.insert(plain.clone()).await.unwrap();
    assert_eq!(
        s.api_keys.take_credits(&plain.id, 1).await.unwrap(),
        Credits::Unlimited
    );
    assert_eq!(
        s.api_keys.get(&plain.id).await.unwrap().unwrap().remaining,
        None
    );
    let (limited, _) = key_record(KeyOwner::User(UserId::random()), None);
    let limited = ApiKeyRecord {
        remaining: Some(5),
        ..limited
    };
    s.api_keys.insert(limited.clone()).await.unwrap();
    assert_eq!(
        s.api_keys.get(&limited.id).await.unwrap().as_ref(),
        Some(&limited)
    );
    let take = |n| s.api_keys.take_credits(&limited.id, n);
    assert_eq!(take(1).await.unwrap(), Credits::Taken { left: 4 });
    assert_eq!(take(3).await.unwrap(), Credits::Taken { left: 1 });
    // More than is left takes nothing.
    assert_eq!(take(2).await.unwrap(), Credits::Exhausted);
    assert_eq!(take(u64::MAX).await.unwrap(), Credits::Exhausted);
    let next = api_key::generate(&ApiKeyPrefix::default());
    assert!(
        s.api_keys
            .reroll(
                &limited.id,
                next.hash,
                &next.display_prefix,
                Some(now() + 60)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        s.api_keys
            .get(&limited.id)
            .await
            .unwrap()
            .unwrap()
            .remaining,
        Some(1),
        "a reroll keeps the count"
    );
    assert_eq!(take(1).await.unwrap(), Credits::Taken { left: 0 });
    assert_eq!(take(1).await.unwrap(), Credits::Exhausted);
    // What a failed step took comes back, all of it; an unlimited or missing key is left be.
    s.api_keys.return_credits(&limited.id, 2).await.unwrap();
    assert_eq!(take(2).await.unwrap(), Credits::Taken { left: 0 });
    s.api_keys.return_credits(&plain.id, 3).await.unwrap();
    assert_eq!(
        s.api_keys.get(&plain.id).await.unwrap().unwrap().remaining,
        None
    );
    s.api_keys
        .return_credits(&ApiKeyId::random(), 3)
        .await
        .unwrap();
    let of = KeysOf::Actor(limited.created_by.actor.clone());
    assert_eq!(s.api_keys.list(&of).await.unwrap()[0].remaining, Some(0));
    assert_eq!(
        s.api_keys
            .take_credits(&ApiKeyId::random(), 1)
            .await
            .unwrap(),
        Credits::NotFound
    );
}

/// N concurrent takes of one credit from a key with fewer: exactly that many succeed, the
/// rest are refused, and the count ends at zero.
pub async fn api_key_credits_race(s: &Stores) {
    let (rec, _) = key_record(KeyOwner::User(UserId::random()), None);
    let rec = ApiKeyRecord {
        remaining: Some(20),
        ..rec
    };
    s.api_keys.insert(rec.clone()).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let keys = s.api_keys.clone();
            let id = rec.id.clone();
            tokio::spawn(async move { keys.take_credits(&id, 1).await.unwrap() })
        })
        .collect();
    let mut left = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Credits::Taken { left: l } => left.push(l),
            Credits::Exhausted => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    left.sort_unstable();
    assert_eq!(
        left,
        (0..20).collect::<Vec<u64>>(),
        "each count handed out once"
    );
    assert_eq!(refused, 12);
    assert_eq!(
        s.api_keys.get(&rec.id).await.unwrap().unwrap().remaining,
        Some(0)
    );
}

/// Rotation with the current token, a retry within the grace, then reuse after it.
pub async fn session_rotation_and_reuse(s: &Stores) {
    let user = UserId::random();
    let t0 = KeyHash::of(b"t0");
    let sess = session(&user, t0);
    s.sessions.create(sess.clone()).await.unwrap();
    let t = now();
    let t1 = KeyHash::of(b"t1");
    let RefreshResult::Rotated(after) = s.sessions.refresh(&sess.id, &t0, t1, t, 10).await.unwrap()
    else {
        panic!("current token must rotate");
    };
    assert_eq!((after.current, after.parent), (t1, Some(t0)));
    assert_eq!(s.sessions.get(&sess.id).await.unwrap(), Some(after));
    // A retry inside the grace keeps the session.
    let t2 = KeyHash::of(b"t2");
    assert!(matches!(
        s.sessions
            .refresh(&sess.id, &t0, t2, t + 5, 10)
            .await
            .unwrap(),
        RefreshResult::Rotated(_)
    ));
    // The same parent after the grace: the whole session is revoked.
    assert_eq!(
        s.sessions
            .refresh(&sess.id, &t0, KeyHash::of(b"t3"), t + 11, 10)
            .await
            .unwrap(),
        RefreshResult::ReuseDetected
    );
    assert!(s.sessions.get(&sess.id).await.unwrap().unwrap().revoked);
    assert_eq!(
        s.sessions
            .refresh(&sess.id, &t2, KeyHash::of(b"t4"), t + 12, 10)
            .await
            .unwrap(),
        RefreshResult::Rejected(RefreshRejection::Revoked)
    );
    assert_eq!(
        s.sessions
            .refresh(&SessionId::random(), &t0, t1, t, 10)
            .await
            .unwrap(),
        RefreshResult::NotFound
    );
}

/// Revoking one session and every session of a user.
pub async fn session_revoke_and_revoke_all(s: &Stores) {
    let user = UserId::random();
    let other = UserId::random();
    let a = session(&user, KeyHash::of(b"a"));
    let b = session(&user, KeyHash::of(b"b"));
    let c = session(&other, KeyHash::of(b"c"));
    for x in [&a, &b, &c] {
        s.sessions.create(x.clone()).await.unwrap();
    }
    assert!(s.sessions.revoke(&a.id).await.unwrap());
    assert!(!s.sessions.get(&a.id).await.unwrap().unwrap().is_live(now()));
    assert_eq!(
        s.sessions.revoke_all_for_user(&user, now()).await.unwrap(),
        1
    );
    assert!(!s.sessions.get(&b.id).await.unwrap().unwrap().is_live(now()));
    assert!(s.sessions.get(&c.id).await.unwrap().unwrap().is_live(now()));
    assert!(!s.sessions.revoke(&SessionId::random()).await.unwrap());
    assert!(s.sessions.count_live(now(), None).await.unwrap() >= 1);
    // Counted per org: a fresh org holds exactly what was made in it.
    let org = OrgId::from(format!("org-{}", UserId::random()));
    let mut d = session(&other, KeyHash::of(b"d"));
    d.org_id = org.clone();
    s.sessions.create(d.clone()).await.unwrap();
    assert_eq!(s.sessions.count_live(now(), Some(&org)).await.unwrap(), 1);
    s.sessions.revoke(&d.id).await.unwrap();
    assert_eq!(s.sessions.count_live(now(), Some(&org)).await.unwrap(), 0);
}

/// `revoke_all_for_user` counts what was live at the `now` it is given, not at the store's
/// own clock: at a time past every expiry it revokes the sessions but counts none.
pub async fn session_revoke_all_uses_given_now(s: &Stores) {
    let user = UserId::random();
    let a = session(&user, KeyHash::of(b"now-a"));
    let b = session(&user, KeyHash::of(b"now-b"));
    for x in [&a, &b] {
        s.sessions.create(x.clone()).await.unwrap();
    }
    let later = a.expires_at.max(b.expires_at);
    assert_eq!(
        s.sessions.revoke_all_for_user(&user, later).await.unwrap(),
        0
    );
    for x in [&a, &b] {
        assert!(s.sessions.get(&x.id).await.unwrap().unwrap().revoked);
    }
    let c = session(&user, KeyHash::of(b"now-c"));
    s.sessions.create(c.clone()).await.unwrap();
    // At a time before it was created it counts as live too: the store trusts `now`.
    assert_eq!(
        s.sessions
            .revoke_all_for_user(&user, c.created_at - 1)
            .await
            .unwrap(),
        1
    );
}

/// The two primitives refresh is built on: a swap against the version just read succeeds
/// once; a swap against an older version — after another swap, a revoke or a revoke-all —
/// fails and writes nothing; an unknown session has no version and cannot be swapped.
pub async fn session_swap_is_compare_and_swap(s: &Stores) {
    let user = UserId::random();
    let t0 = KeyHash::of(b"swap-0");
    let sess = session(&user, t0);
    s.sessions.create(sess.clone()).await.unwrap();
    let load = |id: SessionId| {
        let store = s.sessions.clone();
        async move { store.load_versioned(&id).await.unwrap().unwrap() }
    };
    let (read, v0) = load(sess.id.clone()).await;
    assert_eq!(read, sess);
    let a = SessionRecord {
        current: KeyHash::of(b"swap-a"),
        parent: Some(t0),
        ..sess.clone()
    };
    assert!(s.sessions.swap(&sess.id, v0, &a).await.unwrap());
    let (read, v1) = load(sess.id.clone()).await;
    assert_eq!(read, a);
    assert_ne!(v1, v0, "a swap moves the version");
    let b = SessionRecord {
        current: KeyHash::of(b"swap-b"),
        ..a.clone()
    };
    assert!(
        !s.sessions.swap(&sess.id, v0, &b).await.unwrap(),
        "a second swap against the same version must lose"
    );
    assert_eq!(s.sessions.get(&sess.id).await.unwrap(), Some(a.clone()));
    // A revoke is a write: a swap prepared before it must not undo it.
    assert!(s.sessions.revoke(&sess.id).await.unwrap());
    assert!(!s.sessions.swap(&sess.id, v1, &b).await.unwrap());
    let (read, v2) = load(sess.id.clone()).await;
    assert!(read.revoked, "the revocation survives a stale swap");
    assert_ne!(v2, v1);
    // So is a revoke-all.
    let other = session(&user, KeyHash::of(b"swap-other"));
    s.sessions.create(other.clone()).await.unwrap();
    let (_, w0) = load(other.id.clone()).await;
    s.sessions.revoke_all_for_user(&user, now()).await.unwrap();
    let unrevoked = SessionRecord {
        current: KeyHash::of(b"swap-c"),
        ..other.clone()
    };
    assert!(!s.sessions.swap(&other.id, w0, &unrevoked).await.unwrap());
    assert!(s.sessions.get(&other.id).await.unwrap().unwrap().revoked);
    let missing = SessionId::random();
    assert_eq!(s.sessions.load_versioned(&missing).await.unwrap(), None);
    assert!(!s.sessions.swap(&missing, 0, &b).await.unwrap());
    assert_eq!(s.sessions.get(&missing).await.unwrap(), None);
}

/// A user's live sessions, newest first, with every field as stored (the `User-Agent` too):
/// never a revoked or expired one, nor another user's; "live" is judged at the `now` given.
pub async fn session_list_for_user(s: &Stores) {
    let user = UserId::random();
    let t = now();
    let at = |created: u64, lifetime: u64, first: &[u8]| {
        SessionRecord::new(
            SessionId::random(),
            user.clone(),
            "acme".into(),
            KeyHash::of(first),
            created,
            lifetime,
            false,
        )
    };
    let oldest = at(t - 30, 3_600, b"list-oldest");
    let agent = "Mozilla/5.0 (X11; Linux x86_64) \u{e9}t\u{e9}";
    let newer = SessionRecord {
        remember_me: true,
        ..at(t - 20, 7_200, b"list-newer").with_user_agent(Some(agent))
    };
    let revoked = at(t - 10, 3_600, b"list-revoked");
    let expired = at(t - 4_000, 3_600, b"list-expired");
    let others = session(&UserId::random(), KeyHash::of(b"list-others"));
    for x in [&oldest, &newer, &revoked, &expired, &others] {
        s.sessions.create(x.clone()).await.unwrap();
    }
    assert!(s.sessions.revoke(&revoked.id).await.unwrap());
    assert_eq!(newer.user_agent.as_deref(), Some(agent));
    let listed = s.sessions.list_for_user(&user, t).await.unwrap();
    assert_eq!(listed, vec![newer.clone(), oldest.clone()], "newest first");
    // A rotation shows: the listed record is the stored one.
    let (_, version) = s
        .sessions
        .load_versioned(&oldest.id)
        .await
        .unwrap()
        .unwrap();
    let rotated = SessionRecord {
        current: KeyHash::of(b"list-oldest-2"),
        parent: Some(oldest.current),
        rotated_at: t - 5,
        ..oldest.clone()
    };
    assert!(
        s.sessions
            .swap(&oldest.id, version, &rotated)
            .await
            .unwrap()
    );
    let listed = s.sessions.list_for_user(&user, t).await.unwrap();
    assert_eq!(listed, vec![newer.clone(), rotated.clone()]);
    assert_eq!(listed[1].last_refreshed_at(), Some(t - 5));
    assert_eq!(listed[0].last_refreshed_at(), None);
    // Judged at the `now` given: past the first expiry only the longer session is left.
    let later = s
        .sessions
        .list_for_user(&user, oldest.expires_at)
        .await
        .unwrap();
    assert_eq!(later, vec![newer.clone()]);
    // Ties on `created_at` are broken by id, descending.
    let mut twins = [
        at(t - 1, 3_600, b"list-twin-a"),
        at(t - 1, 3_600, b"list-twin-b"),
    ];
    for x in &twins {
        s.sessions.create(x.clone()).await.unwrap();
    }
    twins.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
    let ids: Vec<_> = s
        .sessions
        .list_for_user(&user, t)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(
        ids,
        vec![
            twins[0].id.clone(),
            twins[1].id.clone(),
            newer.id.clone(),
            oldest.id.clone()
        ]
    );
    s.sessions.revoke_all_for_user(&user, t).await.unwrap();
    assert_eq!(s.sessions.list_for_user(&user, t).await.unwrap(), vec![]);
    assert_eq!(
        s.sessions
            .list_for_user(&UserId::random(), t)
            .await
            .unwrap(),
        vec![]
    );
}

/// Expired sessions refuse refresh.
pub async fn session_expiry(s: &Stores) {
    let t0 = KeyHash::of(b"t0");
    let sess = session(&UserId::random(), t0);
    s.sessions.create(sess.clone()).await.unwrap();
    assert_eq!(
        s.sessions
            .refresh(&sess.id, &t0, KeyHash::of(b"t1"), sess.expires_at, 10)
            .await
            .unwrap(),
        RefreshResult::Rejected(RefreshRejection::Expired)
    );
}

/// Fires `n` refreshes of `sess` with `presented` at once, with `grace_secs`; their results
/// and the tokens they offered.
async fn refresh_burst(
    s: &Stores,
    sess: &SessionRecord,
    presented: KeyHash,
    n: u8,
    grace_secs: u64,
) -> Vec<(KeyHash, RefreshResult)> {
    let t = now();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(usize::from(n)));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, barrier) = (s.sessions.clone(), barrier.clone());
            let id = sess.id.clone();
            let next = KeyHash::of(&[b'n', i, sess.current.0[0], sess.current.0[1]]);
            tokio::spawn(async move {
                barrier.wait().await;
                let result = store
                    .refresh(&id, &presented, next, t, grace_secs)
                    .await
                    .unwrap();
                (next, result)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Of N concurrent refreshes with the same current token and no grace, exactly one rotates;
/// the others see reuse, and the session ends revoked (the conservative outcome of a race
/// between a thief and the owner).
pub async fn concurrent_refresh_race(s: &Stores) {
    let t0 = KeyHash::of(b"race-0");
    let sess = session(&UserId::random(), t0);
    s.sessions.create(sess.clone()).await.unwrap();
    let results = refresh_burst(s, &sess, t0, 16, 0).await;
    let rotated = results
        .iter()
        .filter(|(_, r)| matches!(r, RefreshResult::Rotated(_)))
        .count();
    assert_eq!(
        rotated, 1,
        "exactly one concurrent refresh rotates: {results:?}"
    );
    for (_, r) in &results {
        assert!(
            matches!(
                r,
                RefreshResult::Rotated(_)
                    | RefreshResult::ReuseDetected
                    | RefreshResult::Rejected(RefreshRejection::Revoked)
            ),
            "{r:?}"
        );
    }
    assert!(s.sessions.get(&sess.id).await.unwrap().unwrap().revoked);
}

/// Of N concurrent refreshes with the same current token inside the grace window, every one
/// rotates (each is a retry of the first rotation), none is refused for a lost race, and the
/// session stays live holding exactly one of the tokens handed out, its parent the token
/// presented.
pub async fn concurrent_refresh_within_grace(s: &Stores) {
    let t0 = KeyHash::of(b"grace-race-0");
    let sess = session(&UserId::random(), t0);
    s.sessions.create(sess.clone()).await.unwrap();
    let results = refresh_burst(s, &sess, t0, 16, 10).await;
    for (next, r) in &results {
        let RefreshResult::Rotated(after) = r else {
            panic!("a refresh inside the grace window must rotate: {r:?}");
        };
        assert_eq!(after.current, *next);
    }
    let stored = s.sessions.get(&sess.id).await.unwrap().unwrap();
    assert!(stored.is_live(now()));
    assert_eq!(stored.parent, Some(t0));
    assert_eq!(
        results.iter().filter(|(n, _)| *n == stored.current).count(),
        1,
        "the stored token is exactly one of those handed out"
    );
}

/// Agents: insert, get, terminate.
pub async fn agent_terminate(s: &Stores) {
    let agent = AgentRecord {
        id: AgentId::random(),
        org_id: "acme".into(),
        name: "builder".into(),
        status: AgentStatus::Active,
        created_at: now(),
    };
    s.agents.insert(agent.clone()).await.unwrap();
    assert_eq!(
        s.agents.get(&agent.id).await.unwrap().as_ref(),
        Some(&agent)
    );
    assert!(s.agents.terminate(&agent.id).await.unwrap());
    assert_eq!(
        s.agents.get(&agent.id).await.unwrap().unwrap().status,
        AgentStatus::Terminated
    );
    assert!(!s.agents.terminate(&AgentId::random()).await.unwrap());
    assert_eq!(s.agents.get(&AgentId::random()).await.unwrap(), None);
    assert!(s.agents.count(None).await.unwrap() >= 1);
    let org = OrgId::from(format!("org-{}", AgentId::random()));
    assert_eq!(s.agents.count(Some(&org)).await.unwrap(), 0);
    let mine = AgentRecord {
        id: AgentId::random(),
        org_id: org.clone(),
        ..agent
    };
    s.agents.insert(mine).await.unwrap();
    assert_eq!(s.agents.count(Some(&org)).await.unwrap(), 1);
}

/// Agents: listed per org (terminated ones too), oldest first, every org with `None`.
pub async fn agent_list(s: &Stores) {
    let org = OrgId::from(format!("org-{}", AgentId::random()));
    let other = OrgId::from(format!("org-{}", AgentId::random()));
    assert_eq!(s.agents.list(Some(&org)).await.unwrap(), vec![]);
    let t = now();
    let agent = |org: &OrgId, name: &str, created_at| AgentRecord {
        id: AgentId::random(),
        org_id: org.clone(),
        name: name.into(),
        status: AgentStatus::Active,
        created_at,
    };
    let newer = agent(&org, "newer", t);
    let older = agent(&org, "older", t - 10);
    let elsewhere = agent(&other, "elsewhere", t - 20);
    for a in [&newer, &older, &elsewhere] {
        s.agents.insert(a.clone()).await.unwrap();
    }
    assert!(s.agents.terminate(&older.id).await.unwrap());
    let terminated = AgentRecord {
        status: AgentStatus::Terminated,
        ..older
    };
    assert_eq!(
        s.agents.list(Some(&org)).await.unwrap(),
        vec![terminated.clone(), newer.clone()],
        "its org's only, terminated too, oldest first"
    );
    assert_eq!(
        s.agents.list(Some(&other)).await.unwrap(),
        vec![elsewhere.clone()]
    );
    let all = s.agents.list(None).await.unwrap();
    for a in [&terminated, &newer, &elsewhere] {
        assert!(all.contains(a), "every org's with None");
    }
    let mut sorted = all.clone();
    super::by_creation(&mut sorted);
    assert_eq!(all, sorted, "oldest first across orgs too");
}

/// Denied `jti`s stay denied until their expiry.
pub async fn denylist_expiry(s: &Stores) {
    let jti = TokenId::random();
    let t = now();
    assert!(!s.denylist.is_denied(&jti, t).await.unwrap());
    s.denylist.deny(&jti, t + 60).await.unwrap();
    assert!(s.denylist.is_denied(&jti, t).await.unwrap());
    assert!(s.denylist.is_denied(&jti, t + 59).await.unwrap());
    assert!(!s.denylist.is_denied(&jti, t + 60).await.unwrap());
    assert!(!s.denylist.is_denied(&TokenId::random(), t).await.unwrap());
}

/// Runs every conformance check as its own `#[tokio::test]` against the stores `$factory`
/// (an expression evaluating to a future of [`Stores`]) makes. Needs `tokio` with the
/// `macros` and `rt-multi-thread` features in the caller's dev-dependencies.
///
/// `optional: $factory`, a future of `Option<Stores>`, is for backends that may be
/// unreachable: a test whose factory yields `None` returns at once without checking anything
/// (the factory says so, `SKIPPED …` on stderr, and fails instead where the backend must be
/// there, under CI). Never substitute other stores for a missing backend: the tests would pass
/// proving nothing about it.
#[macro_export]
macro_rules! store_conformance_tests {
    (@all $stores:ident $setup:tt) => {
        $crate::store_conformance_tests!(@tests $stores $setup;
            api_key_create_and_lookup, api_key_expiry, api_key_disable, api_key_revoke,
            api_key_touch, api_key_count, api_key_reroll, api_key_credits, api_key_credits_race,
            session_rotation_and_reuse, session_revoke_and_revoke_all,
            session_revoke_all_uses_given_now, session_swap_is_compare_and_swap, session_expiry,
            session_list_for_user,
            concurrent_refresh_race, concurrent_refresh_within_grace, agent_terminate, agent_list,
            denylist_expiry);
    };
    (@tests $stores:ident $setup:tt; $($name:ident),+) => {$(
        $crate::store_conformance_tests!(@test $stores $setup $name);
    )+};
    (@test $stores:ident ($($setup:tt)*) $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $($setup)*
            $crate::store::conformance::$name(&$stores).await;
        }
    };
    (optional: $factory:expr) => {
        $crate::store_conformance_tests!(@all stores (
            let Some(stores) = $factory.await else {
                return;
            };
        ));
    };
    ($factory:expr) => {
        $crate::store_conformance_tests!(@all stores (let stores = $factory.await;));
    };
}

/// The tests of a suite whose checks take what `$factory` (a future of `Option<…>`) yields:
/// one `#[tokio::test]` per check of `store::conformance::$suite`, returning at once when the
/// factory yields `None`. Used by the limits' and the invalidation suites' macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __optional_conformance_tests {
    ($suite:ident; $factory:expr; $($name:ident),+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(subject) = $factory.await else {
                return;
            };
            $crate::store::conformance::$suite::$name(subject).await;
        }
    )+};
}
