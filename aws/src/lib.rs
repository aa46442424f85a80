//! The only crate that talks to AWS. It builds SDK configuration (`config`), counts calls
//! (`calls`), classifies SDK errors once (`classify`), and implements the domain ports of
//! `backup-core` on SQS, DynamoDB, EventBridge, EC2, RDS, S3 and Secrets Manager.

pub mod accounts;
pub mod bootstrap;
pub mod calls;
pub mod catalog;
pub mod classify;
pub mod config;
pub mod dynamo;
pub mod ec2;
pub mod eventbridge;
pub mod rds;
pub mod s3;
pub mod secrets;
pub mod sqs;

pub use config::{AwsContext, AwsSettings, NoRegion, RegionClients};
