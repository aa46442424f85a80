//! EC2 backups against the emulator (being written).
