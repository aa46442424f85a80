//! Coverage classification and controls over a hand-built estate (no AWS): every status, the
//! worst-of-plans rule, exclusions named, and each control passing and failing.

use backup_core::artifacts::{CatalogRecord, Verification};
use backup_core::coverage::{assess, CoverageStatus, Grace, Inputs, LiveResource};
use backup_core::policy::Policy;
use backup_schemas::{ArtifactKind, ArtifactRef, ResourceType, TaskId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;

const POLICY: &str = r#"
[controls]
encrypted = true
cross_region_copy = true
min_retention_days = 7
drill_within_days = 30
rds_pitr_days = 7

[[plan]]
name = "daily"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume", "ec2-instance", "rds-instance", "s3-bucket"]
regions = ["us-east-1"]
select.tags = { backup = "daily" }
select.exclude_tags = { backup-skip = "true" }
retain = { days = 7 }
verify = false
s3 = { backup_bucket = "org-backups" }

[[plan]]
name = "weekly"
schedule = "cron(0 3 ? * SUN *)"
resources = ["ec2-volume"]
regions = ["us-east-1"]
select.tags = { weekly = "yes" }
retain = { count = 4 }
verify = false
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

fn live(resource_type: ResourceType, id: &str, tags: &[(&str, &str)]) -> LiveResource {
    LiveResource {
        resource_type,
        id: id.into(),
        region: "us-east-1".into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        state: None,
        pitr_days: None,
        cluster_member: None,
        account: None,
    }
}

fn backup(resource: &str, plan: &str, hours_ago: i64, encrypted: bool, copied: bool) -> CatalogRecord {
    CatalogRecord {
        artifact: ArtifactRef {
            kind: ArtifactKind::EbsSnapshot,
            region: "us-east-1".into(),
            id: format!("snap-{resource}-{hours_ago}"),
        },
        resource: resource.into(),
        resource_region: "us-east-1".into(),
        plan: plan.into(),
        tier: "daily".into(),
        task_id: TaskId::derive("test", &serde_json::json!([resource, hours_ago])),
        created_at: now() - Duration::hours(hours_ago),
        expires_at: None,
        size_bytes: Some(1 << 30),
        encrypted: Some(encrypted),
        copy_of: None,
        copies: if copied {
            vec![ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: "us-west-2".into(), id: "snap-copy".into() }]
        } else {
            Vec::new()
        },
        details: BTreeMap::new(),
        verification: None,
        deleted_at: None,
        archive: None,
        account: None,
    }
}

