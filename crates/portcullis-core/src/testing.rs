//! Helpers for testing an application that uses Portcullis (feature `testing`).
//!
//! Every app behind an auth layer ends up writing the same test glue: an actor with some
//! permissions for a handler test, or a valid token to send through the real layer. This is
//! that glue, built from the real parts — the actor types the layer inserts, the
//! authenticator's own stores and token minting — so a test passes only if production would.
//!
//! - [`actor`]`().permissions(…).org("acme").user()` (or `.api_key()`, `.agent()`): an
//!   [`Actor`] to put into a request's extensions, for calling handlers without the layer.
//! - [`TestActor::access_token`]: a valid access token for a live session in the
//!   authenticator's session store, for `oneshot` calls through the real `AuthLayer`.
//! - [`TestActor::issue_api_key`]: a real API key with exactly the permissions set, in the
//!   authenticator's key store (for permissions no role grants).
//! - [`api_key_record`]`(id, hash)`: a stored key's record with the usual test values, to
//!   change with struct-update syntax (`ApiKeyRecord { enabled: false, ..api_key_record(…) }`)
//!   before inserting it into a store.
//!
//! ```
//! use portcullis_core::{Authenticator, Credential, PermissionList, testing, seed::MemoryCreate};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // For a handler test: insert this into the request's extensions.
//! let actor = testing::actor().permissions(MemoryCreate::SET).org("acme").user();
//! assert!(actor.has::<MemoryCreate>());
//!
//! // Through the real layer: a bearer token its authenticator accepts.
//! let auth = Authenticator::builder().build().unwrap();
//! let token = testing::actor().role("user").org("acme").access_token(&auth).await.unwrap();
//! let resolved = auth.resolve(Credential::Bearer(token.expose())).await.unwrap();
//! assert!(resolved.has::<MemoryCreate>());
//! # });
//! ```

use std::sync::Arc;

use crate::actor::{Actor, AgentActor, ApiKeyActor, AuthMethod, UserActor};
use crate::api_key::{self, ApiKeyRecord, KeyHash, KeyOwner};
use crate::authenticator::Authenticator;
use crate::error::StoreError;
use crate::ids::{AgentId, ApiKeyId, OrgId, SessionId, UserId};
use crate::permission::{PermissionSet, seed};
use crate::secret::SecretString;
use crate::session::SessionRecord;
use crate::token::{AccessGrant, MintError};

/// A test actor with no permissions, in org `test`, with id `test-actor`: set what the test
/// needs, then take it as a [`user`](TestActor::user), an [`api_key`](TestActor::api_key)
/// or an [`agent`](TestActor::agent).
///
/// ```
/// use portcullis_core::{ActorKind, testing, seed};
/// let key = testing::actor().permissions(seed::MEMORY_ALL).id("key-1").api_key();
/// assert_eq!(key.kind(), ActorKind::ApiKey);
/// assert_eq!(key.id(), Some("key-1"));
/// assert_eq!(key.org_id().map(|o| o.as_str()), Some("test"));
/// ```
pub fn actor() -> TestActor {
    TestActor {
        id: "test-actor".into(),
        org: OrgId::from("test"),
        permissions: None,
        role: None,
        all_orgs: false,
    }
}

/// A key record with the usual test values: id and hash as given, named `k`, display prefix
/// `ck_test`, made by and acting as user `u` in org `acme`, with [`seed::MEMORY_ALL`],
/// created at 0, enabled, never expiring, with no rate limit of its own and never used.
/// Change what a test is about with struct-update syntax.
///
/// ```
/// use portcullis_core::api_key::{ApiKeyRecord, KeyHash};
/// use portcullis_core::testing;
/// let disabled = ApiKeyRecord { enabled: false, ..testing::api_key_record("k1", KeyHash::of(b"k1")) };
/// assert_eq!(disabled.org_id.as_str(), "acme");
/// assert!(!disabled.enabled);
/// ```
pub fn api_key_record(id: impl Into<ApiKeyId>, hash: KeyHash) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: "k".into(),
        hash,
        display_prefix: "ck_test".into(),
        created_by: "u".into(),
        owner: KeyOwner::User("u".into()),
        org_id: "acme".into(),
        permissions: seed::MEMORY_ALL,
        created_at: 0,
        expires_at: None,
        enabled: true,
        rate_limit_per_minute: None,
        last_used_at: None,
        remaining: None,
    }
}

/// What [`actor`] builds. Cheap to clone; each finishing call makes a fresh [`Actor`].
#[derive(Debug, Clone)]
pub struct TestActor {
    id: String,
    org: OrgId,
    permissions: Option<PermissionSet>,
    role: Option<Arc<str>>,
    all_orgs: bool,
}

/// Why [`TestActor::access_token`] could not make a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestingError {
    /// The role is not in the authenticator's configuration.
    #[error("role {0:?} is not configured on this authenticator")]
    UnknownRole(String),
    /// A token's permissions are its role's, and these differ: pick the role that grants
    /// them (`.role(…)`), or use an actor from [`TestActor::user`] without the layer.
    #[error("a token carries its role's permissions; role {0:?} grants others")]
    PermissionsNotTheRoles(String),
    /// The session could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token could not be signed.
    #[error(transparent)]
    Mint(#[from] MintError),
}

