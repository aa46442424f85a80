//! Cross-account backups against the realistic emulator. moto keeps resources per account for
//! credentials from STS AssumeRole; the realism layer adds what moto lacks: copies of snapshots
//! shared from another account, AWS's refusal to share what is under the default key, and
//! AssumeRole refusals (roles named `untrusted-*`).

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, SnapshotAttributeName, Tag, TagSpecification};
use backup_aws::AwsContext;
use backup_core::ports::Catalog;
use backup_schemas::*;
use backup_tests::{policy_file, run_binary, run_task_in, run_tree_in, services, Fleet, REALISTIC_WORKER_ARGS, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;

const MEMBER: &str = "111111111111";
const VAULT: &str = "222222222222";

fn account(id: &str, role: &str) -> AccountRef {
    AccountRef { account_id: id.into(), role_arn: format!("arn:aws:iam::{id}:role/{role}") }
}

fn member() -> AccountRef {
    account(MEMBER, "backup-fleet-member")
}

fn vault() -> AccountRef {
    account(VAULT, "backup-fleet-vault")
}

fn vault_copy() -> CopyTarget {
    CopyTarget {
        region: REGION.into(),
        kms_key: Some(format!("arn:aws:kms:{REGION}:{VAULT}:key/vault-key")),
        retain_days: Some(30),
        account: Some(vault()),
        share_kms_key: Some(format!("arn:aws:kms:{REGION}:{MEMBER}:key/share-key")),
    }
}

fn ctx(plan: &str, day: u32, copy_to: Vec<CopyTarget>) -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, day, 2, 0, 0).unwrap();
    BackupContext {
        plan: plan.into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + ChronoDuration::days(7)),
        copy_to,
        verify: true,
        retain: Some(RetentionRules { days: Some(7), min_keep: 1, ..Default::default() }),
        export: None,
    }
}

/// The fleet's emulator context acting in `account`.
async fn in_account(fleet: &Fleet, account: &AccountRef) -> AwsContext {
    fleet.aws_in(REGION).await.assuming(&account.role_arn).await.expect("the role is assumed")
}

async fn volume_in(aws: &AwsContext, encrypted: bool) -> String {
    tagged_volume_in(aws, encrypted, "daily").await
}

/// A volume tagged `backup = <value>` in `aws`'s account.
async fn tagged_volume_in(aws: &AwsContext, encrypted: bool, value: &str) -> String {
    let spec = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Volume)
        .tags(Tag::builder().key("backup").value(value).build())
        .build();
    let out = aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone(format!("{REGION}a"))
        .size(8)
        .encrypted(encrypted)
        .tag_specifications(spec)
        .send()
        .await
        .unwrap();
    out.volume_id.unwrap()
}

/// A snapshot of `volume_id` made by hand in `aws`'s account, with `tags`.
async fn snapshot_tagged_in(aws: &AwsContext, volume_id: &str, tags: &[(&str, &str)]) -> String {
    let spec = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Snapshot)
        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
        .build();
    let out = aws.clients().ec2.create_snapshot().volume_id(volume_id).tag_specifications(spec).send().await.unwrap();
    out.snapshot_id.unwrap()
}

fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    Arc::new(Handlers::with_services(services(fleet)))
}

fn all_succeeded(ran: &[backup_tests::RanIn]) {
    for (account, task, outcome) in ran {
        assert!(
            matches!(outcome, Ok(Outcome::Done { .. })),
            "{} in {:?} did not succeed: {outcome:?}",
            task.kind(),
            account.as_ref().map(|a| &a.account_id)
        );
    }
}

