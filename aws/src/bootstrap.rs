//! Idempotent creation of the fleet's resources where the credentials point (the emulator, or a
//! sandbox account without Terraform): queues with DLQs and redrive, tables with TTL and indexes,
//! the fleet's event bus. The settings mirror the Terraform defaults; a test keeps them equal.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use backup_core::AwsError;
use serde::Serialize;
use std::collections::HashMap;

use crate::classify::classify;
use crate::config::AwsContext;
use crate::dynamo::TTL_ATTRIBUTE;

/// Queue and table settings. Defaults equal `terraform/modules/queues` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapSettings {
    pub prefix: String,
    pub task_visibility_timeout_secs: u32,
    pub task_max_receive_count: u32,
    pub event_visibility_timeout_secs: u32,
    pub event_max_receive_count: u32,
    pub retention_secs: u32,
    pub dlq_retention_secs: u32,
    pub receive_wait_secs: u32,
}

impl BootstrapSettings {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            task_visibility_timeout_secs: 60,
            task_max_receive_count: 10,
            event_visibility_timeout_secs: 60,
            event_max_receive_count: 5,
            retention_secs: 345_600,
            dlq_retention_secs: 1_209_600,
            receive_wait_secs: 20,
        }
    }
}

/// What bootstrap created (or found): everything a binary needs in its `BACKUP_*` environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FleetResources {
    pub task_queue_url: String,
    pub task_dlq_url: String,
    pub event_queue_url: String,
    pub event_dlq_url: String,
    pub state_table: String,
    pub catalog_table: String,
    pub event_bus: String,
}

/// The environment variables every binary reads the fleet's resources from (Terraform's ECS
/// task definitions set the same names).
pub const ENV_VARS: [&str; 7] = [
    "BACKUP_TASK_QUEUE_URL",
    "BACKUP_TASK_DLQ_URL",
    "BACKUP_EVENT_QUEUE_URL",
    "BACKUP_EVENT_DLQ_URL",
    "BACKUP_STATE_TABLE",
    "BACKUP_CATALOG_TABLE",
    "BACKUP_EVENT_BUS",
];

impl FleetResources {
    /// `(env var, value)` pairs, the names every binary reads.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        let values = [
            &self.task_queue_url,
            &self.task_dlq_url,
            &self.event_queue_url,
            &self.event_dlq_url,
            &self.state_table,
            &self.catalog_table,
            &self.event_bus,
        ];
        ENV_VARS.into_iter().zip(values.map(String::as_str)).collect()
    }
}

