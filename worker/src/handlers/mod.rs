//! Task handlers: `Services` implements `Handler<P>` for every backup, lifecycle and restore kind,
//! one module per service area; the canary has its own handler.

pub mod archive;
pub mod canary;
pub mod ebs;
pub mod export;
pub mod lifecycle;
pub mod logical;
pub mod rds;
pub mod restore;
pub mod s3;
pub mod s3_inventory;
pub mod services;
