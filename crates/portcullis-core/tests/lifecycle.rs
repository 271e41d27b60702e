//! Every rule of the lifecycle (login, sessions, passwords, users, API keys, agents), one test
//! each, over the in-memory stores and an in-memory users table, with a manual clock.
// Test code: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use portcullis_core::api_key::KeyOwner;
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, SessionId, UserId};
use portcullis_core::lifecycle::{
    DEFAULT_ORG, IssuedApiKey, Lifecycle, LifecycleError, NewApiKey, NewUser, SessionSummary,
    SessionTokens, Stats,
};
use portcullis_core::seed::{AdminRead, AdminWrite, MemoryCreate, MemoryRead};
use portcullis_core::store::{AgentStatus, ApiKeyStore, Stores};
use portcullis_core::throttle::MAX_CHECKS;
use portcullis_core::users::{Account, MemoryUsers, Users};
use portcullis_core::{
    Actor, ActorKind, AuthError, Authenticator, Credential, ManualClock, PermissionList,
    PermissionSet, StoreError,
};

const T0: u64 = 1_800_000_000;
const GRACE: u64 = 10;
const PASSWORD: &str = "correct horse battery";

/// The users table, in memory; `down` makes it act like an unreachable database.
#[derive(Default)]
struct MemUsers {
    rows: MemoryUsers,
    down: AtomicBool,
}

impl MemUsers {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        Ok(())
    }

    /// Deletes a user, as the app's own admin tools would.
    fn remove(&self, id: &UserId) {
        self.rows.remove(id);
    }
}

#[async_trait]
impl Users for MemUsers {
    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.check()?;
        self.rows.find_by_email(email).await
    }

    async fn get(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        self.check()?;
        self.rows.get(id).await
    }

    async fn create(&self, account: &Account) -> Result<(), StoreError> {
        self.check()?;
        self.rows.create(account).await
    }

    async fn set_password_hash(
        &self,
        id: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.rows.set_password_hash(id, password_hash).await
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        self.check()?;
        self.rows.count(org).await
    }
}

struct Fx {
    lc: Lifecycle,
    auth: Authenticator,
    clock: ManualClock,
    users: Arc<MemUsers>,
}

fn fx() -> Fx {
    fx_with(Stores::memory())
}

fn fx_with(stores: Stores) -> Fx {
    let clock = ManualClock::new(T0);
    let auth = common::authenticator(common::config().refresh_reuse_grace_secs(GRACE))
        .stores(stores)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let users = Arc::new(MemUsers::default());
    let lc = Lifecycle::builder(auth.clone(), users.clone())
        .build()
        .unwrap();
    Fx {
        lc,
        auth,
        clock,
        users,
    }
}

impl Fx {
    /// A user stored directly (not through `create_user`), with password [`PASSWORD`].
    async fn user(&self, email: &str, role: &str, org: &str) -> Account {
        let account = Account {
            id: UserId::random(),
            email: email.to_owned(),
            password_hash: self.lc.passwords().hash(PASSWORD).await.unwrap(),
            role: role.to_owned(),
            org_id: OrgId::from(org),
        };
        self.users.create(&account).await.unwrap();
        account
    }

    /// Logs `email` in and resolves its access token: the actor the layer would see.
    async fn signed_in(&self, email: &str) -> (Actor, SessionTokens) {
        let tokens = self.lc.login(email, PASSWORD, false).await.unwrap();
        let actor = self.bearer(tokens.access_token.expose()).await.unwrap();
        (actor, tokens)
    }

    async fn bearer(&self, token: &str) -> Result<Actor, AuthError> {
        self.auth.resolve(Credential::Bearer(token)).await
    }

    /// The session's access token is refused as revoked.
    async fn assert_revoked(&self, tokens: &SessionTokens) {
        assert_eq!(
            self.bearer(tokens.access_token.expose()).await,
            Err(AuthError::TokenRevoked)
        );
    }

    async fn key(&self, key: &str) -> Result<Actor, AuthError> {
        self.auth.resolve(Credential::ApiKey(key)).await
    }

    /// `by` makes a key with `credits` usage credits (`MemoryRead` only).
    async fn key_with_credits(&self, by: &Actor, credits: u64) -> IssuedApiKey {
        let wanted = NewApiKey {
            remaining: Some(credits),
            ..new_key(MemoryRead::SET)
        };
        self.lc.create_api_key(by, wanted).await.unwrap()
    }

    /// Bob (a user already stored) signs in: a session of someone else.
    async fn bob_signs_in(&self) {
        self.signed_in("bob@example.com").await;
    }

    /// A user of `role` in `org`, signed in.
    async fn actor(&self, email: &str, role: &str, org: &str) -> Actor {
        self.user(email, role, org).await;
        self.signed_in(email).await.0
    }

    /// An API key of `actor` holding `permissions`, resolved.
    async fn key_actor(&self, actor: &Actor, permissions: PermissionSet) -> Actor {
        let issued = self
            .lc
            .create_api_key(actor, new_key(permissions))
            .await
            .unwrap();
        self.key(issued.key.expose()).await.unwrap()
    }
}

fn new_key(permissions: PermissionSet) -> NewApiKey {
    NewApiKey {
        name: "ci".into(),
        permissions,
        expires_in_secs: None,
        rate_limit_per_minute: None,
        remaining: None,
        agent_id: None,
    }
}

fn new_user<'a>(email: &'a str, role: &'a str, org: Option<&'a OrgId>) -> NewUser<'a> {
    NewUser {
        email,
        password: PASSWORD,
        role,
        org_id: org,
    }
}

fn auth_err<T: std::fmt::Debug>(r: Result<T, LifecycleError>) -> AuthError {
    match r {
        Err(LifecycleError::Auth(e)) => e,
        other => panic!("expected an auth error, got {other:?}"),
    }
}

fn missing(r: Result<impl std::fmt::Debug, LifecycleError>) -> PermissionSet {
    match auth_err(r) {
        AuthError::InsufficientPermissions { missing, .. } => missing,
        other => panic!("expected insufficient_permissions, got {other:?}"),
    }
}

// ---- login ----------------------------------------------------------------------------------

