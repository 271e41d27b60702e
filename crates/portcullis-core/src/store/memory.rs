//! Bounded in-memory stores, for tests, examples and single-process use.
//!
//! Each holds at most `capacity` entries. When full, expired entries are purged; if it is
//! still full, the insert fails with [`StoreError::CapacityExceeded`] rather than silently
//! dropping a key, a session or a revocation.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    AgentDirectory, AgentRecord, AgentStatus, ApiKeyStore, Credits, Denylist, SessionStore,
};
use crate::api_key::{ApiKeyRecord, KeyHash, KeysOf};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::error::StoreError;
use crate::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use crate::session::SessionRecord;

/// Default bound of each in-memory store.
pub const DEFAULT_CAPACITY: usize = 100_000;

// The data are plain maps with no invariant a panic could break halfway, so a poisoned lock
// is taken over rather than propagated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// API keys in memory.
#[derive(Debug)]
pub struct MemoryApiKeyStore {
    capacity: usize,
    inner: Mutex<KeyMaps>,
}

#[derive(Debug, Default)]
struct KeyMaps {
    by_id: HashMap<ApiKeyId, ApiKeyRecord>,
    /// Current hashes, and the hashes rerolls replaced (kept in `previous`).
    id_by_hash: HashMap<KeyHash, ApiKeyId>,
    /// The hash each key's last reroll replaced, and until when it is presentable.
    previous: HashMap<ApiKeyId, (KeyHash, UnixTime)>,
}

impl KeyMaps {
    /// Forgets the replaced hash of `id`, if any.
    fn forget_previous(&mut self, id: &ApiKeyId) {
        if let Some((hash, _)) = self.previous.remove(id) {
            self.id_by_hash.remove(&hash);
        }
    }
}

impl MemoryApiKeyStore {
    /// A store of at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }
}

