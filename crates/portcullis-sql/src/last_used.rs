//! Writing API keys' last use behind the request path, in batches.
//!
//! The request path calls [`LastUsedSender::record`], which never waits: it queues the use,
//! or drops it when the queue is full (last use is informational; a slow database must not
//! slow requests). A background task merges the queue per key and calls
//! [`ApiKeyStore::touch`] once per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::clock::UnixTime;
use portcullis_core::ids::ApiKeyId;
use portcullis_core::store::ApiKeyStore;
use tokio::sync::mpsc;

use crate::batch::{Batch, BatchWriter};

/// How much a [`LastUsedWriter`] queues and how often it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastUsedSettings {
    /// Uses queued at most; more are dropped until the writer catches up.
    pub queue: usize,
    /// Distinct keys that trigger a write before the interval is up.
    pub batch: usize,
    /// The longest a use waits before it is written.
    pub interval: Duration,
}

impl Default for LastUsedSettings {
    /// 10 000 queued, batches of 500 keys, at least every 5 seconds.
    fn default() -> Self {
        Self {
            queue: 10_000,
            batch: 500,
            interval: Duration::from_secs(5),
        }
    }
}

/// The background task that writes last use. Dropping it stops the task after a last
/// write; [`shutdown`](Self::shutdown) does the same and waits for it.
///
/// Usually the [`Authenticator`](portcullis_core::Authenticator) owns it, as its
/// [`UsageSink`](portcullis_core::UsageSink), and flushes it in
/// [`Authenticator::shutdown`](portcullis_core::Authenticator::shutdown):
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use portcullis_core::{Authenticator, store::Stores};
/// use portcullis_sql::{LastUsedSettings, LastUsedWriter};
/// let stores = Stores::memory();
/// let writer = LastUsedWriter::spawn(stores.api_keys.clone(), LastUsedSettings::default());
/// let auth = Authenticator::builder()
///     .stores(stores)
///     .usage_sink(Arc::new(writer))
///     .build()
///     .unwrap();
/// auth.shutdown().await; // at exit: writes what is queued
/// # }
/// ```
///
/// Or on its own:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use portcullis_core::store::Stores;
/// use portcullis_sql::{LastUsedSettings, LastUsedWriter};
/// let stores = Stores::memory();
/// let writer = LastUsedWriter::spawn(stores.api_keys.clone(), LastUsedSettings::default());
/// let sender = writer.sender();
/// sender.record("key-id".into(), 1_700_000_000); // from the request path
/// writer.shutdown().await; // at exit: writes what is queued
/// # }
/// ```
#[derive(Debug)]
pub struct LastUsedWriter {
    sender: LastUsedSender,
    writer: BatchWriter<(ApiKeyId, UnixTime)>,
}

/// Queues uses for a [`LastUsedWriter`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LastUsedSender {
    tx: mpsc::Sender<(ApiKeyId, UnixTime)>,
}

impl LastUsedSender {
    /// Queues "key `id` was used at `at`" without waiting; false when it was dropped
    /// because the queue is full or the writer has stopped.
    pub fn record(&self, id: ApiKeyId, at: UnixTime) -> bool {
        self.tx.try_send((id, at)).is_ok()
    }
}

impl LastUsedWriter {
    /// Starts the writer on the current Tokio runtime.
    pub fn spawn(store: Arc<dyn ApiKeyStore>, settings: LastUsedSettings) -> Self {
        let writer = BatchWriter::spawn(
            LastUses {
                store,
                pending: HashMap::new(),
            },
            settings.queue,
            settings.batch,
            settings.interval,
        );
        Self {
            sender: LastUsedSender {
                tx: writer.sender(),
            },
            writer,
        }
    }

    /// A handle for the request path.
    pub fn sender(&self) -> LastUsedSender {
        self.sender.clone()
    }

    /// Writes everything queued so far, then stops.
    pub async fn shutdown(self) {
        self.stop_and_wait().await;
    }

    async fn stop_and_wait(&self) {
        self.writer.stop_and_wait("api key last use").await;
    }
}

/// Uses merged per key (the latest time), written with one [`ApiKeyStore::touch`].
struct LastUses {
    store: Arc<dyn ApiKeyStore>,
    pending: HashMap<ApiKeyId, UnixTime>,
}

impl Batch for LastUses {
    type Item = (ApiKeyId, UnixTime);

    fn add(&mut self, (id, at): Self::Item) {
        let t = self.pending.entry(id).or_insert(at);
        *t = (*t).max(at);
    }

    /// Distinct keys.
    fn len(&self) -> usize {
        self.pending.len()
    }