#[tokio::test]
async fn login_gives_tokens_that_resolve_to_the_user() {
    let f = fx();
    let ada = f.user("ada@example.com", "admin", "acme").await;
    // Emails are compared trimmed and lowercased.
    let tokens =
        f.lc.login("  Ada@Example.COM ", PASSWORD, false)
            .await
            .unwrap();
    assert_eq!(tokens.account, ada);
    let actor = f.bearer(tokens.access_token.expose()).await.unwrap();
    let Actor::User(u) = &actor else {
        panic!("a user, not {actor:?}")
    };
    assert_eq!(
        (&u.id, &u.org_id, &*u.role),
        (&ada.id, &ada.org_id, "admin")
    );
    assert_eq!(u.session_id, tokens.session_id);
    assert!(actor.has::<AdminWrite>());
    assert!(tokens.access_expires_in > 0);
    let lifetime = f.auth.user_tokens().refresh_lifetime(false);
    assert_eq!(tokens.refresh_expires_in, lifetime);
    // remember_me: the longer session.
    let long = f.lc.login("ada@example.com", PASSWORD, true).await.unwrap();
    assert_eq!(
        long.refresh_expires_in,
        f.auth.user_tokens().refresh_lifetime(true)
    );
    assert!(long.refresh_expires_in > lifetime);
    // CSRF: 32 random bytes, base64url without padding, fresh each time.
    assert_eq!(tokens.csrf_token.expose().len(), 43);
    assert!(
        tokens
            .csrf_token
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(tokens.csrf_token.expose(), long.csrf_token.expose());
    // Debug shows no token and no hash.
    let shown = format!("{tokens:?}");
    for secret in [
        tokens.access_token.expose(),
        tokens.refresh_token.expose(),
        tokens.csrf_token.expose(),
        &ada.password_hash,
    ] {
        assert!(!shown.contains(secret), "Debug leaks a secret: {shown}");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_both_invalid_credentials() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let wrong =
        f.lc.login("ada@example.com", "not the password", false)
            .await;
    assert_eq!(auth_err(wrong), AuthError::InvalidCredentials);
    let unknown = f.lc.login("nobody@example.com", PASSWORD, false).await;
    assert_eq!(auth_err(unknown), AuthError::InvalidCredentials);
}

#[tokio::test]
async fn oversized_email_or_password_is_invalid_credentials_without_a_check() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let long_email = format!("{}@example.com", "a".repeat(320));
    let long_password = "p".repeat(1025);
    // More than the throttle allows, and none of them is a 429: no slot was taken.
    for _ in 0..=MAX_CHECKS {
        let r = f.lc.login(&long_email, PASSWORD, false).await;
        assert_eq!(auth_err(r), AuthError::InvalidCredentials);
        let r = f.lc.login("ada@example.com", &long_password, false).await;
        assert_eq!(auth_err(r), AuthError::InvalidCredentials);
    }
    f.lc.login("ada@example.com", PASSWORD, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_eleventh_check_in_a_window_is_rate_limited() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    for _ in 0..MAX_CHECKS {
        let r = f.lc.login("ada@example.com", "wrong password", false).await;
        assert_eq!(auth_err(r), AuthError::InvalidCredentials);
    }
    // Even the right password: the check does not run.
    let AuthError::RateLimited(info) =
        auth_err(f.lc.login("ADA@example.com", PASSWORD, false).await)
    else {
        panic!("the 11th check must be 429");
    };
    assert_eq!((info.limit, info.remaining), (10, 0));
    assert!(info.retry_after_secs >= 1);
    // Unknown emails are counted alike; another email has its own window.
    for _ in 0..MAX_CHECKS {
        f.lc.login("ghost@example.com", PASSWORD, false)
            .await
            .unwrap_err();
    }
    assert!(matches!(
        auth_err(f.lc.login("ghost@example.com", PASSWORD, false).await),
        AuthError::RateLimited(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_logins_take_exactly_ten_slots() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let lc = f.lc.clone();
            tokio::spawn(async move { lc.login("ada@example.com", PASSWORD, false).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LifecycleError::Auth(AuthError::RateLimited(_))) => limited += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, limited), (MAX_CHECKS, 200 - MAX_CHECKS));
}

#[tokio::test]
async fn an_unreachable_users_table_is_503_and_gives_the_slot_back() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    f.users.down.store(true, Ordering::SeqCst);
    // More attempts than slots: every one is 503, none 429, since no check ran.
    for _ in 0..=MAX_CHECKS {
        let r = f.lc.login("ada@example.com", PASSWORD, false).await;
        assert!(matches!(auth_err(r), AuthError::Unavailable(_)));
    }
    f.users.down.store(false, Ordering::SeqCst);
    f.lc.login("ada@example.com", PASSWORD, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn start_session_signs_in_an_account_without_a_password() {
    let f = fx();
    let ada = f.user("ada@example.com", "viewer", "acme").await;
    let tokens = f.lc.start_session(&ada, false).await.unwrap();
    let actor = f.bearer(tokens.access_token.expose()).await.unwrap();
    assert_eq!(actor.id(), Some(ada.id.as_str()));
    assert!(actor.has::<MemoryRead>() && !actor.has::<MemoryCreate>());
}

// ---- refresh and logout ---------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_and_a_spent_token_after_the_grace_revokes_the_session() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (_, first) = f.signed_in("ada@example.com").await;
    f.clock.advance(100);
    let second = f.lc.refresh(first.refresh_token.expose()).await.unwrap();
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(second.account, first.account);
    // The session ends when it ends: a refresh does not extend it.
    assert_eq!(second.refresh_expires_in, first.refresh_expires_in - 100);
    let actor = f.bearer(second.access_token.expose()).await.unwrap();
    assert_eq!(actor.session_id(), Some(&first.session_id));
    let third = f.lc.refresh(second.refresh_token.expose()).await.unwrap();
    // The spent first token, after the grace: reuse, and the whole session dies.
    f.clock.advance(GRACE + 1);
    let reuse = f.lc.refresh(first.refresh_token.expose()).await;
    assert_eq!(auth_err(reuse), AuthError::TokenRevoked);
    let current = f.lc.refresh(third.refresh_token.expose()).await;
    assert_eq!(auth_err(current), AuthError::TokenRevoked);
    f.assert_revoked(&third).await;
}

#[tokio::test]
async fn refresh_with_garbage_or_an_access_token_is_refused() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (_, tokens) = f.signed_in("ada@example.com").await;
    assert!(matches!(
        auth_err(f.lc.refresh("not.a.jwt").await),
        AuthError::InvalidToken(_)
    ));
    let wrong = auth_err(f.lc.refresh(tokens.access_token.expose()).await);
    assert!(
        matches!(
            wrong,
            AuthError::WrongTokenType | AuthError::InvalidToken(_)
        ),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn refresh_for_a_deleted_user_revokes_the_session() {
    let f = fx();
    let ada = f.user("ada@example.com", "user", "acme").await;
    let (_, tokens) = f.signed_in("ada@example.com").await;
    f.users.remove(&ada.id);
    let r = f.lc.refresh(tokens.refresh_token.expose()).await;
    assert_eq!(auth_err(r), AuthError::TokenRevoked);
    // Revoked, not just refused: the access token is dead too.
    f.assert_revoked(&tokens).await;
}

#[tokio::test]
async fn logout_kills_the_access_and_refresh_tokens_at_once() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (actor, tokens) = f.signed_in("ada@example.com").await;
    // Another session of the same user lives on.
    let (_, other) = f.signed_in("ada@example.com").await;
    f.lc.logout(&actor).await.unwrap();
    f.assert_revoked(&tokens).await;
    let r = f.lc.refresh(tokens.refresh_token.expose()).await;
    assert_eq!(auth_err(r), AuthError::TokenRevoked);
    f.bearer(other.access_token.expose()).await.unwrap();
}

#[tokio::test]
async fn logout_is_only_for_users() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let key = f.key_actor(&admin, MemoryRead::SET).await;
    assert_eq!(key.kind(), ActorKind::ApiKey);
    assert_eq!(auth_err(f.lc.logout(&key).await), AuthError::WrongActorKind);
    assert_eq!(
        auth_err(f.lc.logout(&Actor::Board).await),
        AuthError::WrongActorKind
    );
    assert_eq!(
        auth_err(f.lc.logout(&Actor::Anonymous).await),
        AuthError::MissingCredentials
    );
}

// ---- a user's own sessions ------------------------------------------------------------------

#[tokio::test]
async fn a_user_lists_its_live_sessions_newest_first_with_the_current_one_marked() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    f.user("bob@example.com", "user", "acme").await;
    let first =
        f.lc.login_with_user_agent("ada@example.com", PASSWORD, true, Some("Firefox\r\n/1"))
            .await
            .unwrap();
    f.clock.advance(5);
    let second =
        f.lc.login_with_user_agent("ada@example.com", PASSWORD, false, None)
            .await
            .unwrap();
    f.clock.advance(5);
    let ended =
        f.lc.login("ada@example.com", PASSWORD, false)
            .await
            .unwrap();
    f.bob_signs_in().await;
    let actor = f.bearer(second.access_token.expose()).await.unwrap();
    f.lc.end_session(&actor, &ended.session_id).await.unwrap();
    f.clock.advance(5);
    f.lc.refresh(first.refresh_token.expose()).await.unwrap();
    let listed = f.lc.sessions_of(&actor).await.unwrap();
    assert_eq!(
        listed,
        vec![
            SessionSummary {
                id: second.session_id.clone(),
                created_at: T0 + 5,
                last_refreshed_at: None,
                user_agent: None,
                remember_me: false,
                current: true,
            },
            SessionSummary {
                id: first.session_id.clone(),
                created_at: T0,
                last_refreshed_at: Some(T0 + 15),
                user_agent: Some("Firefox/1".into()),
                remember_me: true,
                current: false,
            },
        ]
    );
    // Past the short session's refresh lifetime only the remember-me one is left.
    f.clock.advance(8 * 24 * 3600);
    let listed = f.lc.sessions_of(&actor).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, vec![first.session_id.clone()]);
}

#[tokio::test]
async fn ending_a_session_kills_its_tokens_at_once_and_spares_the_others() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (actor, mine) = f.signed_in("ada@example.com").await;
    let (_, other) = f.signed_in("ada@example.com").await;
    f.lc.end_session(&actor, &other.session_id).await.unwrap();
    f.assert_revoked(&other).await;
    let r = f.lc.refresh(other.refresh_token.expose()).await;
    assert_eq!(auth_err(r), AuthError::TokenRevoked);
    f.bearer(mine.access_token.expose()).await.unwrap();
    // Already ended: not found, like an unknown id.
    let again = f.lc.end_session(&actor, &other.session_id).await;
    assert!(matches!(again, Err(LifecycleError::NotFound)), "{again:?}");
    let unknown = f.lc.end_session(&actor, &SessionId::random()).await;
    assert!(
        matches!(unknown, Err(LifecycleError::NotFound)),
        "{unknown:?}"
    );
    // Its own session may be named: that is a logout.
    f.lc.end_session(&actor, &mine.session_id).await.unwrap();
    f.assert_revoked(&mine).await;
}

