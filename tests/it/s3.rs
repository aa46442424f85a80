//! S3 backups against the emulator (being written).