    async fn flush(&mut self) {
        let batch: Vec<_> = self.pending.drain().collect();
        if let Err(e) = self.store.touch(&batch).await {
            // Best effort: last use is informational, and the next use records it again.
            tracing::warn!(error = %e, keys = batch.len(), "could not record API key last use");
        }
    }
}

/// The [`Authenticator`](portcullis_core::Authenticator) reports each API key use here
/// ([`AuthenticatorBuilder::usage_sink`](portcullis_core::AuthenticatorBuilder::usage_sink)).
impl portcullis_core::UsageSink for LastUsedSender {
    fn record(&self, key: &ApiKeyId, at: UnixTime) {
        // Dropped when the queue is full: a missed "last used" is harmless, a blocked request is not.
        let _ = LastUsedSender::record(self, key.clone(), at);
    }
}

/// The [`Authenticator`](portcullis_core::Authenticator) can own the writer itself
/// ([`AuthenticatorBuilder::usage_sink`](portcullis_core::AuthenticatorBuilder::usage_sink)):
/// its [`shutdown`](portcullis_core::Authenticator::shutdown) then flushes it.
#[async_trait::async_trait]
impl portcullis_core::UsageSink for LastUsedWriter {
    fn record(&self, key: &ApiKeyId, at: UnixTime) {
        portcullis_core::UsageSink::record(&self.sender, key, at);
    }

    async fn shutdown(&self) {
        self.stop_and_wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::api_key::{ApiKeyRecord, KeyHash};
    use portcullis_core::store::MemoryApiKeyStore;

    fn key(id: &str) -> ApiKeyRecord {
        portcullis_core::testing::api_key_record(id, KeyHash::of(id.as_bytes()))
    }

    #[tokio::test]
    async fn shutdown_writes_the_latest_use_of_each_key() {
        let store: Arc<dyn ApiKeyStore> = Arc::new(MemoryApiKeyStore::default());
        store.insert(key("a")).await.unwrap();
        store.insert(key("b")).await.unwrap();
        let writer = LastUsedWriter::spawn(
            store.clone(),
            LastUsedSettings {
                interval: Duration::from_secs(3_600),
                ..LastUsedSettings::default()
            },
        );
        let sender = writer.sender();
        assert!(sender.record("a".into(), 10));
        assert!(sender.record("a".into(), 30));
        assert!(sender.record("a".into(), 20));
        assert!(sender.record("b".into(), 5));
        writer.shutdown().await;
        let last = |id: &'static str| {
            let store = store.clone();
            async move { store.get(&id.into()).await.unwrap().unwrap().last_used_at }
        };
        assert_eq!(last("a").await, Some(30));
        assert_eq!(last("b").await, Some(5));
        assert!(
            !sender.record("a".into(), 40),
            "a stopped writer takes nothing"
        );
    }

    #[tokio::test]
    async fn the_authenticator_owning_the_writer_flushes_it_at_shutdown() {
        use portcullis_core::{Authenticator, Credential, ManualClock, api_key, store::Stores};
        let stores = Stores::memory();
        let writer = LastUsedWriter::spawn(
            stores.api_keys.clone(),
            LastUsedSettings {
                // Only the shutdown writes within this test.
                interval: Duration::from_secs(3_600),
                ..LastUsedSettings::default()
            },
        );
        let auth = Authenticator::builder()
            .stores(stores.clone())
            .clock(Arc::new(ManualClock::new(1_700_000_000)))
            .usage_sink(Arc::new(writer))
            .build()
            .unwrap();
        let generated = api_key::generate(&auth.config().api_key_prefix);
        stores
            .api_keys
            .insert(ApiKeyRecord {
                hash: generated.hash,
                ..key("used")
            })
            .await
            .unwrap();
        auth.resolve(Credential::ApiKey(generated.key.expose()))
            .await
            .unwrap();
        let last = || async { stores.api_keys.get(&"used".into()).await.unwrap().unwrap() };
        assert_eq!(
            last().await.last_used_at,
            None,
            "written behind, not inline"
        );

        auth.shutdown().await;
        assert_eq!(last().await.last_used_at, Some(1_700_000_000));
        // A second shutdown (another clone's) finds the writer stopped and returns.
        auth.clone().shutdown().await;
    }

    #[tokio::test]
    async fn a_full_queue_drops_uses_instead_of_waiting() {
        let (tx, _rx) = mpsc::channel(1);
        let sender = LastUsedSender { tx };
        assert!(sender.record("a".into(), 1));
        assert!(!sender.record("a".into(), 2));
    }
}
