//! Batches the queue writes that can wait a moment: deletes and visibility changes (up to 10
//! per call, SQS's batch size), so completing a task costs a tenth of a call, and the children of
//! tasks finishing at about the same time, sent together. Acknowledgements are not urgent: a
//! message stays invisible while its acknowledgement waits, and a lost one only causes a
//! harmless duplicate delivery. A send is awaited: a task is recorded as done only once SQS has
//! accepted every one of its children.

use backup_core::ports::{OutgoingMessage, TaskQueue};
use backup_core::{AwsError, ErrorClass, RetryClass};
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
    Send(PendingSend),
}

/// A pending visibility change and whoever waits for its outcome.
type PendingVisibility = (String, Duration, Vec<oneshot::Sender<Option<String>>>);

/// One task's children and whoever waits for all of them to be accepted.
type PendingSend = (Vec<OutgoingMessage>, oneshot::Sender<Result<(), AwsError>>);

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

    /// Sends one task's children with those of other tasks finishing meanwhile, and returns once
    /// SQS has accepted all of them, or with the error that kept one out (the task then retries
    /// and sends them again: a child is deduplicated by its task id).
    pub async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), AwsError> {
        let (tx, rx) = oneshot::channel();
        let unsent = || AwsError {
            service: "sqs",
            operation: "SendMessageBatch",
            code: "WorkerStopping".into(),
            message: "the worker's batcher stopped before the children were sent".into(),
            class: ErrorClass::Retry(RetryClass::Transient),
        };
        self.tx.send(Ack::Send((messages, tx))).map_err(|_| unsent())?;
        rx.await.unwrap_or_else(|_| Err(unsent()))
    }
}

/// What waits for the next flush.
#[derive(Default)]
struct Pending {
    deletes: Vec<String>,
    visibility: Vec<PendingVisibility>,
    sends: Vec<PendingSend>,
}

impl Pending {
    /// A full batch of one kind is ready: flush now rather than at the deadline.
    fn full(&self) -> bool {
        self.deletes.len() >= 10
            || self.visibility.len() >= 10
            || self.sends.iter().map(|(messages, _)| messages.len()).sum::<usize>() >= 10
    }
}

async fn run(queue: Arc<dyn TaskQueue>, mut rx: mpsc::UnboundedReceiver<Ack>, flush_after: Duration) {
    let mut pending = Pending::default();
    loop {
        // Wait for the first acknowledgement, then gather more for at most `flush_after`.
        let Some(first) = rx.recv().await else { break };
        push(first, &mut pending);
        let deadline = tokio::time::Instant::now() + flush_after;
        let mut closed = false;
        while !pending.full() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ack)) => push(ack, &mut pending),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        flush(&queue, &mut pending).await;
        if closed {
            break;
        }
    }
    flush(&queue, &mut pending).await;
}

