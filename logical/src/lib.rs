//! Logical backups of PostgreSQL through its own client tools (`psql`, `pg_dump`, `pg_restore`),
//! which the worker image ships. This crate owns the conversation with the database: connection
//! settings handed to the tools without ever reaching a command line or a log, one exported
//! snapshot shared by the table statistics and the dump (so both describe the same data), the dump
//! as a byte stream, a restore from a byte stream into a scratch database, and validation
//! (statistics compared, SQL checks). It knows nothing of AWS: the worker streams bytes between
//! these processes and S3.

mod connection;
mod stats;
mod tools;

pub use connection::Connection;
pub use stats::{compare, Difference, TableStats, STATS_VERSION};
pub use tools::{CheckOutcome, DumpProcess, PgError, RestoreProcess, SnapshotSession, Tools};
