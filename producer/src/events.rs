//! AWS events to tasks. Events accelerate, polling guarantees: an event maps to the same
//! deterministic task id the fleet would reach on its own (a snapshot's copy, its verification),
//! so it can only make a step start sooner, never twice. Events for resources no plan selects
//! are "not selected": acknowledged and counted, not dead-lettered.

use backup_core::artifacts::is_managed;
use backup_core::policy::{InstanceBackup, Plan, Policy};
use backup_core::AwsError;
use backup_schemas::events::{
    AwsEvent, EbsResult, EbsSnapshotEvent, Ec2InstanceState, ParsedEvent, RdsSourceType, S3Action,
};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, BackupContext, CopyDbSnapshot, CopyObject, CopySnapshot, CreateAmi, ObjectRef,
    ResourceType, ScanBucket, SnapshotDbCluster, SnapshotDbInstance, SnapshotInstance, SnapshotSet, SnapshotVolume,
    Task, Tier, Verify,
};
use chrono::{DateTime, DurationRound, Utc};
use std::collections::BTreeMap;

use crate::discovery::Discovery;
use crate::rules::plan_of_rule;

/// What to do about one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// A schedule fired: expand that plan's window containing `at`.
    Expand { plan: String, at: DateTime<Utc> },
    /// Enqueue these tasks for `plan`.
    Tasks { plan: String, tasks: Vec<MappedTask> },
    /// Nothing to do, and why (counted by reason).
    NotSelected { reason: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct MappedTask {
    pub task: Task,
    /// Start no earlier than this (a DB that was just created is not ready for a snapshot).
    pub not_before: Option<DateTime<Utc>>,
}

fn task(task: Task) -> MappedTask {
    MappedTask { task, not_before: None }
}

fn not_selected(reason: impl Into<String>) -> Vec<Decision> {
    vec![Decision::NotSelected { reason: reason.into() }]
}

/// Backup plans (not drills) that take a resource of this type, in this region, with these tags.
fn selecting<'a>(
    policy: &'a Policy,
    resource_type: ResourceType,
    region: &str,
    tags: &BTreeMap<String, String>,
) -> Vec<&'a Plan> {
    policy
        .plans
        .iter()
        .filter(|p| {
            !p.is_drill() && p.covers(resource_type) && p.regions.iter().any(|r| r == region) && p.select.matches(tags)
        })
        .collect()
}

/// Context of an event-driven backup: tier `event`, window = the event's minute.
fn event_context(plan: &Plan, at: DateTime<Utc>) -> BackupContext {
    let minute = at.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(at);
    let mut ctx = plan.context(minute);
    ctx.tier = Tier::Event;
    ctx
}

/// Context of a follow-up (copy, verify) of an artifact created at `created`.
fn follow_up_context(plan: &Plan, created: Option<DateTime<Utc>>, now: DateTime<Utc>) -> BackupContext {
    let at = created.unwrap_or(now);
    let start = plan.schedule.window_containing(at).map_or(at, |w| w.start);
    plan.context(start)
}