#[tokio::test]
async fn an_expired_session_cannot_be_ended() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (_, old) = f.signed_in("ada@example.com").await;
    f.clock.advance(8 * 24 * 3600);
    let (actor, _) = f.signed_in("ada@example.com").await;
    let r = f.lc.end_session(&actor, &old.session_id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
}

#[tokio::test]
async fn another_users_session_is_not_found_even_for_an_admin() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (_, ada) = f.signed_in("ada@example.com").await;
    let admin = f.actor("root@example.com", "superadmin", "acme").await;
    let r = f.lc.end_session(&admin, &ada.session_id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    f.bearer(ada.access_token.expose()).await.unwrap();
    let listed = f.lc.sessions_of(&admin).await.unwrap();
    assert!(listed.iter().all(|s| s.id != ada.session_id), "{listed:?}");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current);
}

#[tokio::test]
async fn only_a_user_lists_or_ends_sessions() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let (_, tokens) = f.signed_in("ada@example.com").await;
    let key = f.key_actor(&admin, MemoryRead::SET).await;
    let agent = f.lc.create_agent(&admin, "bot".into(), None).await.unwrap();
    let run =
        f.lc.start_run(&admin, &agent.id, "claude_local")
            .await
            .unwrap();
    let agent = f.bearer(run.token.expose()).await.unwrap();
    assert_eq!(agent.kind(), ActorKind::Agent);
    for who in [&key, &agent, &Actor::Board] {
        assert_eq!(
            auth_err(f.lc.sessions_of(who).await),
            AuthError::WrongActorKind
        );
        assert_eq!(
            auth_err(f.lc.end_session(who, &tokens.session_id).await),
            AuthError::WrongActorKind
        );
    }
    assert_eq!(
        auth_err(f.lc.sessions_of(&Actor::Anonymous).await),
        AuthError::MissingCredentials
    );
    assert_eq!(
        auth_err(
            f.lc.end_session(&Actor::Anonymous, &tokens.session_id)
                .await
        ),
        AuthError::MissingCredentials
    );
    // Nothing was ended.
    f.bearer(tokens.access_token.expose()).await.unwrap();
}

// ---- passwords ------------------------------------------------------------------------------

#[tokio::test]
async fn change_password_with_a_wrong_current_one_is_invalid_credentials() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (actor, tokens) = f.signed_in("ada@example.com").await;
    let r =
        f.lc.change_password(&actor, "not the password", "brand new password")
            .await;
    assert_eq!(auth_err(r), AuthError::InvalidCredentials);
    // Nothing changed: the session lives, the old password still logs in.
    f.bearer(tokens.access_token.expose()).await.unwrap();
    f.lc.login("ada@example.com", PASSWORD, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn change_password_revokes_every_session_and_the_new_password_logs_in() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (actor, tokens) = f.signed_in("ada@example.com").await;
    let (_, other) = f.signed_in("ada@example.com").await;
    let revoked =
        f.lc.change_password(&actor, PASSWORD, "brand new password")
            .await
            .unwrap();
    assert_eq!(revoked, 2);
    for t in [&tokens, &other] {
        f.assert_revoked(t).await;
    }
    let old = f.lc.login("ada@example.com", PASSWORD, false).await;
    assert_eq!(auth_err(old), AuthError::InvalidCredentials);
    f.lc.login("ada@example.com", "brand new password", false)
        .await
        .unwrap();
}

