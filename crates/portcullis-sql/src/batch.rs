//! The one batching writer behind the request path: API keys' last use
//! ([`LastUsedWriter`](crate::LastUsedWriter)) and the audit log
//! ([`AuditWriter`](crate::AuditWriter)) are both a [`Batch`] run by a [`BatchWriter`].
//!
//! The request path queues an item without waiting (dropped when the queue is full); a
//! background task gathers them and writes a batch when it is big enough or old enough, and,
//! when stopped, writes everything still queued before it ends.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// What is gathered between writes, and how it is written.
pub(crate) trait Batch: Send + 'static {
    /// One queued item.
    type Item: Send + 'static;
    /// Adds an item to what is pending.
    fn add(&mut self, item: Self::Item);
    /// How much is pending (compared with the batch size).
    fn len(&self) -> usize;
    /// Writes what is pending and empties it.
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
}

/// The background task and its queue.
#[derive(Debug)]
pub(crate) struct BatchWriter<T> {
    tx: mpsc::Sender<T>,
    /// Taken by the first shutdown; behind a lock so that a shared owner can shut it down.
    stop: Mutex<Option<Stop>>,
}

#[derive(Debug)]
struct Stop {
    signal: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl<T: Send + 'static> BatchWriter<T> {
    /// Starts the task on the current Tokio runtime: `batch` is written once it holds `size`,
    /// or every `interval`.
    pub(crate) fn spawn<B: Batch<Item = T>>(
        batch: B,
        queue: usize,
        size: usize,
        interval: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (signal, stopped) = oneshot::channel();
        let task = tokio::spawn(run(batch, rx, stopped, size, interval));
        Self {
            tx,
            stop: Mutex::new(Some(Stop { signal, task })),
        }
    }

    /// The queue's sending side.
    pub(crate) fn sender(&self) -> mpsc::Sender<T> {
        self.tx.clone()
    }

    /// Stops the task and waits for its last write; a second call finds nothing to stop.
    pub(crate) async fn stop_and_wait(&self, what: &'static str) {
        // A poisoned lock only means a panic elsewhere while taking it; the Option is sound.
        let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Stop { signal, task }) = stop else {
            return;
        };
        let _ = signal.send(());
        if let Err(e) = task.await {
            tracing::warn!(error = %e, writer = what, "a batching writer ended abnormally");
        }
    }
}

async fn run<B: Batch>(
    mut batch: B,
    mut rx: mpsc::Receiver<B::Item>,
    mut stopped: oneshot::Receiver<()>,
    size: usize,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Stopping (or the writer being dropped) wins over more work.
            biased;
            _ = &mut stopped => break,
            item = rx.recv() => match item {
                Some(item) => {
                    batch.add(item);
                    if batch.len() >= size {
                        batch.flush().await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => if batch.len() > 0 { batch.flush().await },
        }
    }
    rx.close();
    while let Ok(item) = rx.try_recv() {
        batch.add(item);
    }
    if batch.len() > 0 {
        batch.flush().await;
    }
}
