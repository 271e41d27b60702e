//! Revocation and invalidation: what ends a session, token, agent or key at once, here and
//! on every instance.

use super::Authenticator;
use crate::api_key::KeyHash;
use crate::cache::Invalidation;
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::ids::{AgentId, ApiKeyId, SessionId, TokenId, UserId};

impl Authenticator {
    /// Drops `what` from this instance's caches (for invalidations announced by others).
    pub async fn invalidate(&self, what: &Invalidation) {
        self.0.store_caches.invalidate(what).await;
        // After the store caches: a resolution that starts from here on reads fresh state.
        self.0.credential_cache.bump();
    }

    /// Drops every cached entry on this instance, so that the next request of each credential
    /// asks the stores again. For when invalidations may have been missed: the Redis
    /// subscriber calls it when its connection drops and when it is back (`Invalidator::on_gap`),
    /// so that while Redis is unreachable requests fail closed rather than ride the cache.
    pub fn invalidate_all(&self) {
        self.0.store_caches.invalidate_all();
        self.0.credential_cache.bump();
    }

    /// Invalidates locally, then announces it to the other instances and waits until the sink
    /// confirms they applied it. The local caches are dropped even when announcing fails, so
    /// this instance never rides a stale entry; the error makes the revoking call fail (503),
    /// and since every store write before it is idempotent, repeating the call announces again.
    pub(super) async fn invalidate_everywhere(&self, what: Invalidation) -> Result<(), StoreError> {
        self.invalidate(&what).await;
        match &self.0.sink {
            Some(sink) => sink.publish(&what).await,
            None => Ok(()),
        }
    }

    /// Revokes one session: its access and refresh tokens are dead at once, on every instance.
    /// Fails (after revoking it in the store) when the other instances cannot be told.
    pub async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        let found = self.0.stores.sessions.revoke(id).await?;
        self.invalidate_everywhere(Invalidation::Session(id.clone()))
            .await?;
        Ok(found)
    }

    /// Revokes every session of a user (password change, admin action), on every instance.
    pub async fn revoke_user_sessions(&self, user: &UserId) -> Result<u64, StoreError> {
        let now = self.0.clock.now();
        let n = self
            .0
            .stores
            .sessions
            .revoke_all_for_user(user, now)
            .await?;
        self.invalidate_everywhere(Invalidation::UserSessions(user.clone()))
            .await?;
        Ok(n)
    }

    /// Denies a token id until `expires_at`, on every instance.
    pub async fn deny_token(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError> {
        self.0.stores.denylist.deny(jti, expires_at).await?;
        self.invalidate_everywhere(Invalidation::Token(jti.clone()))
            .await
    }

    /// Terminates an agent: its run tokens and keys are dead at once, on every instance.
    pub async fn terminate_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let found = self.0.stores.agents.terminate(id).await?;
        self.invalidate_everywhere(Invalidation::Agent(id.clone()))
            .await?;
        Ok(found)
    }

    /// Enables or disables an API key, at once, on every instance.
    pub async fn set_api_key_enabled(
        &self,
        id: &ApiKeyId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let Some(hashes) = self.key_hashes(id).await? else {
            return Ok(false);
        };
        let found = self.0.stores.api_keys.set_enabled(id, enabled).await?;
        self.invalidate_hashes_everywhere(&hashes).await?;
        Ok(found)
    }

    /// Deletes an API key: dead at once, on every instance.
    ///
    /// With an invalidation sink, the key is first disabled and that is announced; only then is
    /// the record deleted. So when announcing fails, the key is still there (and refused), and
    /// repeating the delete finds it and announces again, instead of finding nothing and
    /// leaving other instances on their cached copy. The deletion itself is announced once
    /// more, so that caches say "no such key" rather than "disabled"; if that second
    /// announcement fails the key is already refused everywhere, so it is only logged.
    pub async fn delete_api_key(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        let Some(hashes) = self.key_hashes(id).await? else {
            return Ok(false);
        };
        if self.0.sink.is_some() {
            self.0.stores.api_keys.set_enabled(id, false).await?;
            self.invalidate_hashes_everywhere(&hashes).await?;
        }
        let found = self.0.stores.api_keys.delete(id).await?;
        if let Err(e) = self.invalidate_hashes_everywhere(&hashes).await {
            tracing::warn!(key = %id, error = %e, "deleted API key announced only as disabled");
        }
        Ok(found)
    }

    /// Gives key `id` a new secret, `new_hash`: the secret it replaces keeps working until
    /// `previous_until` (and is dead at once without it), on every instance — the caches
    /// of every instance drop what they hold for the key's current and earlier secrets, and
    /// what they cache for the replaced one afterwards is stale at its deadline. A secret an
    /// earlier reroll kept is dead at once: only the newest replaced secret survives. False
    /// when there is no such key.
    ///
    /// When the other instances cannot be told, the reroll is stored but this fails (503);
    /// repeating it rerolls again (the secret of the failed call, never shown, is then the
    /// one kept for the overlap, and the one before it is dead).
    pub async fn reroll_api_key(
        &self,
        id: &ApiKeyId,
        new_hash: KeyHash,
        display_prefix: &str,
        previous_until: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let Some(hashes) = self.key_hashes(id).await? else {
            return Ok(false);
        };
        let found = self
            .0
            .stores
            .api_keys
            .reroll(id, new_hash, display_prefix, previous_until)
            .await?;
        self.invalidate_hashes_everywhere(&hashes).await?;
        Ok(found)
    }

    /// The key's current hash and the one its last reroll replaced, if one is kept: every hash
    /// that may sit in a cache for it.
    async fn key_hashes(&self, id: &ApiKeyId) -> Result<Option<Vec<KeyHash>>, StoreError> {
        let keys = &self.0.stores.api_keys;
        let Some(record) = keys.get(id).await? else {
            return Ok(None);
        };
        let mut hashes = vec![record.hash];
        if let Some((previous, _)) = keys.previous_hash(id).await? {
            hashes.push(previous);
        }
        Ok(Some(hashes))
    }

    async fn invalidate_hashes_everywhere(&self, hashes: &[KeyHash]) -> Result<(), StoreError> {
        for hash in hashes {
            self.invalidate_everywhere(Invalidation::ApiKey(*hash))
                .await?;
        }
        Ok(())
    }
}
