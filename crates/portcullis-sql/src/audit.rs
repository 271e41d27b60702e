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

/// The audit log's settings as an operator gives them in the environment:
/// `PORTCULLIS_AUDIT_RETENTION_DAYS` (1 to 36 500; 90 when unset) and
/// `PORTCULLIS_AUDIT_FLUSH_MS`, the longest an event waits before it is written (10 to
/// 3 600 000; [`AuditSettings::default`]'s when unset). Events are written at a graceful stop
/// whatever the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditEnv {
    /// For [`SqlStores::with_audit_retention`](crate::SqlStores::with_audit_retention).
    pub retention_secs: u64,
    /// For [`SqlStores::audit_writer`](crate::SqlStores::audit_writer).
    pub writer: AuditSettings,
}

impl AuditEnv {
    /// Reads the variables through `lookup` (a variable unset or blank is `None`); a bad value
    /// is an error naming the variable and its range, never the value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let number = |name: &str, unit: &str, range: std::ops::RangeInclusive<u64>| {
            lookup(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| {
                            format!(
                                "{name} must be a whole number of {unit} from {} to {}",
                                range.start(),
                                range.end()
                            )
                        })
                })
                .transpose()
        };
        let days = number("PORTCULLIS_AUDIT_RETENTION_DAYS", "days", 1..=36_500)?;
        let flush_ms = number("PORTCULLIS_AUDIT_FLUSH_MS", "milliseconds", 10..=3_600_000)?;
        let defaults = AuditSettings::default();
        Ok(Self {
            retention_secs: days.map_or(crate::DEFAULT_AUDIT_RETENTION_SECS, |d| d * 86_400),
            writer: AuditSettings {
                interval: flush_ms.map_or(defaults.interval, Duration::from_millis),
                ..defaults
            },
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<AuditEnv, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuditEnv::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn audit_env_reads_its_two_variables_within_their_ranges() {
        let unset = env(&[]).unwrap();
        assert_eq!(unset.retention_secs, crate::DEFAULT_AUDIT_RETENTION_SECS);
        assert_eq!(unset.writer, AuditSettings::default());
        let set = env(&[
            ("PORTCULLIS_AUDIT_RETENTION_DAYS", " 7 "),
            ("PORTCULLIS_AUDIT_FLUSH_MS", "250"),
        ])
        .unwrap();
        assert_eq!(set.retention_secs, 7 * 86_400);
        assert_eq!(set.writer.interval, Duration::from_millis(250));
        assert_eq!(set.writer.batch, AuditSettings::default().batch);
        for (name, bad) in [
            ("PORTCULLIS_AUDIT_RETENTION_DAYS", "0"),
            ("PORTCULLIS_AUDIT_RETENTION_DAYS", "36501"),
            ("PORTCULLIS_AUDIT_RETENTION_DAYS", "ninety"),
            ("PORTCULLIS_AUDIT_FLUSH_MS", "9"),
            ("PORTCULLIS_AUDIT_FLUSH_MS", "-1"),
        ] {
            let e = env(&[(name, bad)]).unwrap_err();
            assert!(e.starts_with(name), "{e}");
            // The value is never echoed (digits may appear in the range itself).
            assert!(!e.contains("ninety") && !e.contains("-1"), "{e}");
        }
    }
}
