//! The catalog as one account sees it: its own records only, every record it writes stamped
//! with it, and no change to another account's record.

use async_trait::async_trait;
use backup_core::accounts::AccountCatalog;
use backup_core::artifacts::{ArchiveRecord, CatalogQuery, CatalogRecord, Verification};
use backup_core::ports::Catalog;
use backup_core::AwsError;
use backup_schemas::{AccountRef, ArtifactKind, ArtifactRef, TaskId};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Memory(Mutex<BTreeMap<String, CatalogRecord>>);

#[async_trait]
impl Catalog for Memory {
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError> {
        self.0.lock().unwrap().entry(record.artifact.id.clone()).or_insert_with(|| record.clone());
        Ok(())
    }
    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError> {
        Ok(self.0.lock().unwrap().get(&artifact.id).cloned())
    }
    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.0.lock().unwrap().values().filter(|r| r.resource == resource).cloned().collect())
    }
    async fn expiring_before(&self, _before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
    async fn list(&self, _query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
    async fn add_copy(&self, _source: &ArtifactRef, _copy: &ArtifactRef) -> Result<(), AwsError> {
        Ok(())
    }
    async fn set_verification(&self, artifact: &ArtifactRef, verification: &Verification) -> Result<(), AwsError> {
        if let Some(record) = self.0.lock().unwrap().get_mut(&artifact.id) {
            record.verification = Some(verification.clone());
        }
        Ok(())
    }
    async fn mark_deleted(&self, artifact: &ArtifactRef, at: DateTime<Utc>) -> Result<(), AwsError> {
        if let Some(record) = self.0.lock().unwrap().get_mut(&artifact.id) {
            record.deleted_at = Some(at);
        }
        Ok(())
    }
    async fn set_archive(&self, _artifact: &ArtifactRef, _archive: &ArchiveRecord) -> Result<(), AwsError> {
        Ok(())
    }
}

fn record(id: &str, resource: &str) -> CatalogRecord {
    CatalogRecord {
        artifact: ArtifactRef { kind: ArtifactKind::RdsSnapshot, region: "us-east-1".into(), id: id.into() },
        resource: resource.into(),
        resource_region: "us-east-1".into(),
        plan: "daily".into(),
        tier: "daily".into(),
        task_id: TaskId::derive("test", &serde_json::json!([id])),
        created_at: Utc::now(),
        expires_at: None,
        size_bytes: None,
        encrypted: None,
        copy_of: None,
        copies: Vec::new(),
        details: BTreeMap::new(),
        verification: None,
        deleted_at: None,
        archive: None,
        account: None,
    }
}

fn account(id: &str) -> AccountRef {
    AccountRef { account_id: id.into(), role_arn: format!("arn:aws:iam::{id}:role/r") }
}

#[tokio::test]
async fn each_account_sees_writes_and_changes_only_its_own_records() {
    let memory: Arc<dyn Catalog> = Arc::new(Memory::default());
    let own = AccountCatalog::new(memory.clone(), None);
    let member = AccountCatalog::new(memory.clone(), Some(&account("111111111111")));
    let vault = AccountCatalog::new(memory.clone(), Some(&account("222222222222")));
    own.put(&record("bf-prod-db-own", "prod-db")).await.unwrap();
    member.put(&record("bf-prod-db-member", "prod-db")).await.unwrap();
    vault.put(&record("bf-copy-prod-db", "prod-db")).await.unwrap();

    // Stamped with the writer's account, whatever the record said.
    let stored = memory.get(&record("bf-prod-db-member", "").artifact).await.unwrap().unwrap();
    assert_eq!(stored.account.as_deref(), Some("111111111111"));
    // One resource name, three databases: each account sees its own.
    let ids = |records: Vec<CatalogRecord>| records.into_iter().map(|r| r.artifact.id).collect::<Vec<_>>();
    assert_eq!(ids(own.by_resource("prod-db").await.unwrap()), ["bf-prod-db-own"]);
    assert_eq!(ids(member.by_resource("prod-db").await.unwrap()), ["bf-prod-db-member"]);
    assert_eq!(ids(vault.list(&CatalogQuery::default()).await.unwrap()), ["bf-copy-prod-db"]);

    // A member account's task cannot mark the backup account's copy deleted or verified.
    let vault_copy = record("bf-copy-prod-db", "").artifact;
    let err = member.mark_deleted(&vault_copy, Utc::now()).await.unwrap_err();
    assert!(err.message.contains("belongs to account 222222222222"), "{err}");
    let verification = Verification { verified_at: Utc::now(), ok: false, checks: BTreeMap::new() };
    assert!(member.set_verification(&vault_copy, &verification).await.is_err());
    let untouched = memory.get(&vault_copy).await.unwrap().unwrap();
    assert!(untouched.deleted_at.is_none() && untouched.verification.is_none());
    // Its own record it may change.
    vault.mark_deleted(&vault_copy, Utc::now()).await.unwrap();
    assert!(memory.get(&vault_copy).await.unwrap().unwrap().deleted_at.is_some());
}
