//! Batches deletes and visibility changes (up to 10 per call, SQS's batch size), so completing a
//! task costs a tenth of a call. Nothing here is urgent: a message stays invisible while its
//! acknowledgement waits, and a lost acknowledgement only causes a harmless duplicate delivery.

use backup_core::ports::TaskQueue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The answer to a checked visibility change: `None` when it was applied, else the failure code
/// (`ReceiptHandleIsInvalid`, `InvalidParameterValue` for a handle gone stale, or the call's error).
pub type VisibilityAnswer = oneshot::Receiver<Option<String>>;

#[derive(Debug)]
pub enum Ack {
    Delete(String),
    Visibility(String, Duration, Option<oneshot::Sender<Option<String>>>),
}

/// A pending visibility change and whoever waits for its outcome.
type PendingVisibility = (String, Duration, Vec<oneshot::Sender<Option<String>>>);

/// Handle to the batcher; dropping every clone flushes what is left and ends it.
#[derive(Clone, Debug)]
pub struct Acks {
    tx: mpsc::UnboundedSender<Ack>,
}

impl Acks {
    pub fn spawn(queue: Arc<dyn TaskQueue>, flush_after: Duration) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(run(queue, rx, flush_after));
        (Self { tx }, handle)
    }

    pub fn delete(&self, receipt_handle: &str) {
        let _ = self.tx.send(Ack::Delete(receipt_handle.to_owned()));
    }

    pub fn visibility(&self, receipt_handle: &str, timeout: Duration) {
        let _ = self.tx.send(Ack::Visibility(receipt_handle.to_owned(), timeout, None));
    }

    /// A visibility change whose outcome the caller wants to know (the heartbeat: a failure
    /// means the receipt handle went stale). Batched like the others.
    pub fn visibility_checked(&self, receipt_handle: &str, timeout: Duration) -> VisibilityAnswer {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Ack::Visibility(receipt_handle.to_owned(), timeout, Some(tx)));
        rx
    }
}

async fn run(queue: Arc<dyn TaskQueue>, mut rx: mpsc::UnboundedReceiver<Ack>, flush_after: Duration) {
    let mut deletes: Vec<String> = Vec::new();
    let mut visibility: Vec<PendingVisibility> = Vec::new();
    loop {
        // Wait for the first acknowledgement, then gather more for at most `flush_after`.
        let Some(first) = rx.recv().await else { break };
        push(first, &mut deletes, &mut visibility);
        let deadline = tokio::time::Instant::now() + flush_after;
        let mut closed = false;
        while deletes.len() < 10 && visibility.len() < 10 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ack)) => push(ack, &mut deletes, &mut visibility),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        flush(queue.as_ref(), &mut deletes, &mut visibility).await;
        if closed {
            break;
        }
    }
    flush(queue.as_ref(), &mut deletes, &mut visibility).await;
}

fn push(ack: Ack, deletes: &mut Vec<String>, visibility: &mut Vec<PendingVisibility>) {
    match ack {
        Ack::Delete(handle) => {
            // A delete supersedes a pending visibility change of the same message (whoever
            // waits for that change learns it was applied: the message is done with).
            visibility.retain(|(h, _, _)| h != &handle);
            deletes.push(handle);
        }
        Ack::Visibility(handle, timeout, waiter) => {
            if let Some(entry) = visibility.iter_mut().find(|(h, _, _)| h == &handle) {
                entry.1 = timeout;
                entry.2.extend(waiter);
            } else {
                visibility.push((handle, timeout, waiter.into_iter().collect()));
            }
        }
    }
}

async fn flush(queue: &dyn TaskQueue, deletes: &mut Vec<String>, visibility: &mut Vec<PendingVisibility>) {
    while !deletes.is_empty() {
        let batch: Vec<String> = deletes.drain(..deletes.len().min(10)).collect();
        match queue.delete_batch(&batch).await {
            Ok(failed) if failed.is_empty() => {}
            Ok(failed) => {
                tracing::warn!(failed = ?failed, "some deletes failed; the messages will be redelivered and recognised as duplicates")
            }
            Err(err) => {
                tracing::warn!(error = %err, count = batch.len(), "delete batch failed; the messages will be redelivered and recognised as duplicates")
            }
        }
    }
    while !visibility.is_empty() {
        let batch: Vec<PendingVisibility> = visibility.drain(..visibility.len().min(10)).collect();
        let entries: Vec<(String, Duration)> = batch.iter().map(|(h, t, _)| (h.clone(), *t)).collect();
        let failed = match queue.change_visibility_batch(&entries).await {
            Ok(failed) => {
                if !failed.is_empty() {
                    tracing::warn!(failed = ?failed, "some visibility changes failed");
                }
                failed
            }
            Err(err) => {
                tracing::warn!(error = %err, count = batch.len(), "visibility batch failed");
                // The call itself failed: nothing is known about the handles, so waiters hear
                // nothing (a dropped sender), not that their handle is stale.
                continue;
            }
        };
        for (handle, _, waiters) in batch {
            let code = failed.iter().find(|(h, _)| *h == handle).map(|(_, code)| code.clone());
            for waiter in waiters {
                let _ = waiter.send(code.clone());
            }
        }
    }
}
