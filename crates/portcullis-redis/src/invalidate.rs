//! Cross-instance cache invalidation over Redis pub/sub, acknowledged.
//!
//! Whoever revokes something publishes core's [`Invalidation`] on `<prefix>invalidate`;
//! every instance runs a subscriber that hands each message to a callback, which drops the
//! matching cache entries (for an [`Authenticator`]: [`Invalidator::subscribe_authenticator`]).
//! As an [`InvalidationSink`], the [`Invalidator`] is what an [`Authenticator`] announces its
//! own revocations to, and its revoking methods wait for it.
//!
//! # Why acknowledgements
//!
//! A revocation must hold on every instance by the time its request is answered (a logout's
//! 204 followed at once by the same token on another instance must be a 401). `PUBLISH`
//! returning only says that Redis has written the message to the subscribers' sockets; each
//! subscriber applies it some time later. So each message carries a random id and the
//! publisher's ack channel (`<prefix>invalidate:ack:<publisher>`); a subscriber, once its
//! callback has returned (the entries are dropped), publishes `<id> <subscriber>` there. The
//! publisher waits, at most [`RedisConfig::ack_timeout`](crate::RedisConfig), until as many
//! distinct subscribers have acknowledged as `PUBLISH` said received the message, and fails
//! with [`StoreError::Unavailable`] otherwise (so the revoking request is a 503 that can be
//! repeated, never a 2xx that does not hold). The cost is paid by revocations only: the
//! request path reads local caches and does no I/O for this. Acks travel on a subscription of
//! the publisher's own, made on its first send and made again after a failure.
//!
//! What this does not cover: an instance whose subscription is down is not among the
//! receivers, so nobody waits for it. Its subscriber drops every cached entry when it notices
//! the loss ([gap handler](Invalidator::on_gap); at once for a closed connection, within
//! [`RedisConfig::subscriber_ping_interval`](crate::RedisConfig) for a silent one), again
//! after every failed attempt to resubscribe, and once more when it is back.
//!
//! Pub/sub delivers at most once: while a subscriber is disconnected, messages are lost. The
//! subscriber reconnects by itself, and calls the optional gap handler when it notices the
//! loss and again once it is subscribed again (and for a message it cannot read, or whose
//! callback panicked), so that the application can drop every cached entry; without one, the
//! caches' TTL bounds how long a missed revocation is ignored. Subscribers of a version
//! without acknowledgements ignore the ack fields, so publishers waiting for them time out:
//! upgrade every instance before relying on revocations being confirmed.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use portcullis_core::api_key::KeyHash;
pub use portcullis_core::cache::Invalidation;
use portcullis_core::cache::InvalidationSink;
use portcullis_core::ids::{AgentId, SessionId, TokenId, UserId};
use portcullis_core::{Authenticator, StoreError};
use redis::aio::PubSub;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

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

/// The whole message: the invalidation and, from publishers that wait for them, where to
/// acknowledge it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    #[serde(flatten)]
    what: Wire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<AckTo>,
}

/// Acknowledge by publishing `<id> <subscriber>` on `<invalidate channel>:ack:<to>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AckTo {
    to: String,
    id: String,
}

impl AckTo {
    /// Ids are ours (simple UUIDs); anything else is not echoed into a channel name.
    fn is_valid(&self) -> bool {
        let ok = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        ok(&self.to) && ok(&self.id)
    }
}