impl TestActor {
    /// Its id (user, key or agent id; default `test-actor`).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Its organisation (default `test`).
    #[must_use]
    pub fn org(mut self, org: impl Into<OrgId>) -> Self {
        self.org = org.into();
        self
    }

    /// What it may do (default: nothing; for a user with a [`role`](Self::role), the role's).
    #[must_use]
    pub fn permissions(mut self, permissions: PermissionSet) -> Self {
        self.permissions = Some(permissions);
        self
    }

    /// A user's role (default `user`). [`access_token`](Self::access_token) needs it to be
    /// configured; [`user`](Self::user) only records its name unless no permissions are set.
    #[must_use]
    pub fn role(mut self, role: impl Into<Arc<str>>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// A user whose role acts in every org (as `superadmin`).
    #[must_use]
    pub fn all_orgs(mut self) -> Self {
        self.all_orgs = true;
        self
    }

    fn role_name(&self) -> Arc<str> {
        self.role.clone().unwrap_or_else(|| "user".into())
    }

    /// A user signed in with a bearer token, holding the permissions set (or, with none set,
    /// nothing: this does not look roles up — [`access_token`](Self::access_token) does).
    pub fn user(&self) -> Actor {
        Actor::User(Arc::new(UserActor {
            id: UserId::from(self.id.as_str()),
            org_id: self.org.clone(),
            role: self.role_name(),
            permissions: self.permissions.unwrap_or(PermissionSet::EMPTY),
            all_orgs: self.all_orgs,
            session_id: SessionId::from("test-session"),
            method: AuthMethod::Jwt,
        }))
    }

    /// A user's API key with the permissions set; its id is the key id, its owner `test-owner`.
    pub fn api_key(&self) -> Actor {
        Actor::ApiKey(Arc::new(ApiKeyActor {
            key_id: ApiKeyId::from(self.id.as_str()),
            owner: UserId::from("test-owner"),
            org_id: self.org.clone(),
            permissions: self.permissions.unwrap_or(PermissionSet::EMPTY),
            rate_limit_per_minute: None,
            expires_at: None,
        }))
    }

    /// An agent on a run token (run `test-run`) with the permissions set.
    pub fn agent(&self) -> Actor {
        Actor::Agent(Arc::new(AgentActor {
            id: AgentId::from(self.id.as_str()),
            org_id: self.org.clone(),
            permissions: self.permissions.unwrap_or(PermissionSet::EMPTY),
            run_id: Some("test-run".into()),
            key_id: None,
            method: AuthMethod::Jwt,
            expires_at: None,
            rate_limit_per_minute: None,
        }))
    }

    /// A valid access token for this user: a live session is created in `auth`'s session
    /// store and the token minted by `auth`'s own keys, so sending it as
    /// `Authorization: Bearer …` through an `AuthLayer` over `auth` resolves to this user,
    /// with its role's permissions (as in production: tokens carry a role, not permissions).
    ///
    /// Fails when the role is not configured, or when permissions were set that the role
    /// does not grant exactly (rather than hand out a token that silently differs).
    ///
    /// ```
    /// use portcullis_core::{Authenticator, Credential, testing};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = Authenticator::builder().build().unwrap();
    /// let token = testing::actor().id("ada").role("viewer").access_token(&auth).await.unwrap();
    /// let actor = auth.resolve(Credential::Bearer(token.expose())).await.unwrap();
    /// assert_eq!(actor.id(), Some("ada"));
    /// # });
    /// ```
    pub async fn access_token(&self, auth: &Authenticator) -> Result<SecretString, TestingError> {
        let role = self.role_name();
        let roles = &auth.config().roles;
        let granted = roles
            .get(&role)
            .ok_or_else(|| TestingError::UnknownRole(role.to_string()))?;
        if self.permissions.is_some_and(|p| p != granted) {
            return Err(TestingError::PermissionsNotTheRoles(role.to_string()));
        }
        let (user, sid) = (UserId::from(self.id.as_str()), SessionId::random());
        let tokens = auth.user_tokens();
        let refresh = tokens.mint_refresh(&user, &sid, false)?;
        let session = SessionRecord::new(
            sid.clone(),
            user.clone(),
            self.org.clone(),
            KeyHash::of(refresh.token.expose().as_bytes()),
            auth.clock().now(),
            tokens.refresh_lifetime(false),
            false,
        );
        auth.stores().sessions.create(session).await?;
        let email = format!("{}@test.invalid", self.id);
        let access = tokens.mint_access(AccessGrant {
            user_id: &user,
            email: &email,
            role: &role,
            org_id: &self.org,
            session_id: &sid,
        })?;
        Ok(access.token)
    }

    /// A real API key with exactly the permissions set (default: none), owned by user
    /// `test-owner` in this org, inserted into `auth`'s key store with this actor's id as its
    /// key id: send it as `X-API-Key` (or `Authorization: Bearer`) through an `AuthLayer` over
    /// `auth`.
    ///
    /// ```
    /// use portcullis_core::{Authenticator, Credential, PermissionList, testing, seed::MemoryRead};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = Authenticator::builder().build().unwrap();
    /// let key = testing::actor().permissions(MemoryRead::SET).issue_api_key(&auth).await.unwrap();
    /// let actor = auth.resolve(Credential::ApiKey(key.expose())).await.unwrap();
    /// assert!(actor.has::<MemoryRead>());
    /// # });
    /// ```
    pub async fn issue_api_key(&self, auth: &Authenticator) -> Result<SecretString, TestingError> {
        let generated = api_key::generate(&auth.config().api_key_prefix);
        let owner = UserId::from("test-owner");
        auth.stores()
            .api_keys
            .insert(ApiKeyRecord {
                id: ApiKeyId::from(self.id.as_str()),
                name: "test".into(),
                hash: generated.hash,
                display_prefix: generated.display_prefix,
                created_by: owner.clone().into(),
                owner: KeyOwner::User(owner),
                org_id: self.org.clone(),
                permissions: self.permissions.unwrap_or(PermissionSet::EMPTY),
                created_at: auth.clock().now(),
                expires_at: None,
                enabled: true,
                rate_limit_per_minute: None,
                last_used_at: None,
                remaining: None,
            })
            .await?;
        Ok(generated.key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::AuthError;
    use crate::permission::{PermissionList, seed};
    use crate::{ActorKind, Credential};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn each_kind_carries_the_permissions_and_org_set() {
        let spec = actor()
            .permissions(seed::MemoryRead::SET)
            .org("acme")
            .id("x");
        for (actor, kind) in [
            (spec.user(), ActorKind::User),
            (spec.api_key(), ActorKind::ApiKey),
            (spec.agent(), ActorKind::Agent),
        ] {
            assert_eq!(actor.kind(), kind);
            assert_eq!(actor.id(), Some("x"));
            assert_eq!(actor.org_id(), Some(&OrgId::from("acme")));
            assert!(actor.has::<seed::MemoryRead>());
            assert!(!actor.has::<seed::MemoryCreate>());
        }
    }

    #[test]
    fn an_access_token_resolves_to_the_user_with_the_roles_permissions() {
        runtime().block_on(async {
            let auth = Authenticator::builder().build().unwrap();
            let token = actor()
                .id("ada")
                .org("acme")
                .role("viewer")
                .access_token(&auth)
                .await
                .unwrap();
            let resolved = auth
                .resolve(Credential::Bearer(token.expose()))
                .await
                .unwrap();
            let Actor::User(user) = resolved else {
                panic!("not a user: {resolved:?}")
            };
            assert_eq!(user.id.as_str(), "ada");
            assert_eq!(user.org_id.as_str(), "acme");
            assert_eq!(
                Some(user.permissions),
                auth.config().roles.get("viewer"),
                "the role's permissions"
            );
            // A real session: revoking it kills the token.
            assert!(auth.revoke_session(&user.session_id).await.unwrap());
            assert_eq!(
                auth.resolve(Credential::Bearer(token.expose())).await,
                Err(AuthError::TokenRevoked)
            );
        });
    }

    #[test]
    fn an_issued_api_key_resolves_with_exactly_the_permissions_set() {
        runtime().block_on(async {
            let auth = Authenticator::builder().build().unwrap();
            let key = actor()
                .id("k1")
                .org("acme")
                .permissions(seed::MemoryRead::SET)
                .issue_api_key(&auth)
                .await
                .unwrap();
            let resolved = auth
                .resolve(Credential::ApiKey(key.expose()))
                .await
                .unwrap();
            assert_eq!(resolved.kind(), ActorKind::ApiKey);
            assert_eq!(resolved.id(), Some("k1"));
            assert_eq!(resolved.org_id(), Some(&OrgId::from("acme")));
            assert!(resolved.has::<seed::MemoryRead>());
            assert!(!resolved.has::<seed::MemoryList>());
        });
    }

    #[test]
    fn an_unknown_role_or_permissions_the_role_lacks_are_refused() {
        runtime().block_on(async {
            let auth = Authenticator::builder().build().unwrap();
            let unknown = actor().role("root").access_token(&auth).await;
            assert_eq!(
                unknown.err(),
                Some(TestingError::UnknownRole("root".into()))
            );
            let differs = actor()
                .role("viewer")
                .permissions(seed::MemoryCreate::SET)
                .access_token(&auth)
                .await;
            assert_eq!(
                differs.err(),
                Some(TestingError::PermissionsNotTheRoles("viewer".into()))
            );
            let same = actor()
                .role("user")
                .permissions(auth.config().roles.get("user").unwrap())
                .access_token(&auth)
                .await;
            assert!(same.is_ok());
        });
    }
}
