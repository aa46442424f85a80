//! RDS: DB instances, Aurora clusters and their manual snapshots (placeholder; being written).

use async_trait::async_trait;

#[async_trait]
pub trait DatabaseSnapshots: Send + Sync {}
