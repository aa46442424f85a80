//! RDS backups against the emulator (being written).
