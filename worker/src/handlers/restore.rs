//! Restores and restore drills (placeholder; being written).

use async_trait::async_trait;
use backup_core::TaskError;
use backup_schemas::{RestoreVolume, RestoreInstance, RestoreDbInstance, RestoreDbCluster, RestoreObjects, RestoreDrill};

use crate::handler::{Handler, HandlerResult, TaskContext};
use crate::handlers::services::Services;

#[async_trait]
impl Handler<RestoreVolume> for Services {
    async fn run(&self, _p: &RestoreVolume, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.volume is not available in this build"))
    }
}

#[async_trait]
impl Handler<RestoreInstance> for Services {
    async fn run(&self, _p: &RestoreInstance, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.instance is not available in this build"))
    }
}

#[async_trait]
impl Handler<RestoreDbInstance> for Services {
    async fn run(&self, _p: &RestoreDbInstance, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.db_instance is not available in this build"))
    }
}

#[async_trait]
impl Handler<RestoreDbCluster> for Services {
    async fn run(&self, _p: &RestoreDbCluster, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.db_cluster is not available in this build"))
    }
}

#[async_trait]
impl Handler<RestoreObjects> for Services {
    async fn run(&self, _p: &RestoreObjects, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.s3_objects is not available in this build"))
    }
}

#[async_trait]
impl Handler<RestoreDrill> for Services {
    async fn run(&self, _p: &RestoreDrill, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("restore.drill is not available in this build"))
    }
}