#[tokio::test]
async fn a_member_accounts_volume_is_backed_up_in_that_account_and_catalogued_under_it() {
    let fleet = Fleet::realistic("acctmember").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let volume_id = volume_in(&member_aws, false).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 3, vec![]),
    });

    let ran = run_tree_in(&handlers, Some(member()), task.clone()).await;
    all_succeeded(&ran);
    let kinds: Vec<TaskKind> = ran.iter().map(|(_, t, _)| t.kind()).collect();
    assert!(kinds.contains(&TaskKind::Verify), "{kinds:?}");
    // The prune ran inside the snapshot task, in the member account (its record says so).
    let snapshot_result = ran.iter().find_map(|(_, t, outcome)| match (t, outcome) {
        (Task::SnapshotVolume(_), Ok(Outcome::Done { result, .. })) => Some(result.clone()),
        _ => None,
    });
    let pruned = &snapshot_result.expect("the snapshot task's result")["pruned"];
    assert_eq!(pruned[0]["resource"], volume_id.as_str(), "{pruned}");
    assert!(ran.iter().all(|(a, _, _)| a.as_ref() == Some(&member())), "every follow-up acts in the member account");

    // The snapshot is in the member account, tagged with the member account's task id.
    let member_block = backup_aws::ec2::Ec2BlockStorage::new(member_aws.clone(), Default::default());
    use backup_core::services::block::BlockStorage;
    let snapshots = member_block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap();
    assert_eq!(snapshots.len(), 1, "exactly one snapshot in the member account");
    assert_eq!(snapshots[0].tags.get(tags::TASK_ID).map(String::as_str), Some(task.id_in(Some(&member())).as_str()));
    let own = services(&fleet).block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap();
    assert!(own.is_empty(), "nothing is made in the fleet's own account");

    // The catalog names the account; the own account's view does not see the record.
    let catalog = services(&fleet).fleet_catalog;
    let records = catalog.by_resource(&volume_id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].account.as_deref(), Some(MEMBER));
    let own_view = backup_core::accounts::AccountCatalog::new(catalog.clone(), None);
    assert!(own_view.by_resource(&volume_id).await.unwrap().is_empty());

    // A re-delivery makes nothing new.
    run_task_in(&handlers, Some(&member()), &task).await.expect("the re-run succeeds");
    assert_eq!(member_block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_its_task_at_once_naming_the_role() {
    let fleet = Fleet::realistic("acctdenied").await;
    let handlers = handlers(&fleet);
    let untrusted = account(MEMBER, "untrusted-backup-fleet");
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: "vol-0123456789abcdef0".into(),
        ctx: ctx("daily", 4, vec![]),
    });
    let err = run_task_in(&handlers, Some(&untrusted), &task).await.expect_err("the role cannot be assumed");
    assert!(!err.is_retryable(), "an AssumeRole refusal is not retried: {err}");
    assert!(err.to_string().contains(&untrusted.role_arn), "{err}");
    assert!(err.to_string().contains(MEMBER), "{err}");
}

