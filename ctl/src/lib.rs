//! `backupctl`, the operator CLI: bootstrap the fleet's resources, inspect runs, tasks, the catalog
//! and the DLQs, replay dead letters, probe the fleet with canaries, start restores.
//!
//! Every command that prints for machines takes `--json`; human output goes to stdout as tables,
//! progress and diagnostics to stderr. Exit codes: 0 success, 1 failure, 2 usage error,
//! 3 a `--check` found a problem.

pub mod commands;
pub mod output;

pub use commands::{run, Cli};
