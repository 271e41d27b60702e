//! What Portcullis reports to the [`metrics`] facade: a no-op until the application installs a
//! recorder (the sample server installs a Prometheus one). Every series is named
//! `portcullis_…`:
//!
//! | series | type | labels | counts |
//! | --- | --- | --- | --- |
//! | `portcullis_decisions_total` | counter | `credential` (`api_key`, `bearer`, `cookie`, `none`, `unreadable`), `outcome` (`ok` or the refusal's contract code) | every request the layer decides |
//! | `portcullis_resolve_duration_seconds` | histogram | `credential` | resolutions that waited on the stores (a repeat answered from the resolved-credential cache is decided without a clock read) |
//! | `portcullis_cache_hits_total`, `portcullis_cache_misses_total` | counter | `cache` | lookups per cache (see [`CacheName`]) |
//! | `portcullis_cache_entries` | gauge | `cache` | entries per cache, set by [`Authenticator::record_cache_entries`](crate::Authenticator::record_cache_entries) |
//! | `portcullis_store_errors_total` | counter | `store` (`api_keys`, `sessions`, `agents`, `denylist`, `rate_limits`) | failed store calls on the request path |
//! | `portcullis_unavailable_total` | counter | | 503 `auth_unavailable` answers |
//! | `portcullis_login_throttled_total` | counter | | password checks refused by the login throttle (429) |
//! | `portcullis_refresh_reuse_detected_total` | counter | | refresh-token reuses (each revoked a session) |
//! | `portcullis_invalidations_sent_total`, `portcullis_invalidations_received_total` | counter | | cross-instance invalidations published and heard (Redis) |
//!
//! The request path pays for no allocation and takes no lock of its own. After
//! [`bind_global`], with a process-wide recorder installed, each report is an add on a handle
//! taken once from that recorder (for a Prometheus recorder, one atomic add). Before it, or
//! with a recorder installed for a thread only (as tests do), the keys of every labelled series
//! are built once, with their hashes, and each report is one call into the current recorder
//! with a ready key: the recorder's own lookup is then paid per report (measured in
//! BENCHMARKS.md).

use std::sync::OnceLock;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata};

use crate::error::AuthError;

/// `portcullis_decisions_total`.
pub const DECISIONS: &str = "portcullis_decisions_total";
/// `portcullis_resolve_duration_seconds`.
pub const RESOLVE_DURATION: &str = "portcullis_resolve_duration_seconds";
/// `portcullis_cache_hits_total`.
pub const CACHE_HITS: &str = "portcullis_cache_hits_total";
/// `portcullis_cache_misses_total`.
pub const CACHE_MISSES: &str = "portcullis_cache_misses_total";
/// `portcullis_cache_entries`.
pub const CACHE_ENTRIES: &str = "portcullis_cache_entries";
/// `portcullis_store_errors_total`.
pub const STORE_ERRORS: &str = "portcullis_store_errors_total";
/// `portcullis_unavailable_total`.
pub const UNAVAILABLE: &str = "portcullis_unavailable_total";
/// `portcullis_login_throttled_total`.
pub const LOGIN_THROTTLED: &str = "portcullis_login_throttled_total";
/// `portcullis_refresh_reuse_detected_total`.
pub const REFRESH_REUSE_DETECTED: &str = "portcullis_refresh_reuse_detected_total";
/// `portcullis_invalidations_sent_total`.
pub const INVALIDATIONS_SENT: &str = "portcullis_invalidations_sent_total";
/// `portcullis_invalidations_received_total`.
pub const INVALIDATIONS_RECEIVED: &str = "portcullis_invalidations_received_total";

/// The `credential` label's values, in index order.
pub const CREDENTIALS: [&str; 5] = ["api_key", "bearer", "cookie", "none", "unreadable"];

/// The `outcome` label's values: `ok`, then every contract code of [`AuthError::code`].
pub const OUTCOMES: [&str; 18] = [
    "ok",
    "missing_credentials",
    "invalid_credentials",
    "invalid_token",
    "token_expired",
    "token_revoked",
    "wrong_token_type",
    "invalid_api_key",
    "api_key_expired",
    "api_key_disabled",
    "agent_terminated",
    "insufficient_permissions",
    "csrf_failed",
    "org_forbidden",
    "wrong_actor_kind",
    "rate_limited",
    "auth_unavailable",
    "usage_exhausted",
];

