//! The store caches: records in front of the stores on the request path (moka) — API keys by
//! hash, sessions, agents, denied `jti`s — bounded, with positive and negative entries,
//! single-flight loading (a burst of requests for one uncached key makes one store query), and
//! fenced invalidation at once on revoke, disable and terminate. Store errors are never cached:
//! the request fails closed and the next one asks the store again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

use super::{CacheConfig, Invalidation};
use crate::api_key::{ApiKeyRecord, KeyHash};
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::ids::{AgentId, SessionId, TokenId};
use crate::metrics::{self, CacheName, StoreName};
use crate::session::SessionRecord;
use crate::store::AgentRecord;

fn build<K, V>(config: CacheConfig, closures: bool) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let builder = Cache::builder()
        .max_capacity(config.capacity)
        .time_to_live(config.ttl);
    if closures {
        builder.support_invalidation_closures().build()
    } else {
        builder.build()
    }
}

/// A cache whose invalidations fence loads already in flight.
///
/// moka does not stop a load that began before an invalidation from inserting its (now stale)
/// result after it. So each entry remembers the epoch its load started in, and each
/// invalidation bumps the epoch and records a fence for its key: an entry whose load started
/// before its key's fence is treated as absent and loaded again. While nothing is invalidated
/// a hit costs one atomic load more than a plain moka hit.
pub(crate) struct Fenced<K, V> {
    entries: Cache<K, (u64, V)>,
    fences: moka::sync::Cache<K, u64>,
    epoch: AtomicU64,
    // Fence for predicate invalidations (every session of a user), which name no key.
    all_before: AtomicU64,
    /// Its name in the cache metrics, and its store's in the store error metrics.
    cache: CacheName,
    store: StoreName,
}

impl<K, V> Fenced<K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(config: CacheConfig, closures: bool, cache: CacheName, store: StoreName) -> Self {
        Self {
            cache,
            store,
            entries: build(config, closures),
            // Fences outlive any load: a load slower than this is past every store timeout.
            fences: moka::sync::Cache::builder()
                .max_capacity(config.capacity)
                .time_to_live(config.ttl.max(Duration::from_secs(60)))
                .build(),
            epoch: AtomicU64::new(0),
            all_before: AtomicU64::new(0),
        }
    }

    pub(crate) async fn get<F, Fut>(&self, key: &K, load: F) -> Result<V, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        // Every store call is counted once when it fails (single-flight waiters share it).
        let load = || async {
            let loaded = load().await;
            if loaded.is_err() {
                metrics::store_error(self.store);
            }
            loaded
        };
        // One lookup, as the metrics count it: a hit unless this request asked the store.
        let mut asked = false;
        // The second try starts after any fence that made the first stale.
        for _ in 0..2 {
            let started = self.epoch.load(Ordering::SeqCst);
            let asked_now = std::sync::atomic::AtomicBool::new(false);
            let got = self
                .entries
                .try_get_with_by_ref(key, async {
                    asked_now.store(true, Ordering::Relaxed);
                    load().await.map(|v| (started, v))
                })
                .await;
            asked |= asked_now.load(Ordering::Relaxed);
            let (loaded_at, value) = match got {
                Ok(got) => got,
                Err(e) => {
                    metrics::cache_lookup(self.cache, false);
                    return Err((*e).clone());
                }
            };
            if !self.is_stale(key, loaded_at) {
                metrics::cache_lookup(self.cache, !asked);
                return Ok(value);
            }
            self.entries.invalidate(key).await;
        }
        metrics::cache_lookup(self.cache, false);
        // Invalidations keep racing this key: ask the store directly, uncached.
        load().await
    }

    /// Entries held, once moka has applied its pending writes and evictions.
    pub(crate) async fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }

    fn is_stale(&self, key: &K, loaded_at: u64) -> bool {
        // Nothing invalidated since this entry's load began: fresh, without a fence lookup.
        if loaded_at == self.epoch.load(Ordering::SeqCst) {
            return false;
        }
        loaded_at < self.all_before.load(Ordering::SeqCst)
            || self.fences.get(key).is_some_and(|fence| loaded_at < fence)
    }

    async fn invalidate(&self, key: &K) {
        let fence = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.fences.insert(key.clone(), fence);
        self.entries.invalidate(key).await;
    }

    /// Drops every entry, fencing loads in flight.
    fn invalidate_all(&self) {
        let fence = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_before.fetch_max(fence, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    fn invalidate_if(&self, predicate: impl Fn(&V) -> bool + Send + Sync + 'static) {
        let fence = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_before.fetch_max(fence, Ordering::SeqCst);
        // Closures are enabled on the caches this is used with; the error cannot happen.
        let _ = self
            .entries
            .invalidate_entries_if(move |_, (_, v)| predicate(v));
    }
}

impl<K, T> Fenced<K, Option<Arc<T>>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    /// A record (or its absence, cached as a negative entry) from `load`.
    pub(crate) async fn record<F, Fut>(
        &self,
        key: &K,
        load: F,
    ) -> Result<Option<Arc<T>>, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        self.get(key, || async { load().await.map(|r| r.map(Arc::new)) })
            .await
    }
}