#[tokio::test]
async fn change_password_checks_the_new_one_and_the_kind_of_actor() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    match f.lc.change_password(&admin, PASSWORD, "short").await {
        Err(LifecycleError::Invalid(why)) => {
            assert_eq!(why, "the password must have at least 8 characters");
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    let key = f.key_actor(&admin, MemoryRead::SET).await;
    let r =
        f.lc.change_password(&key, PASSWORD, "brand new password")
            .await;
    assert_eq!(auth_err(r), AuthError::WrongActorKind);
}

#[tokio::test]
async fn change_password_shares_the_login_throttle() {
    let f = fx();
    f.user("ada@example.com", "user", "acme").await;
    let (actor, _) = f.signed_in("ada@example.com").await;
    // The sign-in took one slot; nine wrong guesses take the rest.
    for _ in 1..MAX_CHECKS {
        let r =
            f.lc.change_password(&actor, "guess", "brand new password")
                .await;
        assert_eq!(auth_err(r), AuthError::InvalidCredentials);
    }
    let r =
        f.lc.change_password(&actor, PASSWORD, "brand new password")
            .await;
    assert!(matches!(auth_err(r), AuthError::RateLimited(_)));
    let r = f.lc.login("ada@example.com", PASSWORD, false).await;
    assert!(matches!(auth_err(r), AuthError::RateLimited(_)));
}

// ---- users ----------------------------------------------------------------------------------

#[tokio::test]
async fn create_user_needs_admin_write() {
    let f = fx();
    let viewer = f.actor("vera@example.com", "viewer", "acme").await;
    let r =
        f.lc.create_user(&viewer, new_user("new@example.com", "user", None))
            .await;
    assert_eq!(missing(r), AdminWrite::SET);
    let r =
        f.lc.create_user(&Actor::Anonymous, new_user("new@example.com", "user", None))
            .await;
    assert_eq!(auth_err(r), AuthError::MissingCredentials);
    assert_eq!(f.users.count(None).await.unwrap(), 1);
}

#[tokio::test]
async fn create_user_makes_a_user_who_logs_in_in_the_callers_org() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let bob =
        f.lc.create_user(&admin, new_user("  Bob@Example.com ", "user", None))
            .await
            .unwrap();
    assert_eq!(
        (bob.email.as_str(), bob.role.as_str(), bob.org_id.as_str()),
        ("bob@example.com", "user", "acme")
    );
    assert!(bob.password_hash.starts_with("$argon2id$"));
    let (actor, _) = f.signed_in("bob@example.com").await;
    assert_eq!(actor.id(), Some(bob.id.as_str()));
    // Naming its own org is fine too.
    let acme = OrgId::from("acme");
    f.lc.create_user(&admin, new_user("carol@example.com", "viewer", Some(&acme)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_org_admin_naming_another_org_is_org_forbidden() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let globex = OrgId::from("globex");
    let r =
        f.lc.create_user(&admin, new_user("bob@example.com", "user", Some(&globex)))
            .await;
    assert_eq!(auth_err(r), AuthError::OrgForbidden);
    let r = f.lc.create_agent(&admin, "bot".into(), Some(&globex)).await;
    assert_eq!(auth_err(r), AuthError::OrgForbidden);
}

#[tokio::test]
async fn only_an_every_org_actor_makes_a_superadmin() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let r =
        f.lc.create_user(&admin, new_user("root@example.com", "superadmin", None))
            .await;
    assert_eq!(auth_err(r), AuthError::OrgForbidden);
    let globex = OrgId::from("globex");
    let root =
        f.lc.create_user(
            &Actor::Board,
            new_user("root@example.com", "superadmin", Some(&globex)),
        )
        .await
        .unwrap();
    assert_eq!(root.org_id, globex);
    let (superadmin, _) = f.signed_in("root@example.com").await;
    assert!(superadmin.acts_in_every_org());
    f.lc.create_user(
        &superadmin,
        new_user("root2@example.com", "superadmin", Some(&"acme".into())),
    )
    .await
    .unwrap();
    // The board's own users go to the default org.
    let dflt =
        f.lc.create_user(&Actor::Board, new_user("d@example.com", "user", None))
            .await
            .unwrap();
    assert_eq!(dflt.org_id.as_str(), DEFAULT_ORG);
}

#[tokio::test]
async fn a_taken_email_is_a_conflict() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let r =
        f.lc.create_user(&admin, new_user("ADA@example.com", "user", None))
            .await;
    assert!(
        matches!(r, Err(LifecycleError::Conflict("that email is taken"))),
        "{r:?}"
    );
}

#[tokio::test]
async fn bad_input_is_invalid_in_the_servers_order() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let invalid = |r: Result<Account, LifecycleError>| match r {
        Err(LifecycleError::Invalid(why)) => why,
        other => panic!("expected invalid, got {other:?}"),
    };
    let long = format!("{}@example.com", "a".repeat(310));
    for email in ["no-at-sign", "@example.com", "ada@", "   ", long.as_str()] {
        let r =
            f.lc.create_user(&admin, new_user(email, "user", None))
                .await;
        assert_eq!(invalid(r), "email must look like name@domain", "{email}");
    }
    // The email first, then the password, then the role.
    let r =
        f.lc.create_user(
            &admin,
            NewUser {
                password: "short",
                ..new_user("bad", "emperor", None)
            },
        )
        .await;
    assert_eq!(invalid(r), "email must look like name@domain");
    let r =
        f.lc.create_user(
            &admin,
            NewUser {
                password: "short",
                ..new_user("new@example.com", "emperor", None)
            },
        )
        .await;
    assert_eq!(invalid(r), "the password must have at least 8 characters");
    let r =
        f.lc.create_user(&admin, new_user("new@example.com", "emperor", None))
            .await;
    assert_eq!(
        invalid(r),
        "role must be one of: admin, superadmin, user, viewer"
    );
    let blank = OrgId::from("  ");
    let r =
        f.lc.create_user(&admin, new_user("new@example.com", "user", Some(&blank)))
            .await;
    assert_eq!(invalid(r), "org_id must not be empty");
    assert_eq!(f.users.count(None).await.unwrap(), 1);
}

#[tokio::test]
async fn revoke_user_sessions_reaches_only_the_callers_org() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await;
    let bob = f.user("bob@example.com", "user", "acme").await;
    let (_, bobs) = f.signed_in("bob@example.com").await;
    let gus = f.user("gus@example.com", "user", "globex").await;
    let (_, guss) = f.signed_in("gus@example.com").await;
    // Another org's user is no user at all; nor is an unknown id.
    let r = f.lc.revoke_user_sessions(&admin, &gus.id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r = f.lc.revoke_user_sessions(&admin, &UserId::random()).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    f.bearer(guss.access_token.expose()).await.unwrap();
    assert_eq!(f.lc.revoke_user_sessions(&admin, &bob.id).await.unwrap(), 1);
    f.assert_revoked(&bobs).await;
    // The board reaches every org; a viewer none.
    assert_eq!(
        f.lc.revoke_user_sessions(&Actor::Board, &gus.id)
            .await
            .unwrap(),
        1
    );
    let viewer = f.actor("vera@example.com", "viewer", "acme").await;
    assert_eq!(
        missing(f.lc.revoke_user_sessions(&viewer, &bob.id).await),
        AdminWrite::SET
    );
}

#[tokio::test]
async fn create_first_user_makes_a_superadmin_once() {
    let f = fx();
    let first =
        f.lc.create_first_user(" Root@Example.com ", "first password")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (
            first.email.as_str(),
            first.role.as_str(),
            first.org_id.as_str()
        ),
        ("root@example.com", "superadmin", DEFAULT_ORG)
    );
    let tokens =
        f.lc.login("root@example.com", "first password", false)
            .await
            .unwrap();
    let actor = f.bearer(tokens.access_token.expose()).await.unwrap();
    assert!(actor.acts_in_every_org());
    let again =
        f.lc.create_first_user("other@example.com", "other password")
            .await
            .unwrap();
    assert_eq!(again, None);
    assert_eq!(f.users.count(None).await.unwrap(), 1);
}

#[tokio::test]
async fn stats_count_the_callers_org_and_every_org_for_the_board() {
    let f = fx();
    let admin = f.actor("ada@example.com", "admin", "acme").await; // 1 session
    f.user("bob@example.com", "user", "acme").await;
    f.actor("gus@example.com", "admin", "globex").await; // 1 session
    f.signed_in("gus@example.com").await; // 2 sessions in globex
    f.lc.create_api_key(&admin, new_key(MemoryRead::SET))
        .await
        .unwrap();
    f.lc.create_agent(&admin, "bot".into(), None).await.unwrap();
    f.lc.create_agent(&Actor::Board, "g".into(), Some(&"globex".into()))
        .await
        .unwrap();
    f.lc.create_agent(&Actor::Board, "h".into(), Some(&"globex".into()))
        .await
        .unwrap();
    assert_eq!(
        f.lc.stats(&admin).await.unwrap(),
        Stats {
            users: 2,
            api_keys: 1,
            agents: 1,
            active_sessions: 1
        }
    );
    assert_eq!(
        f.lc.stats(&Actor::Board).await.unwrap(),
        Stats {
            users: 3,
            api_keys: 1,
            agents: 3,
            active_sessions: 3
        }
    );
    let user = f.actor("u@example.com", "user", "acme").await;
    assert_eq!(missing(f.lc.stats(&user).await), AdminRead::SET);
}

