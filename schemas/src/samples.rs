//! One sample task per kind, for the golden example messages checked in under `schemas/golden/`
//! and for tests. The match over `TaskKind` is exhaustive: a new kind needs a sample.

use chrono::{DateTime, TimeZone, Utc};

use crate::envelope::{Envelope, Origin, TraceContext};
use crate::ids::{RunId, TaskId};
use crate::task::*;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, hour, 0, 0).single().expect("valid instant")
}

fn ctx() -> BackupContext {
    BackupContext {
        plan: "daily".into(),
        tier: Tier::Daily,
        window: at(2),
        expires_at: Some(at(2) + chrono::Duration::days(7)),
        copy_to: vec![CopyTarget {
            region: "us-west-2".into(),
            kms_key: Some("alias/backup".into()),
            retain_days: Some(30),
            ..Default::default()
        }],
        verify: true,
        retain: Some(RetentionRules { days: Some(7), count: Some(7), min_keep: 3, ..RetentionRules::default() }),
        export: None,
    }
}

fn dest() -> S3Destination {
    S3Destination {
        bucket: "org-backups".into(),
        region: "us-east-1".into(),
        storage_class: Some("STANDARD_IA".into()),
        lock_days: Some(30),
    }
}

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        key: key.into(),
        size: 1024,
        etag: Some("\"9b2cf535f27731c974343645a3985328\"".into()),
        version_id: None,
    }
}