/// The caches that report hits, misses and entries (the `cache` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheName {
    /// Resolved bearer JWTs: a hit decides a request with no verification and no lookup.
    ResolvedBearer,
    /// Resolved cookie JWTs.
    ResolvedCookie,
    /// Resolved API keys.
    ResolvedApiKey,
    /// API key records, by hash (store cache).
    ApiKeys,
    /// Session records (store cache).
    Sessions,
    /// Agent records (store cache).
    Agents,
    /// Denied token ids (store cache).
    Denylist,
}

impl CacheName {
    /// Every cache, in index order.
    pub const ALL: [Self; 7] = [
        Self::ResolvedBearer,
        Self::ResolvedCookie,
        Self::ResolvedApiKey,
        Self::ApiKeys,
        Self::Sessions,
        Self::Agents,
        Self::Denylist,
    ];

    /// The `cache` label's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ResolvedBearer => "resolved_bearer",
            Self::ResolvedCookie => "resolved_cookie",
            Self::ResolvedApiKey => "resolved_api_key",
            Self::ApiKeys => "api_keys",
            Self::Sessions => "sessions",
            Self::Agents => "agents",
            Self::Denylist => "denylist",
        }
    }
}

/// The stores whose errors are counted (the `store` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreName {
    /// API keys.
    ApiKeys,
    /// Sessions.
    Sessions,
    /// Agents.
    Agents,
    /// The token denylist.
    Denylist,
    /// Per-key rate limits.
    RateLimits,
}

impl StoreName {
    /// Every store, in index order.
    pub const ALL: [Self; 5] = [
        Self::ApiKeys,
        Self::Sessions,
        Self::Agents,
        Self::Denylist,
        Self::RateLimits,
    ];

    /// The `store` label's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKeys => "api_keys",
            Self::Sessions => "sessions",
            Self::Agents => "agents",
            Self::Denylist => "denylist",
            Self::RateLimits => "rate_limits",
        }
    }
}

static METADATA: Metadata<'static> = Metadata::new("portcullis", Level::INFO, Some(module_path!()));

/// Keys of one labelled family, built (names, labels and hashes) on first use.
struct Family(OnceLock<Box<[Key]>>);

impl Family {
    const fn new() -> Self {
        Self(OnceLock::new())
    }

    fn keys(&self, build: impl FnOnce() -> Vec<Key>) -> &[Key] {
        self.0.get_or_init(|| build().into_boxed_slice())
    }
}

fn one_label(name: &'static str, label: &'static str, values: &[&'static str]) -> Vec<Key> {
    values
        .iter()
        .map(|v| Key::from_parts(name, vec![Label::from_static_parts(label, v)]))
        .collect()
}

static DECISION_KEYS: Family = Family::new();
static DURATION_KEYS: Family = Family::new();
static HIT_KEYS: Family = Family::new();
static MISS_KEYS: Family = Family::new();
static ENTRY_KEYS: Family = Family::new();
static STORE_ERROR_KEYS: Family = Family::new();

fn cache_names() -> Vec<&'static str> {
    CacheName::ALL.iter().map(|c| c.as_str()).collect()
}

fn credential_index(credential: &str) -> usize {
    match credential {
        "api_key" => 0,
        "bearer" => 1,
        "cookie" => 2,
        "none" => 3,
        _ => 4,
    }
}

/// The index of `e`'s code in [`OUTCOMES`].
fn outcome_index(e: &AuthError) -> usize {
    match e {
        AuthError::MissingCredentials => 1,
        AuthError::InvalidCredentials
        | AuthError::UnsupportedScheme
        | AuthError::ConflictingCredentials => 2,
        AuthError::InvalidToken(_) => 3,
        AuthError::TokenExpired => 4,
        AuthError::TokenRevoked => 5,
        AuthError::WrongTokenType => 6,
        AuthError::InvalidApiKey => 7,
        AuthError::ApiKeyExpired => 8,
        AuthError::ApiKeyDisabled => 9,
        AuthError::AgentTerminated => 10,
        AuthError::InsufficientPermissions { .. } => 11,
        AuthError::CsrfFailed => 12,
        AuthError::OrgForbidden => 13,
        AuthError::WrongActorKind => 14,
        AuthError::RateLimited(_) => 15,
        AuthError::Unavailable(_) => 16,
        AuthError::UsageExhausted => 17,
    }
}