// ---- API keys -------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_made_for_an_account_out_of_band_has_the_same_bounds_as_its_own() {
    let f = fx();
    let vera = f.user("vera@example.com", "viewer", "acme").await;
    // More than the role grants: refused, as on the route.
    let r =
        f.lc.create_api_key_for(
            "vera@example.com",
            new_key(<(MemoryRead, MemoryCreate)>::SET),
        )
        .await;
    assert_eq!(missing(r), MemoryCreate::SET);
    let r =
        f.lc.create_api_key_for(
            "vera@example.com",
            NewApiKey {
                expires_in_secs: Some(u64::MAX),
                ..new_key(MemoryRead::SET)
            },
        )
        .await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
    // An unknown login: not found.
    let r =
        f.lc.create_api_key_for("nobody@example.com", new_key(MemoryRead::SET))
            .await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    // Within the role: a key of the account, in its org, made by it.
    let issued =
        f.lc.create_api_key_for(" Vera@Example.com ", new_key(MemoryRead::SET))
            .await
            .unwrap();
    assert_eq!(issued.record.owner, KeyOwner::User(vera.id.clone()));
    assert_eq!(issued.record.org_id, vera.org_id);
    let actor = f.key(issued.key.expose()).await.unwrap();
    assert_eq!(actor.permissions(), MemoryRead::SET);
    // The account manages it like any key it made.
    let (vera_actor, _) = f.signed_in("vera@example.com").await;
    let listed = f.lc.api_keys(&vera_actor).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, issued.record.id);
}

#[tokio::test]
async fn a_key_holds_no_more_than_its_creator() {
    let f = fx();
    let viewer = f.actor("vera@example.com", "viewer", "acme").await;
    let r =
        f.lc.create_api_key(&viewer, new_key(<(MemoryRead, MemoryCreate)>::SET))
            .await;
    assert_eq!(missing(r), MemoryCreate::SET);
    let issued =
        f.lc.create_api_key(&viewer, new_key(MemoryRead::SET))
            .await
            .unwrap();
    assert!(!format!("{issued:?}").contains(issued.key.expose()));
    let actor = f.key(issued.key.expose()).await.unwrap();
    assert_eq!(actor.kind(), ActorKind::ApiKey);
    assert_eq!(actor.permissions(), MemoryRead::SET);
    assert_eq!(actor.api_key_id(), Some(&issued.record.id));
    let r =
        f.lc.create_api_key(
            &viewer,
            NewApiKey {
                expires_in_secs: Some(0),
                ..new_key(MemoryRead::SET)
            },
        )
        .await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
    let r =
        f.lc.create_api_key(
            &viewer,
            NewApiKey {
                name: "  ".into(),
                ..new_key(MemoryRead::SET)
            },
        )
        .await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
    let r =
        f.lc.create_api_key(&Actor::Anonymous, new_key(MemoryRead::SET))
            .await;
    assert_eq!(auth_err(r), AuthError::MissingCredentials);
}

#[tokio::test]
async fn an_actor_lists_only_its_own_keys() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let bob = f.actor("bob@example.com", "admin", "acme").await;
    let a1 =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    f.clock.advance(1);
    let a2 =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    let b1 =
        f.lc.create_api_key(&bob, new_key(MemoryRead::SET))
            .await
            .unwrap();
    let ids = |v: Vec<portcullis_core::api_key::ApiKeyRecord>| {
        v.into_iter().map(|r| r.id).collect::<Vec<ApiKeyId>>()
    };
    assert_eq!(
        ids(f.lc.api_keys(&ada).await.unwrap()),
        vec![a1.record.id.clone(), a2.record.id.clone()]
    );
    assert_eq!(ids(f.lc.api_keys(&bob).await.unwrap()), vec![b1.record.id]);
    // A key lists what it made, not its owner's other keys.
    let key = f.key(a1.key.expose()).await.unwrap();
    assert!(f.lc.api_keys(&key).await.unwrap().is_empty());
    let child =
        f.lc.create_api_key(&key, new_key(MemoryRead::SET))
            .await
            .unwrap();
    assert_eq!(
        ids(f.lc.api_keys(&key).await.unwrap()),
        vec![child.record.id.clone()]
    );
    // The user lists what its keys made too.
    assert_eq!(f.lc.api_keys(&ada).await.unwrap().len(), 3);
    assert_eq!(
        auth_err(f.lc.api_keys(&Actor::Anonymous).await),
        AuthError::MissingCredentials
    );
}

#[tokio::test]
async fn another_actors_key_is_not_found_for_update_and_delete() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let bob = f.actor("bob@example.com", "admin", "acme").await;
    let a1 =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    let id = &a1.record.id;
    let r = f.lc.set_api_key_enabled(&bob, id, false).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r = f.lc.delete_api_key(&bob, id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r = f.lc.delete_api_key(&ada, &ApiKeyId::random()).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    // Untouched.
    f.key(a1.key.expose()).await.unwrap();
}

#[tokio::test]
async fn a_disabled_key_is_refused_and_a_deleted_one_stops_resolving() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let k =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    f.key(k.key.expose()).await.unwrap(); // cached now
    let off =
        f.lc.set_api_key_enabled(&ada, &k.record.id, false)
            .await
            .unwrap();
    assert!(!off.enabled);
    assert_eq!(f.key(k.key.expose()).await, Err(AuthError::ApiKeyDisabled));
    let on =
        f.lc.set_api_key_enabled(&ada, &k.record.id, true)
            .await
            .unwrap();
    assert!(on.enabled);
    f.key(k.key.expose()).await.unwrap();
    f.lc.delete_api_key(&ada, &k.record.id).await.unwrap();
    assert_eq!(f.key(k.key.expose()).await, Err(AuthError::InvalidApiKey));
    assert!(f.lc.api_keys(&ada).await.unwrap().is_empty());
    let r = f.lc.delete_api_key(&ada, &k.record.id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
}

#[tokio::test]
async fn an_agent_key_needs_a_visible_active_agent() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let mine = f.lc.create_agent(&ada, "bot".into(), None).await.unwrap();
    let theirs =
        f.lc.create_agent(&Actor::Board, "g".into(), Some(&"globex".into()))
            .await
            .unwrap();
    let agent_key = |id: &AgentId| NewApiKey {
        agent_id: Some(id.clone()),
        ..new_key(MemoryRead::SET)
    };
    let k =
        f.lc.create_api_key(&ada, agent_key(&mine.id))
            .await
            .unwrap();
    assert_eq!(k.record.owner, KeyOwner::Agent(mine.id.clone()));
    let actor = f.key(k.key.expose()).await.unwrap();
    assert_eq!(actor.kind(), ActorKind::Agent);
    for id in [&theirs.id, &AgentId::random()] {
        let r = f.lc.create_api_key(&ada, agent_key(id)).await;
        assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    }
    let user = f.actor("u@example.com", "user", "acme").await;
    assert_eq!(
        missing(f.lc.create_api_key(&user, agent_key(&mine.id)).await),
        AdminWrite::SET
    );
}

