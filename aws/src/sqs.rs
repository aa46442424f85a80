//! `TaskQueue` on Amazon SQS: long polls with system attributes, batched deletes, visibility
//! changes and sends, with the X-Ray trace header both as `AWSTraceHeader` and as a message
//! attribute.

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use backup_core::ports::{
    BatchFailures, OutgoingMessage, QueueDepth, QueueSettings, ReceivedMessage, TaskQueue, ATTR_TRACE,
};
use backup_core::AwsError;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::classify::classify;

/// SQS caps visibility timeouts at 12 hours and delays at 15 minutes.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    async fn receive_with(
        &self,
        max: u32,
        wait: Duration,
        visibility: Option<i32>,
    ) -> Result<Vec<ReceivedMessage>, AwsError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .set_visibility_timeout(visibility)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| classify("sqs", "ReceiveMessage", e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let system = message.attributes.unwrap_or_default();
                let attributes: BTreeMap<String, String> = message
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                    .collect();
                let trace_header = system
                    .get(&MessageSystemAttributeName::AwsTraceHeader)
                    .cloned()
                    .or_else(|| attributes.get(ATTR_TRACE).cloned());
                ReceivedMessage {
                    message_id: message.message_id.unwrap_or_default(),
                    receipt_handle: message.receipt_handle.unwrap_or_default(),
                    body: message.body.unwrap_or_default(),
                    receive_count: system
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    sent_at: millis_attr(&system, MessageSystemAttributeName::SentTimestamp),
                    first_received_at: millis_attr(
                        &system,
                        MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                    ),
                    trace_header,
                    attributes,
                }
            })
            .collect())
    }
}

impl SqsQueue {
    async fn send_one_batch(&self, messages: &[OutgoingMessage]) -> Result<BatchFailures, AwsError> {
        let entries = messages
            .iter()
            .map(|message| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(&message.id)
                    .message_body(&message.body)
                    .set_message_attributes(Some(message_attributes(message)));
                if let Some(delay) = message.delay {
                    entry = entry.delay_seconds(secs(delay, MAX_DELAY));
                }
                if let Some(trace) = trace_system_attribute(message) {
                    entry = entry.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, trace);
                }
                entry.build().expect("id and body are set")
            })
            .collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("sqs", "SendMessageBatch", e))?;
        Ok(output
            .failed
            .into_iter()
            .map(|f| (f.id, format!("{}: {}", f.code, f.message.unwrap_or_default())))
            .collect())
    }
}

/// SQS's limit on one SendMessageBatch call: the bodies and message attributes of all entries
/// together (the per-message limit is the same number, for one message).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The bytes SQS counts for one message: body, and each attribute's name, type and value.
pub fn message_bytes(message: &OutgoingMessage) -> usize {
    let attributes: usize = message.attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum();
    let trace = message.trace_header.as_ref().map_or(0, |t| 2 * (ATTR_TRACE.len() + "String".len() + t.len()));
    message.body.len() + attributes + trace
}

/// Splits messages into SendMessageBatch calls of at most 10 entries and [`MAX_BATCH_BYTES`].
pub fn batches(messages: &[OutgoingMessage]) -> Vec<&[OutgoingMessage]> {
    let mut calls = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message_bytes(message);
        if i > start && (i - start == 10 || bytes + size > MAX_BATCH_BYTES) {
            calls.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        calls.push(&messages[start..]);
    }
    calls
}

fn secs(duration: Duration, cap: Duration) -> i32 {
    duration.min(cap).as_secs() as i32
}

fn millis_attr(
    attributes: &std::collections::HashMap<MessageSystemAttributeName, String>,
    name: MessageSystemAttributeName,
) -> Option<DateTime<Utc>> {
    attributes.get(&name).and_then(|v| v.parse::<i64>().ok()).and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data type is set")
}

fn message_attributes(message: &OutgoingMessage) -> std::collections::HashMap<String, MessageAttributeValue> {
    let mut attributes: std::collections::HashMap<String, MessageAttributeValue> =
        message.attributes.iter().map(|(k, v)| (k.clone(), string_attr(v))).collect();
    if let Some(trace) = &message.trace_header {
        attributes.insert(ATTR_TRACE.to_owned(), string_attr(trace));
    }
    attributes
}

fn trace_system_attribute(message: &OutgoingMessage) -> Option<MessageSystemAttributeValue> {
    message.trace_header.as_ref().map(|trace| {
        MessageSystemAttributeValue::builder()
            .data_type("String")
            .string_value(trace)
            .build()
            .expect("data type is set")
    })
}

