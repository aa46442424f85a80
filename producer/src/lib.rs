//! The producer: decides what must be backed up and enqueues it as fine-grained tasks.
//!
//! - [`discovery`]: finds the resources a plan selects (paginated, server-side tag filters
//!   where the API has them).
//! - [`expand`]: turns a plan window and its resources into tasks (pure, deterministic).
//! - [`events`]: maps AWS events to tasks (or to a counted "not selected").
//! - [`enqueue`]: sends envelopes with SendMessageBatch, several batches in flight.
//! - [`rules`]: the EventBridge rules the policy needs.
//! - [`commands`]: `run`, `serve`, `ingest`, `rules`.

pub mod commands;
pub mod discovery;
pub mod enqueue;
pub mod events;
pub mod expand;
pub mod rules;
