//! The resolved-credential cache: the [`Actor`] a credential resolved to, for the next request
//! that presents exactly the same credential.
//!
//! The per-request cost of auth is dominated by what a repeat of a credential does again:
//! verifying the token's signature and claims, looking up the session and the denylist, or
//! parsing and hashing an API key and looking up its record. This cache skips all of that on a
//! hit, but gives up none of the checks' strength:
//!
//! - Only successes are cached, keyed by the exact credential (a JWT's bytes; an API key's
//!   [`KeyPrint`], a keyed 128-bit hash), so a forged or altered credential never hits, and
//!   bounded by weight, so a flood of valid credentials cannot grow memory past the configured
//!   size.
//! - An entry is fresh only until the earliest of: the token's `exp` (with leeway), the
//!   session's or the key's expiry, and the cache TTL (after which the stores are asked again,
//!   bounding staleness for changes made behind the [`Authenticator`](crate::Authenticator)'s
//!   back, as the store caches do).
//! - Every invalidation (a revocation here, or one announced by another instance) bumps one
//!   epoch; an entry made before the bump is stale and the credential goes the slow way again,
//!   which re-reads the (fenced) store caches. Revocations are rare, so the epoch is almost
//!   always unchanged and a hit costs one hash lookup, one clock read and one atomic load.
//!
//! The epoch is read before the slow path starts: a revocation that lands while a credential
//! is being resolved makes the entry it produces stale at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::actor::Actor;
use crate::clock::UnixTime;
use crate::ids::ApiKeyId;

/// What a hit hands back.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) actor: Actor,
    /// The epoch when the slow path that made this entry began.
    epoch: u64,
    /// The first second at which the entry must not be served.
    stale_at: UnixTime,
    /// For API keys: reported to the usage sink on every hit.
    pub(crate) key_id: Option<ApiKeyId>,
}

/// A bounded concurrent map. quick_cache rather than moka (which the store caches use): a hit
/// here is the whole cost of a repeated credential, and measured in portcullis-bench a
/// quick_cache hit is several times cheaper than a moka hit (no read-buffer bookkeeping);
/// entries carry their own staleness, so moka's TTL is not needed.
type Map<K> = quick_cache::sync::Cache<K, Arc<Entry>, Weight>;

/// Weighs entries by the bytes they hold, so that the bound is on memory, not on count.
#[derive(Clone, Copy)]
struct Weight;

impl quick_cache::Weighter<Arc<str>, Arc<Entry>> for Weight {
    fn weight(&self, token: &Arc<str>, _: &Arc<Entry>) -> u64 {
        token.len() as u64 + ENTRY_BYTES
    }
}

impl quick_cache::Weighter<KeyPrint, Arc<Entry>> for Weight {
    fn weight(&self, _: &KeyPrint, _: &Arc<Entry>) -> u64 {
        16 + ENTRY_BYTES
    }
}

/// What the API-key cache is keyed by: SipHash-1-3 (128-bit output) of the raw key under a
/// random key drawn when the cache is made.
///
/// Not the key's SHA-256 (its [`KeyHash`](crate::api_key::KeyHash), what the stores keep): a
/// cache hit is the whole cost of a repeated key, and in the HTTP bench's profile the SHA-256
/// and its constant-time comparison were a third of it. Not the raw key either, which would
/// keep every recent key in memory. SipHash is a pseudo-random function: without the
/// process's random key nobody can make a key whose print equals another's, and two keys share
/// one by chance with probability 2⁻¹²⁸. A print reveals nothing of a key, so it is compared
/// as plain bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyPrint(u128);

/// The keyed hash that makes [`KeyPrint`]s; one per cache.
struct Printer(SipHasher13);

impl Printer {
    fn random() -> Self {
        let mut key = [0u8; 16];
        crate::random::fill(&mut key);
        Self(SipHasher13::new_with_key(&key))
    }

    fn print(&self, raw: &str) -> KeyPrint {
        let mut h = self.0;
        std::hash::Hasher::write(&mut h, raw.as_bytes());
        KeyPrint(h.finish128().as_u128())
    }
}

/// Roughly what an entry costs besides its key: the `Entry`, its `Arc`, the actor's `Arc`.
const ENTRY_BYTES: u64 = 192;

