//! `Catalog` on DynamoDB. Item per artifact: `pk = art#<kind>#<region>#<id>`, the record as JSON,
//! plus the indexed attributes `resource`/`created_at` (GSI `by_resource`) and
//! `expiry_bucket`/`expires_at` (GSI `by_expiry`, sparse: removed once the artifact is deleted).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use backup_core::artifacts::{ArchiveRecord, CatalogQuery, CatalogRecord, Verification};
use backup_core::ports::Catalog;
use backup_core::AwsError;
use backup_schemas::ArtifactRef;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use crate::classify::classify;
use crate::dynamo::{get_s, get_time, n, s, Item, TTL_ATTRIBUTE};

/// Value of `expiry_bucket` for live artifacts with an expiry (one partition: the index is small,
/// since records leave it when their artifact is deleted).
const LIVE: &str = "live";
/// Deleted artifacts' records are kept this long for audit, then TTL collects them.
const DELETED_RECORD_DAYS: i64 = 400;

#[derive(Clone, Debug)]
pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCatalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

pub fn artifact_key(artifact: &ArtifactRef) -> String {
    format!("art#{}#{}#{}", artifact.kind.as_str(), artifact.region, artifact.id)
}

fn key(artifact: &ArtifactRef) -> Item {
    HashMap::from([("pk".to_owned(), s(artifact_key(artifact)))])
}

fn record_from(item: &Item) -> Option<CatalogRecord> {
    let mut record: CatalogRecord = serde_json::from_str(get_s(item, "record")?).ok()?;
    if let Some(AttributeValue::Ss(copies)) = item.get("copy_refs") {
        for copy in copies.iter().filter_map(|c| serde_json::from_str::<ArtifactRef>(c).ok()) {
            if !record.copies.contains(&copy) {
                record.copies.push(copy);
            }
        }
    }
    if let Some(verification) = get_s(item, "verification").and_then(|v| serde_json::from_str(v).ok()) {
        record.verification = Some(verification);
    }
    if let Some(deleted_at) = get_time(item, "deleted_at") {
        record.deleted_at = Some(deleted_at);
    }
    if let Some(archive) = get_s(item, "archive").and_then(|v| serde_json::from_str(v).ok()) {
        record.archive = Some(archive);
    }
    Some(record)
}

impl DynamoCatalog {
    async fn query_all(
        &self,
        index: &str,
        condition: &str,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
        forward: bool,
    ) -> Result<Vec<CatalogRecord>, AwsError> {
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(names.clone()).filter(|n| !n.is_empty()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb", "Query", e))?;
            records.extend(output.items.unwrap_or_default().iter().filter_map(record_from));
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(records),
            }
        }
    }
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError> {
        let mut item: Item = HashMap::from([
            ("pk".to_owned(), s(artifact_key(&record.artifact))),
            ("record".to_owned(), s(serde_json::to_string(record).expect("record serialises"))),
            ("resource".to_owned(), s(&record.resource)),
            ("created_at".to_owned(), s(record.created_at.to_rfc3339())),
            ("plan".to_owned(), s(&record.plan)),
            ("kind".to_owned(), s(record.artifact.kind.as_str())),
            ("task_id".to_owned(), s(record.task_id.as_str())),
        ]);
        if let (Some(expires_at), None) = (record.expires_at, record.deleted_at) {
            item.insert("expiry_bucket".into(), s(LIVE));
            item.insert("expires_at".into(), s(expires_at.to_rfc3339()));
        }
        if !record.copies.is_empty() {
            let copies = record.copies.iter().map(|c| serde_json::to_string(c).expect("ref serialises")).collect();
            item.insert("copy_refs".into(), AttributeValue::Ss(copies));
        }
        // Create-only: a record, once written, is only ever changed field by field (copies,
        // verification, drills, deletion). A re-run of the backup task that made the artifact
        // would otherwise wipe those, and a wiped failed verification would make a restore pick
        // a bad backup.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::debug!(artifact = %record.artifact.id, "already catalogued; the record is left as it is");
                Ok(())
            }
            Err(err) => Err(classify("dynamodb", "PutItem", err)),
        }
    }

    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(artifact)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "GetItem", e))?;
        Ok(output.item.as_ref().and_then(record_from))
    }

    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError> {
        self.query_all(
            "by_resource",
            "#r = :r",
            HashMap::from([("#r".to_owned(), "resource".to_owned())]),
            HashMap::from([(":r".to_owned(), s(resource))]),
            false,
        )
        .await
    }

    async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError> {
        self.query_all(
            "by_expiry",
            "expiry_bucket = :b AND expires_at < :t",
            HashMap::new(),
            HashMap::from([(":b".to_owned(), s(LIVE)), (":t".to_owned(), s(before.to_rfc3339()))]),
            true,
        )
        .await
    }

    async fn list(&self, query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError> {
        let mut records = if let Some(resource) = &query.resource {
            self.by_resource(resource).await?
        } else {
            let mut records = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let output = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| classify("dynamodb", "Scan", e))?;
                records.extend(output.items.unwrap_or_default().iter().filter_map(record_from));
                match output.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
            records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            records
        };
        records.retain(|r| {
            query.plan.as_ref().is_none_or(|p| &r.plan == p) && (query.include_deleted || r.deleted_at.is_none())
        });
        Ok(records)
    }

    async fn add_copy(&self, source: &ArtifactRef, copy: &ArtifactRef) -> Result<(), AwsError> {
        // ADD to a string set is idempotent: a re-run adds nothing new.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(source)))
            .update_expression("ADD copy_refs :c")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":c",
                AttributeValue::Ss(vec![serde_json::to_string(copy).expect("ref serialises")]),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify("dynamodb", "UpdateItem", err)),
        }
    }

    async fn set_verification(&self, artifact: &ArtifactRef, verification: &Verification) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(artifact)))
            .update_expression("SET verification = :v, verified_ok = :ok")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":v", s(serde_json::to_string(verification).expect("serialises")))
            .expression_attribute_values(":ok", AttributeValue::Bool(verification.ok))
            .send()
            .await
            .map_err(|e| classify("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    async fn set_archive(&self, artifact: &ArtifactRef, archive: &ArchiveRecord) -> Result<(), AwsError> {
        // Its own attribute, like the verification: the create-only put never overwrites it.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(artifact)))
            // ARCHIVE is a DynamoDB reserved word: the attribute goes by a placeholder.
            .update_expression("SET #archive = :a")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#archive", "archive")
            .expression_attribute_values(":a", s(serde_json::to_string(archive).expect("serialises")))
            .send()
            .await
            .map_err(|e| classify("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    async fn mark_deleted(&self, artifact: &ArtifactRef, at: DateTime<Utc>) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(artifact)))
            .update_expression("SET deleted_at = :at, #ttl = :ttl REMOVE expiry_bucket")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":ttl", n(at.timestamp() + DELETED_RECORD_DAYS * 86_400))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify("dynamodb", "UpdateItem", err)),
        }
    }
}
