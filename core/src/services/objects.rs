//! S3: listing, copying and reading objects (placeholder; being written).

use async_trait::async_trait;

#[async_trait]
pub trait ObjectStore: Send + Sync {}