fn push(ack: Ack, pending: &mut Pending) {
    let Pending { deletes, visibility, sends } = pending;
    match ack {
        Ack::Send(send) => sends.push(send),
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

async fn flush(queue: &Arc<dyn TaskQueue>, pending: &mut Pending) {
    // Children go out on their own: a slow send must not hold up the visibility changes that
    // extend every running task's message (the heartbeats wait for theirs).
    let sends = std::mem::take(&mut pending.sends);
    if !sends.is_empty() {
        tokio::spawn(send(queue.clone(), sends));
    }
    let queue = queue.as_ref();
    let Pending { deletes, visibility, .. } = pending;
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

/// Sends the children of several tasks in shared SendMessageBatch calls (`send_batch` splits
/// them by SQS's count and size limits) and tells each task whether all of its own got in. A
/// call that fails as a whole is tried again task by task, so that one task's bad child fails
/// that task alone.
async fn send(queue: Arc<dyn TaskQueue>, sends: Vec<PendingSend>) {
    let (children, waiters): (Vec<Vec<OutgoingMessage>>, Vec<_>) = sends.into_iter().unzip();
    let results = match send_together(queue.as_ref(), &children).await {
        Ok(results) => results,
        Err(_) if children.len() > 1 => {
            let mut results = Vec::with_capacity(children.len());
            for own in &children {
                results
                    .push(send_together(queue.as_ref(), std::slice::from_ref(own)).await.and_then(|mut r| r.remove(0)));
            }
            results
        }
        Err(err) => vec![Err(err)],
    };
    for (waiter, result) in waiters.into_iter().zip(results) {
        let _ = waiter.send(result);
    }
}

/// One `send_batch` for the children of several tasks: per task, whether all of its children
/// were accepted; `Err` when the call failed as a whole.
async fn send_together(
    queue: &dyn TaskQueue,
    children: &[Vec<OutgoingMessage>],
) -> Result<Vec<Result<(), AwsError>>, AwsError> {
    // Entry ids, unique across the call, name the task each entry belongs to.
    let mut owner_of = Vec::new();
    let mut messages = Vec::new();
    for (owner, own) in children.iter().enumerate() {
        for child in own {
            messages.push(OutgoingMessage { id: owner_of.len().to_string(), ..child.clone() });
            owner_of.push(owner);
        }
    }
    let refused = |code: &str| AwsError {
        service: "sqs",
        operation: "SendMessageBatch",
        code: "BatchEntryFailed".into(),
        message: format!("a child message was not accepted: {code}"),
        class: ErrorClass::Retry(RetryClass::Transient),
    };
    let mut results: Vec<Result<(), AwsError>> = vec![Ok(()); children.len()];
    for (id, code) in queue.send_batch(&messages).await? {
        match id.parse::<usize>().ok().and_then(|i| owner_of.get(i)) {
            Some(&owner) => results[owner] = Err(refused(&code)),
            // A failure that names no entry of ours: no task can be told its children got in.
            None => results.iter_mut().for_each(|r| *r = Err(refused(&code))),
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::ports::{BatchFailures, QueueDepth, QueueSettings, ReceivedMessage};
    use std::sync::Mutex;

    /// A queue that records the bodies of each SendMessageBatch, refuses a `poison` entry, and
    /// fails a whole call that holds an `oversized` one (as SQS does with BatchRequestTooLong).
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl TaskQueue for Recorder {
        fn url(&self) -> &str {
            "recorder"
        }
        async fn receive(&self, _: u32, _: Duration) -> Result<Vec<ReceivedMessage>, AwsError> {
            Ok(Vec::new())
        }
        async fn receive_for(&self, _: u32, _: Duration, _: Duration) -> Result<Vec<ReceivedMessage>, AwsError> {
            Ok(Vec::new())
        }
        async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<BatchFailures, AwsError> {
            self.batches.lock().unwrap().push(messages.iter().map(|m| m.body.clone()).collect());
            if messages.iter().any(|m| m.body == "oversized") {
                return Err(AwsError {
                    service: "sqs",
                    operation: "SendMessageBatch",
                    code: "BatchRequestTooLong".into(),
                    message: "too long".into(),
                    class: ErrorClass::Permanent,
                });
            }
            Ok(messages
                .iter()
                .filter(|m| m.body == "poison")
                .map(|m| (m.id.clone(), "InvalidMessageContents".to_owned()))
                .collect())
        }
        async fn send(&self, _: &OutgoingMessage) -> Result<String, AwsError> {
            Ok("message-id".into())
        }
        async fn delete_batch(&self, _: &[String]) -> Result<BatchFailures, AwsError> {
            Ok(Vec::new())
        }
        async fn change_visibility_batch(&self, _: &[(String, Duration)]) -> Result<BatchFailures, AwsError> {
            Ok(Vec::new())
        }
        async fn depth(&self) -> Result<QueueDepth, AwsError> {
            Ok(QueueDepth::default())
        }
        async fn settings(&self) -> Result<QueueSettings, AwsError> {
            Ok(QueueSettings::default())
        }
    }

    fn child(body: &str) -> OutgoingMessage {
        OutgoingMessage { id: "0".into(), body: body.into(), ..Default::default() }
    }

    #[tokio::test]
    async fn the_children_of_tasks_finishing_together_share_one_send_and_each_task_hears_of_its_own() {
        let queue = Arc::new(Recorder::default());
        let (acks, done) = Acks::spawn(queue.clone(), Duration::from_millis(50));
        let (a, b, c) = tokio::join!(
            acks.send(vec![child("a1"), child("a2")]),
            acks.send(vec![child("b1"), child("poison")]),
            acks.send(vec![child("c1")]),
        );
        assert_eq!((a, c), (Ok(()), Ok(())));
        let refused = b.unwrap_err();
        assert_eq!(refused.code, "BatchEntryFailed");
        assert!(matches!(refused.class, ErrorClass::Retry(_)), "{refused}");
        assert_eq!(*queue.batches.lock().unwrap(), [["a1", "a2", "b1", "poison", "c1"]], "one call for three tasks");

        // A call that fails as a whole is tried again task by task: only the culprit fails.
        queue.batches.lock().unwrap().clear();
        let (a, b) = tokio::join!(acks.send(vec![child("a1")]), acks.send(vec![child("oversized")]));
        assert_eq!(a, Ok(()));
        assert_eq!(b.unwrap_err().code, "BatchRequestTooLong");
        assert_eq!(*queue.batches.lock().unwrap(), [vec!["a1", "oversized"], vec!["a1"], vec!["oversized"]]);

        // Once the batcher has stopped, a send fails (retryably) instead of being lost.
        let stopped = Acks { tx: mpsc::unbounded_channel().0 };
        assert_eq!(stopped.send(vec![child("late")]).await.unwrap_err().code, "WorkerStopping");
        drop(acks);
        done.await.unwrap();
    }
}
