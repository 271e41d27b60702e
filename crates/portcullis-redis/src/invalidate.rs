//! Cross-instance cache invalidation over Redis pub/sub.
//!
//! Whoever revokes something publishes core's [`Invalidation`] on `<prefix>invalidate`;
//! every instance runs a subscriber that hands each message to a callback, which drops the
//! matching cache entries (for an [`Authenticator`]: [`Invalidator::subscribe_authenticator`]).
//! As an [`InvalidationSink`], the [`Invalidator`] is what an [`Authenticator`] announces its
//! own revocations to.
//!
//! Pub/sub delivers at most once: while a subscriber is disconnected, messages are lost. The
//! subscriber reconnects by itself, and calls the optional [gap handler](Invalidator::on_gap)
//! when it notices the loss and again once it is subscribed again (and for a message it
//! cannot read), so that the application can drop every cached entry; without one, the
//! caches' TTL bounds how long a missed revocation is ignored.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use portcullis_core::api_key::KeyHash;
pub use portcullis_core::cache::Invalidation;
use portcullis_core::cache::InvalidationSink;
use portcullis_core::ids::{AgentId, SessionId, TokenId, UserId};
use portcullis_core::{Authenticator, StoreError};
use redis::aio::PubSub;
use serde::{Deserialize, Serialize};

use crate::{Backend, Retry};

/// The message on the wire: JSON, tagged by `kind`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    ApiKey { hash: String },
    Session { id: SessionId },
    UserSessions { id: UserId },
    Agent { id: AgentId },
    Token { id: TokenId },
}

fn to_wire(what: &Invalidation) -> Wire {
    match what {
        Invalidation::ApiKey(hash) => Wire::ApiKey {
            hash: hash.to_hex(),
        },
        Invalidation::Session(id) => Wire::Session { id: id.clone() },
        Invalidation::UserSessions(id) => Wire::UserSessions { id: id.clone() },
        Invalidation::Agent(id) => Wire::Agent { id: id.clone() },
        Invalidation::Token(id) => Wire::Token { id: id.clone() },
    }
}

