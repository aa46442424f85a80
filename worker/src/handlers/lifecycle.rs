//! Retention and verification (placeholder; being written).

use async_trait::async_trait;
use backup_core::TaskError;
use backup_schemas::{DeleteArtifact, Prune, Verify};

use crate::handler::{Handler, HandlerResult, TaskContext};
use crate::handlers::services::Services;

#[async_trait]
impl Handler<Prune> for Services {
    async fn run(&self, _p: &Prune, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("retention.prune is not available in this build"))
    }
}

#[async_trait]
impl Handler<DeleteArtifact> for Services {
    async fn run(&self, _p: &DeleteArtifact, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("retention.delete is not available in this build"))
    }
}

#[async_trait]
impl Handler<Verify> for Services {
    async fn run(&self, _p: &Verify, _ctx: &TaskContext) -> HandlerResult {
        Err(TaskError::permanent("verify.artifact is not available in this build"))
    }
}
