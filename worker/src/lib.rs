//! The backup worker: an SQS consumer that runs each task exactly once in effect, with DynamoDB
//! leases and fencing, heartbeats, classified retries, poison handling and graceful drain.
//!
//! - [`runtime`]: the receive / claim / run / dispose loop and shutdown.
//! - [`handler`]: the handler trait, outcomes and the exhaustive dispatch.
//! - [`handlers`]: one module per service area.
//! - [`acks`]: batched deletes and visibility changes.

pub mod acks;
pub mod handler;
pub mod handlers;
pub mod runtime;
pub mod settings;
pub mod stats;

pub use handler::{Handler, Handlers, Outcome, TaskContext};
pub use runtime::{RuntimeConfig, Worker};
pub use settings::WorkerSettings;
