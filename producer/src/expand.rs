//! Schedule expansion: a plan, its window and the discovered resources in, tasks out. Pure and
//! deterministic: the same window and estate always give the same task ids, so expanding a
//! window twice enqueues nothing new in effect.

use backup_core::policy::{InstanceBackup, Plan};
use backup_core::schedule::Window;
use backup_schemas::{
    AccountRef, CreateAmi, DrillTarget, DumpDatabase, Prune, ResourceType, RestoreDrill, RetentionRules, ScanBucket,
    SnapshotDbCluster, SnapshotDbInstance, SnapshotInstance, SnapshotVolume, Task,
};
use serde::Serialize;
use std::collections::BTreeSet;

use crate::discovery::Resource;

/// The tasks of one plan window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expansion {
    pub plan: String,
    pub window: WindowView,
    /// Tasks acting in the account the resources live in.
    pub tasks: Vec<Task>,
    /// Tasks acting in another account: prunes of the copies kept in backup accounts.
    pub elsewhere: Vec<(AccountRef, Task)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WindowView {
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

impl From<Window> for WindowView {
    fn from(window: Window) -> Self {
        Self { start: window.start, end: window.end }
    }
}

/// One backup task per selected resource (each prunes its resource once done), and prune tasks
/// for resources that only the catalog still knows (deleted sources whose backups must still age
/// out), in the source region and every copy region.
///
/// `source_account` labels the account the resources live in (`self` for the fleet's own): the
/// orphans' copies in backup accounts are pruned there, among that account's copies only
/// (`Expansion::elsewhere`).
pub fn expand(
    plan: &Plan,
    window: Window,
    resources: &[Resource],
    orphans: &[Resource],
    s3_region: &str,
    source_account: &str,
) -> Expansion {
    let ctx = plan.context(window.start);
    let mut tasks = Vec::new();
    if plan.is_drill() {
        let sample = plan.drill.as_ref().map_or(1, |d| d.sample.max(1)) as usize;
        // Deterministic sample: rotate through the estate window by window.
        let mut sorted: Vec<&Resource> = resources.iter().collect();
        sorted.sort_by(|a, b| (a.region.as_str(), a.id.as_str()).cmp(&(b.region.as_str(), b.id.as_str())));
        if !sorted.is_empty() {
            let offset = (window.start.timestamp() / 60) as usize % sorted.len();
            for resource in sorted.iter().cycle().skip(offset).take(sample.min(sorted.len())) {
                tasks.push(Task::RestoreDrill(RestoreDrill {
                    plan: plan.name.clone(),
                    resource: resource.id.clone(),
                    resource_type: resource.resource_type,
                    region: resource.region.clone(),
                    window: window.start,
                    target: drill_target(plan, resource),
                }));
            }
        }
        return Expansion { plan: plan.name.clone(), window: window.into(), tasks, elsewhere: Vec::new() };
    }
    for resource in resources {
        let region = resource.region.clone();
        let id = resource.id.clone();
        let task = match resource.resource_type {
            ResourceType::Ec2Volume => Task::SnapshotVolume(SnapshotVolume { region, volume_id: id, ctx: ctx.clone() }),
            ResourceType::Ec2Instance => match plan.instance_backup {
                InstanceBackup::Snapshots => Task::SnapshotInstance(SnapshotInstance {
                    region,
                    instance_id: id,
                    exclude_boot_volume: false,
                    ctx: ctx.clone(),
                }),
                InstanceBackup::Ami => {
                    Task::CreateAmi(CreateAmi { region, instance_id: id, reboot: false, ctx: ctx.clone() })
                }
            },
            ResourceType::RdsInstance => {
                Task::SnapshotDbInstance(SnapshotDbInstance { region, db_instance_id: id, ctx: ctx.clone() })
            }
            ResourceType::RdsCluster => {
                Task::SnapshotDbCluster(SnapshotDbCluster { region, db_cluster_id: id, ctx: ctx.clone() })
            }
            ResourceType::S3Bucket => match plan.s3_destination(s3_region) {
                Some(dest) => Task::ScanBucket(ScanBucket {
                    region,
                    bucket: id,
                    prefix: plan.s3.as_ref().and_then(|s| s.prefix.clone()),
                    continuation: None,
                    page: 0,
                    listed_after: None,
                    inventory: plan.s3.as_ref().and_then(|s| s.inventory_scan()),
                    dest,
                    ctx: ctx.clone(),
                }),
                None => continue,
            },
            ResourceType::PostgresDb => {
                match (plan.database(&id).and_then(|d| d.logical()), plan.s3_destination(s3_region)) {
                    (Some(database), Some(dest)) => {
                        Task::DumpDatabase(DumpDatabase { region, database, dest, ctx: ctx.clone() })
                    }
                    _ => continue,
                }
            }
        };
        tasks.push(task);
    }
    // Live resources are pruned by their own backup task once it completes (so the prune sees
    // the new backup, and a failing backup never triggers deletions). Resources only the catalog
    // still knows have no backup task: their prunes are expanded here, so their backups age out.
    let mut pruned: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();
    let mut elsewhere = Vec::new();
    for resource in orphans {
        if matches!(resource.resource_type, ResourceType::S3Bucket | ResourceType::PostgresDb) {
            continue;
        }
        let mut prune = |account: Option<&AccountRef>, region: &str, rules: RetentionRules| {
            if !pruned.insert((account.map(|a| a.account_id.clone()), region.to_owned(), resource.id.clone())) {
                return;
            }
            let task = Task::Prune(Prune {
                plan: plan.name.clone(),
                resource: resource.id.clone(),
                resource_type: resource.resource_type,
                region: region.to_owned(),
                rules,
                // Evaluated as of the window's end: this window's own backups count as the
                // newest, and a re-run of the window decides the same.
                as_of: window.end,
                source_account: account.map(|_| source_account.to_owned()),
            });
            match account {
                None => tasks.push(task),
                Some(account) => elsewhere.push((account.clone(), task)),
            }
        };
        prune(None, &resource.region, plan.retain.clone());
        for copy in &plan.copy_to {
            // Copies keep their own retention; the plan's minimum applies to them too.
            let rules = match copy.retain_days {
                Some(days) => {
                    RetentionRules { days: Some(days), min_keep: plan.retain.min_keep, ..RetentionRules::default() }
                }
                None => plan.retain.clone(),
            };
            prune(copy.account.as_ref(), &copy.region, rules);
        }
    }
    Expansion { plan: plan.name.clone(), window: window.into(), tasks, elsewhere }
}

/// What a drill of `resource` restores into and checks, from the drill plan.
fn drill_target(plan: &Plan, resource: &Resource) -> DrillTarget {
    let drill = plan.drill.as_ref();
    DrillTarget {
        subnet_id: drill.and_then(|d| d.target_subnet.clone()),
        db_subnet_group: drill.and_then(|d| d.db_subnet_group.clone()),
        instance_class: drill.and_then(|d| d.instance_class.clone()),
        instance_type: drill.and_then(|d| d.instance_type.clone()),
        max_parallel: drill.map(|d| d.max_parallel),
        scratch_secret_arn: drill.and_then(|d| d.scratch_secret_arn.clone()),
        checks: match resource.resource_type {
            ResourceType::PostgresDb => plan.database(&resource.id).map(|d| d.checks.clone()).unwrap_or_default(),
            _ => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::policy::Policy;
    use chrono::TimeZone;

    #[test]
    fn a_plan_naming_an_inventory_scans_its_buckets_from_the_report() {
        let policy = Policy::from_toml_str(
            r#"
[[plan]]
name = "objects"
schedule = "cron(0 2 * * ? *)"
resources = ["s3-bucket"]
select.tags = { backup = "daily" }
retain = { days = 7 }
s3 = { backup_bucket = "org-backups", inventory_id = "nightly", inventory_max_age_hours = 30 }
"#,
            "us-east-1",
        )
        .unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 2, 0, 0).unwrap();
        let window = Window { start, end: start + chrono::Duration::hours(1) };
        let bucket = Resource {
            resource_type: ResourceType::S3Bucket,
            id: "logs".into(),
            region: "us-east-1".into(),
            tags: Default::default(),
        };
        let expansion = expand(&policy.plans[0], window, &[bucket], &[], "us-east-1", "self");
        let Some(Task::ScanBucket(scan)) = expansion.tasks.first() else { panic!("{:?}", expansion.tasks) };
        let inventory = scan.inventory.as_ref().expect("the plan's inventory reaches the scan");
        assert_eq!((inventory.id.as_str(), inventory.max_age_hours, &inventory.report), ("nightly", 30, &None));
    }
}
