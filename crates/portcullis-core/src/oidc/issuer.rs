//! One external issuer at run time: its current keys, how they are kept fresh, and how fresh
//! they are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use super::config::{IssuerAlgorithm, IssuerConfig};
use super::keys::{ExternalKey, KeySet};
use crate::clock::{SharedClock, UnixTime};
use crate::error::{AuthError, StoreError, TokenError};

/// Where an issuer's JWKS comes from. The `oidc` feature's HTTP source fetches it over
/// HTTPS (discovery, then `jwks_uri`); tests and embedders may supply their own.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    /// The current JWKS document, and how long it may be cached (`Cache-Control: max-age`).
    async fn fetch(&self) -> Result<FetchedJwks, FetchError>;
}

/// A fetched JWKS document.
#[derive(Debug, Clone)]
pub struct FetchedJwks {
    /// The document's bytes.
    pub body: Vec<u8>,
    /// How long the provider says it may be cached, if it says.
    pub max_age: Option<Duration>,
}

/// A fetch failed: the reason, for logs and `/readyz` (never a secret: addresses and
/// statuses only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// How fresh an issuer's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFreshness {
    /// No fetch has succeeded yet: the issuer's tokens are refused with 503 (each refetching
    /// the keys first, at most once per cooldown).
    Pending,
    /// The last fetch succeeded.
    Fresh,
    /// The last fetch failed: the last good keys are still used, and a `kid` they do not
    /// hold is refused.
    Stale,
    /// No fetch has succeeded for longer than `max_key_age_secs`: the keys are no longer
    /// trusted, and the issuer's tokens are refused with 503.
    Expired,
}

impl KeyFreshness {
    /// `pending`, `fresh`, `stale`, `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Expired => "expired",
        }
    }
}

/// One issuer's state, for readiness reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerStatus {
    /// The issuer.
    pub issuer: String,
    /// How fresh its keys are.
    pub freshness: KeyFreshness,
    /// How many keys it has.
    pub keys: usize,
    /// Fetches attempted so far (at start, in the background, and for unknown `kid`s).
    pub fetches: u64,
    /// Seconds since the last successful fetch.
    pub age_secs: Option<u64>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct FetchState {
    last_success: Option<UnixTime>,
    last_error: Option<String>,
}

/// One configured issuer.
pub(crate) struct Issuer {
    pub(crate) config: IssuerConfig,
    source: Arc<dyn JwksSource>,
    clock: SharedClock,
    /// Replaced whole on each successful fetch; read once per first-seen token.
    keys: RwLock<Arc<KeySet>>,
    state: Mutex<FetchState>,
    /// When an unknown `kid` last caused a fetch: at most one per cooldown. Held across that
    /// fetch, so that requests waiting on it see its keys instead of fetching again.
    unknown_kid_fetch: tokio::sync::Mutex<Option<UnixTime>>,
    fetches: AtomicU64,
    /// When the background refresh fetches next, set by every fetch.
    next_fetch: Mutex<Option<tokio::time::Instant>>,
    /// Wakes the background refresh when a fetch elsewhere changed `next_fetch`.
    rescheduled: tokio::sync::Notify,
}

impl Issuer {
    pub(crate) fn new(
        config: IssuerConfig,
        source: Arc<dyn JwksSource>,
        clock: SharedClock,
    ) -> Self {
        Self {
            config,
            source,
            clock,
            keys: RwLock::new(Arc::new(KeySet::default())),
            state: Mutex::new(FetchState::default()),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            next_fetch: Mutex::new(None),
            rescheduled: tokio::sync::Notify::new(),
        }
    }

    fn keys(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere; the Arc inside is whole.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches the keys now and installs them; on failure keeps the last good ones. Either
    /// way it sets when the background refresh fetches next — as `Cache-Control` allows
    /// after a success, `retry_secs` after a failure — whoever fetched.
    pub(crate) async fn refresh(&self) -> Result<(), FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = self.source.fetch().await.and_then(|f| {
            KeySet::parse(&f.body)
                .map(|k| (k, f.max_age))
                .map_err(FetchError)
        });
        let now = self.clock.now();
        let r = &self.config.refresh;
        match fetched {
            Ok((keys, max_age)) => {
                let count = keys.len();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                let mut state = self.state();
                state.last_success = Some(now);
                state.last_error = None;
                drop(state);
                tracing::debug!(issuer = %self.config.issuer, keys = count, "fetched JWKS");
                let secs = max_age.map_or(r.max_secs, |a| a.as_secs());
                self.reschedule(secs.clamp(r.min_secs, r.max_secs));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS fetch failed; keeping the last good keys");
                self.state().last_error = Some(e.0.clone());
                self.reschedule(r.retry_secs);
                Err(e)
            }
        }
    }

