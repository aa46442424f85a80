//! Batches deletes and visibility changes (up to 10 per call, SQS's batch size), so completing a
//! task costs a tenth of a call. Nothing here is urgent: a message stays invisible while its
//! acknowledgement waits, and a lost acknowledgement only causes a harmless duplicate delivery.

use backup_core::ports::TaskQueue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Clone, Debug, PartialEq)]
pub enum Ack {
    Delete(String),
    Visibility(String, Duration),
}

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
        let _ = self.tx.send(Ack::Visibility(receipt_handle.to_owned(), timeout));
    }
}

async fn run(queue: Arc<dyn TaskQueue>, mut rx: mpsc::UnboundedReceiver<Ack>, flush_after: Duration) {
    let mut deletes: Vec<String> = Vec::new();
    let mut visibility: Vec<(String, Duration)> = Vec::new();
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

fn push(ack: Ack, deletes: &mut Vec<String>, visibility: &mut Vec<(String, Duration)>) {
    match ack {
        Ack::Delete(handle) => {
            // A delete supersedes a pending visibility change of the same message.
            visibility.retain(|(h, _)| h != &handle);
            deletes.push(handle);
        }
        Ack::Visibility(handle, timeout) => {
            if let Some(entry) = visibility.iter_mut().find(|(h, _)| h == &handle) {
                entry.1 = timeout;
            } else {
                visibility.push((handle, timeout));
            }
        }
    }
}

async fn flush(queue: &dyn TaskQueue, deletes: &mut Vec<String>, visibility: &mut Vec<(String, Duration)>) {
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
        let batch: Vec<(String, Duration)> = visibility.drain(..visibility.len().min(10)).collect();
        match queue.change_visibility_batch(&batch).await {
            Ok(failed) if failed.is_empty() => {}
            Ok(failed) => tracing::warn!(failed = ?failed, "some visibility changes failed"),
            Err(err) => tracing::warn!(error = %err, count = batch.len(), "visibility batch failed"),
        }
    }
}
