//! The wire contract between producer, workers and operators: the versioned task envelope, every
//! task kind with typed parameters, id newtypes, task states, and the AWS events the producer reads.
//! Serde only: no AWS SDK and no async runtime, so any tool can speak the protocol.

pub mod envelope;
pub mod events;
pub mod ids;
pub mod json_schema;
pub mod samples;
pub mod state;
pub mod tags;
pub mod task;

pub use envelope::{DecodeError, EncodeError, Envelope, Origin, TraceContext, MAX_MESSAGE_BYTES, SCHEMA_VERSION};
pub use ids::{LeaseOwner, RunId, TaskId};
pub use state::TaskState;
pub use task::*;
