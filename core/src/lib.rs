//! Domain logic of the fleet with no AWS SDK in it: error classes and retry schedules, backup
//! policies and schedule windows, retention math, and the ports (traits) AWS adapters implement.

pub mod accounts;
pub mod archive;
pub mod artifacts;
pub mod backoff;
pub mod cost;
pub mod coverage;
pub mod error;
pub mod exit;
pub mod inventory;
pub mod policy;
pub mod ports;
pub mod prices;
pub mod ratelimit;
pub mod retention;
pub mod schedule;
pub mod services;

pub use error::{AwsError, ErrorClass, RetryClass, TaskError};
