//! The audit log on SQL: [`AuditWriter`], the [`AuditSink`] that writes events behind the
//! request path in batches (flushed at shutdown: nothing queued is lost at a graceful stop),
//! and [`SqlAuditLog`], which reads them back a page at a time and prunes the old ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_core::StoreError;
use portcullis_core::audit::{AuditCursor, AuditEvent, AuditLog, AuditPage, AuditQuery, AuditSink};
use portcullis_core::clock::UnixTime;
use tokio::sync::mpsc;

use crate::backend::Ops;
use crate::batch::{Batch, BatchWriter};
use crate::pool::SqlPool;
use crate::with_pool;

/// The most items one page holds.
pub const MAX_AUDIT_PAGE: u32 = 200;

/// How much an [`AuditWriter`] queues and how often it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// Events queued at most; more are dropped (counted, logged) until the writer catches up.
    pub queue: usize,
    /// Events that trigger a write before the interval is up.
    pub batch: usize,
    /// The longest an event waits before it is written.
    pub interval: Duration,
}

impl Default for AuditSettings {
    /// 10 000 queued, batches of 200, at least every second.
    fn default() -> Self {
        Self {
            queue: 10_000,
            batch: 200,
            interval: Duration::from_secs(1),
        }
    }
}

/// Writes audit events to the `audit_log` table in batches, off the request path. Hand it to
/// [`LifecycleBuilder::audit_sink`](portcullis_core::lifecycle::LifecycleBuilder::audit_sink);
/// [`Lifecycle::shutdown_audit`](portcullis_core::lifecycle::Lifecycle::shutdown_audit) (or
/// [`AuditSink::shutdown`]) writes what is queued and stops it.
#[derive(Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<AuditEvent>,
    dropped: Arc<AtomicU64>,
    writer: BatchWriter<AuditEvent>,
}

impl AuditWriter {
    /// Starts the writer on the current Tokio runtime, writing to `pool` (migrated).
    pub fn spawn(pool: SqlPool, settings: AuditSettings) -> Self {
        let writer = BatchWriter::spawn(
            Events {
                pool,
                pending: Vec::new(),
            },
            settings.queue,
            settings.batch,
            settings.interval,
        );
        Self {
            tx: writer.sender(),
            dropped: Arc::new(AtomicU64::new(0)),
            writer,
        }
    }

    /// How many events were dropped because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl AuditSink for AuditWriter {
    /// Queues `event` without waiting; drops it (counted, logged) when the queue is full.
    fn record(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The first drop and every thousandth after: a flood of drops is no flood of logs.
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(dropped = n, "audit queue full or stopped: event dropped");
            }
        }
    }

    async fn shutdown(&self) {
        self.writer.stop_and_wait("audit log").await;
    }
}

struct Events {
    pool: SqlPool,
    pending: Vec<AuditEvent>,
}

impl Batch for Events {
    type Item = AuditEvent;

    fn add(&mut self, item: AuditEvent) {
        self.pending.push(item);
    }

    fn len(&self) -> usize {
        self.pending.len()
    }

    async fn flush(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        if let Err(e) = with_pool!(&self.pool, |p| Ops::audit_insert(p, &batch).await) {
            tracing::error!(error = %e, events = batch.len(), "could not write audit events");
        }
    }
}

/// Reads the `audit_log` table ([`AuditLog`]) and prunes it.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    pool: SqlPool,
}

impl SqlAuditLog {
    /// The audit log of `pool`'s database (migrated).
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    /// Deletes events older than `before`; returns how many went.
    pub async fn prune(&self, before: UnixTime) -> Result<u64, StoreError> {
        with_pool!(&self.pool, |p| Ops::audit_prune(p, before).await)
    }
}

#[async_trait::async_trait]
impl AuditLog for SqlAuditLog {
    /// Newest first; `limit` is clamped to 1..=[`MAX_AUDIT_PAGE`].
    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_AUDIT_PAGE);
        // One more than asked: whether there is a next page.
        let mut items = with_pool!(&self.pool, |p| Ops::audit_query(
            p,
            query,
            i64::from(limit) + 1
        )
        .await)?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|r| AuditCursor {
                time: r.event.time,
                id: r.id,
            })
        } else {
            None
        };
        Ok(AuditPage { items, next_cursor })
    }
}