// ---- agents ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_token_resolves_to_its_agent() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let agent =
        f.lc.create_agent(&ada, "  bot ".into(), None)
            .await
            .unwrap();
    assert_eq!(
        (agent.name.as_str(), agent.org_id.as_str()),
        ("bot", "acme")
    );
    assert_eq!((agent.status, agent.created_at), (AgentStatus::Active, T0));
    let run =
        f.lc.start_run(&ada, &agent.id, " claude_local ")
            .await
            .unwrap();
    assert!(run.expires_in > 0);
    assert!(!format!("{run:?}").contains(run.token.expose()));
    let actor = f.bearer(run.token.expose()).await.unwrap();
    let Actor::Agent(a) = &actor else {
        panic!("an agent, not {actor:?}")
    };
    assert_eq!((&a.id, &a.org_id), (&agent.id, &agent.org_id));
    assert_eq!(a.run_id.as_ref(), Some(&run.run_id));
    let r = f.lc.start_run(&ada, &agent.id, "   ").await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
    let r = f.lc.create_agent(&ada, "".into(), None).await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn another_orgs_agent_is_not_found() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let theirs =
        f.lc.create_agent(&Actor::Board, "g".into(), Some(&"globex".into()))
            .await
            .unwrap();
    let r = f.lc.start_run(&ada, &theirs.id, "claude_local").await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r = f.lc.terminate_agent(&ada, &theirs.id).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r =
        f.lc.start_run(&ada, &AgentId::random(), "claude_local")
            .await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    // Still active: the board runs it.
    f.lc.start_run(&Actor::Board, &theirs.id, "claude_local")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_terminated_agent_gets_no_run_and_its_tokens_die() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let agent = f.lc.create_agent(&ada, "bot".into(), None).await.unwrap();
    let run =
        f.lc.start_run(&ada, &agent.id, "claude_local")
            .await
            .unwrap();
    f.bearer(run.token.expose()).await.unwrap();
    f.lc.terminate_agent(&ada, &agent.id).await.unwrap();
    assert_eq!(
        f.bearer(run.token.expose()).await,
        Err(AuthError::AgentTerminated)
    );
    let r = f.lc.start_run(&ada, &agent.id, "claude_local").await;
    assert!(
        matches!(r, Err(LifecycleError::Conflict("the agent is terminated"))),
        "{r:?}"
    );
}

#[tokio::test]
async fn agent_routes_need_admin_write_first() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let agent = f.lc.create_agent(&ada, "bot".into(), None).await.unwrap();
    let user = f.actor("u@example.com", "user", "acme").await;
    assert_eq!(
        missing(f.lc.create_agent(&user, "bot".into(), None).await),
        AdminWrite::SET
    );
    assert_eq!(
        missing(f.lc.start_run(&user, &agent.id, "claude_local").await),
        AdminWrite::SET
    );
    // Before anything else: an unknown agent is still 403, not 404.
    assert_eq!(
        missing(f.lc.terminate_agent(&user, &AgentId::random()).await),
        AdminWrite::SET
    );
    // A key holding admin:write in the org may.
    let key = f.key_actor(&ada, AdminWrite::SET).await;
    f.lc.start_run(&key, &agent.id, "claude_local")
        .await
        .unwrap();
}

// ---- rerolling keys -------------------------------------------------------------------------

#[tokio::test]
async fn a_rerolled_key_keeps_its_id_and_bounds_and_the_old_secret_dies_after_the_overlap() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let k =
        f.lc.create_api_key(
            &ada,
            NewApiKey {
                expires_in_secs: Some(3_600),
                rate_limit_per_minute: Some(1_000),
                ..new_key(MemoryRead::SET)
            },
        )
        .await
        .unwrap();
    let old = k.key.expose().to_owned();
    f.key(&old).await.unwrap(); // cached now, until the key's expiry
    let r = f.lc.reroll_api_key(&ada, &k.record.id, 30).await.unwrap();
    assert_eq!(r.record.id, k.record.id);
    assert_eq!(r.record.permissions, k.record.permissions);
    assert_eq!(r.record.expires_at, k.record.expires_at);
    assert_eq!(
        r.record.rate_limit_per_minute,
        k.record.rate_limit_per_minute
    );
    assert_ne!(r.record.hash, k.record.hash);
    assert_ne!(r.key.expose(), old);
    let new = r.key.expose().to_owned();
    // Both work during the overlap, as the same key.
    for secret in [&old, &new] {
        let actor = f.key(secret).await.unwrap();
        assert_eq!(actor.api_key_id(), Some(&k.record.id));
    }
    f.clock.advance(29);
    f.key(&old).await.unwrap();
    // At the deadline the old secret is no key at all — the cached resolution included.
    f.clock.advance(1);
    assert_eq!(f.key(&old).await, Err(AuthError::InvalidApiKey));
    f.key(&new).await.unwrap();
    // The listing shows one key, with the new secret's prefix.
    let listed = f.lc.api_keys(&ada).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].display_prefix, r.record.display_prefix);
}

#[tokio::test]
async fn a_reroll_without_overlap_or_a_second_reroll_kills_earlier_secrets_at_once() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let k =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    let s0 = k.key.expose().to_owned();
    f.key(&s0).await.unwrap();
    let s1 = f.lc.reroll_api_key(&ada, &k.record.id, 0).await.unwrap();
    assert_eq!(f.key(&s0).await, Err(AuthError::InvalidApiKey));
    let s1 = s1.key.expose().to_owned();
    f.key(&s1).await.unwrap();
    // Two rerolls within an overlap: only the newest replaced secret survives.
    let s2 = f.lc.reroll_api_key(&ada, &k.record.id, 600).await.unwrap();
    let s2 = s2.key.expose().to_owned();
    f.key(&s1).await.unwrap();
    let s3 = f.lc.reroll_api_key(&ada, &k.record.id, 600).await.unwrap();
    let s3 = s3.key.expose().to_owned();
    assert_eq!(f.key(&s1).await, Err(AuthError::InvalidApiKey));
    f.key(&s2).await.unwrap();
    f.key(&s3).await.unwrap();
    // Disabling the key refuses the kept secret too; deleting it kills both.
    f.lc.set_api_key_enabled(&ada, &k.record.id, false)
        .await
        .unwrap();
    assert_eq!(f.key(&s2).await, Err(AuthError::ApiKeyDisabled));
    assert_eq!(f.key(&s3).await, Err(AuthError::ApiKeyDisabled));
    f.lc.set_api_key_enabled(&ada, &k.record.id, true)
        .await
        .unwrap();
    f.key(&s2).await.unwrap();
    f.lc.delete_api_key(&ada, &k.record.id).await.unwrap();
    assert_eq!(f.key(&s2).await, Err(AuthError::InvalidApiKey));
    assert_eq!(f.key(&s3).await, Err(AuthError::InvalidApiKey));
}