/// A key as a presented hash finds it: the record and, for a hash a reroll replaced, until when
/// that hash works ([`ApiKeyStore::find_presented`](crate::store::ApiKeyStore::find_presented)).
pub(crate) type PresentedKey = (ApiKeyRecord, Option<UnixTime>);

pub(crate) struct StoreCaches {
    /// By presented hash: the key and, for a hash a reroll replaced, until when it works.
    pub(crate) api_keys: Fenced<KeyHash, Option<Arc<PresentedKey>>>,
    pub(crate) sessions: Fenced<SessionId, Option<Arc<SessionRecord>>>,
    pub(crate) agents: Fenced<AgentId, Option<Arc<AgentRecord>>>,
    pub(crate) denied: Fenced<TokenId, bool>,
    /// Token ids found denied by first-seen tokens, which skip `denied` (see
    /// `Authenticator::is_denied`): a denied token replayed is refused from here, not by a
    /// store query per request. A denial is never lifted (it ends with the token's `exp`, when
    /// the token is refused anyway), so nothing here needs fencing; a plain bounded map,
    /// whose miss costs a hash lookup (a moka miss was several times more, in the profile).
    pub(crate) denials: quick_cache::sync::Cache<TokenId, ()>,
}

impl StoreCaches {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self {
            api_keys: Fenced::new(config, false, CacheName::ApiKeys, StoreName::ApiKeys),
            sessions: Fenced::new(config, true, CacheName::Sessions, StoreName::Sessions),
            agents: Fenced::new(config, false, CacheName::Agents, StoreName::Agents),
            denied: Fenced::new(config, false, CacheName::Denylist, StoreName::Denylist),
            denials: quick_cache::sync::Cache::new(
                usize::try_from(config.capacity)
                    .unwrap_or(usize::MAX)
                    .max(1),
            ),
        }
    }

    /// Drops everything: invalidations may have been missed (a lost pub/sub connection).
    pub(crate) fn invalidate_all(&self) {
        self.api_keys.invalidate_all();
        self.sessions.invalidate_all();
        self.agents.invalidate_all();
        self.denied.invalidate_all();
    }

    pub(crate) async fn invalidate(&self, what: &Invalidation) {
        match what {
            Invalidation::ApiKey(hash) => self.api_keys.invalidate(hash).await,
            Invalidation::Session(id) => self.sessions.invalidate(id).await,
            Invalidation::UserSessions(user) => {
                let user = user.clone();
                self.sessions
                    .invalidate_if(move |s| s.as_ref().is_some_and(|s| s.user_id == user));
            }
            Invalidation::Agent(id) => self.agents.invalidate(id).await,
            Invalidation::Token(jti) => self.denied.invalidate(jti).await,
        }
    }
}