fn increment(key: &Key) {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
}

/// Handles of the labelled series on the request path, taken from the global recorder by
/// [`bind_global`], in the index order of their key families.
struct Handles {
    decisions: Box<[Counter]>,
    durations: Box<[Histogram]>,
    hits: Box<[Counter]>,
    misses: Box<[Counter]>,
    store_errors: Box<[Counter]>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

fn decision_keys() -> &'static [Key] {
    DECISION_KEYS.keys(|| {
        let mut keys = Vec::with_capacity(CREDENTIALS.len() * OUTCOMES.len());
        for credential in CREDENTIALS {
            for outcome in OUTCOMES {
                keys.push(Key::from_parts(
                    DECISIONS,
                    vec![
                        Label::from_static_parts("credential", credential),
                        Label::from_static_parts("outcome", outcome),
                    ],
                ));
            }
        }
        keys
    })
}

fn duration_keys() -> &'static [Key] {
    DURATION_KEYS.keys(|| one_label(RESOLVE_DURATION, "credential", &CREDENTIALS))
}

fn cache_keys(hit: bool) -> &'static [Key] {
    if hit {
        HIT_KEYS.keys(|| one_label(CACHE_HITS, "cache", &cache_names()))
    } else {
        MISS_KEYS.keys(|| one_label(CACHE_MISSES, "cache", &cache_names()))
    }
}

/// Takes a handle of every labelled series on the request path from the process-wide recorder
/// (`metrics::set_global_recorder`, or an exporter's `install`), so that each later report is
/// an add on a ready handle instead of a lookup in the recorder. Call once, after installing
/// it; later calls do nothing. A recorder installed for a thread only is not bound: reports
/// keep going to the current recorder.
pub fn bind_global() {
    HANDLES.get_or_init(|| {
        let counters = |keys: &[Key]| -> Box<[Counter]> {
            keys.iter()
                .map(|k| metrics::with_recorder(|r| r.register_counter(k, &METADATA)))
                .collect()
        };
        Handles {
            decisions: counters(decision_keys()),
            durations: duration_keys()
                .iter()
                .map(|k| metrics::with_recorder(|r| r.register_histogram(k, &METADATA)))
                .collect(),
            hits: counters(cache_keys(true)),
            misses: counters(cache_keys(false)),
            store_errors: counters(STORE_ERROR_KEYS.keys(store_error_keys)),
        }
    });
}

/// One request decided by the layer: how it presented itself (a [`Credential`](crate::Credential)'s
/// [`kind`](crate::Credential::kind), `none`, or `unreadable`) and its outcome.
pub fn decision(credential: &'static str, outcome: Result<(), &AuthError>) {
    let i =
        credential_index(credential) * OUTCOMES.len() + outcome.map_or_else(outcome_index, |()| 0);
    match HANDLES.get() {
        Some(h) => h.decisions[i].increment(1),
        None => increment(&decision_keys()[i]),
    }
}

/// How long resolving a credential of kind `credential` took, for one that waited.
pub fn resolve_duration(credential: &'static str, seconds: f64) {
    let i = credential_index(credential);
    match HANDLES.get() {
        Some(h) => h.durations[i].record(seconds),
        None => {
            let key = &duration_keys()[i];
            metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(seconds));
        }
    }
}

/// A lookup in `cache` that found a usable entry (`hit`) or not.
pub fn cache_lookup(cache: CacheName, hit: bool) {
    match (HANDLES.get(), hit) {
        (Some(h), true) => h.hits[cache as usize].increment(1),
        (Some(h), false) => h.misses[cache as usize].increment(1),
        (None, _) => increment(&cache_keys(hit)[cache as usize]),
    }
}

/// Sets the entries gauge of `cache`.
pub fn cache_entries(cache: CacheName, entries: u64) {
    let keys = ENTRY_KEYS.keys(|| one_label(CACHE_ENTRIES, "cache", &cache_names()));
    let key = &keys[cache as usize];
    metrics::with_recorder(|r| r.register_gauge(key, &METADATA).set(entries as f64));
}

/// A store call that failed.
pub fn store_error(store: StoreName) {
    match HANDLES.get() {
        Some(h) => h.store_errors[store as usize].increment(1),
        None => increment(&STORE_ERROR_KEYS.keys(store_error_keys)[store as usize]),
    }
}