#[tokio::test]
async fn only_the_keys_manager_rerolls_and_the_overlap_is_bounded() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let bob = f.actor("bob@example.com", "admin", "acme").await;
    let k =
        f.lc.create_api_key(&ada, new_key(MemoryRead::SET))
            .await
            .unwrap();
    let r = f.lc.reroll_api_key(&bob, &k.record.id, 10).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r = f.lc.reroll_api_key(&ada, &ApiKeyId::random(), 10).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    // A key does not reach its owner's other keys.
    let own_key = f.key_actor(&ada, MemoryRead::SET).await;
    let r = f.lc.reroll_api_key(&own_key, &k.record.id, 10).await;
    assert!(matches!(r, Err(LifecycleError::NotFound)), "{r:?}");
    let r =
        f.lc.reroll_api_key(&Actor::Anonymous, &k.record.id, 10)
            .await;
    assert_eq!(auth_err(r), AuthError::MissingCredentials);
    match f.lc.reroll_api_key(&ada, &k.record.id, 86_401).await {
        Err(LifecycleError::Invalid(why)) => assert!(why.contains("overlap_seconds"), "{why}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    // None of that touched the key.
    f.key(k.key.expose()).await.unwrap();
    f.lc.reroll_api_key(&ada, &k.record.id, 86_400)
        .await
        .unwrap();
    f.key(k.key.expose()).await.unwrap();
}

// ---- audit ----------------------------------------------------------------------------------

mod audit {
    use super::*;
    use portcullis_core::audit::{AuditEvent, AuditSink, RequestContext, action};
    use std::sync::Mutex;

    /// Keeps every event it is given.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<AuditEvent>>);

    impl AuditSink for Recorder {
        fn record(&self, event: AuditEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Recorder {
        /// The events recorded since the last call.
        fn take(&self) -> Vec<AuditEvent> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }

        /// Exactly one event was recorded since the last call, of `action`: it.
        #[track_caller]
        fn one(&self, action: &str) -> AuditEvent {
            let events = self.take();
            assert_eq!(events.len(), 1, "expected exactly {action}, got {events:?}");
            assert_eq!(events[0].action, action);
            assert_eq!(events[0].time, T0, "stamped with the lifecycle's clock");
            events[0].clone()
        }
    }

    fn audited() -> (Fx, Arc<Recorder>) {
        let f = fx();
        let rec = Arc::new(Recorder::default());
        let lc = Lifecycle::builder(f.auth.clone(), f.users.clone())
            .audit_sink(rec.clone())
            .build()
            .unwrap();
        (Fx { lc, ..f }, rec)
    }

    #[track_caller]
    fn check(
        e: &AuditEvent,
        actor: Option<&str>,
        kind: &str,
        org: Option<&str>,
        target: Option<&str>,
        outcome: &str,
    ) {
        assert_eq!(e.actor_id.as_deref(), actor, "actor of {e:?}");
        assert_eq!(e.actor_kind, kind, "actor kind of {e:?}");
        assert_eq!(e.org_id.as_ref().map(OrgId::as_str), org, "org of {e:?}");
        assert_eq!(e.target.as_deref(), target, "target of {e:?}");
        assert_eq!(e.outcome, outcome, "outcome of {e:?}");
    }

    #[tokio::test]
    async fn each_lifecycle_event_emits_exactly_its_event() {
        let (f, rec) = audited();
        let admin = f.user("root@example.com", "admin", "acme").await;
        let ada = f.user("ada@example.com", "user", "acme").await;

        // login.succeeded: the user, its org, its new session.
        let tokens =
            f.lc.login("ada@example.com", PASSWORD, false)
                .await
                .unwrap();
        let e = rec.one(action::LOGIN_SUCCEEDED);
        let sid = tokens.session_id.as_str();
        check(
            &e,
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(sid),
            "success",
        );
        let ada_actor = f.bearer(tokens.access_token.expose()).await.unwrap();

        // login.refused: a known email names its user and org, an unknown one nothing.
        f.lc.login("ada@example.com", "wrong password!", false)
            .await
            .unwrap_err();
        let e = rec.one(action::LOGIN_REFUSED);
        check(
            &e,
            None,
            "anonymous",
            Some("acme"),
            Some(ada.id.as_str()),
            "failure",
        );
        f.lc.login("nobody@example.com", PASSWORD, false)
            .await
            .unwrap_err();
        let e = rec.one(action::LOGIN_REFUSED);
        check(&e, None, "anonymous", None, None, "failure");
        // An oversized password is refused before any check: refused all the same.
        f.lc.login("ada@example.com", &"p".repeat(5_000), false)
            .await
            .unwrap_err();
        let e = rec.one(action::LOGIN_REFUSED);
        check(&e, None, "anonymous", None, None, "failure");

        // login.throttled: the eleventh check in the window.
        for _ in 0..MAX_CHECKS - 2 {
            f.lc.login("ada@example.com", "wrong password!", false)
                .await
                .unwrap_err();
        }
        rec.take();
        let throttled =
            f.lc.login("ada@example.com", "wrong password!", false)
                .await;
        assert!(matches!(auth_err(throttled), AuthError::RateLimited(_)));
        let e = rec.one(action::LOGIN_THROTTLED);
        check(&e, None, "anonymous", None, None, "failure");

        // The admin signs in through start_session (no login event: not a password login).
        let admin_tokens = f.lc.start_session(&admin, false).await.unwrap();
        assert!(rec.take().is_empty(), "start_session is not a login");
        let root = f.bearer(admin_tokens.access_token.expose()).await.unwrap();
        let root_id = admin.id.as_str();

        // user.created
        let bob =
            f.lc.create_user(&root, new_user("bob@example.com", "user", None))
                .await
                .unwrap();
        let e = rec.one(action::USER_CREATED);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some(bob.id.as_str()),
            "success",
        );

        // org.forbidden, from users and agents alike.
        let other = OrgId::from("globex");
        f.lc.create_user(&root, new_user("eve@example.com", "user", Some(&other)))
            .await
            .unwrap_err();
        let e = rec.one(action::ORG_FORBIDDEN);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some("globex"),
            "failure",
        );
        f.lc.create_agent(&root, "x".into(), Some(&other))
            .await
            .unwrap_err();
        rec.one(action::ORG_FORBIDDEN);

        // api_key.created / disabled / enabled / deleted: the key's id, never the key.
        let issued =
            f.lc.create_api_key(&ada_actor, new_key(MemoryRead::SET))
                .await
                .unwrap();
        let kid = issued.record.id.as_str();
        let e = rec.one(action::API_KEY_CREATED);
        check(
            &e,
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(kid),
            "success",
        );
        assert!(!format!("{e:?}").contains(issued.key.expose()));
        f.lc.set_api_key_enabled(&ada_actor, &issued.record.id, false)
            .await
            .unwrap();
        let e = rec.one(action::API_KEY_DISABLED);
        check(
            &e,
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(kid),
            "success",
        );
        f.lc.set_api_key_enabled(&ada_actor, &issued.record.id, true)
            .await
            .unwrap();
        rec.one(action::API_KEY_ENABLED);
        let rerolled =
            f.lc.reroll_api_key(&ada_actor, &issued.record.id, 60)
                .await
                .unwrap();
        let e = rec.one(action::API_KEY_REROLLED);
        check(
            &e,
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(kid),
            "success",
        );
        assert!(!format!("{e:?}").contains(rerolled.key.expose()));
        f.lc.delete_api_key(&ada_actor, &issued.record.id)
            .await
            .unwrap();
        let e = rec.one(action::API_KEY_DELETED);
        check(
            &e,
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(kid),
            "success",
        );

        // agent.created / run_token.minted / agent.terminated
        let agent =
            f.lc.create_agent(&root, "builder".into(), None)
                .await
                .unwrap();
        let aid = agent.id.as_str();
        let e = rec.one(action::AGENT_CREATED);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some(aid),
            "success",
        );
        let run = f.lc.start_run(&root, &agent.id, "claude").await.unwrap();
        let e = rec.one(action::RUN_TOKEN_MINTED);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some(aid),
            "success",
        );
        assert!(!format!("{e:?}").contains(run.token.expose()));
        f.lc.terminate_agent(&root, &agent.id).await.unwrap();
        let e = rec.one(action::AGENT_TERMINATED);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some(aid),
            "success",
        );

        // sessions.revoked: the admin, the user's org, the user.
        f.lc.revoke_user_sessions(&root, &bob.id).await.unwrap();
        let e = rec.one(action::SESSIONS_REVOKED);
        check(
            &e,
            Some(root_id),
            "user",
            Some("acme"),
            Some(bob.id.as_str()),
            "success",
        );

        // refresh.reuse_detected: the session's user and org, the session.
        let carol = f.user("carol@example.com", "user", "acme").await;
        let (_, first) = f.signed_in("carol@example.com").await;
        rec.take();
        f.lc.refresh(first.refresh_token.expose()).await.unwrap();
        assert!(rec.take().is_empty(), "a rotation is not an event");
        f.clock.advance(GRACE + 1);
        f.lc.refresh(first.refresh_token.expose())
            .await
            .unwrap_err();
        let e = rec.take();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].action, action::REFRESH_REUSE_DETECTED);
        let csid = first.session_id.as_str();
        check(
            &e[0],
            Some(carol.id.as_str()),
            "user",
            Some("acme"),
            Some(csid),
            "failure",
        );

        // password.changed, then logout.
        let (carol_actor, _) = f.signed_in("carol@example.com").await;
        rec.take();
        f.lc.change_password(&carol_actor, PASSWORD, "another good password")
            .await
            .unwrap();
        let e = rec.take();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].action, action::PASSWORD_CHANGED);
        let cid = carol.id.as_str();
        check(&e[0], Some(cid), "user", Some("acme"), Some(cid), "success");
        assert!(!format!("{e:?}").contains("another good password"));

        // logout, of another of ada's sessions by its id (DELETE /auth/sessions/{id}).
        let other = f.lc.start_session(&ada, false).await.unwrap();
        assert!(rec.take().is_empty(), "start_session is not a login");
        f.lc.end_session(&ada_actor, &other.session_id)
            .await
            .unwrap();
        let e = rec.take();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].action, action::LOGOUT);
        let other_sid = other.session_id.as_str();
        check(
            &e[0],
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(other_sid),
            "success",
        );

        f.lc.logout(&ada_actor).await.unwrap();
        let e = rec.take();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].action, action::LOGOUT);
        check(
            &e[0],
            Some(ada.id.as_str()),
            "user",
            Some("acme"),
            Some(sid),
            "success",
        );
        for e in rec.take() {
            assert!(!format!("{e:?}").contains(PASSWORD));
        }
    }

    #[tokio::test]
    async fn refused_calls_emit_nothing_but_their_own_refusals() {
        let (f, rec) = audited();
        let ada = f.actor("ada@example.com", "user", "acme").await;
        rec.take();
        // A user without admin:write: 403 insufficient_permissions, not an audited action.
        f.lc.create_agent(&ada, "x".into(), None).await.unwrap_err();
        f.lc.create_user(&ada, new_user("x@example.com", "user", None))
            .await
            .unwrap_err();
        f.lc.delete_api_key(&ada, &ApiKeyId::from("nope"))
            .await
            .unwrap_err();
        assert_eq!(rec.take(), Vec::new());
    }

    #[tokio::test]
    async fn events_carry_the_request_context_they_ran_in() {
        let (f, rec) = audited();
        f.user("ada@example.com", "user", "acme").await;
        let ctx = RequestContext {
            request_id: Some("req-1".into()),
            client: Some("192.0.2.7:4000".into()),
        };
        ctx.scope(f.lc.login("ada@example.com", PASSWORD, false))
            .await
            .unwrap();
        let e = rec.one(action::LOGIN_SUCCEEDED);
        assert_eq!(e.request_id.as_deref(), Some("req-1"));
        assert_eq!(e.client.as_deref(), Some("192.0.2.7:4000"));
        // Outside any request: none.
        f.lc.login("ada@example.com", PASSWORD, false)
            .await
            .unwrap();
        let e = rec.one(action::LOGIN_SUCCEEDED);
        assert_eq!((e.request_id, e.client), (None, None));
    }
}