#[test]
fn every_resource_gets_the_status_its_plans_and_backups_give_it() {
    let policy = Policy::from_toml_str(POLICY, "us-east-1").unwrap();
    let daily = [("backup", "daily")];
    let mut stopped = live(ResourceType::Ec2Instance, "i-stopped", &[]);
    stopped.state = Some("stopped".into());
    let mut member = live(ResourceType::RdsInstance, "db-member", &daily);
    member.cluster_member = Some("ledger".into());
    let mut db = live(ResourceType::RdsInstance, "db-orders", &daily);
    db.pitr_days = Some(1);
    let mut drilled = backup("vol-ok", "daily", 2, true, true);
    drilled.verification = Some(Verification {
        verified_at: now() - Duration::days(3),
        ok: true,
        checks: BTreeMap::from([("drill".to_owned(), "ok".to_owned())]),
    });
    let inputs = Inputs {
        resources: vec![
            live(ResourceType::Ec2Volume, "vol-ok", &daily),
            live(ResourceType::Ec2Volume, "vol-stale", &daily),
            live(ResourceType::Ec2Volume, "vol-failing", &daily),
            live(ResourceType::Ec2Volume, "vol-new", &daily),
            live(ResourceType::Ec2Volume, "vol-skip", &[("backup", "daily"), ("backup-skip", "true")]),
            live(ResourceType::Ec2Volume, "vol-untagged", &[]),
            // Daily is fresh, weekly never ran: the worse of the two.
            live(ResourceType::Ec2Volume, "vol-both", &[("backup", "daily"), ("weekly", "yes")]),
            stopped,
            member,
            db,
            live(ResourceType::S3Bucket, "org-backups", &daily),
            // Selected by the plan but the region is not the plan's: unprotected there.
            LiveResource { region: "eu-west-1".into(), ..live(ResourceType::Ec2Volume, "vol-elsewhere", &daily) },
        ],
        records: vec![
            drilled,
            backup("vol-stale", "daily", 72, true, true),
            backup("vol-failing", "daily", 72, true, true),
            backup("vol-both", "daily", 1, false, false),
            backup("db-orders", "daily", 3, true, true),
        ],
        failures: BTreeMap::from([(
            ("daily".to_owned(), "vol-failing".to_owned()),
            "ebs.snapshot_volume FAILED: volume is in the error state".to_owned(),
        )]),
        scans: BTreeMap::new(),
        incomplete: Vec::new(),
    };
    let report = assess(&policy, &inputs, now(), Grace::Percent(25.0));
    let status =
        |id: &str| report.resources.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("{id} missing")).status;
    assert_eq!(status("vol-ok"), CoverageStatus::Protected);
    assert_eq!(status("vol-stale"), CoverageStatus::Stale);
    assert_eq!(status("vol-failing"), CoverageStatus::Failing);
    assert_eq!(status("vol-new"), CoverageStatus::NeverBackedUp);
    assert_eq!(status("vol-skip"), CoverageStatus::Excluded);
    assert_eq!(status("vol-untagged"), CoverageStatus::Unprotected);
    assert_eq!(status("vol-both"), CoverageStatus::NeverBackedUp, "the worst of its plans");
    assert_eq!(status("i-stopped"), CoverageStatus::Unprotected, "stopped instances are listed too");
    assert_eq!(status("db-member"), CoverageStatus::Excluded);
    assert_eq!(status("db-orders"), CoverageStatus::Protected);
    assert_eq!(status("org-backups"), CoverageStatus::Excluded);
    assert_eq!(status("vol-elsewhere"), CoverageStatus::Unprotected);

    let row = |id: &str| report.resources.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row("vol-skip").excluded_by.as_deref(), Some("plan daily: backup-skip=true"));
    assert!(row("db-member").excluded_by.as_deref().unwrap().contains("Aurora cluster ledger"));
    assert_eq!(row("org-backups").excluded_by.as_deref(), Some("the fleet's backup bucket"));
    assert!(row("vol-failing").plans[0].reason.as_deref().unwrap().contains("error state"));
    assert!(row("vol-stale").plans[0].reason.as_deref().unwrap().contains("over the RPO"));
    assert_eq!(row("vol-ok").plans[0].rpo_secs, 30 * 3600, "a day plus 25 %");

    assert_eq!(report.summary["protected"], 2);
    assert_eq!(report.summary["stale"], 1);
    assert_eq!(report.summary["failing"], 1);
    assert_eq!(report.summary["never-backed-up"], 2);
    assert_eq!(report.summary["excluded"], 3);
    assert_eq!(report.summary["unprotected"], 3);
    assert_eq!(report.violations, 4);
    assert_eq!(report.unprotected, 3);
    let volumes = report
        .by_type_region
        .iter()
        .find(|c| c.resource_type == ResourceType::Ec2Volume && c.region == "us-east-1")
        .unwrap();
    assert_eq!((volumes.protected, volumes.not_protected, volumes.excluded), (1, 5, 1));

    // Controls: each one's pass and fail.
    let failing = |id: &str| -> Vec<&str> { row(id).failing_controls().map(|c| c.control).collect() };
    assert!(failing("vol-ok").is_empty(), "{:?}", row("vol-ok").controls);
    assert_eq!(failing("vol-both"), ["encrypted", "cross_region_copy", "drill_within_days"]);
    assert_eq!(failing("db-orders"), ["drill_within_days", "rds_pitr_days"]);
    assert!(row("db-orders").controls.iter().any(|c| c.control == "rds_pitr_days" && c.detail.contains("1 days")));
    assert!(row("vol-untagged").controls.is_empty(), "controls apply to what a plan protects");
    assert!(report.failing_controls >= 5);
}

#[test]
fn controls_are_validated_like_plans() {
    let err = |extra: &str| Policy::from_toml_str(&format!("{extra}\n{POLICY}"), "us-east-1").unwrap_err().to_string();
    let text = POLICY.replace("rds_pitr_days = 7", "rds_pitr_days = 40");
    let message = Policy::from_toml_str(&text, "us-east-1").unwrap_err().to_string();
    assert!(
        message.contains("controls") && message.contains("rds_pitr_days") && message.contains("1 to 35"),
        "{message}"
    );
    let text = POLICY.replace("encrypted = true", "encrypted = true\nencryptd = true");
    let message = Policy::from_toml_str(&text, "us-east-1").unwrap_err().to_string();
    assert!(message.contains("unknown key") && message.contains("encrypted"), "{message}");
    assert!(err("contrls = 1").contains("did you mean [controls]"));
    let none = Policy::from_toml_str(&POLICY.replace("[controls]", "[ignored]"), "us-east-1");
    assert!(none.is_err(), "an unknown table is refused, never ignored");
}