/// A random id for a message, a publisher or a subscriber.
fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads a message; `None` when it cannot be read (garbage, or a newer publisher's kind). An
/// ack request that is not one of ours is dropped, the invalidation kept.
fn from_payload(payload: &[u8]) -> Option<(Invalidation, Option<AckTo>)> {
    let envelope = serde_json::from_slice::<Envelope>(payload).ok()?;
    let what = match envelope.what {
        Wire::ApiKey { hash } => Invalidation::ApiKey(KeyHash::from_hex(&hash)?),
        Wire::Session { id } => Invalidation::Session(id),
        Wire::UserSessions { id } => Invalidation::UserSessions(id),
        Wire::Agent { id } => Invalidation::Agent(id),
        Wire::Token { id } => Invalidation::Token(id),
    };
    Some((what, envelope.ack.filter(AckTo::is_valid)))
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
    /// This publisher's acknowledgements, shared by its clones.
    acks: Arc<Acks>,
}

impl Invalidator {
    pub(crate) fn new(backend: Backend) -> Self {
        let channel: Arc<str> = backend.key("invalidate").into();
        let id = random_id();
        Self {
            acks: Arc::new(Acks {
                channel: ack_channel(&channel, &id),
                id,
                listener: tokio::sync::Mutex::new(None),
            }),
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

    /// Publishes `what` and waits until every subscriber it reached has applied it (called its
    /// callback and acknowledged); returns how many that was.
    ///
    /// Fails with [`StoreError::Unavailable`] when Redis cannot be reached, or when not every
    /// receiver acknowledged within [`RedisConfig::ack_timeout`](crate::RedisConfig). Sending
    /// again is harmless: dropping a cache entry twice changes nothing.
    pub async fn send(&self, what: &Invalidation) -> Result<u64, StoreError> {
        const WHAT: &str = "publish invalidation";
        // Subscribed to our acks before publishing: an ack may beat PUBLISH's own reply.
        let listener = self.acks.listener(&self.backend).await?;
        let id = random_id();
        let envelope = Envelope {
            what: to_wire(what),
            ack: Some(AckTo {
                to: self.acks.id.clone(),
                id: id.clone(),
            }),
        };
        let payload = serde_json::to_string(&envelope)
            .map_err(|e| self.backend.error(WHAT, &e.to_string()))?;
        let mut expected = listener.expect(id);
        // Once: a resent message is acknowledged again by the same subscribers, counted once.
        let receivers: u64 = self
            .backend
            .run(WHAT, Retry::Once, |mut conn| {
                let (channel, payload) = (self.channel.clone(), payload.clone());
                async move {
                    redis::cmd("PUBLISH")
                        .arg(&*channel)
                        .arg(payload)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        portcullis_core::metrics::invalidation_sent();
        let timeout = self.backend.config().ack_timeout;
        let mut acked = HashSet::new();
        let waited = tokio::time::timeout(timeout, async {
            while (acked.len() as u64) < receivers {
                match expected.acks.recv().await {
                    Some(subscriber) => acked.insert(subscriber),
                    None => return false,
                };
            }
            true
        })
        .await;
        match waited {
            Ok(true) => Ok(receivers),
            Ok(false) => Err(self
                .backend
                .error(WHAT, "acknowledgement subscription lost")),
            Err(_) => {
                // Perhaps our ack subscription died silently: make a new one next time.
                listener.alive.store(false, Ordering::SeqCst);
                let detail = format!(
                    "{} of {receivers} instances acknowledged within {timeout:?}",
                    acked.len()
                );
                Err(self.backend.error(WHAT, &detail))
            }
        }
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
    ///
    /// The subscriber does not keep the authenticator alive, so the subscription can be
    /// handed to it ([`Authenticator::own`]), as
    /// [`RedisStores::build_authenticator`](crate::RedisStores::build_authenticator) does.
    pub async fn subscribe_authenticator(
        &self,
        authenticator: Authenticator,
    ) -> Result<InvalidationSubscription, StoreError> {
        // Weak: an authenticator owning its subscription would otherwise never be dropped.
        let weak = authenticator.downgrade();
        drop(authenticator);
        let this = match self.on_gap {
            Some(_) => self.clone(),
            None => {
                let weak = weak.clone();
                self.clone().on_gap(move || {
                    if let Some(auth) = weak.upgrade() {
                        auth.invalidate_all();
                    }
                })
            }
        };
        this.subscribe_async(move |what| {
            let authenticator = weak.upgrade();
            async move {
                // Gone: nothing is cached any more, and acknowledging stays right.
                if let Some(authenticator) = authenticator {
                    authenticator.invalidate(&what).await;
                }
            }
        })
        .await
    }

    async fn start(&self, handler: Handler) -> Result<InvalidationSubscription, StoreError> {
        let pubsub = subscribe(&self.backend, &self.channel).await?;
        let task = tokio::spawn(listen(self.clone(), handler, pubsub, random_id()));
        Ok(InvalidationSubscription { task })
    }

    /// Tells the publisher that subscriber `me` applied the message, off the listening loop.
    fn acknowledge(&self, ack: AckTo, me: &str) {
        let backend = self.backend.clone();
        let channel = ack_channel(&self.channel, &ack.to);
        let payload = format!("{} {me}", ack.id);
        tokio::spawn(async move {
            let sent = backend
                .run("acknowledge invalidation", Retry::Once, |mut conn| {
                    let (channel, payload) = (channel.clone(), payload.clone());
                    async move {
                        redis::cmd("PUBLISH")
                            .arg(channel)
                            .arg(payload)
                            .query_async::<u64>(&mut conn)
                            .await
                    }
                })
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "invalidation applied but not acknowledged");
            }
        });
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
/// ([`AuthenticatorBuilder::invalidation_sink`](portcullis_core::AuthenticatorBuilder::invalidation_sink)):
/// [`send`](Invalidator::send), so a revocation returns once every subscribed instance has
/// applied it, and fails otherwise.
#[async_trait]
impl InvalidationSink for Invalidator {
    async fn publish(&self, what: &Invalidation) -> Result<(), StoreError> {
        self.send(what).await.map(|_| ())
    }
}

/// `<invalidate channel>:ack:<publisher>`.
fn ack_channel(channel: &str, publisher: &str) -> String {
    format!("{channel}:ack:{publisher}")
}

/// A publisher's acknowledgements: its id, its ack channel, and the subscription to it.
struct Acks {
    id: String,
    channel: String,
    listener: tokio::sync::Mutex<Option<Arc<AckListener>>>,
}

impl Acks {
    /// The live ack subscription, made (again) if there is none.
    async fn listener(&self, backend: &Backend) -> Result<Arc<AckListener>, StoreError> {
        let mut slot = self.listener.lock().await;
        if let Some(listener) = slot.as_ref()
            && listener.alive.load(Ordering::SeqCst)
        {
            return Ok(listener.clone());
        }
        let pubsub = subscribe(backend, &self.channel).await?;
        let listener = Arc::new(AckListener::spawn(pubsub));
        *slot = Some(listener.clone());
        Ok(listener)
    }
}

type Waiting = Arc<std::sync::Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

/// Hands each ack (`<message id> <subscriber>`) to the send waiting for that message.
struct AckListener {
    waiting: Waiting,
    alive: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl AckListener {
    fn spawn(pubsub: PubSub) -> Self {
        let waiting: Waiting = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (w, a) = (waiting.clone(), alive.clone());
        let task = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let payload = msg.get_payload_bytes();
                let Some((id, subscriber)) = std::str::from_utf8(payload)
                    .ok()
                    .and_then(|p| p.split_once(' '))
                else {
                    continue;
                };
                let waiting = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(tx) = waiting.get(id) {
                    let _ = tx.send(subscriber.to_owned());
                }
            }
            // Connection lost: whoever waits fails now rather than at its timeout.
            a.store(false, Ordering::SeqCst);
            w.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        });
        Self {
            waiting,
            alive,
            task,
        }
    }

    /// Starts collecting the acks of message `id`.
    fn expect(&self, id: String) -> Expected {
        let (tx, acks) = mpsc::unbounded_channel();
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), tx);
        Expected {
            id,
            acks,
            waiting: self.waiting.clone(),
        }
    }
}

impl Drop for AckListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The acks of one message; stops collecting when dropped.
struct Expected {
    id: String,
    acks: mpsc::UnboundedReceiver<String>,
    waiting: Waiting,
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
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

/// Runs the callback on its own task, so that a panic in it is contained (and logged);
/// whether it returned.
async fn deliver(handler: &Handler, what: Invalidation) -> bool {
    match tokio::spawn(handler(what)).await {
        Ok(()) => true,
        Err(e) => {
            if e.is_panic() {
                tracing::error!("invalidation callback panicked");
            }
            false
        }
    }
}

/// Subscriber `me`'s loop: applies each message, then acknowledges it.
async fn listen(invalidator: Invalidator, handler: Handler, mut pubsub: PubSub, me: String) {
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
                        Some((what, ack)) => {
                            portcullis_core::metrics::invalidation_received();
                            let applied = deliver(&handler, what).await;
                            if !applied {
                                invalidator.gap();
                            }
                            // Unapplied, it is acknowledged only once the gap handler dropped
                            // everything; without one, the publisher times out (and fails).
                            if let Some(ack) = ack
                                && (applied || invalidator.on_gap.is_some())
                            {
                                invalidator.acknowledge(ack, &me);
                            }
                        }
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
                    // Nobody waits for this instance's acks now: keep it from riding entries
                    // it reloaded since the last gap.
                    invalidator.gap();
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
            let ack = AckTo {
                to: random_id(),
                id: random_id(),
            };
            let envelope = Envelope {
                what: to_wire(&case),
                ack: Some(ack.clone()),
            };
            let json = serde_json::to_vec(&envelope).unwrap();
            assert_eq!(from_payload(&json), Some((case.clone(), Some(ack))));
            // An older publisher's message: no ack asked.
            let json = serde_json::to_vec(&to_wire(&case)).unwrap();
            assert_eq!(from_payload(&json), Some((case, None)));
        }
        assert_eq!(from_payload(br#"{"kind":"api_key","hash":"zz"}"#), None);
        assert_eq!(from_payload(br#"{"kind":"future_thing"}"#), None);
        assert_eq!(from_payload(b"not json"), None);
    }

    #[test]
    fn an_ack_target_that_is_not_an_id_of_ours_is_not_acknowledged() {
        for (to, id) in [
            ("", "m1"),
            ("a:b", "m1"),
            ("p1", "m 1"),
            ("p1", &"x".repeat(65)),
            ("*", "m1"),
        ] {
            let json = format!(r#"{{"kind":"agent","id":"a","ack":{{"to":"{to}","id":"{id}"}}}}"#);
            assert_eq!(
                from_payload(json.as_bytes()),
                Some((Invalidation::Agent("a".into()), None)),
                "{to:?} {id:?}"
            );
        }
    }
}