pub async fn bootstrap(aws: &AwsContext, settings: &BootstrapSettings) -> Result<FleetResources, AwsError> {
    let clients = aws.clients();
    let p = &settings.prefix;
    let task_dlq_url =
        ensure_queue(&clients.sqs, &format!("{p}-tasks-dlq"), settings.dlq_retention_secs, 30, None).await?;
    let task_queue_url = ensure_queue(
        &clients.sqs,
        &format!("{p}-tasks"),
        settings.retention_secs,
        settings.task_visibility_timeout_secs,
        Some((&task_dlq_url, settings.task_max_receive_count, settings.receive_wait_secs)),
    )
    .await?;
    let event_dlq_url =
        ensure_queue(&clients.sqs, &format!("{p}-events-dlq"), settings.dlq_retention_secs, 30, None).await?;
    let event_queue_url = ensure_queue(
        &clients.sqs,
        &format!("{p}-events"),
        settings.retention_secs,
        settings.event_visibility_timeout_secs,
        Some((&event_dlq_url, settings.event_max_receive_count, settings.receive_wait_secs)),
    )
    .await?;
    let state_table = format!("{p}-state");
    ensure_table(&clients.dynamodb, &state_table, &[("pk", true), ("sk", false)], &[("by_run", "run_id", Some("sk"))])
        .await?;
    let catalog_table = format!("{p}-catalog");
    ensure_table(
        &clients.dynamodb,
        &catalog_table,
        &[("pk", true)],
        &[("by_resource", "resource", Some("created_at")), ("by_expiry", "expiry_bucket", Some("expires_at"))],
    )
    .await?;
    let event_bus = format!("{p}-bus");
    ensure_bus(&clients.eventbridge, &event_bus).await?;
    Ok(FleetResources {
        task_queue_url,
        task_dlq_url,
        event_queue_url,
        event_dlq_url,
        state_table,
        catalog_table,
        event_bus,
    })
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    retention_secs: u32,
    visibility_secs: u32,
    redrive: Option<(&str, u32, u32)>,
) -> Result<String, AwsError> {
    let mut attributes: HashMap<QueueAttributeName, String> = HashMap::from([
        (QueueAttributeName::MessageRetentionPeriod, retention_secs.to_string()),
        (QueueAttributeName::VisibilityTimeout, visibility_secs.to_string()),
    ]);
    if let Some((dlq_url, max_receive_count, wait_secs)) = redrive {
        let dlq_arn = queue_arn(sqs, dlq_url).await?;
        attributes.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count }).to_string(),
        );
        attributes.insert(QueueAttributeName::ReceiveMessageWaitTimeSeconds, wait_secs.to_string());
    }
    // CreateQueue is idempotent for equal attributes; on a mismatch it fails with
    // QueueAlreadyExists, and we converge the attributes instead.
    let created = sqs.create_queue().queue_name(name).set_attributes(Some(attributes.clone())).send().await;
    match created {
        Ok(output) => Ok(output.queue_url.unwrap_or_default()),
        Err(err) => {
            let err = classify("sqs", "CreateQueue", err);
            if !err.code.contains("QueueAlreadyExists") && !err.code.contains("QueueNameExists") {
                return Err(err);
            }
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| classify("sqs", "GetQueueUrl", e))?
                .queue_url
                .unwrap_or_default();
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| classify("sqs", "SetQueueAttributes", e))?;
            Ok(url)
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, AwsError> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify("sqs", "GetQueueAttributes", e))?;
    Ok(output.attributes.unwrap_or_default().remove(&QueueAttributeName::QueueArn).unwrap_or_default())
}

fn key(name: &str, hash: bool) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(if hash { KeyType::Hash } else { KeyType::Range })
        .build()
        .expect("set")
}

async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    keys: &[(&str, bool)],
    indexes: &[(&str, &str, Option<&str>)],
) -> Result<(), AwsError> {
    let mut attribute_names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    for (_, hash, range) in indexes {
        attribute_names.push(hash);
        attribute_names.extend(range.iter());
    }
    attribute_names.sort_unstable();
    attribute_names.dedup();
    let definitions = attribute_names
        .iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("set")
        })
        .collect();
    let gsis = indexes
        .iter()
        .map(|(index, hash, range)| {
            let mut schema = vec![key(hash, true)];
            schema.extend(range.map(|r| key(r, false)));
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .set_key_schema(Some(schema))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("set")
        })
        .collect();
    let created = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(keys.iter().map(|(k, hash)| key(k, *hash)).collect()))
        .set_attribute_definitions(Some(definitions))
        .set_global_secondary_indexes(Some(gsis))
        .send()
        .await;
    if let Err(err) = created {
        let err = classify("dynamodb", "CreateTable", err);
        if err.code != "ResourceInUseException" {
            return Err(err);
        }
    }
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| classify("dynamodb", "DescribeTimeToLive", e))?;
    let enabled = ttl
        .time_to_live_description
        .and_then(|d| d.time_to_live_status)
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !enabled {
        dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().expect("set"),
            )
            .send()
            .await
            .map_err(|e| classify("dynamodb", "UpdateTimeToLive", e))?;
    }
    Ok(())
}

async fn ensure_bus(eventbridge: &aws_sdk_eventbridge::Client, name: &str) -> Result<(), AwsError> {
    match eventbridge.create_event_bus().name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = classify("eventbridge", "CreateEventBus", err);
            if err.code == "ResourceAlreadyExistsException" {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}