impl Default for MemoryApiKeyStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        if m.by_id.len() >= self.capacity {
            let now = SystemClock.now();
            let expired: Vec<_> = m
                .by_id
                .values()
                .filter(|r| r.expires_at.is_some_and(|e| e <= now))
                .map(|r| (r.id.clone(), r.hash))
                .collect();
            for (id, hash) in expired {
                m.by_id.remove(&id);
                m.id_by_hash.remove(&hash);
                m.forget_previous(&id);
            }
            if m.by_id.len() >= self.capacity {
                return Err(StoreError::CapacityExceeded);
            }
        }
        if m.by_id.contains_key(&record.id) || m.id_by_hash.contains_key(&record.hash) {
            return Err(StoreError::Conflict("api key"));
        }
        m.id_by_hash.insert(record.hash, record.id.clone());
        m.by_id.insert(record.id.clone(), record);
        Ok(())
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        let m = lock(&self.inner);
        Ok(m.id_by_hash
            .get(hash)
            .and_then(|id| m.by_id.get(id))
            .filter(|r| r.hash == *hash)
            .cloned())
    }

    async fn find_presented(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<(ApiKeyRecord, Option<UnixTime>)>, StoreError> {
        let m = lock(&self.inner);
        let Some(record) = m.id_by_hash.get(hash).and_then(|id| m.by_id.get(id)) else {
            return Ok(None);
        };
        if record.hash == *hash {
            return Ok(Some((record.clone(), None)));
        }
        Ok(m.previous
            .get(&record.id)
            .filter(|(previous, _)| previous == hash)
            .map(|(_, until)| (record.clone(), Some(*until))))
    }

    async fn take_credits(&self, id: &ApiKeyId, n: u64) -> Result<Credits, StoreError> {
        let mut m = lock(&self.inner);
        let Some(record) = m.by_id.get_mut(id) else {
            return Ok(Credits::NotFound);
        };
        Ok(match &mut record.remaining {
            None => Credits::Unlimited,
            Some(left) if *left >= n => {
                *left -= n;
                Credits::Taken { left: *left }
            }
            Some(_) => Credits::Exhausted,
        })
    }

    async fn return_credits(&self, id: &ApiKeyId, n: u64) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        if let Some(left) = m.by_id.get_mut(id).and_then(|r| r.remaining.as_mut()) {
            *left = left.saturating_add(n);
        }
        Ok(())
    }

    async fn reroll(
        &self,
        id: &ApiKeyId,
        new_hash: KeyHash,
        display_prefix: &str,
        previous_until: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let mut m = lock(&self.inner);
        if m.id_by_hash.contains_key(&new_hash) {
            return Err(StoreError::Conflict("api key"));
        }
        let Some(record) = m.by_id.get_mut(id) else {
            return Ok(false);
        };
        let old = std::mem::replace(&mut record.hash, new_hash);
        record.display_prefix = display_prefix.to_owned();
        m.forget_previous(id);
        m.id_by_hash.insert(new_hash, id.clone());
        match previous_until {
            Some(until) => {
                m.previous.insert(id.clone(), (old, until));
            }
            None => {
                m.id_by_hash.remove(&old);
            }
        }
        Ok(true)
    }

    async fn previous_hash(
        &self,
        id: &ApiKeyId,
    ) -> Result<Option<(KeyHash, UnixTime)>, StoreError> {
        Ok(lock(&self.inner).previous.get(id).copied())
    }

    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(lock(&self.inner).by_id.get(id).cloned())
    }

    async fn list(&self, of: &KeysOf) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let m = lock(&self.inner);
        let mut keys: Vec<_> = m
            .by_id
            .values()
            .filter(|r| of.matches(r))
            .cloned()
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn set_enabled(&self, id: &ApiKeyId, enabled: bool) -> Result<bool, StoreError> {
        Ok(lock(&self.inner)
            .by_id
            .get_mut(id)
            .map(|r| r.enabled = enabled)
            .is_some())
    }

    async fn delete(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        let mut m = lock(&self.inner);
        match m.by_id.remove(id) {
            Some(r) => {
                m.id_by_hash.remove(&r.hash);
                m.forget_previous(id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn touch(&self, used: &[(ApiKeyId, UnixTime)]) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        for (id, at) in used {
            if let Some(r) = m.by_id.get_mut(id) {
                r.last_used_at = Some(r.last_used_at.map_or(*at, |prev| prev.max(*at)));
            }
        }
        Ok(())
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        Ok(lock(&self.inner)
            .by_id
            .values()
            .filter(|r| org.is_none_or(|o| r.org_id == *o))
            .count() as u64)
    }
}

/// Login sessions in memory. The swap of a refresh is atomic under one lock; each session
/// carries a version that every write increments.
#[derive(Debug)]
pub struct MemorySessionStore {
    capacity: usize,
    inner: Mutex<HashMap<SessionId, (SessionRecord, u64)>>,
}

impl MemorySessionStore {
    /// A store of at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: SessionRecord) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        if m.len() >= self.capacity {
            // Expired sessions accept nothing; revoked ones must stay until they expire, so
            // that a revoked session's tokens keep failing.
            let now = SystemClock.now();
            m.retain(|_, (s, _)| s.expires_at > now);
            if m.len() >= self.capacity {
                return Err(StoreError::CapacityExceeded);
            }
        }
        if m.contains_key(&session.id) {
            return Err(StoreError::Conflict("session"));
        }
        m.insert(session.id.clone(), (session, 0));
        Ok(())
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        Ok(lock(&self.inner).get(id).cloned())
    }

    async fn swap(
        &self,
        id: &SessionId,
        expected_version: u64,
        new: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let mut m = lock(&self.inner);
        match m.get_mut(id) {
            Some((session, version)) if *version == expected_version => {
                *session = new.clone();
                *version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(lock(&self.inner)
            .get_mut(id)
            .map(|(s, version)| {
                s.revoked = true;
                *version += 1;
            })
            .is_some())
    }

    async fn revoke_all_for_user(&self, user: &UserId, now: UnixTime) -> Result<u64, StoreError> {
        let mut n = 0;
        for (s, version) in lock(&self.inner)
            .values_mut()
            .filter(|(s, _)| &s.user_id == user)
        {
            if s.is_live(now) {
                n += 1;
            }
            s.revoked = true;
            *version += 1;
        }
        Ok(n)
    }

    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError> {
        Ok(lock(&self.inner)
            .values()
            .filter(|(s, _)| s.is_live(now) && org.is_none_or(|o| &s.org_id == o))
            .count() as u64)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut live: Vec<SessionRecord> = lock(&self.inner)
            .values()
            .filter(|(s, _)| &s.user_id == user && s.is_live(now))
            .map(|(s, _)| s.clone())
            .collect();
        super::newest_first(&mut live);
        Ok(live)
    }
}

/// Agents in memory.
#[derive(Debug)]
pub struct MemoryAgentDirectory {
    capacity: usize,
    inner: Mutex<HashMap<AgentId, AgentRecord>>,
}

impl MemoryAgentDirectory {
    /// A directory of at most `capacity` agents.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }
}

impl Default for MemoryAgentDirectory {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl AgentDirectory for MemoryAgentDirectory {
    async fn insert(&self, agent: AgentRecord) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        if m.len() >= self.capacity {
            return Err(StoreError::CapacityExceeded);
        }
        if m.contains_key(&agent.id) {
            return Err(StoreError::Conflict("agent"));
        }
        m.insert(agent.id.clone(), agent);
        Ok(())
    }

    async fn get(&self, id: &AgentId) -> Result<Option<AgentRecord>, StoreError> {
        Ok(lock(&self.inner).get(id).cloned())
    }

    async fn terminate(&self, id: &AgentId) -> Result<bool, StoreError> {
        Ok(lock(&self.inner)
            .get_mut(id)
            .map(|a| a.status = AgentStatus::Terminated)
            .is_some())
    }

    async fn list(&self, org: Option<&OrgId>) -> Result<Vec<AgentRecord>, StoreError> {
        let mut agents: Vec<_> = lock(&self.inner)
            .values()
            .filter(|a| org.is_none_or(|o| a.org_id == *o))
            .cloned()
            .collect();
        super::by_creation(&mut agents);
        Ok(agents)
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        Ok(lock(&self.inner)
            .values()
            .filter(|a| org.is_none_or(|o| &a.org_id == o))
            .count() as u64)
    }
}

/// Denied `jti`s in memory; entries go when their token would have expired anyway.
#[derive(Debug)]
pub struct MemoryDenylist {
    capacity: usize,
    inner: Mutex<HashMap<TokenId, UnixTime>>,
}

impl MemoryDenylist {
    /// A denylist of at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }
}

impl Default for MemoryDenylist {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl Denylist for MemoryDenylist {
    async fn deny(&self, jti: &TokenId, expires_at: UnixTime) -> Result<(), StoreError> {
        let mut m = lock(&self.inner);
        if m.len() >= self.capacity && !m.contains_key(jti) {
            let now = SystemClock.now();
            m.retain(|_, exp| *exp > now);
            if m.len() >= self.capacity {
                return Err(StoreError::CapacityExceeded);
            }
        }
        let entry = m.entry(jti.clone()).or_insert(expires_at);
        *entry = (*entry).max(expires_at);
        Ok(())
    }

    async fn is_denied(&self, jti: &TokenId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(lock(&self.inner).get(jti).is_some_and(|exp| *exp > now))
    }
}