/// A database named for logical backups is covered as named: never backed up until a dump is
/// catalogued, protected once one is, and unprotected by a plan that does not name it.
#[test]
fn databases_named_for_logical_backups_are_covered_by_the_plan_that_names_them() {
    let policy = Policy::from_toml_str(
        r#"
[controls]
cross_region_copy = true
s3_object_lock_days = 30

[[plan]]
name = "dumps"
schedule = "cron(0 1 * * ? *)"
resources = ["postgres-db"]
retain = { days = 35 }
verify = false
s3 = { backup_bucket = "org-backups", lock_days = 35 }
databases = [{ name = "orders", secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-AbCdEf" }]
"#,
        "us-east-1",
    )
    .unwrap();
    let orders = live(ResourceType::PostgresDb, "orders", &[]);
    let stranger = live(ResourceType::PostgresDb, "ledger", &[]);
    let before = Inputs { resources: vec![orders.clone(), stranger], ..Inputs::default() };
    let report = assess(&policy, &before, now(), Grace::Percent(25.0));
    let status = |report: &backup_core::coverage::CoverageReport, id: &str| {
        report.resources.iter().find(|r| r.id == id).map(|r| r.status).unwrap()
    };
    assert_eq!(status(&report, "orders"), CoverageStatus::NeverBackedUp);
    assert_eq!(status(&report, "ledger"), CoverageStatus::Unprotected);

    let mut dump = backup("orders", "dumps", 3, true, false);
    dump.artifact.kind = ArtifactKind::DatabaseDump;
    let after = Inputs { resources: vec![orders], records: vec![dump], ..Inputs::default() };
    let report = assess(&policy, &after, now(), Grace::Percent(25.0));
    assert_eq!(status(&report, "orders"), CoverageStatus::Protected);
    // The dump lives in the backup bucket: its replication is the cross-region copy, and the
    // plan's Object Lock days are its lock.
    assert_eq!(report.failing_controls, 0, "{:?}", report.resources[0].controls);
}

#[test]
fn resources_of_other_accounts_are_covered_by_the_plans_that_list_them_with_their_own_backups() {
    const ACCOUNTS: &str = r#"
[[plan]]
name = "members"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume"]
regions = ["us-east-1"]
select.tags = { backup = "daily" }
retain = { days = 7 }
verify = false
accounts = [{ account_id = "111122223333", role_arn = "arn:aws:iam::111122223333:role/backup-fleet-member" }]
own_account = false
"#;
    let policy = Policy::from_toml_str(ACCOUNTS, "us-east-1").unwrap();
    let daily = [("backup", "daily")];
    let in_member =
        |id: &str| LiveResource { account: Some("111122223333".into()), ..live(ResourceType::Ec2Volume, id, &daily) };
    let member_backup =
        |id: &str| CatalogRecord { account: Some("111122223333".into()), ..backup(id, "members", 2, true, true) };
    let inputs = Inputs {
        resources: vec![
            in_member("vol-backed-up"),
            in_member("vol-never"),
            // The same id in the fleet's own account: this plan does not cover that account.
            live(ResourceType::Ec2Volume, "vol-own", &daily),
            // Another account's record of the same id does not protect this one.
            in_member("vol-own"),
        ],
        records: vec![member_backup("vol-backed-up"), backup("vol-own", "members", 2, true, true)],
        ..Inputs::default()
    };
    let report = assess(&policy, &inputs, now(), Grace::Percent(25.0));
    let status = |account: &str, id: &str| {
        report.resources.iter().find(|r| r.account == account && r.id == id).map(|r| r.status).expect(id)
    };
    assert_eq!(status("111122223333", "vol-backed-up"), CoverageStatus::Protected);
    assert_eq!(status("111122223333", "vol-never"), CoverageStatus::NeverBackedUp);
    assert_eq!(
        status("111122223333", "vol-own"),
        CoverageStatus::NeverBackedUp,
        "the own account's record counts for nothing here"
    );
    assert_eq!(status("self", "vol-own"), CoverageStatus::Unprotected, "own_account = false");
}