#[tokio::test]
async fn a_copy_into_the_backup_account_is_reencrypted_shared_copied_under_its_key_then_unshared() {
    let fleet = Fleet::realistic("acctvault").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let vault_aws = in_account(&fleet, &vault()).await;
    // Encrypted under the AWS-managed key: AWS refuses to share that, so the fleet re-encrypts.
    let volume_id = volume_in(&member_aws, true).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 5, vec![vault_copy()]),
    });

    let ran = run_tree_in(&handlers, Some(member()), task).await;
    all_succeeded(&ran);
    // The copy ran in the member account; its verification and retention in the vault.
    let copy_account = ran.iter().find(|(_, t, _)| t.kind() == TaskKind::CopySnapshot).map(|(a, _, _)| a.clone());
    assert_eq!(copy_account, Some(Some(member())));
    let verified_in: Vec<Option<String>> = ran
        .iter()
        .filter(|(_, t, _)| t.kind() == TaskKind::Verify)
        .map(|(a, _, _)| a.as_ref().map(|a| a.account_id.clone()))
        .collect();
    assert!(verified_in.contains(&Some(VAULT.into())), "the copy is verified in the backup account: {verified_in:?}");

    use backup_core::services::block::BlockStorage;
    let member_block = backup_aws::ec2::Ec2BlockStorage::new(member_aws.clone(), Default::default());
    let vault_block = backup_aws::ec2::Ec2BlockStorage::new(vault_aws.clone(), Default::default());
    let sources = member_block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap();
    assert_eq!(sources.len(), 1, "one backup in the member account");
    let source = &sources[0];
    let copies = vault_block.snapshots_tagged(REGION, tags::COPIED_FROM, &source.id).await.unwrap();
    assert_eq!(copies.len(), 1, "exactly one copy in the backup account");
    let copy = &copies[0];
    assert!(copy.encrypted);
    assert_eq!(copy.kms_key.as_deref(), vault_copy().kms_key.as_deref(), "under the backup account's own key");
    assert_eq!(copy.tags.get(tags::SOURCE_ACCOUNT).map(String::as_str), Some(MEMBER));

    // Nothing is left shared, and the re-encryption is gone.
    let all_member = member_aws.clients().ec2.describe_snapshots().owner_ids("self").send().await.unwrap();
    for snapshot in all_member.snapshots() {
        let id = snapshot.snapshot_id().unwrap();
        assert!(
            snapshot.tags().iter().all(|t| t.key() != Some(tags::SHARE_FOR)),
            "the re-encryption {id} was not deleted"
        );
        let permissions = member_aws
            .clients()
            .ec2
            .describe_snapshot_attribute()
            .snapshot_id(id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .unwrap();
        assert!(permissions.create_volume_permissions().is_empty(), "{id} is still shared");
    }

    // The catalog: the copy is the vault's record, linked from the member's backup.
    let catalog = services(&fleet).fleet_catalog;
    let records = catalog.by_resource(&volume_id).await.unwrap();
    let vault_record = records.iter().find(|r| r.artifact.id == copy.id).expect("the copy is catalogued");
    assert_eq!(vault_record.account.as_deref(), Some(VAULT));
    assert_eq!(vault_record.details.get("source_account").map(String::as_str), Some(MEMBER));
    let source_record = records.iter().find(|r| r.artifact.id == source.id).expect("the backup is catalogued");
    assert_eq!(source_record.account.as_deref(), Some(MEMBER));
    assert!(source_record.copies.iter().any(|c| c.id == copy.id));

    // The source account is lost: restore from the backup account, inside it.
    let restore = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("from-vault-{}", fleet.prefix),
        source: RestoreSource::LatestOf { resource: volume_id.clone(), region: REGION.into() },
        availability_zone: format!("{REGION}a"),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    let outcome = run_task_in(&handlers, Some(&vault()), &restore).await.expect("the restore succeeds");
    let Outcome::Done { result, .. } = outcome else { panic!("{outcome:?}") };
    let restored = result["volume_id"].as_str().expect("a volume id").to_owned();
    let found = vault_aws.clients().ec2.describe_volumes().volume_ids(&restored).send().await.unwrap();
    assert_eq!(found.volumes().len(), 1, "the volume is restored in the backup account");
    assert_eq!(found.volumes()[0].snapshot_id(), Some(copy.id.as_str()), "from the backup account's copy");
}

#[tokio::test]
async fn a_copy_into_the_backup_account_without_a_share_key_is_refused_clearly_when_the_key_cannot_be_shared() {
    let fleet = Fleet::realistic("acctnokey").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let volume_id = volume_in(&member_aws, true).await;
    let target = CopyTarget { share_kms_key: None, ..vault_copy() };
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 6, vec![target]),
    });
    let ran = run_tree_in(&handlers, Some(member()), task).await;
    let (_, _, copy) = ran.iter().find(|(_, t, _)| t.kind() == TaskKind::CopySnapshot).expect("a copy task");
    let err = copy.as_ref().expect_err("the copy cannot share the default key");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("share_kms_key"), "the error says what to set: {err}");
}

