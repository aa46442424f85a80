//! RDS backups (placeholder; being written).

use async_trait::async_trait;
use backup_core::TaskError;
use backup_schemas::{CopyDbSnapshot, SnapshotDbCluster, SnapshotDbInstance};

use crate::handler::{Handler, HandlerResult, TaskContext};
use crate::handlers::services::Services;

#[async_trait]
impl Handler<SnapshotDbInstance> for Services {
    async fn run(&self, _p: &SnapshotDbInstance, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("rds.snapshot_instance is not available in this build"))
    }
}

#[async_trait]
impl Handler<SnapshotDbCluster> for Services {
    async fn run(&self, _p: &SnapshotDbCluster, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("rds.snapshot_cluster is not available in this build"))
    }
}

impl Services {
    pub async fn copy_db_snapshot(&self, _p: &CopyDbSnapshot, _cluster: bool, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("rds copies are not available in this build"))
    }
}