/// Reads a message; `None` when it cannot be read (garbage, or a newer publisher's kind).
fn from_payload(payload: &[u8]) -> Option<Invalidation> {
    Some(match serde_json::from_slice::<Wire>(payload).ok()? {
        Wire::ApiKey { hash } => Invalidation::ApiKey(KeyHash::from_hex(&hash)?),
        Wire::Session { id } => Invalidation::Session(id),
        Wire::UserSessions { id } => Invalidation::UserSessions(id),
        Wire::Agent { id } => Invalidation::Agent(id),
        Wire::Token { id } => Invalidation::Token(id),
    })
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Handler = Arc<dyn Fn(Invalidation) -> BoxFuture + Send + Sync>;
type GapHandler = Arc<dyn Fn() + Send + Sync>;

/// Publishes invalidations and runs subscribers, on `<prefix>invalidate`.
#[derive(Clone)]
pub struct Invalidator {
    backend: Backend,
    channel: Arc<str>,
    on_gap: Option<GapHandler>,
}

impl Invalidator {
    pub(crate) fn new(backend: Backend) -> Self {
        let channel = backend.key("invalidate").into();
        Self {
            backend,
            channel,
            on_gap: None,
        }
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Subscriptions made from the returned invalidator call `on_gap` whenever invalidations
    /// may have been missed: when the connection is lost, when it is back, and for a message
    /// that cannot be read. Dropping every cached entry there makes a missed revocation take
    /// effect at once instead of at the cache's TTL.
    #[must_use]
    pub fn on_gap<G>(mut self, on_gap: G) -> Self
    where
        G: Fn() + Send + Sync + 'static,
    {
        self.on_gap = Some(Arc::new(on_gap));
        self
    }

    /// Publishes `what` now; returns how many subscribers Redis delivered it to.
    pub async fn send(&self, what: &Invalidation) -> Result<u64, StoreError> {
        let payload = serde_json::to_string(&to_wire(what))
            .map_err(|e| self.backend.error("publish invalidation", &e.to_string()))?;
        // Dropping a cache entry twice is harmless.
        self.backend
            .run("publish invalidation", Retry::Once, |mut conn| {
                let (channel, payload) = (self.channel.clone(), payload.clone());
                async move {
                    redis::cmd("PUBLISH")
                        .arg(&*channel)
                        .arg(payload)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await
    }

    /// Subscribes and calls `on_message` for every invalidation published from now on, on a
    /// task of the current Tokio runtime, until the returned handle is dropped.
    ///
    /// Returns once the subscription is active (a message published after this returns is
    /// delivered), or fails with [`StoreError::Unavailable`]. Afterwards a lost connection
    /// is re-established in the background, with backoff. Messages are handled one at a
    /// time, in order; a panic in `on_message` is logged and the subscriber goes on.
    pub async fn subscribe<F>(&self, on_message: F) -> Result<InvalidationSubscription, StoreError>
    where
        F: Fn(Invalidation) + Send + Sync + 'static,
    {
        let on_message = Arc::new(on_message);
        self.start(Arc::new(move |what| {
            let on_message = on_message.clone();
            Box::pin(async move { on_message(what) }) as BoxFuture
        }))
        .await
    }

    /// [`subscribe`](Self::subscribe) with an async callback, awaited message by message.
    pub async fn subscribe_async<F, Fut>(
        &self,
        on_message: F,
    ) -> Result<InvalidationSubscription, StoreError>
    where
        F: Fn(Invalidation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start(Arc::new(move |what| {
            Box::pin(on_message(what)) as BoxFuture
        }))
        .await
    }

    /// Subscribes `authenticator` to the invalidations of every instance: each message
    /// drops the matching entries from its caches. Unless a gap handler is set, a gap (the
    /// connection lost, or back) drops every cached entry
    /// ([`Authenticator::invalidate_all`]): a revocation may have been missed, and while Redis
    /// is away requests then fail closed instead of riding the cache.
    pub async fn subscribe_authenticator(
        &self,
        authenticator: Authenticator,
    ) -> Result<InvalidationSubscription, StoreError> {
        let this = match self.on_gap {
            Some(_) => self.clone(),
            None => {
                let auth = authenticator.clone();
                self.clone().on_gap(move || auth.invalidate_all())
            }
        };
        this.subscribe_async(move |what| {
            let authenticator = authenticator.clone();
            async move { authenticator.invalidate(&what).await }
        })
        .await
    }

    async fn start(&self, handler: Handler) -> Result<InvalidationSubscription, StoreError> {
        let pubsub = subscribe(&self.backend, &self.channel).await?;
        let task = tokio::spawn(listen(self.clone(), handler, pubsub));
        Ok(InvalidationSubscription { task })
    }

    fn gap(&self) {
        if let Some(on_gap) = &self.on_gap
            && std::panic::catch_unwind(AssertUnwindSafe(|| on_gap())).is_err()
        {
            tracing::error!("invalidation gap handler panicked");
        }
    }
}

/// What an [`Authenticator`] announces its revocations to
/// ([`AuthenticatorBuilder::invalidation_sink`](portcullis_core::AuthenticatorBuilder::invalidation_sink)).
/// Publishing does not block: the message is sent from a task of the current Tokio runtime,
/// best effort (a failure is logged; the caches' TTL bounds the rest).
impl InvalidationSink for Invalidator {
    fn publish(&self, what: &Invalidation) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("invalidation not published: no Tokio runtime");
            return;
        };
        let (this, what) = (self.clone(), what.clone());
        runtime.spawn(async move {
            if let Err(e) = this.send(&what).await {
                tracing::warn!(error = %e, "invalidation not published");
            }
        });
    }
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("channel", &self.channel)
            .field("on_gap", &self.on_gap.is_some())
            .finish_non_exhaustive()
    }
}

/// A running subscriber; dropping it stops the subscriber.
#[derive(Debug)]
pub struct InvalidationSubscription {
    task: tokio::task::JoinHandle<()>,
}

impl InvalidationSubscription {
    /// Stops the subscriber.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for InvalidationSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A dedicated connection, subscribed to `channel`, within the operation timeout.
async fn subscribe(backend: &Backend, channel: &str) -> Result<PubSub, StoreError> {
    let timeout = backend.config().operation_timeout;
    let attempt = async {
        let mut pubsub = backend.client().get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(backend.error("subscribe", &e.to_string())),
        Err(_) => Err(backend.error("subscribe", &format!("timed out after {timeout:?}"))),
    }
}

/// Runs the callback on its own task, so that a panic in it is contained (and logged).
async fn deliver(handler: &Handler, what: Invalidation) {
    if let Err(e) = tokio::spawn(handler(what)).await
        && e.is_panic()
    {
        tracing::error!("invalidation callback panicked");
    }
}

async fn listen(invalidator: Invalidator, handler: Handler, mut pubsub: PubSub) {
    let config = invalidator.backend.config();
    let (ping_every, ping_timeout) = (config.subscriber_ping_interval, config.operation_timeout);
    let channel = &invalidator.channel;
    loop {
        let (mut sink, mut stream) = pubsub.split();
        let start = tokio::time::Instant::now() + ping_every;
        let mut ping = tokio::time::interval_at(start, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => match from_payload(msg.get_payload_bytes()) {
                        Some(what) => deliver(&handler, what).await,
                        None => {
                            tracing::warn!(channel = %channel, "unreadable invalidation message");
                            invalidator.gap();
                        }
                    },
                    None => break,
                },
                _ = ping.tick() => {
                    // Notices a connection that died without closing.
                    let pong = tokio::time::timeout(ping_timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        tracing::warn!(channel = %channel, "invalidation subscription lost; resubscribing");
        invalidator.gap();
        let mut backoff = Duration::from_millis(100);
        pubsub = loop {
            tokio::time::sleep(backoff).await;
            match subscribe(&invalidator.backend, channel).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(error = %e, "resubscribing to invalidations failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        tracing::info!(channel = %channel, "invalidation subscription restored");
        invalidator.gap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let cases = [
            Invalidation::ApiKey(KeyHash::of(b"key")),
            Invalidation::Session("s".into()),
            Invalidation::UserSessions("u".into()),
            Invalidation::Agent("a".into()),
            Invalidation::Token("t".into()),
        ];
        for case in cases {
            let json = serde_json::to_vec(&to_wire(&case)).unwrap();
            assert_eq!(from_payload(&json), Some(case));
        }
        assert_eq!(from_payload(br#"{"kind":"api_key","hash":"zz"}"#), None);
        assert_eq!(from_payload(br#"{"kind":"future_thing"}"#), None);
        assert_eq!(from_payload(b"not json"), None);
    }
}