/// Maps one event to decisions. `Err` means a lookup failed: retry the message later.
pub async fn map_event(
    policy: &Policy,
    discovery: &Discovery,
    event: &ParsedEvent,
    s3_region: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, AwsError> {
    let region = event.region.clone().unwrap_or_else(|| s3_region.to_owned());
    let at = event.time.unwrap_or(now);
    match &event.event {
        AwsEvent::Scheduled { rule_name, .. } => {
            let Some(rule) = rule_name else { return Ok(not_selected("scheduled event without a rule name")) };
            Ok(match plan_of_rule(policy, rule) {
                Some(plan) => vec![Decision::Expand { plan: plan.name.clone(), at }],
                None => not_selected(format!("no plan for rule {rule}")),
            })
        }
        AwsEvent::EbsSnapshot(n) => {
            if n.result != EbsResult::Succeeded {
                return Ok(not_selected("snapshot did not succeed; its task reports the failure"));
            }
            let region = n.snapshot_region.clone().unwrap_or(region);
            match n.event {
                EbsSnapshotEvent::CreateSnapshot => {
                    ebs_follow_ups(policy, discovery, &region, std::slice::from_ref(&n.snapshot_id), false, now).await
                }
                EbsSnapshotEvent::CopySnapshot => {
                    ebs_follow_ups(policy, discovery, &region, std::slice::from_ref(&n.snapshot_id), true, now).await
                }
                _ => Ok(not_selected(format!("EBS {} events need no action", n.event.as_str()))),
            }
        }
        AwsEvent::EbsMultiVolumeSnapshots { result, snapshots, .. } => {
            if *result != EbsResult::Succeeded {
                return Ok(not_selected("snapshot set did not succeed; its task reports the failure"));
            }
            let ids: Vec<String> = snapshots.iter().filter_map(|s| s.snapshot_id.clone()).collect();
            ebs_follow_ups(policy, discovery, &region, &ids, false, now).await
        }
        AwsEvent::Rds(rds) => {
            let cluster = match rds.source_type {
                RdsSourceType::DbSnapshot => false,
                RdsSourceType::DbClusterSnapshot => true,
                _ => return Ok(not_selected("RDS event about something other than a snapshot")),
            };
            let region =
                rds.source_arn.as_deref().and_then(|arn| arn.split(':').nth(3)).map(str::to_owned).unwrap_or(region);
            let identifier = rds.source_identifier.rsplit(':').next().unwrap_or(&rds.source_identifier);
            let Some(snapshot) = discovery.databases.snapshot(&region, cluster, identifier).await? else {
                return Ok(not_selected("snapshot no longer exists"));
            };
            if !is_managed(&snapshot.tags) || !snapshot.status.is_complete() {
                return Ok(not_selected("not a completed fleet snapshot"));
            }
            let Some(plan) = snapshot.tags.get(tags::PLAN).and_then(|p| policy.plan(p)) else {
                return Ok(not_selected("snapshot's plan is not in the policy"));
            };
            let ctx = follow_up_context(plan, snapshot.created_at, now);
            let source_resource =
                snapshot.tags.get(tags::SOURCE).cloned().unwrap_or_else(|| snapshot.source_id.clone());
            let kind = if cluster { ArtifactKind::RdsClusterSnapshot } else { ArtifactKind::RdsSnapshot };
            let mut tasks: Vec<MappedTask> = Vec::new();
            if snapshot.tags.contains_key(tags::COPIED_FROM) {
                // A copy landed: only its verification is left.
            } else {
                for target in &plan.copy_to {
                    let copy = CopyDbSnapshot {
                        source_region: region.clone(),
                        snapshot_arn: snapshot.arn.clone(),
                        source_resource: source_resource.clone(),
                        target: target.clone(),
                        ctx: ctx.clone(),
                    };
                    tasks.push(task(if cluster {
                        Task::CopyDbClusterSnapshot(copy)
                    } else {
                        Task::CopyDbSnapshot(copy)
                    }));
                }
            }
            if plan.verify {
                tasks.push(task(Task::Verify(Verify {
                    artifact: ArtifactRef { kind, region: region.clone(), id: snapshot.identifier.clone() },
                    source_resource,
                    // An event's verification reads the catalog record, as it always did.
                    origin: None,
                })));
            }
            Ok(vec![Decision::Tasks { plan: plan.name.clone(), tasks }])
        }
        AwsEvent::Ec2InstanceStateChange { instance_id, state } => {
            if !matches!(state, Ec2InstanceState::Stopping | Ec2InstanceState::ShuttingDown) {
                return Ok(not_selected(format!("instance state {} needs no backup", state.as_str())));
            }
            let Some(instance) = discovery.block.instance(&region, instance_id).await? else {
                return Ok(not_selected("instance no longer exists"));
            };
            let plans: Vec<&Plan> = selecting(policy, ResourceType::Ec2Instance, &region, &instance.tags)
                .into_iter()
                .filter(|p| p.final_snapshot_on_stop)
                .collect();
            if plans.is_empty() {
                return Ok(not_selected("no plan asks for a final snapshot of this instance"));
            }
            Ok(plans
                .into_iter()
                .map(|plan| {
                    let ctx = event_context(plan, at);
                    let t = match plan.instance_backup {
                        InstanceBackup::Snapshots => Task::SnapshotInstance(SnapshotInstance {
                            region: region.clone(),
                            instance_id: instance_id.clone(),
                            exclude_boot_volume: false,
                            ctx,
                        }),
                        InstanceBackup::Ami => Task::CreateAmi(CreateAmi {
                            region: region.clone(),
                            instance_id: instance_id.clone(),
                            reboot: false,
                            ctx,
                        }),
                    };
                    Decision::Tasks { plan: plan.name.clone(), tasks: vec![task(t)] }
                })
                .collect())
        }
        AwsEvent::S3Object(object) => {
            if object.action != S3Action::Created {
                return Ok(not_selected("only object creations are backed up from events"));
            }
            let tags = discovery.objects.bucket_tags(&region, &object.bucket).await?;
            let plans: Vec<&Plan> = selecting(policy, ResourceType::S3Bucket, &region, &tags)
                .into_iter()
                .filter(|p| p.s3.as_ref().is_some_and(|s| s.backup_bucket != object.bucket))
                .filter(|p| {
                    p.s3.as_ref().and_then(|s| s.prefix.as_deref()).is_none_or(|prefix| object.key.starts_with(prefix))
                })
                .collect();
            if plans.is_empty() {
                return Ok(not_selected("bucket not selected by any plan"));
            }
            Ok(plans
                .into_iter()
                .filter_map(|plan| {
                    let dest = plan.s3_destination(s3_region)?;
                    let ctx = event_context(plan, at);
                    let object = ObjectRef {
                        key: object.key.clone(),
                        size: object.size.unwrap_or(0),
                        etag: object.etag.clone(),
                        version_id: object.version_id.clone(),
                    };
                    Some(Decision::Tasks {
                        plan: plan.name.clone(),
                        tasks: vec![task(Task::CopyObject(CopyObject {
                            region: region.clone(),
                            bucket: event_bucket(&event.event),
                            object,
                            dest,
                            ctx,
                        }))],
                    })
                })
                .collect())
        }
        AwsEvent::CloudTrailApiCall(call) => {
            if call.error_code.is_some() {
                return Ok(not_selected("the API call failed"));
            }
            let region = call.aws_region.clone().unwrap_or(region);
            let resource_type = match call.event_name.as_str() {
                "RunInstances" => ResourceType::Ec2Instance,
                "CreateVolume" => ResourceType::Ec2Volume,
                "CreateDBInstance" => ResourceType::RdsInstance,
                "CreateDBCluster" => ResourceType::RdsCluster,
                "CreateBucket" => ResourceType::S3Bucket,
                other => return Ok(not_selected(format!("API call {other} creates nothing the fleet backs up"))),
            };
            let mut decisions = Vec::new();
            for id in call.created_resources() {
                let tags = match resource_type {
                    ResourceType::Ec2Instance => discovery.block.instance(&region, &id).await?.map(|i| i.tags),
                    ResourceType::Ec2Volume => discovery.block.volume(&region, &id).await?.map(|v| v.tags),
                    ResourceType::RdsInstance => discovery.databases.instance(&region, &id).await?.map(|i| i.tags),
                    ResourceType::RdsCluster => discovery.databases.cluster(&region, &id).await?.map(|c| c.tags),
                    ResourceType::S3Bucket => Some(discovery.objects.bucket_tags(&region, &id).await?),
                    // Named in the policy, never created by an API call the fleet hears of.
                    ResourceType::PostgresDb => None,
                };
                let Some(tags) = tags else { continue };
                for plan in selecting(policy, resource_type, &region, &tags).into_iter().filter(|p| p.backup_on_create)
                {
                    let ctx = event_context(plan, at);
                    // New databases take minutes to become available; snapshotting earlier only fails.
                    let not_before = matches!(resource_type, ResourceType::RdsInstance | ResourceType::RdsCluster)
                        .then(|| at + chrono::Duration::minutes(15));
                    let t = match resource_type {
                        ResourceType::Ec2Volume => {
                            Task::SnapshotVolume(SnapshotVolume { region: region.clone(), volume_id: id.clone(), ctx })
                        }
                        ResourceType::Ec2Instance => match plan.instance_backup {
                            InstanceBackup::Snapshots => Task::SnapshotInstance(SnapshotInstance {
                                region: region.clone(),
                                instance_id: id.clone(),
                                exclude_boot_volume: false,
                                ctx,
                            }),
                            InstanceBackup::Ami => Task::CreateAmi(CreateAmi {
                                region: region.clone(),
                                instance_id: id.clone(),
                                reboot: false,
                                ctx,
                            }),
                        },
                        ResourceType::RdsInstance => Task::SnapshotDbInstance(SnapshotDbInstance {
                            region: region.clone(),
                            db_instance_id: id.clone(),
                            ctx,
                        }),
                        ResourceType::RdsCluster => Task::SnapshotDbCluster(SnapshotDbCluster {
                            region: region.clone(),
                            db_cluster_id: id.clone(),
                            ctx,
                        }),
                        ResourceType::S3Bucket => match plan.s3_destination(s3_region) {
                            Some(dest) => Task::ScanBucket(ScanBucket {
                                region: region.clone(),
                                bucket: id.clone(),
                                prefix: plan.s3.as_ref().and_then(|s| s.prefix.clone()),
                                continuation: None,
                                page: 0,
                                listed_after: None,
                                inventory: plan.s3.as_ref().and_then(|s| s.inventory_scan()),
                                dest,
                                ctx,
                            }),
                            None => continue,
                        },
                        ResourceType::PostgresDb => continue,
                    };
                    decisions.push(Decision::Tasks {
                        plan: plan.name.clone(),
                        tasks: vec![MappedTask { task: t, not_before }],
                    });
                }
            }
            if decisions.is_empty() {
                return Ok(not_selected("created resource not selected by any plan"));
            }
            Ok(decisions)
        }
        AwsEvent::S3TestEvent { .. } => Ok(not_selected("s3:TestEvent")),
        AwsEvent::EbsVolume { .. } => Ok(not_selected("EBS volume notifications need no action")),
        AwsEvent::Other { detail_type, .. } => Ok(not_selected(format!("event type {detail_type:?} is not consumed"))),
    }
}

fn event_bucket(event: &AwsEvent) -> String {
    match event {
        AwsEvent::S3Object(object) => object.bucket.clone(),
        _ => String::new(),
    }
}

/// Follow-ups of completed EBS snapshots made by the fleet: copies and verification for a
/// source snapshot, verification only for a copy.
async fn ebs_follow_ups(
    policy: &Policy,
    discovery: &Discovery,
    region: &str,
    ids: &[String],
    is_copy_event: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, AwsError> {
    let snapshots = discovery.block.snapshots(region, ids).await?;
    let mut by_plan: BTreeMap<String, Vec<MappedTask>> = BTreeMap::new();
    for snapshot in snapshots.iter().filter(|s| is_managed(&s.tags) && s.status.is_complete()) {
        let Some(plan) = snapshot.tags.get(tags::PLAN).and_then(|p| policy.plan(p)) else { continue };
        let source_resource = snapshot.tags.get(tags::SOURCE).cloned().unwrap_or_default();
        let ctx = follow_up_context(plan, snapshot.created_at, now);
        let tasks = by_plan.entry(plan.name.clone()).or_default();
        // An AMI's snapshots follow their image; they are not copied one by one.
        let part_of_image = snapshot.tags.contains_key(tags::IMAGE);
        // A member of a crash-consistent set is copied with its set's identity, which the set's
        // own task tags once every member is complete; until then that task spawns the copies.
        let set = match (snapshot.tags.get(tags::SET), snapshot.tags.get(tags::SET_SIZE)) {
            (Some(id), Some(size)) => size.parse().ok().map(|size| SnapshotSet { id: id.clone(), size }),
            _ => None,
        };
        let set_pending = snapshot.tags.contains_key(tags::SET) && set.is_none();
        if !is_copy_event && !snapshot.tags.contains_key(tags::COPIED_FROM) && !part_of_image && !set_pending {
            for target in &plan.copy_to {
                tasks.push(task(Task::CopySnapshot(CopySnapshot {
                    source_region: region.to_owned(),
                    snapshot_id: snapshot.id.clone(),
                    source_resource: source_resource.clone(),
                    target: target.clone(),
                    ctx: ctx.clone(),
                    set: set.clone(),
                })));
            }
        }
        if plan.verify && !part_of_image {
            tasks.push(task(Task::Verify(Verify {
                artifact: ArtifactRef {
                    kind: ArtifactKind::EbsSnapshot,
                    region: region.to_owned(),
                    id: snapshot.id.clone(),
                },
                source_resource,
                origin: None,
            })));
        }
    }
    if by_plan.values().all(Vec::is_empty) {
        return Ok(not_selected("not a completed fleet snapshot"));
    }
    Ok(by_plan
        .into_iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(plan, tasks)| Decision::Tasks { plan, tasks })
        .collect())
}
