//! Domain ports for the services the fleet backs up, one module per service. Adapters in
//! `backup-aws` implement them on the SDK; handlers in `backup-worker` and the producer's discovery
//! depend only on these traits.

pub mod block;
pub mod database;
pub mod objects;
pub mod secrets;
