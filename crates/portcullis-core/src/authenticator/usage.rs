//! The API-key usage sink: `last_used_at` written behind, off the request path.

use crate::clock::UnixTime;
use crate::ids::ApiKeyId;

/// Told of every successful API key use, so that `last_used_at` can be written behind, in
/// batches, off the request path (`portcullis_sql::LastUsedWriter`). Must not block.
///
/// The [`Authenticator`](super::Authenticator) owns its sink:
/// [`Authenticator::shutdown`](super::Authenticator::shutdown) calls
/// [`shutdown`](Self::shutdown), so a writer that batches is flushed at exit without the
/// application keeping a handle to it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use portcullis_core::{Authenticator, UsageSink, UnixTime, ids::ApiKeyId};
///
/// #[derive(Default)]
/// struct Uses(Mutex<Vec<ApiKeyId>>);
/// impl UsageSink for Uses {
///     fn record(&self, key: &ApiKeyId, _at: UnixTime) {
///         if let Ok(mut uses) = self.0.lock() {
///             uses.push(key.clone());
///         }
///     }
/// }
/// let auth = Authenticator::builder().usage_sink(Arc::new(Uses::default())).build().unwrap();
/// # let _ = auth;
/// ```
#[async_trait::async_trait]
pub trait UsageSink: Send + Sync + 'static {
    /// `key` was used at `at`.
    fn record(&self, key: &ApiKeyId, at: UnixTime);

    /// Writes what is pending and stops taking uses (at shutdown). The default does nothing,
    /// for sinks that write at once.
    async fn shutdown(&self) {}
}
