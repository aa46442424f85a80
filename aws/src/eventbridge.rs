//! `EventPublisher` on the fleet's own EventBridge bus (task failed, task dead, backup created):
//! rules on that bus route failures to the alert topic.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use backup_core::ports::{EventPublisher, FleetEvent};
use backup_core::{AwsError, ErrorClass, RetryClass};

use crate::classify::classify;

/// `source` of every event the fleet publishes.
pub const FLEET_EVENT_SOURCE: &str = "backup-fleet";

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[FleetEvent]) -> Result<(), AwsError> {
        // PutEvents takes at most 10 entries per call.
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(FLEET_EVENT_SOURCE)
                        .detail_type(&event.detail_type)
                        .detail(event.detail.to_string())
                        .build()
                })
                .collect();
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("eventbridge", "PutEvents", e))?;
            if output.failed_entry_count > 0 {
                return Err(AwsError {
                    service: "eventbridge",
                    operation: "PutEvents",
                    code: "FailedEntries".into(),
                    message: format!("{} of {} events were not accepted", output.failed_entry_count, chunk.len()),
                    class: ErrorClass::Retry(RetryClass::Transient),
                });
            }
        }
        Ok(())
    }
}