#[tokio::test]
async fn a_key_with_credits_pays_one_a_request_and_its_children_pay_from_it() {
    let f = fx();
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let parent = f.key_with_credits(&ada, 5).await;
    assert_eq!(parent.record.remaining, Some(5));
    // Each resolution pays: the key is never served from the resolved-credential cache.
    let as_parent = f.key(parent.key.expose()).await.unwrap();
    f.key(parent.key.expose()).await.unwrap();
    // 3 left. A child of a key with credits must ask for some...
    let r =
        f.lc.create_api_key(&as_parent, new_key(MemoryRead::SET))
            .await;
    assert!(matches!(r, Err(LifecycleError::Invalid(_))), "{r:?}");
    // ...no more than the parent has left (nothing is taken then)...
    let more = NewApiKey {
        remaining: Some(4),
        ..new_key(MemoryRead::SET)
    };
    let r = f.lc.create_api_key(&as_parent, more).await;
    assert!(
        matches!(r, Err(LifecycleError::Auth(AuthError::UsageExhausted))),
        "{r:?}"
    );
    // ...and takes them from it.
    let two = NewApiKey {
        remaining: Some(2),
        ..new_key(MemoryRead::SET)
    };
    let child = f.lc.create_api_key(&as_parent, two).await.unwrap();
    assert_eq!(child.record.remaining, Some(2));
    f.key(parent.key.expose()).await.unwrap();
    assert_eq!(
        f.key(parent.key.expose()).await.unwrap_err(),
        AuthError::UsageExhausted
    );
    for _ in 0..2 {
        f.key(child.key.expose()).await.unwrap();
    }
    let err = f.key(child.key.expose()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (429, "usage_exhausted"));
    let listed = f.lc.api_keys(&ada).await.unwrap();
    let left: Vec<_> = listed.iter().map(|k| k.remaining).collect();
    assert_eq!(left, [Some(0), Some(0)]);
    // Disabled beats exhausted: a refused key is still a 401.
    f.lc.set_api_key_enabled(&ada, &child.record.id, false)
        .await
        .unwrap();
    assert_eq!(
        f.key(child.key.expose()).await.unwrap_err(),
        AuthError::ApiKeyDisabled
    );
}

#[tokio::test]
async fn a_child_key_that_cannot_be_stored_costs_its_parent_nothing() {
    let keys = Arc::new(common::TestKeys::default());
    let f = fx_with(Stores {
        api_keys: keys.clone(),
        ..Stores::memory()
    });
    let ada = f.actor("ada@example.com", "admin", "acme").await;
    let parent = f.key_with_credits(&ada, 5).await;
    let as_parent = f.key(parent.key.expose()).await.unwrap();
    // 4 left. The child's 3 are taken, then storing it fails: a 503, and the 3 come back.
    keys.inserts_fail.store(true, Ordering::SeqCst);
    let three = || NewApiKey {
        remaining: Some(3),
        ..new_key(MemoryRead::SET)
    };
    let r = f.lc.create_api_key(&as_parent, three()).await;
    assert!(
        matches!(r, Err(LifecycleError::Auth(AuthError::Unavailable(_)))),
        "{r:?}"
    );
    let left = || async {
        keys.inner
            .get(&parent.record.id)
            .await
            .unwrap()
            .unwrap()
            .remaining
    };
    assert_eq!(left().await, Some(4));
    // Once the store is back, the same child can be paid for.
    keys.inserts_fail.store(false, Ordering::SeqCst);
    let child = f.lc.create_api_key(&as_parent, three()).await.unwrap();
    assert_eq!(child.record.remaining, Some(3));
    assert_eq!(left().await, Some(1));
}