    /// The background refresh fetches next in `secs` (at least one).
    fn reschedule(&self, secs: u64) {
        let at = tokio::time::Instant::now() + Duration::from_secs(secs.max(1));
        *self.next_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        self.rescheduled.notify_waiters();
    }

    /// The key that must have signed a token with this `kid` and `alg`. A `kid` the keys do
    /// not hold — or keys not to be trusted (never fetched, or older than `max_key_age_secs`)
    /// — refetches them, at most once per cooldown for this issuer. Without trusted keys the
    /// answer is 503 (fail closed: the fault is ours); a `kid` trusted keys do not hold is 401.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: IssuerAlgorithm,
    ) -> Result<Arc<ExternalKey>, AuthError> {
        let seen = self.keys();
        if self.untrusted().is_none()
            && let Some(key) = seen.find(kid, alg)?
        {
            return Ok(key);
        }
        let mut last = self.unknown_kid_fetch.lock().await;
        // Another request may have fetched while this one waited.
        let current = self.keys();
        if !Arc::ptr_eq(&seen, &current)
            && self.untrusted().is_none()
            && let Some(key) = current.find(kid, alg)?
        {
            return Ok(key);
        }
        let now = self.clock.now();
        let cooldown = self.config.refresh.unknown_kid_cooldown_secs;
        if last.is_none_or(|at| now >= at.saturating_add(cooldown)) {
            *last = Some(now);
            // A failure is recorded (stale) and leaves the last good keys in place.
            let _ = self.refresh().await;
        }
        drop(last);
        if let Some(unavailable) = self.untrusted() {
            return Err(unavailable);
        }
        self.keys()
            .find(kid, alg)?
            .ok_or(AuthError::InvalidToken(TokenError::UnknownKid))
    }

    /// The first second the keys may no longer be trusted (unless refreshed by then): a
    /// resolution cached now must not be served past it.
    pub(crate) fn trusted_until(&self) -> UnixTime {
        self.state().last_success.map_or(0, |at| {
            at.saturating_add(self.config.refresh.max_key_age_secs)
                .saturating_add(1)
        })
    }

    /// Why the keys cannot be trusted, if they cannot: never fetched, or too old.
    fn untrusted(&self) -> Option<AuthError> {
        let why = match self.freshness(self.clock.now()) {
            KeyFreshness::Pending => "have never been fetched",
            KeyFreshness::Expired => "are older than allowed and cannot be refreshed",
            KeyFreshness::Fresh | KeyFreshness::Stale => return None,
        };
        Some(AuthError::Unavailable(StoreError::Unavailable(format!(
            "the keys of {} {why}",
            self.config.issuer
        ))))
    }

    fn freshness(&self, now: UnixTime) -> KeyFreshness {
        let state = self.state();
        match state.last_success {
            None => KeyFreshness::Pending,
            Some(at) if now > at.saturating_add(self.config.refresh.max_key_age_secs) => {
                KeyFreshness::Expired
            }
            Some(_) if state.last_error.is_some() => KeyFreshness::Stale,
            Some(_) => KeyFreshness::Fresh,
        }
    }

    pub(crate) fn status(&self) -> IssuerStatus {
        let now = self.clock.now();
        let freshness = self.freshness(now);
        let state = self.state();
        IssuerStatus {
            issuer: self.config.issuer.clone(),
            freshness,
            keys: self.keys().len(),
            fetches: self.fetches.load(Ordering::Relaxed),
            age_secs: state.last_success.map(|at| now.saturating_sub(at)),
            last_error: state.last_error.clone(),
        }
    }

    /// Refreshes in the background, as the last fetch (its own, start-up's, or one an
    /// unknown `kid` caused) scheduled, until the task is aborted (the authenticator owns it).
    pub(crate) async fn keep_fresh(self: Arc<Self>) {
        loop {
            let rescheduled = self.rescheduled.notified();
            tokio::pin!(rescheduled);
            // Registered before the schedule is read: a fetch elsewhere in between wakes it.
            rescheduled.as_mut().enable();
            let due = *self.next_fetch.lock().unwrap_or_else(|e| e.into_inner());
            let due = due.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {
                    let _ = self.refresh().await;
                }
                () = rescheduled => {}
            }
        }
    }
}
