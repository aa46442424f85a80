//! Integration tests against the local AWS emulator (moto server, started by the harness when
//! none answers). One binary, one module per area, every test on its own resources.

mod bootstrap;
mod ebs;
mod rds;
mod s3;
mod worker;