/// A representative task of `kind`.
pub fn sample(kind: TaskKind) -> Task {
    let snapshot = ArtifactRef {
        kind: ArtifactKind::EbsSnapshot,
        region: "us-east-1".into(),
        id: "snap-0123456789abcdef0".into(),
    };
    match kind {
        TaskKind::SnapshotVolume => Task::SnapshotVolume(SnapshotVolume {
            region: "us-east-1".into(),
            volume_id: "vol-0123456789abcdef0".into(),
            ctx: ctx(),
        }),
        TaskKind::SnapshotInstance => Task::SnapshotInstance(SnapshotInstance {
            region: "us-east-1".into(),
            instance_id: "i-0123456789abcdef0".into(),
            exclude_boot_volume: false,
            ctx: ctx(),
        }),
        TaskKind::CreateAmi => Task::CreateAmi(CreateAmi {
            region: "us-east-1".into(),
            instance_id: "i-0123456789abcdef0".into(),
            reboot: false,
            ctx: ctx(),
        }),
        TaskKind::CopySnapshot => Task::CopySnapshot(CopySnapshot {
            source_region: "us-east-1".into(),
            snapshot_id: "snap-0123456789abcdef0".into(),
            source_resource: "vol-0123456789abcdef0".into(),
            target: ctx().copy_to[0].clone(),
            ctx: ctx(),
            set: None,
        }),
        TaskKind::CopyAmi => Task::CopyAmi(CopyAmi {
            source_region: "us-east-1".into(),
            image_id: "ami-0123456789abcdef0".into(),
            source_resource: "i-0123456789abcdef0".into(),
            target: ctx().copy_to[0].clone(),
            ctx: ctx(),
        }),
        TaskKind::SnapshotDbInstance => Task::SnapshotDbInstance(SnapshotDbInstance {
            region: "us-east-1".into(),
            db_instance_id: "orders-db".into(),
            ctx: ctx(),
        }),
        TaskKind::SnapshotDbCluster => Task::SnapshotDbCluster(SnapshotDbCluster {
            region: "us-east-1".into(),
            db_cluster_id: "orders-aurora".into(),
            ctx: ctx(),
        }),
        TaskKind::CopyDbSnapshot => Task::CopyDbSnapshot(CopyDbSnapshot {
            source_region: "us-east-1".into(),
            snapshot_arn: "arn:aws:rds:us-east-1:123456789012:snapshot:bf-orders-db-0123".into(),
            source_resource: "orders-db".into(),
            target: ctx().copy_to[0].clone(),
            ctx: ctx(),
        }),
        TaskKind::CopyDbClusterSnapshot => Task::CopyDbClusterSnapshot(CopyDbSnapshot {
            source_region: "us-east-1".into(),
            snapshot_arn: "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:bf-orders-aurora-0123".into(),
            source_resource: "orders-aurora".into(),
            target: ctx().copy_to[0].clone(),
            ctx: ctx(),
        }),
        TaskKind::ScanBucket => Task::ScanBucket(ScanBucket {
            region: "us-east-1".into(),
            bucket: "media-uploads".into(),
            prefix: None,
            continuation: None,
            page: 0,
            listed_after: None,
            inventory: None,
            dest: dest(),
            ctx: ctx(),
        }),
        TaskKind::CopyObjects => Task::CopyObjects(CopyObjects {
            region: "us-east-1".into(),
            bucket: "media-uploads".into(),
            page: 0,
            objects: vec![object("photos/2026/ünïcode key.jpg"), object("a+b%20c.txt")],
            dest: dest(),
            ctx: ctx(),
        }),
        TaskKind::CopyObject => Task::CopyObject(CopyObject {
            region: "us-east-1".into(),
            bucket: "media-uploads".into(),
            object: object("invoices/2026-11.pdf"),
            dest: dest(),
            ctx: ctx(),
        }),
        TaskKind::Prune => Task::Prune(Prune {
            plan: "daily".into(),
            resource: "vol-0123456789abcdef0".into(),
            resource_type: ResourceType::Ec2Volume,
            region: "us-east-1".into(),
            rules: RetentionRules { days: Some(7), count: Some(7), min_keep: 3, ..RetentionRules::default() },
            as_of: at(2),
            source_account: None,
        }),
        TaskKind::DeleteArtifact => Task::DeleteArtifact(DeleteArtifact {
            plan: "daily".into(),
            artifact: snapshot,
            reason: "older than 7 days".into(),
            prune: Some(Prune {
                plan: "daily".into(),
                resource: "vol-0123456789abcdef0".into(),
                resource_type: ResourceType::Ec2Volume,
                region: "us-east-1".into(),
                rules: RetentionRules { days: Some(7), count: Some(7), min_keep: 3, ..RetentionRules::default() },
                as_of: at(2),
                source_account: None,
            }),
            set: Vec::new(),
        }),
        TaskKind::ArchiveSnapshot => Task::ArchiveSnapshot(ArchiveSnapshot {
            plan: "monthly".into(),
            region: "us-east-1".into(),
            snapshot_id: "snap-0123456789abcdef0".into(),
            resource: "vol-0123456789abcdef0".into(),
            estimate: ArchiveEstimate {
                full_gib: 500.0,
                unique_gib: 200.0,
                keep_days: 330.0,
                monthly_saving_usd: 3.75,
                reason: "kept 330 more days; full 500 GiB archived costs $6.25/month, unique 200 GiB in standard $10.00/month".into(),
            },
            as_of: at(2),
        }),
        TaskKind::ExportSnapshot => Task::ExportSnapshot(ExportSnapshot {
            region: "us-east-1".into(),
            snapshot_arn: "arn:aws:rds:us-east-1:123456789012:snapshot:backup-fleet-t-0123456789abcdef".into(),
            source_resource: "orders-db".into(),
            export: SnapshotExport {
                bucket: "org-backups".into(),
                prefix: Some("exports".into()),
                iam_role_arn: "arn:aws:iam::123456789012:role/backup-fleet-rds-export".into(),
                kms_key: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                retain_days: Some(365),
            },
            ctx: ctx(),
        }),
        TaskKind::DumpDatabase => Task::DumpDatabase(DumpDatabase {
            region: "us-east-1".into(),
            database: LogicalDatabase {
                name: "orders".into(),
                engine: DbEngine::Postgres,
                secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-db-AbCdEf".into(),
            },
            dest: dest(),
            ctx: ctx(),
        }),
        TaskKind::Verify => {
            Task::Verify(Verify {
                artifact: snapshot,
                source_resource: "vol-0123456789abcdef0".into(),
                origin: Some(VerifyOrigin { resource_region: "us-east-1".into(), copy: false }),
            })
        }
        TaskKind::RestoreVolume => Task::RestoreVolume(RestoreVolume {
            restore_id: "restore-1".into(),
            source: RestoreSource::Artifact(snapshot),
            availability_zone: "us-east-1a".into(),
            volume_type: Some("gp3".into()),
            kms_key: None,
            drill: false,
        }),
        TaskKind::RestoreInstance => Task::RestoreInstance(RestoreInstance {
            restore_id: "restore-2".into(),
            source: RestoreSource::LatestOf { resource: "i-0123456789abcdef0".into(), region: "us-east-1".into() },
            instance_type: "t3.micro".into(),
            subnet_id: Some("subnet-0123456789abcdef0".into()),
            start: false,
            drill: false,
        }),
        TaskKind::RestoreDbInstance => Task::RestoreDbInstance(RestoreDbInstance {
            restore_id: "restore-3".into(),
            source: RestoreSource::LatestOf { resource: "orders-db".into(), region: "us-east-1".into() },
            target_identifier: "orders-db-restored".into(),
            instance_class: Some("db.t3.micro".into()),
            subnet_group: None,
            drill: false,
        }),
        TaskKind::RestoreDbCluster => Task::RestoreDbCluster(RestoreDbCluster {
            restore_id: "restore-4".into(),
            source: RestoreSource::LatestOf { resource: "orders-aurora".into(), region: "us-east-1".into() },
            target_identifier: "orders-aurora-restored".into(),
            engine: Some("aurora-postgresql".into()),
            subnet_group: None,
            drill: false,
        }),
        TaskKind::RestoreObjects => Task::RestoreObjects(RestoreObjects {
            restore_id: "restore-5".into(),
            backup_bucket: "org-backups".into(),
            region: "us-east-1".into(),
            source_bucket: "media-uploads".into(),
            prefix: "photos/".into(),
            as_of: Some(at(12)),
            target_bucket: "media-restore".into(),
            target_prefix: "restored/".into(),
            drill: false,
        }),
        TaskKind::RestoreDrill => Task::RestoreDrill(RestoreDrill {
            plan: "drills".into(),
            resource: "vol-0123456789abcdef0".into(),
            resource_type: ResourceType::Ec2Volume,
            region: "us-east-1".into(),
            window: at(3),
            target: DrillTarget {
                subnet_id: Some("subnet-0123456789abcdef0".into()),
                max_parallel: Some(2),
                ..DrillTarget::default()
            },
        }),
        TaskKind::Canary => {
            Task::Canary(Canary { nonce: "probe-1".into(), sleep_ms: 0, mode: CanaryMode::Succeed, spawn: 0 })
        }
    }
}

/// A sample envelope of `kind`, stable across runs (fixed times, ids derived from content).
pub fn sample_envelope(kind: TaskKind) -> Envelope {
    let mut envelope = Envelope::new(
        sample(kind),
        RunId::for_window("daily", at(2)),
        Origin::Schedule { plan: "daily".into(), window: at(2) },
        at(2),
    );
    envelope.trace = Some(TraceContext {
        xray: "Root=1-6740f2c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1".into(),
        links: vec![],
    });
    debug_assert_eq!(envelope.task_id, TaskId::derive(kind.as_str(), &envelope.task.identity()));
    envelope
}