#[tokio::test]
async fn a_plan_backs_up_each_listed_account_there_exactly_once_and_an_unassumable_role_fails_only_its_account() {
    let fleet = Fleet::realistic("acctrun").await;
    let value = fleet.prefix.clone();
    let member_aws = in_account(&fleet, &member()).await;
    let own_volume = tagged_volume_in(&fleet.aws, false, &value).await;
    let member_volume = tagged_volume_in(&member_aws, false, &value).await;
    let untrusted = account("333333333333", "untrusted-backup-fleet");
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            r#"
[[plan]]
name = "estate"
schedule = "cron(0 3 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "{value}" }}
retain = {{ days = 7, min_keep = 1 }}
verify = false
accounts = [
  {{ account_id = "{MEMBER}", role_arn = "{}" }},
  {{ account_id = "333333333333", role_arn = "{}" }},
]
"#,
            member().role_arn,
            untrusted.role_arn
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));

    let run =
        run_binary("backup-producer", &env, &["run", "--plan", "estate", "--at", "2026-11-21T05:00:00Z", "--json"])
            .await;
    assert_eq!(run.status.code(), Some(1), "a failed account fails the run: {}", run.stderr);
    let output = run.json();
    let snapshot_tasks: BTreeSet<(String, String)> = output["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "ebs.snapshot_volume")
        .map(|t| (t["account"].as_str().unwrap().to_owned(), t["resource"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        snapshot_tasks,
        BTreeSet::from([("self".to_owned(), own_volume.clone()), (MEMBER.to_owned(), member_volume.clone())]),
        "the own account and the member account are expanded: {output}"
    );
    let failed = output["failed_accounts"].as_array().expect("the failed account is reported");
    assert_eq!(failed.len(), 1, "{output}");
    assert_eq!(failed[0]["account_id"], "333333333333");
    assert_eq!(failed[0]["role_arn"], untrusted.role_arn.as_str());
    assert!(failed[0]["error"].as_str().unwrap().contains("AccessDenied"), "{output}");

    // The same window again: the same ids. A worker makes each snapshot once, in its account.
    let again =
        run_binary("backup-producer", &env, &["run", "--plan", "estate", "--at", "2026-11-21T23:00:00Z", "--json"])
            .await;
    assert_eq!(again.json()["tasks"], output["tasks"]);
    let mut args = REALISTIC_WORKER_ARGS.to_vec();
    args.extend([
        "--exit-when-idle=8",
        "--receive-wait-secs=1",
        "--visibility-timeout-secs=6",
        "--lease-secs=6",
        "--heartbeat-secs=1",
    ]);
    let mut worker = fleet.worker("w", &args);
    let status = worker.wait_async(std::time::Duration::from_secs(240)).await;
    assert!(status.success(), "{}", worker.log_tail(40));
    assert_eq!(worker.count("ebs.snapshot_volume", "succeeded"), 2, "{}", worker.log_tail(40));

    use backup_core::services::block::BlockStorage;
    let member_block = backup_aws::ec2::Ec2BlockStorage::new(member_aws, Default::default());
    let own_block = services(&fleet).block;
    assert_eq!(member_block.snapshots_tagged(REGION, tags::SOURCE, &member_volume).await.unwrap().len(), 1);
    assert_eq!(own_block.snapshots_tagged(REGION, tags::SOURCE, &own_volume).await.unwrap().len(), 1);
    assert!(own_block.snapshots_tagged(REGION, tags::SOURCE, &member_volume).await.unwrap().is_empty());
    // The worker's log lines name the account of each task.
    assert!(worker.log_tail(400).contains(MEMBER), "{}", worker.log_tail(40));
}

/// A key that exists in every account of the emulator (see `rds_copy_into_the_backup_account`).
const RDS_TEST_KEY: &str = "alias/aws/ebs";

/// A DB instance or Aurora cluster in `aws`'s account.
async fn database_in(aws: &AwsContext, id: &str, cluster: bool, encrypted: bool) {
    let rds = aws.clients().rds;
    if cluster {
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("backup")
            .master_user_password("not-a-secret-123")
            .storage_encrypted(encrypted)
            .send()
            .await
            .expect("create DB cluster");
    } else {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("backup")
            .master_user_password("not-a-secret-123")
            .storage_encrypted(encrypted)
            .send()
            .await
            .expect("create DB instance");
    }
}

/// RDS instance and cluster snapshots of a member account reach the backup account: shared
/// through the `restore` attribute (after re-encryption under the share key when encrypted under
/// the default key), copied there under its key, unshared, and restorable there.
async fn rds_copy_into_the_backup_account(cluster: bool, encrypted: bool) {
    let fleet = Fleet::realistic(if cluster { "acctrdsc" } else { "acctrdsi" }).await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let vault_aws = in_account(&fleet, &vault()).await;
    let db = format!("{}-db", fleet.prefix).to_lowercase();
    database_in(&member_aws, &db, cluster, encrypted).await;
    let day = 10 + u32::from(cluster) * 2 + u32::from(encrypted);
    // moto's RDS checks that a copy's key exists in the caller's account, and the harness has
    // no KMS client: the keys are the AWS-managed `alias/aws/ebs` key each account gets on first
    // use (not the `aws/rds` key, which the realism layer refuses to share, as AWS does).
    let target =
        CopyTarget { kms_key: Some(RDS_TEST_KEY.into()), share_kms_key: Some(RDS_TEST_KEY.into()), ..vault_copy() };
    let task = if cluster {
        Task::SnapshotDbCluster(SnapshotDbCluster {
            region: REGION.into(),
            db_cluster_id: db.clone(),
            ctx: ctx("daily", day, vec![target.clone()]),
        })
    } else {
        Task::SnapshotDbInstance(SnapshotDbInstance {
            region: REGION.into(),
            db_instance_id: db.clone(),
            ctx: ctx("daily", day, vec![target]),
        })
    };
    let ran = run_tree_in(&handlers, Some(member()), task).await;
    all_succeeded(&ran);

    use backup_core::services::database::DatabaseSnapshots;
    let member_rds = backup_aws::rds::RdsDatabases::new(member_aws.clone(), Default::default());
    let vault_rds = backup_aws::rds::RdsDatabases::new(vault_aws.clone(), Default::default());
    let sources = member_rds.snapshots_of(REGION, cluster, &db).await.unwrap();
    assert_eq!(sources.len(), 1, "one backup in the member account, no re-encryption left: {sources:?}");
    let copies = vault_rds.snapshots_tagged(REGION, cluster, tags::COPIED_FROM, &sources[0].identifier).await.unwrap();
    assert_eq!(copies.len(), 1, "exactly one copy in the backup account");
    let key = copies[0].kms_key.clone().unwrap_or_default();
    assert!(key.starts_with(&format!("arn:aws:kms:{REGION}:{VAULT}:")), "under a key of the backup account: {key}");
    assert_eq!(copies[0].tags.get(tags::SOURCE_ACCOUNT).map(String::as_str), Some(MEMBER));
    // The share is taken away again.
    let rds = member_aws.clients().rds;
    let shared_with: Vec<String> = if cluster {
        let out = rds
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(&sources[0].identifier)
            .send()
            .await
            .unwrap();
        out.db_cluster_snapshot_attributes_result()
            .map(|r| r.db_cluster_snapshot_attributes().iter().flat_map(|a| a.attribute_values().to_vec()).collect())
            .unwrap_or_default()
    } else {
        let out =
            rds.describe_db_snapshot_attributes().db_snapshot_identifier(&sources[0].identifier).send().await.unwrap();
        out.db_snapshot_attributes_result()
            .map(|r| r.db_snapshot_attributes().iter().flat_map(|a| a.attribute_values().to_vec()).collect())
            .unwrap_or_default()
    };
    assert!(!shared_with.contains(&VAULT.to_owned()), "still shared with the backup account: {shared_with:?}");
    let catalog = services(&fleet).fleet_catalog;
    let records = catalog.by_resource(&db).await.unwrap();
    assert!(records.iter().any(|r| r.account.as_deref() == Some(VAULT) && r.artifact.id == copies[0].identifier));
}

#[tokio::test]
async fn an_rds_instance_snapshot_is_copied_into_the_backup_account() {
    rds_copy_into_the_backup_account(false, false).await;
}

#[tokio::test]
async fn an_encrypted_rds_instance_snapshot_is_reencrypted_then_copied_into_the_backup_account() {
    rds_copy_into_the_backup_account(false, true).await;
}

#[tokio::test]
async fn an_aurora_cluster_snapshot_is_copied_into_the_backup_account() {
    rds_copy_into_the_backup_account(true, true).await;
}

#[tokio::test]
async fn an_event_from_a_listed_account_is_looked_up_and_backed_up_in_that_account() {
    let fleet = Fleet::realistic("acctevent").await;
    let value = fleet.prefix.clone();
    let member_aws = in_account(&fleet, &member()).await;
    let volume_id = tagged_volume_in(&member_aws, false, &value).await;
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            r#"
[[plan]]
name = "estate"
schedule = "cron(0 3 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "{value}" }}
retain = {{ days = 7 }}
accounts = [{{ account_id = "{MEMBER}", role_arn = "{}" }}]
"#,
            member().role_arn
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    // A CloudTrail CreateVolume call delivered by EventBridge (the member account's rule forwards
    // it to the fleet's bus), from the fixture, naming the new volume.
    let fixture = backup_tests::repo_root()
        .join("schemas/fixtures/aws-events/09-cloudtrail-api-call/custodian-cloudtrail-record-ec2-CreateVolume-DETAIL-ONLY.json");
    let mut detail: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    detail["responseElements"]["volumeId"] = volume_id.clone().into();
    let event = |account: &str| {
        serde_json::json!({
            "version": "0",
            "id": format!("evt-{account}"),
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2",
            "account": account,
            "time": "2026-11-21T05:00:00Z",
            "region": REGION,
            "resources": [],
            "detail": detail.clone(),
        })
    };
    let scratch = std::env::temp_dir().join("backup-fleet-tests").join(&fleet.prefix);
    std::fs::create_dir_all(&scratch).unwrap();
    let ingest = |name: &str, body: serde_json::Value| {
        let path = scratch.join(name);
        std::fs::write(&path, body.to_string()).unwrap();
        let env = env.clone();
        async move { run_binary("backup-producer", &env, &["ingest", path.to_str().unwrap(), "--dry-run", "--json"]).await }
    };

    let from_member = ingest("member.json", event(MEMBER)).await;
    assert!(from_member.status.success(), "{}", from_member.stderr);
    let tasks = from_member.json()["tasks"].clone();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["kind"], "ebs.snapshot_volume");
    assert_eq!(tasks[0]["account"], MEMBER, "the backup is made in the account the volume lives in");
    assert_eq!(tasks[0]["resource"], volume_id.as_str());

    // The same call reported by an account no plan lists is the fleet's own: the volume is not
    // there, so nothing is selected (and nothing is made in the wrong account).
    let elsewhere = ingest("other.json", event("999999999999")).await;
    assert!(elsewhere.status.success(), "{}", elsewhere.stderr);
    assert!(elsewhere.json()["tasks"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn copies_of_one_database_name_from_two_accounts_are_retained_and_restored_apart() {
    let fleet = Fleet::realistic("acctsame").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let vault_aws = in_account(&fleet, &vault()).await;
    // One identifier, two databases: one in the member account, one in the fleet's own.
    let db = format!("{}-db", fleet.prefix).to_lowercase();
    database_in(&member_aws, &db, false, false).await;
    database_in(&fleet.aws_in(REGION).await, &db, false, false).await;
    let target = CopyTarget {
        kms_key: Some(RDS_TEST_KEY.into()),
        share_kms_key: Some(RDS_TEST_KEY.into()),
        retain_days: None,
        ..vault_copy()
    };
    // Keep one copy: judged across both accounts, the second copy would delete the first.
    let keep_one = |day: u32| BackupContext {
        retain: Some(RetentionRules { count: Some(1), min_keep: 1, ..Default::default() }),
        ..ctx("daily", day, vec![target.clone()])
    };
    let snapshot = |day: u32| {
        Task::SnapshotDbInstance(SnapshotDbInstance {
            region: REGION.into(),
            db_instance_id: db.clone(),
            ctx: keep_one(day),
        })
    };
    all_succeeded(&run_tree_in(&handlers, Some(member()), snapshot(20)).await);
    all_succeeded(&run_tree_in(&handlers, None, snapshot(21)).await);

    use backup_core::services::database::DatabaseSnapshots;
    let vault_rds = backup_aws::rds::RdsDatabases::new(vault_aws.clone(), Default::default());
    let copies = vault_rds.snapshots_tagged(REGION, false, tags::SOURCE, &db).await.unwrap();
    let sources: BTreeSet<Option<String>> = copies.iter().map(|c| c.tags.get(tags::SOURCE_ACCOUNT).cloned()).collect();
    assert_eq!(
        sources,
        BTreeSet::from([Some(MEMBER.to_owned()), Some("self".to_owned())]),
        "each account keeps its one copy in the backup account: {copies:?}"
    );

    // A restore in the backup account by resource name cannot know which database is meant.
    let restore = Task::RestoreDbInstance(RestoreDbInstance {
        restore_id: format!("same-{}", fleet.prefix),
        source: RestoreSource::LatestOf { resource: db.clone(), region: REGION.into() },
        target_identifier: format!("{db}-restored"),
        instance_class: None,
        subnet_group: None,
        drill: false,
    });
    let err = run_task_in(&handlers, Some(&vault()), &restore).await.expect_err("ambiguous");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("several source accounts") && err.to_string().contains(MEMBER), "{err}");
}

#[tokio::test]
async fn a_snapshot_the_fleet_did_not_make_is_never_shared_with_the_backup_account() {
    let fleet = Fleet::realistic("acctforged").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let volume_id = volume_in(&member_aws, false).await;
    // Someone in the member account dresses a snapshot up as a fleet backup.
    let forged =
        snapshot_tagged_in(&member_aws, &volume_id, &[(tags::MANAGED, "true"), (tags::SOURCE, &volume_id)]).await;
    let copy = Task::CopySnapshot(CopySnapshot {
        source_region: REGION.into(),
        snapshot_id: forged.clone(),
        source_resource: volume_id.clone(),
        target: vault_copy(),
        ctx: ctx("daily", 7, vec![vault_copy()]),
        set: None,
    });
    let err = run_task_in(&handlers, Some(&member()), &copy).await.expect_err("not a catalogued backup");
    assert!(!err.is_retryable() && err.to_string().contains("not a catalogued backup"), "{err}");
    let permissions = member_aws
        .clients()
        .ec2
        .describe_snapshot_attribute()
        .snapshot_id(&forged)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    assert!(permissions.create_volume_permissions().is_empty(), "the forged snapshot was shared");
}

#[tokio::test]
async fn a_failed_copy_into_the_backup_account_takes_back_the_share_and_deletes_the_reencryption() {
    let fleet = Fleet::realistic("acctrdsfail").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let db = format!("{}-db", fleet.prefix).to_lowercase();
    database_in(&member_aws, &db, false, true).await;
    // A key the backup account does not have: its copy call is refused (KMSKeyNotAccessible).
    let target = CopyTarget {
        kms_key: Some(format!("arn:aws:kms:{REGION}:{VAULT}:key/00000000-0000-0000-0000-000000000000")),
        share_kms_key: Some(RDS_TEST_KEY.into()),
        ..vault_copy()
    };
    let task = Task::SnapshotDbInstance(SnapshotDbInstance {
        region: REGION.into(),
        db_instance_id: db.clone(),
        ctx: ctx("daily", 8, vec![target]),
    });
    let ran = run_tree_in(&handlers, Some(member()), task).await;
    let (_, _, copy) = ran.iter().find(|(_, t, _)| t.kind() == TaskKind::CopyDbSnapshot).expect("a copy task");
    let err = copy.as_ref().expect_err("the backup account cannot use the key");
    assert!(!err.is_retryable(), "{err}");

    use backup_core::services::database::DatabaseSnapshots;
    let member_rds = backup_aws::rds::RdsDatabases::new(member_aws.clone(), Default::default());
    let left = member_rds.snapshots_of(REGION, false, &db).await.unwrap();
    assert_eq!(left.len(), 1, "only the backup is left, not its re-encryption: {left:?}");
}

#[tokio::test]
async fn the_copies_of_a_deleted_resource_age_out_in_the_backup_account() {
    let fleet = Fleet::realistic("acctorphan").await;
    let handlers = handlers(&fleet);
    let member_aws = in_account(&fleet, &member()).await;
    let volume_id = volume_in(&member_aws, false).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 2, vec![vault_copy()]),
    });
    all_succeeded(&run_tree_in(&handlers, Some(member()), task).await);
    member_aws.clients().ec2.delete_volume().volume_id(&volume_id).send().await.unwrap();
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            r#"
[[plan]]
name = "daily"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "daily" }}
retain = {{ days = 7, min_keep = 1 }}
accounts = [{{ account_id = "{MEMBER}", role_arn = "{}" }}]
own_account = false
copy_to = [{{ account_id = "{VAULT}", role_arn = "{}", region = "{REGION}", kms_key = "k", share_kms_key = "s", retain_days = 30 }}]
"#,
            member().role_arn,
            vault().role_arn
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    // Past the backups' expiry: the volume is gone, its backups are the catalog's alone.
    let run = run_binary(
        "backup-producer",
        &env,
        &["run", "--plan", "daily", "--at", "2026-11-20T05:00:00Z", "--dry-run", "--json"],
    )
    .await;
    assert!(run.status.success(), "{}", run.stderr);
    let output = run.json();
    let prunes: BTreeSet<(String, String)> = output["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "retention.prune" && t["resource"] == volume_id.as_str())
        .map(|t| (t["account"].as_str().unwrap().to_owned(), t["region"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        prunes,
        BTreeSet::from([(MEMBER.to_owned(), REGION.to_owned()), (VAULT.to_owned(), REGION.to_owned())]),
        "the member's backups and the backup account's copies are both pruned, each in its account: {output}"
    );
}

#[tokio::test]
async fn a_reencryption_its_copy_task_left_behind_is_deleted_by_the_resources_next_prune() {
    let fleet = Fleet::realistic("acctleftover").await;
    let volume_id = volume_in(&fleet.aws, true).await;
    // What a copy task that went DEAD before its cleanup leaves: a snapshot tagged for the share.
    let leftover = snapshot_tagged_in(
        &fleet.aws,
        &volume_id,
        &[(tags::SHARE_FOR, "t-0123456789abcdef0123456789abcdef"), (tags::SOURCE, &volume_id)],
    )
    .await;
    let prune = Task::Prune(Prune {
        plan: "daily".into(),
        resource: volume_id.clone(),
        resource_type: ResourceType::Ec2Volume,
        region: REGION.into(),
        rules: RetentionRules { days: Some(7), min_keep: 1, ..Default::default() },
        as_of: Utc::now(),
        source_account: None,
    });
    // Visible to Describe, by id and by tag (AWS is eventually consistent, and so is the emulator).
    let exists = || async {
        let block = services(&fleet).block;
        !block.snapshots(REGION, std::slice::from_ref(&leftover)).await.unwrap().is_empty()
            && block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap().iter().any(|s| s.id == leftover)
    };
    backup_tests::eventually(std::time::Duration::from_secs(30), || async { exists().await.then_some(()) })
        .await
        .expect("the snapshot becomes visible");
    // Younger than the leftover age (days): a copy may still be using it.
    let outcome = run_task_in(&handlers(&fleet), None, &prune).await.expect("the prune succeeds");
    let Outcome::Done { result, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(result["share_leftovers_deleted"], 0, "{result}");
    assert!(exists().await);
    // Past it: deleted, and never judged as a backup meanwhile.
    let mut sweeping = services(&fleet);
    sweeping.timing.share_leftover_age = std::time::Duration::ZERO;
    let sweeping = Arc::new(Handlers::with_services(sweeping));
    let prune = Task::Prune(Prune { as_of: Utc::now() + ChronoDuration::seconds(1), ..prune_params(&prune) });
    let outcome = run_task_in(&sweeping, None, &prune).await.expect("the prune succeeds");
    let Outcome::Done { result, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(result["share_leftovers_deleted"], 1, "{result}");
    assert_eq!(result["ignored"]["count"], 0, "a re-encryption is not a candidate: {result}");
    assert!(!exists().await, "the leftover re-encryption was deleted");
}

fn prune_params(task: &Task) -> Prune {
    match task {
        Task::Prune(p) => p.clone(),
        other => panic!("not a prune: {other:?}"),
    }
}
