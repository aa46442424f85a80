//! Chaos: real `backup-worker` processes run real EBS backups and canaries through a proxy that
//! throttles, fails, delays and resets a share of every AWS call, while a chaos loop SIGKILLs and
//! restarts a random worker every few seconds. The workload carries duplicate deliveries and
//! poison. At the end every task has succeeded, every volume has exactly one snapshot, the task
//! queue is empty and the DLQ holds exactly the poison. Deadlines are generous and bounded; the
//! test asserts outcomes, never timings.
//!
//! `CHAOS_SEED` fixes the fault dice and the chaos loop's choices (the interleaving of processes
//! stays nondeterministic); the seed is printed either way.
//!
//! The targeted tests after it pin down what the chaos found, each with one deterministic fault:
//! a create whose reply is lost must leave one artifact, and a duplicate delivery of a
//! long-running task must not end in the DLQ.

use aws_sdk_ec2::types::Filter;
use backup_core::ports::{TaskQueue, TaskRecord, TaskStore};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, BackupContext, CanaryMode, CopySnapshot, CopyTarget, CreateAmi, Envelope, Origin,
    RunId, SnapshotDbInstance, SnapshotVolume, Task, TaskId, TaskState, Tier, Verify,
};
use backup_tests::fault_proxy::{FaultConfig, FaultKind, FaultProxy};
use backup_tests::{canary, drain_messages, Fleet, FleetProcess, DR_REGION, REGION};
use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const WORKERS: usize = 3;
const VOLUMES: usize = 20;
const CANARIES: usize = 30;
const MAX_RECEIVE_COUNT: u32 = 8;
/// The chaos loop keeps killing until at least this many kills happened, even if the work is done.
const MIN_KILLS: usize = 8;
/// Until every task has succeeded.
const WORK_DEADLINE: Duration = Duration::from_secs(150);
/// Until the leftover duplicates are consumed and the task queue is empty.
const SETTLE_DEADLINE: Duration = Duration::from_secs(45);

/// 10% injected errors (throttling of every service's kind, and some 5xx), 1% connection resets
/// (half before the upstream saw the request, half after it executed it: the reply is lost) and
/// some latency.
fn chaos_faults(seed: u64) -> FaultConfig {
    FaultConfig {
        throttle: 0.07,
        server_error: 0.03,
        reset: 0.005,
        reset_after_forward: 0.005,
        latency: Some((Duration::from_millis(150), 0.05)),
        seed,
        ..FaultConfig::none()
    }
}

fn worker_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--visibility-timeout-secs=5",
        "--lease-secs=5",
        "--heartbeat-secs=1",
        "--receive-wait-secs=1",
        "--recheck-secs=1",
        "--consistency-window-secs=3",
        "--ack-flush-ms=100",
        "--drain-deadline-secs=10",
        "--concurrency=8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--max-receive-count={MAX_RECEIVE_COUNT}"));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The fleet's environment with every AWS call going through the proxy.
fn env_via(fleet: &Fleet, proxy: &FaultProxy) -> Vec<(String, String)> {
    fleet.env_at(&proxy.endpoint())
}

fn spawn_worker(fleet: &Fleet, env: &[(String, String)], name: &str, extra: &[&str]) -> FleetProcess {
    let args = worker_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    FleetProcess::spawn("backup-worker", name, &fleet.prefix, env, &args)
}

/// A volume made directly on the emulator (not through the proxy).
async fn create_volume(fleet: &Fleet) -> String {
    let out = fleet.aws.clients().ec2.create_volume().availability_zone("us-east-1a").size(8).send().await.unwrap();
    out.volume_id.expect("volume id")
}

fn snapshot_task(volume_id: &str, verify: bool) -> Envelope {
    let ctx = BackupContext {
        plan: "chaos".into(),
        tier: Tier::Daily,
        window: Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap(),
        expires_at: None,
        copy_to: vec![],
        verify,
        retain: None,
        export: None,
    };
    let task = Task::SnapshotVolume(SnapshotVolume { region: REGION.into(), volume_id: volume_id.into(), ctx });
    Envelope::new(task, RunId::new("chaos"), Origin::Operator { command: "chaos".into() }, Utc::now())
}

