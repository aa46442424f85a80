//! `Accounts` through STS AssumeRole: one `AwsContext` per role, whose credentials the SDK caches
//! and refreshes before they expire, and one set of adapters (with its own client-side rate
//! limits: AWS's limits are per account and region) per account.
//!
//! The first use of a role assumes it at once, so a role that cannot be assumed fails with an
//! error naming the role and the account instead of surfacing later as an opaque credentials
//! failure of some EC2 or RDS call. A failure is not cached: the next task tries again.

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use backup_core::accounts::{AccountPorts, Accounts};
use backup_core::ratelimit::RateLimiter;
use backup_core::{AwsError, ErrorClass, RetryClass};
use backup_schemas::AccountRef;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use crate::config::AwsContext;
use crate::ec2::Ec2BlockStorage;
use crate::rds::RdsDatabases;
use crate::s3::S3Objects;

/// The session name CloudTrail shows in the other account for everything the fleet does there.
const SESSION_NAME: &str = "backup-fleet";

/// One entry per (account id, role ARN): a role is only ever used for the account it was checked
/// against, and each account waits only on its own AssumeRole.
type Slot = Arc<OnceCell<AccountPorts>>;

pub struct AssumedRoles {
    base: AwsContext,
    rate_share: f64,
    accounts: Mutex<HashMap<(String, String), Slot>>,
}

impl AssumedRoles {
    /// Assumes roles with the credentials of `base`; each account's adapters get `rate_share`
    /// of AWS's request rates (the same share as the fleet's own account).
    pub fn new(base: AwsContext, rate_share: f64) -> Self {
        Self { base, rate_share, accounts: Mutex::default() }
    }
}

impl AwsContext {
    /// This context acting as `role_arn`: the same endpoint, region, timeouts and call counter,
    /// credentials from STS AssumeRole (cached, refreshed before they expire).
    pub async fn assuming(&self, role_arn: &str) -> Result<AwsContext, AwsError> {
        let provider =
            AssumeRoleProvider::builder(role_arn).session_name(SESSION_NAME).configure(self.sdk_config()).build().await;
        // Assume now, so a role that cannot be assumed is named here.
        provider
            .provide_credentials()
            .await
            .map_err(|err| assume_error(role_arn, &DisplayErrorContext(&err).to_string()))?;
        let sdk = self.sdk_config().to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
        Ok(self.with_sdk_config(sdk))
    }
}

/// An AssumeRole refusal is a configuration error (trust policy, a missing role, a policy that
/// names the wrong ARN): retrying will not help, so it fails the task at once; anything else
/// (throttling, a timeout) is retried.
fn assume_error(role_arn: &str, detail: &str) -> AwsError {
    let refused = ["AccessDenied", "not authorized", "InvalidClientTokenId", "NoSuchEntity", "ValidationError"]
        .iter()
        .any(|marker| detail.contains(marker));
    AwsError {
        service: "sts",
        operation: "AssumeRole",
        code: if refused { "AccessDenied".into() } else { "AssumeRoleFailed".into() },
        message: format!("cannot assume role {role_arn}: {detail}"),
        class: if refused { ErrorClass::Permanent } else { ErrorClass::Retry(RetryClass::Transient) },
    }
}

#[async_trait]
impl Accounts for AssumedRoles {
    async fn ports(&self, account: &AccountRef) -> Result<AccountPorts, AwsError> {
        // Checked on every call, before any cache: a message naming a role outside its account
        // never reaches credentials cached for that role.
        account.check().map_err(|e| AwsError {
            service: "sts",
            operation: "AssumeRole",
            code: "InvalidAccount".into(),
            message: format!("account {}: {e}", account.account_id),
            class: ErrorClass::Permanent,
        })?;
        let slot: Slot = self
            .accounts
            .lock()
            .expect("account cache poisoned")
            .entry((account.account_id.clone(), account.role_arn.clone()))
            .or_default()
            .clone();
        // Concurrent first tasks of one account assume its role once; a failure is not kept, so
        // the next task tries again.
        let ports = slot
            .get_or_try_init(|| async {
                let aws = self.base.assuming(&account.role_arn).await.map_err(|mut err| {
                    err.message = format!("account {}: {}", account.account_id, err.message);
                    err
                })?;
                let limits = RateLimiter::aws_defaults(self.rate_share);
                Ok::<_, AwsError>(AccountPorts {
                    block: Arc::new(Ec2BlockStorage::new(aws.clone(), limits.clone())),
                    databases: Arc::new(RdsDatabases::new(aws.clone(), limits)),
                    objects: Arc::new(S3Objects::new(aws)),
                })
            })
            .await?;
        Ok(ports.clone())
    }
}