/// Credentials already resolved. See the module docs.
pub(crate) struct CredentialCache {
    /// Bearer JWTs, by their exact text.
    bearer: Option<Map<Arc<str>>>,
    /// Cookie JWTs (their actor says `cookie`), by their exact text.
    cookie: Option<Map<Arc<str>>>,
    /// API keys, by print.
    api_keys: Option<Map<KeyPrint>>,
    printer: Printer,
    epoch: AtomicU64,
    ttl_secs: u64,
}

fn map<K: Eq + std::hash::Hash>(max_bytes: u64, typical_bytes: u64) -> Option<Map<K>>
where
    Weight: quick_cache::Weighter<K, Arc<Entry>>,
{
    let items = usize::try_from(max_bytes / typical_bytes).unwrap_or(usize::MAX);
    (items > 0).then(|| Map::with_weighter(items, max_bytes, Weight))
}

impl CredentialCache {
    /// Caches of at most `max_bytes` (roughly) each, serving entries at most `ttl`; none at
    /// all when `max_bytes` is 0.
    pub(crate) fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self {
            bearer: map(max_bytes, 800),
            cookie: map(max_bytes, 800),
            api_keys: map(max_bytes, 16 + ENTRY_BYTES),
            printer: Printer::random(),
            epoch: AtomicU64::new(0),
            ttl_secs: ttl.as_secs(),
        }
    }

    /// Entries held per cache: bearer tokens, cookie tokens, API keys.
    pub(crate) fn entry_counts(&self) -> [u64; 3] {
        fn len<K: Eq + std::hash::Hash + Clone>(m: &Option<Map<K>>) -> u64
        where
            Weight: quick_cache::Weighter<K, Arc<Entry>>,
        {
            m.as_ref().map_or(0, |m| m.len() as u64)
        }
        [len(&self.bearer), len(&self.cookie), len(&self.api_keys)]
    }

    /// The epoch to pass to [`insert_token`](Self::insert_token) / [`insert_key`](Self::insert_key),
    /// read before resolving the slow way.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Makes every entry stale (something was revoked).
    pub(crate) fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn fresh(&self, entry: Arc<Entry>, now: UnixTime) -> Option<Arc<Entry>> {
        (entry.epoch == self.epoch.load(Ordering::Acquire) && now < entry.stale_at).then_some(entry)
    }

    /// The actor for a JWT seen before, if still fresh.
    pub(crate) fn token(&self, token: &str, cookie: bool, now: UnixTime) -> Option<Arc<Entry>> {
        let cache = if cookie { &self.cookie } else { &self.bearer };
        self.fresh(cache.as_ref()?.get(token)?, now)
    }

    /// The actor for an API key seen before, if still fresh.
    pub(crate) fn key(&self, raw: &str, now: UnixTime) -> Option<Arc<Entry>> {
        let cache = self.api_keys.as_ref()?;
        self.fresh(cache.get(&self.printer.print(raw))?, now)
    }

    fn entry(&self, actor: Actor, epoch: u64, now: UnixTime, stale_at: UnixTime) -> Arc<Entry> {
        Arc::new(Entry {
            key_id: actor.api_key_id().cloned(),
            actor,
            epoch,
            stale_at: stale_at.min(now.saturating_add(self.ttl_secs)),
        })
    }

    /// Whether `token` may have been resolved before: true when it has an entry, fresh or
    /// stale, or when this cache is off (nothing can be told apart then). A token this says
    /// false for is seen for the first time, as far as this instance knows.
    pub(crate) fn knows_token(&self, token: &str, cookie: bool) -> bool {
        let cache = if cookie { &self.cookie } else { &self.bearer };
        cache.as_ref().is_none_or(|c| c.get(token).is_some())
    }

    /// Remembers that `token` resolved to `actor`, until `stale_at` at the latest.
    pub(crate) fn insert_token(
        &self,
        token: &str,
        cookie: bool,
        actor: Actor,
        epoch: u64,
        now: UnixTime,
        stale_at: UnixTime,
    ) {
        let cache = if cookie { &self.cookie } else { &self.bearer };
        if let Some(cache) = cache {
            cache.insert(Arc::from(token), self.entry(actor, epoch, now, stale_at));
        }
    }

    /// Remembers that the key `raw` resolved to `actor`, until `stale_at`.
    pub(crate) fn insert_key(
        &self,
        raw: &str,
        actor: Actor,
        epoch: u64,
        now: UnixTime,
        stale_at: UnixTime,
    ) {
        if let Some(cache) = &self.api_keys {
            cache.insert(
                self.printer.print(raw),
                self.entry(actor, epoch, now, stale_at),
            );
        }
    }
}