/// Snapshot ids matching one describe filter, read on the emulator directly.
async fn snapshots_where(fleet: &Fleet, name: &str, value: &str) -> Vec<String> {
    let out = fleet
        .aws
        .clients()
        .ec2
        .describe_snapshots()
        .filters(Filter::builder().name(name).values(value).build())
        .send()
        .await
        .unwrap();
    out.snapshots().iter().filter_map(|s| s.snapshot_id().map(str::to_owned)).collect()
}

/// One task the run must complete.
struct Expected {
    label: String,
    /// For a snapshot task: the volume, and whether it spawns a verification.
    volume: Option<(String, bool)>,
}

/// How often each log message appears across the logs of every worker process of the run
/// (killed ones write no summary, but their logs tell what they did).
fn log_messages(logs: &[std::path::PathBuf]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for path in logs {
        for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
            let message = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| line.chars().take(80).collect());
            *counts.entry(message).or_default() += 1;
        }
    }
    counts
}

fn summarize(records: &BTreeMap<TaskId, TaskRecord>) -> String {
    let mut attempts: BTreeMap<u32, usize> = BTreeMap::new();
    for record in records.values() {
        *attempts.entry(record.attempts).or_default() += 1;
    }
    format!("tasks by attempts: {attempts:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_backups_complete_exactly_once_under_injected_faults_and_killed_workers() {
    let started = Instant::now();
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let fleet = Fleet::realistic_with("chaos", |s| {
        s.task_visibility_timeout_secs = 5;
        s.task_max_receive_count = MAX_RECEIVE_COUNT;
    })
    .await;
    let proxy = FaultProxy::start(fleet.endpoint.as_str(), chaos_faults(seed)).await.expect("start the proxy");
    eprintln!("chaos: seed {seed}, fleet {}, proxy {} -> {}", fleet.prefix, proxy.endpoint(), proxy.upstream());

    // The workload: one snapshot per volume (half of them spawn a verification), canaries that
    // sleep (so kills land mid-task), park or fail once, 10% of it delivered twice, and poison.
    let mut expected: BTreeMap<TaskId, Expected> = BTreeMap::new();
    let mut bodies: Vec<String> = Vec::new();
    for i in 0..VOLUMES {
        let volume_id = create_volume(&fleet).await;
        let envelope = snapshot_task(&volume_id, i % 2 == 0);
        expected.insert(
            envelope.task_id.clone(),
            Expected { label: format!("snapshot of {volume_id}"), volume: Some((volume_id, i % 2 == 0)) },
        );
        bodies.push(envelope.encode().unwrap());
    }
    for i in 0..CANARIES {
        let mode = match i % 10 {
            0 => CanaryMode::PendingTimes(1),
            5 => CanaryMode::RetryUntil(2),
            _ => CanaryMode::Succeed,
        };
        let envelope = canary(&format!("chaos{i}"), mode, rng.random_range(0..4000));
        expected.insert(envelope.task_id.clone(), Expected { label: format!("canary {i} ({mode:?})"), volume: None });
        bodies.push(envelope.encode().unwrap());
    }
    let duplicates: Vec<String> = bodies.iter().step_by(10).cloned().collect();
    bodies.extend(duplicates.iter().cloned());
    let mut poison: Vec<String> = Vec::new();
    for i in 0..2 {
        let mut value: serde_json::Value =
            serde_json::from_str(&canary(&format!("poison{i}"), CanaryMode::Succeed, 0).encode().unwrap()).unwrap();
        poison.push(format!("{{\"v\": 1, \"kind\": \"fleet.canary\", \"chaos\": {i}, oops"));
        value["kind"] = json!("ebs.format_disk");
        poison.push(value.to_string());
        value["kind"] = json!("fleet.canary");
        value["v"] = json!(99);
        poison.push(value.to_string());
    }
    bodies.extend(poison.iter().cloned());
    bodies.shuffle(&mut rng);
    for body in &bodies {
        fleet.send_body(body).await;
    }
    eprintln!(
        "chaos: sent {} messages: {} tasks ({VOLUMES} snapshots, {CANARIES} canaries), {} duplicates, {} poison",
        bodies.len(),
        expected.len(),
        duplicates.len(),
        poison.len()
    );

    let env = env_via(&fleet, &proxy);
    let mut generations = [0usize; WORKERS];
    let mut workers: Vec<FleetProcess> =
        (0..WORKERS).map(|slot| spawn_worker(&fleet, &env, &format!("w{slot}-0"), &[])).collect();
    let mut logs: Vec<std::path::PathBuf> = workers.iter().map(|w| w.log_path.clone()).collect();
    let store = fleet.store();
    let mut finished: BTreeMap<TaskId, TaskRecord> = BTreeMap::new();
    let mut kills = 0usize;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(1500..3500));
    let deadline = Instant::now() + WORK_DEADLINE;
    loop {
        for worker in workers.iter_mut() {
            if let Some(status) = worker.child.try_wait().expect("try_wait") {
                panic!("{} exited on its own ({status}) under faults; log:\n{}", worker.name, worker.log_tail(40));
            }
        }
        // Progress, read on the emulator directly. Finished tasks stay finished.
        let unfinished: Vec<TaskId> = expected.keys().filter(|id| !finished.contains_key(*id)).cloned().collect();
        for id in unfinished {
            let record = match store.get(&id).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(err) => {
                    // The emulator is shared: a hiccup is retried at the next poll.
                    eprintln!("chaos: could not read {id} on the emulator: {err}");
                    break;
                }
            };
            match record.state {
                TaskState::Succeeded => {
                    // A verified snapshot's verification is expected too, once its id is known.
                    if let Some((volume_id, true)) = expected[&id].volume.clone() {
                        let snapshot_id = record.result.as_ref().and_then(|r| r["snapshot_id"].as_str()).unwrap();
                        let verify = Task::Verify(Verify {
                            artifact: ArtifactRef {
                                kind: ArtifactKind::EbsSnapshot,
                                region: REGION.into(),
                                id: snapshot_id.to_owned(),
                            },
                            source_resource: volume_id.clone(),
                            origin: None,
                        });
                        expected.insert(
                            verify.id(),
                            Expected { label: format!("verification of {snapshot_id} ({volume_id})"), volume: None },
                        );
                    }
                    finished.insert(id, record);
                }
                TaskState::Failed | TaskState::Dead => panic!(
                    "{} ended {} under chaos: {record:#?}\nproxy: {}",
                    expected[&id].label,
                    record.state,
                    proxy.counts()
                ),
                _ => {}
            }
        }
        let done = finished.len() == expected.len();
        if done && kills >= MIN_KILLS {
            break;
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = expected
                .iter()
                .filter(|(id, _)| !finished.contains_key(*id))
                .map(|(id, e)| format!("{id} ({})", e.label))
                .collect();
            panic!(
                "{} of {} tasks unfinished after {WORK_DEADLINE:?} ({kills} kills): {missing:#?}\nproxy: {}",
                missing.len(),
                expected.len(),
                proxy.counts()
            );
        }
        if Instant::now() >= next_kill {
            // One at a time, restarted at once: at least two workers are always alive.
            let slot = rng.random_range(0..WORKERS);
            workers[slot].sigkill();
            generations[slot] += 1;
            workers[slot] = spawn_worker(&fleet, &env, &format!("w{slot}-{}", generations[slot]), &[]);
            logs.push(workers[slot].log_path.clone());
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(1500..4000));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let work_time = started.elapsed();
    eprintln!("chaos: all {} tasks succeeded after {work_time:.1?} with {kills} kills", expected.len());

    // Leftover duplicate deliveries are consumed (and deleted) by the running workers.
    let queue = fleet.queue();
    let settle = Instant::now() + SETTLE_DEADLINE;
    loop {
        let depth = queue.depth().await.expect("queue depth");
        if depth.visible + depth.in_flight + depth.delayed == 0 {
            break;
        }
        assert!(Instant::now() < settle, "the task queue did not drain within {SETTLE_DEADLINE:?}: {depth:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for worker in &workers {
        worker.sigterm();
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for worker in workers.iter_mut() {
        let status = worker.wait_async(Duration::from_secs(60)).await;
        assert!(status.success(), "{} exited with {status} on SIGTERM; log:\n{}", worker.name, worker.log_tail(40));
        let summary = worker.summary();
        for (kind, dispositions) in summary["counts"]["tasks"].as_object().into_iter().flatten() {
            for (disposition, n) in dispositions.as_object().into_iter().flatten() {
                *totals.entry(format!("{kind}.{disposition}")).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }

    let counts = proxy.counts();
    eprintln!("chaos: proxy: {counts}");
    eprintln!("chaos: dispositions of the last worker generation: {totals:?}");
    eprintln!("chaos: log messages of all {} worker processes: {:#?}", logs.len(), log_messages(&logs));
    eprintln!("chaos: {}", summarize(&finished));

    // Every task succeeded (checked above); the records are final.
    for (id, record) in &finished {
        assert_eq!(store.get(id).await.unwrap().map(|r| r.state), Some(TaskState::Succeeded), "{record:#?}");
    }
    // Exactly one snapshot per volume, tagged with its task id, and it is the one recorded.
    let mut extra_snapshots = Vec::new();
    for (id, task) in &expected {
        let Some((volume_id, _)) = &task.volume else { continue };
        let by_task = snapshots_where(&fleet, &format!("tag:{}", tags::TASK_ID), id.as_str()).await;
        let by_volume = snapshots_where(&fleet, "volume-id", volume_id).await;
        let recorded = finished[id].result.as_ref().and_then(|r| r["snapshot_id"].as_str()).map(str::to_owned);
        if by_task.len() != 1 || by_volume != by_task || recorded.as_ref() != by_task.first() {
            extra_snapshots.push(format!(
                "{volume_id} ({id}): tagged {by_task:?}, of the volume {by_volume:?}, recorded {recorded:?}"
            ));
        }
    }
    assert!(extra_snapshots.is_empty(), "volumes without exactly one snapshot: {extra_snapshots:#?}\nproxy: {counts}");
    // Nothing left in the task queue.
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (0, 0, 0), "task queue after the run");
    // The DLQ holds the poison and nothing else. The worker moves poison send-first, delete-second
    // (documented: a crash in between leaves a duplicate in the DLQ, never a loss), so a poison
    // body may appear twice; a body that is not poison must never appear.
    let dead = drain_messages(&fleet.dlq(), poison.len() + 20, Duration::from_secs(8)).await;
    let dead_bodies: Vec<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    let strays: Vec<&&str> = dead_bodies.iter().filter(|b| !poison.iter().any(|p| p == **b)).collect();
    assert!(strays.is_empty(), "the DLQ holds messages that are not poison: {strays:#?}");
    let distinct: BTreeSet<&str> = dead_bodies.iter().copied().collect();
    let wanted: BTreeSet<&str> = poison.iter().map(String::as_str).collect();
    assert_eq!(distinct, wanted, "the DLQ holds exactly the poison");
    // The faults really happened.
    assert!(counts.total(FaultKind::Throttle) > 0, "{counts}");
    assert!(counts.total(FaultKind::Reset) + counts.total(FaultKind::ResetAfterForward) > 0, "{counts}");
    eprintln!(
        "chaos: DLQ {} messages ({} duplicate poison); total {:.1?}",
        dead.len(),
        dead.len() - distinct.len(),
        started.elapsed()
    );
}

/// Where a lost-reply test looks for the artifacts carrying its task id.
#[derive(Clone)]
enum Artifacts {
    Snapshots(&'static str),
    Images,
    /// Every manual DB snapshot of this DB instance (RDS names them after the task).
    DbSnapshotsOf(String),
}

impl Artifacts {
    fn service(&self) -> &'static str {
        match self {
            Artifacts::DbSnapshotsOf(_) => "rds",
            _ => "ec2",
        }
    }
}

async fn artifacts_tagged(fleet: &Fleet, artifacts: &Artifacts, task_id: &TaskId) -> Vec<String> {
    let filter = Filter::builder().name(format!("tag:{}", tags::TASK_ID)).values(task_id.as_str()).build();
    match artifacts {
        Artifacts::Snapshots(region) => {
            let out = fleet.aws.clients_in(region).ec2.describe_snapshots().filters(filter).send().await.unwrap();
            out.snapshots().iter().filter_map(|s| s.snapshot_id().map(str::to_owned)).collect()
        }
        Artifacts::Images => {
            let out = fleet.aws.clients().ec2.describe_images().filters(filter).send().await.unwrap();
            out.images().iter().filter_map(|i| i.image_id().map(str::to_owned)).collect()
        }
        Artifacts::DbSnapshotsOf(db) => {
            let out = fleet
                .aws
                .clients()
                .rds
                .describe_db_snapshots()
                .db_instance_identifier(db)
                .snapshot_type("manual")
                .send()
                .await
                .unwrap();
            out.db_snapshots().iter().filter_map(|s| s.db_snapshot_identifier().map(str::to_owned)).collect()
        }
    }
}

/// Runs `task` on one worker whose first `operation` call is executed by EC2 but its reply lost
/// (the connection drops), and checks that the task made exactly one artifact.
async fn one_artifact_after_a_lost_reply(fleet: &Fleet, operation: &str, task: Envelope, artifacts: Artifacts) {
    let proxy = FaultProxy::start(
        fleet.endpoint.as_str(),
        FaultConfig {
            reset_after_forward: 1.0,
            operations: vec![operation.to_owned()],
            max_faults: Some(1),
            ..FaultConfig::none()
        },
    )
    .await
    .unwrap();
    fleet.send(&task).await;
    let mut worker = spawn_worker(fleet, &env_via(fleet, &proxy), "w", &["--exit-when-idle=4"]);
    let record = fleet.wait_task(&task.task_id, Duration::from_secs(60), |r| r.state.is_terminal()).await;
    let status = worker.wait_async(Duration::from_secs(60)).await;
    assert!(status.success(), "worker exited with {status}; log:\n{}", worker.log_tail(30));
    let service = artifacts.service();
    assert_eq!(proxy.counts().get(FaultKind::ResetAfterForward, service), 1, "one {operation} reply was lost");
    let found = artifacts_tagged(fleet, &artifacts, &task.task_id).await;
    assert_eq!(
        (record.state, found.len()),
        (TaskState::Succeeded, 1),
        "after one lost {operation} reply the task is {} with {} artifacts tagged with its id ({found:?}); \
         record: {record:#?}\nworker summary: {}",
        record.state,
        found.len(),
        worker.summary()
    );
}

/// The queue of a lost-reply test: short visibility, and the receive count the workers use.
fn lost_reply_fleet(settings: &mut backup_aws::bootstrap::BootstrapSettings) {
    settings.task_visibility_timeout_secs = 5;
    settings.task_max_receive_count = MAX_RECEIVE_COUNT;
}

fn backup_ctx() -> BackupContext {
    match snapshot_task("vol-0", false).task {
        Task::SnapshotVolume(p) => p.ctx,
        _ => unreachable!(),
    }
}

// A create whose reply is lost (connection reset, attempt timeout) after EC2 executed it must not
// be retried by the SDK: EC2's CreateSnapshot, CopySnapshot and CreateImage take no idempotency
// token, so an SDK retry makes a second artifact. The fleet's own retry finds the first by its tag.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_snapshot_reply_does_not_make_a_second_snapshot() {
    let fleet = Fleet::realistic_with("lostsnap", lost_reply_fleet).await;
    let volume_id = create_volume(&fleet).await;
    let task = snapshot_task(&volume_id, false);
    one_artifact_after_a_lost_reply(&fleet, "CreateSnapshot", task, Artifacts::Snapshots(REGION)).await;
    assert_eq!(snapshots_where(&fleet, "volume-id", &volume_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_copy_snapshot_reply_does_not_make_a_second_copy() {
    let fleet = Fleet::realistic_with("lostcopy", lost_reply_fleet).await;
    let volume_id = create_volume(&fleet).await;
    let source = fleet.aws.clients().ec2.create_snapshot().volume_id(&volume_id).send().await.unwrap();
    let task = Task::CopySnapshot(CopySnapshot {
        source_region: REGION.into(),
        snapshot_id: source.snapshot_id.unwrap(),
        source_resource: volume_id,
        target: CopyTarget { region: DR_REGION.into(), kms_key: None, retain_days: None, ..Default::default() },
        ctx: backup_ctx(),
        set: None,
    });
    let task = Envelope::new(task, RunId::new("chaos"), Origin::Operator { command: "chaos".into() }, Utc::now());
    one_artifact_after_a_lost_reply(&fleet, "CopySnapshot", task, Artifacts::Snapshots(DR_REGION)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_image_reply_does_not_make_a_second_image() {
    let fleet = Fleet::realistic_with("lostami", lost_reply_fleet).await;
    let out = fleet
        .aws
        .clients()
        .ec2
        .run_instances()
        .image_id("ami-12345678")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let instance_id = out.instances()[0].instance_id().unwrap().to_owned();
    let task = Task::CreateAmi(CreateAmi { region: REGION.into(), instance_id, reboot: false, ctx: backup_ctx() });
    let task = Envelope::new(task, RunId::new("chaos"), Origin::Operator { command: "chaos".into() }, Utc::now());
    one_artifact_after_a_lost_reply(&fleet, "CreateImage", task, Artifacts::Images).await;
}

/// RDS names its snapshots after the task, so the retried create meets "already exists" and the
/// handler adopts its own snapshot: one snapshot, task succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_db_snapshot_reply_is_adopted_by_name() {
    let fleet = Fleet::realistic_with("lostrds", lost_reply_fleet).await;
    let db = format!("{}-db", fleet.prefix).to_lowercase();
    fleet
        .aws
        .clients()
        .rds
        .create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .expect("create DB instance");
    let task = Task::SnapshotDbInstance(SnapshotDbInstance {
        region: REGION.into(),
        db_instance_id: db.clone(),
        ctx: backup_ctx(),
    });
    let task = Envelope::new(task, RunId::new("chaos"), Origin::Operator { command: "chaos".into() }, Utc::now());
    one_artifact_after_a_lost_reply(&fleet, "CreateDBSnapshot", task, Artifacts::DbSnapshotsOf(db)).await;
}

/// Found by the chaos test: a duplicate delivery of a task that runs (legitimately) for longer than
/// a few leases used to be handed back each time it found the lease held, every hand-back being a
/// receive; once its receives exceeded maxReceiveCount, SQS redrove the duplicate to the DLQ while
/// the task itself succeeded (a false dead letter, and a DLQ alarm, for healthy work).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_of_a_long_running_task_is_not_redriven_to_the_dlq() {
    let fleet = Fleet::realistic_with("dupdlq", |s| {
        s.task_visibility_timeout_secs = 4;
        s.task_max_receive_count = 3;
    })
    .await;
    // Six leases long; the heartbeat keeps it (no faults, no kills).
    let task = canary("dupdlq", CanaryMode::Succeed, 24_000);
    fleet.send(&task).await;
    fleet.send(&task).await;
    let args = [
        "--visibility-timeout-secs=4",
        "--lease-secs=4",
        "--heartbeat-secs=1",
        "--receive-wait-secs=1",
        "--max-receive-count=3",
        "--exit-when-idle=8",
    ];
    let mut worker = fleet.worker("w", &args);
    let status = worker.wait_async(Duration::from_secs(90)).await;
    assert!(status.success(), "worker exited with {status}; log:\n{}", worker.log_tail(30));
    let record = fleet.task(&task.task_id).await.expect("recorded");
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 1);
    let depth = fleet.queue().depth().await.unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (0, 0, 0), "task queue after the run");
    let dead = fleet.dlq_messages(1, Duration::from_secs(3)).await;
    assert!(
        dead.is_empty(),
        "the task succeeded, yet {} of its messages is in the DLQ (worker counts: {}); log:\n{}",
        dead.len(),
        worker.summary()["counts"],
        worker.log_tail(20)
    );
}