fn store_error_keys() -> Vec<Key> {
    let names: Vec<_> = StoreName::ALL.iter().map(|s| s.as_str()).collect();
    one_label(STORE_ERRORS, "store", &names)
}

/// A 503 `auth_unavailable` answered.
pub fn unavailable() {
    metrics::counter!(UNAVAILABLE).increment(1);
}

/// A password check refused by the login throttle.
pub fn login_throttled() {
    metrics::counter!(LOGIN_THROTTLED).increment(1);
}

/// A refresh-token reuse detected (its session revoked).
pub fn refresh_reuse_detected() {
    metrics::counter!(REFRESH_REUSE_DETECTED).increment(1);
}

/// A cross-instance invalidation published.
pub fn invalidation_sent() {
    metrics::counter!(INVALIDATIONS_SENT).increment(1);
}

/// A cross-instance invalidation received (and applied).
pub fn invalidation_received() {
    metrics::counter!(INVALIDATIONS_RECEIVED).increment(1);
}

/// Describes every series to the installed recorder (help text and units, for exporters that
/// show them) and registers the counters that have no label, and each store's error counter, at
/// 0, so that a scrape shows them before their first event: call once, after installing it.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        DECISIONS,
        "Requests decided by the auth layer, by credential kind and outcome"
    );
    describe_histogram!(
        RESOLVE_DURATION,
        Unit::Seconds,
        "Credential resolutions that waited on the stores"
    );
    describe_counter!(CACHE_HITS, "Cache lookups that found a usable entry");
    describe_counter!(CACHE_MISSES, "Cache lookups that found none");
    describe_gauge!(CACHE_ENTRIES, "Entries per cache");
    describe_counter!(STORE_ERRORS, "Failed store calls on the request path");
    describe_counter!(UNAVAILABLE, "503 auth_unavailable answers");
    describe_counter!(
        LOGIN_THROTTLED,
        "Password checks refused by the login throttle"
    );
    describe_counter!(
        REFRESH_REUSE_DETECTED,
        "Refresh-token reuses detected (each revoked its session)"
    );
    describe_counter!(INVALIDATIONS_SENT, "Cross-instance invalidations published");
    describe_counter!(
        INVALIDATIONS_RECEIVED,
        "Cross-instance invalidations received"
    );
    for name in [
        UNAVAILABLE,
        LOGIN_THROTTLED,
        REFRESH_REUSE_DETECTED,
        INVALIDATIONS_SENT,
        INVALIDATIONS_RECEIVED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for key in STORE_ERROR_KEYS.keys(store_error_keys) {
        metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{RateLimitInfo, StoreError, TokenError};
    use crate::permission::PermissionSet;

    #[test]
    fn every_refusal_has_its_own_codes_outcome() {
        let info = RateLimitInfo {
            limit: 1,
            remaining: 0,
            reset_secs: 1,
            retry_after_secs: 1,
        };
        let all = [
            AuthError::MissingCredentials,
            AuthError::InvalidCredentials,
            AuthError::UnsupportedScheme,
            AuthError::ConflictingCredentials,
            AuthError::InvalidToken(TokenError::UnknownSubject),
            AuthError::TokenExpired,
            AuthError::TokenRevoked,
            AuthError::WrongTokenType,
            AuthError::InvalidApiKey,
            AuthError::ApiKeyExpired,
            AuthError::ApiKeyDisabled,
            AuthError::AgentTerminated,
            AuthError::insufficient_permissions(PermissionSet::EMPTY),
            AuthError::CsrfFailed,
            AuthError::OrgForbidden,
            AuthError::WrongActorKind,
            AuthError::RateLimited(info),
            AuthError::Unavailable(StoreError::CapacityExceeded),
            AuthError::UsageExhausted,
        ];
        for e in &all {
            assert_eq!(OUTCOMES[outcome_index(e)], e.code(), "{e:?}");
        }
        let mut codes: Vec<_> = all.iter().map(AuthError::code).collect();
        codes.dedup();
        assert_eq!(
            codes.len() + 1,
            OUTCOMES.len(),
            "every outcome is reachable"
        );
        for (i, c) in CREDENTIALS.iter().enumerate() {
            assert_eq!(credential_index(c), i);
        }
        for (i, c) in CacheName::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        for (i, s) in StoreName::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
