//! Integration tests against the local AWS emulator (moto server, started by the harness when
//! none answers). One binary, one module per area, every test on its own resources.

mod accounts;
mod archive;
mod backupctl;
mod bootstrap;
mod chaos;
mod cli;
mod coverage;
mod ebs;
mod logical;
mod producer;
mod rds;
mod restore;
mod s3;
mod telemetry;
mod worker;
