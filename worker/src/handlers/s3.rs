//! S3 backups (placeholder; being written).

use async_trait::async_trait;
use backup_core::TaskError;
use backup_schemas::{CopyObject, CopyObjects, ScanBucket};

use crate::handler::{Handler, HandlerResult, TaskContext};
use crate::handlers::services::Services;

#[async_trait]
impl Handler<ScanBucket> for Services {
    async fn run(&self, _p: &ScanBucket, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("s3.scan_bucket is not available in this build"))
    }
}

#[async_trait]
impl Handler<CopyObjects> for Services {
    async fn run(&self, _p: &CopyObjects, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("s3.copy_batch is not available in this build"))
    }
}

#[async_trait]
impl Handler<CopyObject> for Services {
    async fn run(&self, _p: &CopyObject, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("s3.copy_object is not available in this build"))
    }
}