#[async_trait]
impl TaskQueue for SqsQueue {
    fn url(&self) -> &str {
        &self.url
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>, AwsError> {
        self.receive_with(max, wait, None).await
    }

    async fn receive_for(
        &self,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, AwsError> {
        self.receive_with(max, wait, Some(secs(visibility, MAX_VISIBILITY))).await
    }

    /// Receives with a visibility timeout of zero: the messages stay available to everyone.
    async fn peek(&self, max: u32) -> Result<Vec<ReceivedMessage>, AwsError> {
        self.receive_with(max, Duration::ZERO, Some(0)).await
    }

    /// Sends in as many SendMessageBatch calls as SQS's two limits need: 10 entries and 256 KiB
    /// of bodies and attributes per call (`BatchRequestTooLong` otherwise, for the whole call).
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<BatchFailures, AwsError> {
        let mut failures = Vec::new();
        for chunk in batches(messages) {
            failures.extend(self.send_one_batch(chunk).await?);
        }
        Ok(failures)
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, AwsError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(&message.body)
            .set_message_attributes(Some(message_attributes(message)));
        if let Some(delay) = message.delay {
            request = request.delay_seconds(secs(delay, MAX_DELAY));
        }
        if let Some(trace) = trace_system_attribute(message) {
            request = request.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, trace);
        }
        let output = request.send().await.map_err(|e| classify("sqs", "SendMessage", e))?;
        Ok(output.message_id.unwrap_or_default())
    }

    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<BatchFailures, AwsError> {
        if receipt_handles.is_empty() {
            return Ok(Vec::new());
        }
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build().expect("set")
            })
            .collect();
        let output = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("sqs", "DeleteMessageBatch", e))?;
        Ok(failed_handles(receipt_handles, output.failed.into_iter().map(|f| (f.id, f.code))))
    }

    async fn change_visibility_batch(&self, entries: &[(String, Duration)]) -> Result<BatchFailures, AwsError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let request_entries = entries
            .iter()
            .enumerate()
            .map(|(i, (handle, timeout))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(secs(*timeout, MAX_VISIBILITY))
                    .build()
                    .expect("set")
            })
            .collect();
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|e| classify("sqs", "ChangeMessageVisibilityBatch", e))?;
        let handles: Vec<String> = entries.iter().map(|(h, _)| h.clone()).collect();
        Ok(failed_handles(&handles, output.failed.into_iter().map(|f| (f.id, f.code))))
    }

    async fn depth(&self) -> Result<QueueDepth, AwsError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| classify("sqs", "GetQueueAttributes", e))?;
        let attributes = output.attributes.unwrap_or_default();
        let get = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn settings(&self) -> Result<QueueSettings, AwsError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("sqs", "GetQueueAttributes", e))?;
        let attributes = output.attributes.unwrap_or_default();
        let redrive: Option<serde_json::Value> =
            attributes.get(&QueueAttributeName::RedrivePolicy).and_then(|v| serde_json::from_str(v).ok());
        Ok(QueueSettings {
            visibility_timeout_secs: attributes
                .get(&QueueAttributeName::VisibilityTimeout)
                .and_then(|v| v.parse().ok())
                .unwrap_or(30),
            max_receive_count: redrive
                .as_ref()
                .and_then(|r| {
                    r.get("maxReceiveCount")
                        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
                })
                .map(|n| n as u32),
            dead_letter_target_arn: redrive
                .as_ref()
                .and_then(|r| r.get("deadLetterTargetArn"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            retention_secs: attributes
                .get(&QueueAttributeName::MessageRetentionPeriod)
                .and_then(|v| v.parse().ok())
                .unwrap_or(345_600),
        })
    }
}

/// Maps batch failure entry ids (indices we assigned) back to receipt handles.
fn failed_handles(handles: &[String], failed: impl Iterator<Item = (String, String)>) -> BatchFailures {
    failed
        .filter_map(|(id, code)| id.parse::<usize>().ok().and_then(|i| handles.get(i)).map(|h| (h.clone(), code)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: usize) -> OutgoingMessage {
        OutgoingMessage { id: "0".into(), body: "x".repeat(bytes), ..Default::default() }
    }

    #[test]
    fn batches_respect_both_limits_and_keep_order() {
        assert!(batches(&[]).is_empty());
        let small: Vec<_> = (0..25).map(|_| message(100)).collect();
        assert_eq!(batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(), vec![10, 10, 5]);
        // Ten 30 KB bodies are under the per-message limit each and over the per-call one.
        let big: Vec<_> = (0..10).map(|_| message(30_000)).collect();
        let calls = batches(&big);
        assert_eq!(calls.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![8, 2]);
        for call in &calls {
            assert!(call.iter().map(message_bytes).sum::<usize>() <= MAX_BATCH_BYTES);
        }
        // A message at the per-message limit goes alone.
        let mixed = vec![message(10), message(MAX_BATCH_BYTES - 5), message(10)];
        assert_eq!(batches(&mixed).iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        let attributes = OutgoingMessage {
            attributes: [("k".to_owned(), "v".repeat(100))].into(),
            trace_header: Some("Root=1-abc".into()),
            ..message(10)
        };
        assert!(message_bytes(&attributes) > 110 + "k".len());
    }
}
