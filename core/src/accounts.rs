//! Other accounts: the service ports of an account the fleet reaches through an assumed role,
//! and a view of the catalog that holds one account's records only.
//!
//! The catalog is the fleet's own (one table for every account), so each record names the
//! account its artifact lives in. A task acting in an account sees that account's records and
//! no other: a prune of `prod-db` in one account never counts the backups of another account's
//! `prod-db`, and every record it writes is stamped with its account.

use async_trait::async_trait;
use backup_schemas::{AccountRef, ArtifactRef};
use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::artifacts::{ArchiveRecord, CatalogQuery, CatalogRecord, Verification};
use crate::error::{AwsError, ErrorClass};
use crate::ports::Catalog;
use crate::services::block::BlockStorage;
use crate::services::database::DatabaseSnapshots;
use crate::services::objects::ObjectStore;

/// The service ports acting in one account.
#[derive(Clone)]
pub struct AccountPorts {
    pub block: Arc<dyn BlockStorage>,
    pub databases: Arc<dyn DatabaseSnapshots>,
    pub objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for AccountPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountPorts")
    }
}

/// Reaches other accounts through the roles the policy names.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// The ports acting in `account`, with credentials from its role (cached and refreshed
    /// before they expire). Fails, naming the role, when the role cannot be assumed.
    async fn ports(&self, account: &AccountRef) -> Result<AccountPorts, AwsError>;
}

/// For processes given no way to assume roles (tests of a single account): every other
/// account is refused with a clear, permanent error.
#[derive(Debug, Default)]
pub struct OwnAccountOnly;

#[async_trait]
impl Accounts for OwnAccountOnly {
    async fn ports(&self, account: &AccountRef) -> Result<AccountPorts, AwsError> {
        Err(AwsError {
            service: "sts",
            operation: "AssumeRole",
            code: "NoCrossAccountAccess".into(),
            message: format!(
                "this process acts in its own account only and cannot assume {} for account {}",
                account.role_arn, account.account_id
            ),
            class: ErrorClass::Permanent,
        })
    }
}

/// The account label of logs and reports: the id, or `self` for the fleet's own account.
pub fn account_label(account: Option<&str>) -> &str {
    account.unwrap_or(backup_schemas::envelope::OWN_ACCOUNT_LABEL)
}

/// The catalog as seen from one account (`None`: the fleet's own): reads return that account's
/// records only, records written are stamped with it, and another account's task changes only
/// its own account's records. Lookups by artifact pass through (the fleet's artifact ids are
/// unique across accounts: AWS ids, or names derived from account-specific task ids).
pub struct AccountCatalog {
    inner: Arc<dyn Catalog>,
    account: Option<String>,
}

impl AccountCatalog {
    pub fn new(inner: Arc<dyn Catalog>, account: Option<&AccountRef>) -> Self {
        Self { inner, account: account.map(|a| a.account_id.clone()) }
    }

    fn mine(&self, records: Vec<CatalogRecord>) -> Vec<CatalogRecord> {
        records.into_iter().filter(|r| r.account == self.account).collect()
    }

    /// Before a task in another account changes a record: the record must be that account's
    /// (RDS identifiers repeat across accounts, and an id chosen in a member account must never
    /// reach a record of the backup account). One read, for other accounts' tasks only: the
    /// fleet's own artifacts are AWS ids or names derived from its own task ids.
    async fn check_owner(&self, artifact: &ArtifactRef) -> Result<(), AwsError> {
        if self.account.is_none() {
            return Ok(());
        }
        match self.inner.get(artifact).await? {
            Some(record) if record.account != self.account => Err(AwsError {
                service: "dynamodb",
                operation: "UpdateItem",
                code: "ForeignRecord".into(),
                message: format!(
                    "the catalog record of {} belongs to account {}, not {}",
                    artifact.id,
                    account_label(record.account.as_deref()),
                    account_label(self.account.as_deref())
                ),
                class: ErrorClass::Permanent,
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Catalog for AccountCatalog {
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError> {
        let mut record = record.clone();
        record.account = self.account.clone();
        self.inner.put(&record).await
    }

    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError> {
        self.inner.get(artifact).await
    }

    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.mine(self.inner.by_resource(resource).await?))
    }

    async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.mine(self.inner.expiring_before(before).await?))
    }

    async fn list(&self, query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.mine(self.inner.list(query).await?))
    }

    async fn add_copy(&self, source: &ArtifactRef, copy: &ArtifactRef) -> Result<(), AwsError> {
        self.inner.add_copy(source, copy).await
    }

    async fn set_verification(&self, artifact: &ArtifactRef, verification: &Verification) -> Result<(), AwsError> {
        self.check_owner(artifact).await?;
        self.inner.set_verification(artifact, verification).await
    }

    async fn mark_deleted(&self, artifact: &ArtifactRef, at: DateTime<Utc>) -> Result<(), AwsError> {
        self.check_owner(artifact).await?;
        self.inner.mark_deleted(artifact, at).await
    }

    async fn set_archive(&self, artifact: &ArtifactRef, archive: &ArchiveRecord) -> Result<(), AwsError> {
        self.check_owner(artifact).await?;
        self.inner.set_archive(artifact, archive).await
    }
}
