//! Estate phase of the benchmark: the real pipeline on a seeded estate. Volumes in two regions
//! and a tagged S3 bucket are created on the emulator; the real `backup-producer run` discovers
//! and expands them while K real workers snapshot, copy to the DR region, copy objects into an
//! Object Lock bucket and prune. It measures what the canary phases cannot: the calls, CPU and
//! time of real backup tasks, the producer's discovery and expansion against real list calls,
//! and, at the end, that every volume has exactly one snapshot and one DR copy and every object
//! its backup.

use super::{mib, spawn_worker, wait_exit, wait_started, Config, Monitor};
use anyhow::{ensure, Context as _};
use aws_sdk_ec2::types::{Filter, ResourceType as Ec2ResourceType, Tag, TagSpecification};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tagging, VersioningConfiguration};
use backup_core::ports::TaskQueue;
use backup_schemas::tags;
use backup_tests::{Fleet, FleetProcess, DR_REGION};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The two source regions (the DR copies go to `DR_REGION`).
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// The tag the plan selects on; its value is the fleet's prefix, so earlier estates on the same
/// emulator are not discovered again.
const SELECT_TAG: &str = "bench-estate";

/// CreateSnapshot's sustained rate per region and account, and its burst.
const CREATE_SNAPSHOT_PER_SEC: f64 = 5.0;
const CREATE_SNAPSHOT_BURST: f64 = 100.0;

/// Worker dispositions that end a task.
const TERMINAL: [&str; 3] = ["succeeded", "failed", "dead"];

/// What is seeded and backed up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Volumes in two regions, each snapshot copied to the DR region, and a tagged bucket.
    Estate,
    /// The per-volume scenario of issue 20: volumes in one region, a snapshot and its prune
    /// each, nothing else (no copy, no verification), as a plain boto3 worker would be compared.
    Volumes,
}

#[derive(Clone, Debug)]
pub(crate) struct EstateConfig {
    pub(crate) shape: Shape,
    pub(crate) volumes: usize,
    pub(crate) objects: usize,
    /// Fleet sizes to run the estate with.
    pub(crate) ks: Vec<usize>,
    /// Run against the realism layer (pending snapshots and copies, quotas, a consistency
    /// window): `BENCH_ESTATE_REALISM`, on by default.
    pub(crate) realism: bool,
}

impl EstateConfig {
    /// The emulator makes real tasks slow (a deep queue, linear scans of every snapshot): 400
    /// volumes took 9 minutes at K = 4. So the default estate is small and runs at the largest K
    /// only; its throughput is bounded by the shared API rate limits, not by K, anyway.
    pub(crate) fn from_env(fleet_ks: &[usize]) -> anyhow::Result<Self> {
        let ks = match std::env::var("BENCH_ESTATE_KS") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|k| {
                    k.trim().parse::<usize>().map_err(|_| anyhow::anyhow!("BENCH_ESTATE_KS: {k:?} is not a number"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            _ => fleet_ks.iter().max().copied().into_iter().collect(),
        };
        ensure!(ks.iter().all(|k| *k >= 1), "BENCH_ESTATE_KS: K must be at least 1");
        Ok(Self {
            shape: Shape::Estate,
            volumes: super::env_or("BENCH_VOLUMES", 200)?,
            objects: super::env_or("BENCH_OBJECTS", 100)?,
            ks,
            realism: super::env_or::<u8>("BENCH_ESTATE_REALISM", 1)? != 0,
        })
    }

    /// The per-volume scenario: `BENCH_SCENARIO_VOLUMES` (200) in one region, one worker, on the
    /// plain emulator (as the boto3 baseline it is compared with was measured).
    pub(crate) fn scenario_from_env() -> anyhow::Result<Self> {
        Ok(Self {
            shape: Shape::Volumes,
            volumes: super::env_or("BENCH_SCENARIO_VOLUMES", 200)?,
            objects: 0,
            ks: vec![super::env_or("BENCH_SCENARIO_K", 1)?],
            realism: false,
        })
    }

    fn regions(&self) -> &'static [&'static str] {
        match self.shape {
            Shape::Estate => &REGIONS,
            Shape::Volumes => &REGIONS[..1],
        }
    }
}

#[derive(Debug)]
pub(crate) struct EstateRun {
    pub(crate) k: usize,
    pub(crate) volumes: usize,
    pub(crate) objects: usize,
    pub(crate) seed_secs: f64,
    /// Producer start to queue empty.
    pub(crate) seconds: f64,
    pub(crate) producer_secs: f64,
    pub(crate) producer_cpu_ms: f64,
    pub(crate) producer_tasks: u64,
    /// Tasks run by the workers, by kind and disposition.
    pub(crate) tasks: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) worker_calls: BTreeMap<String, u64>,
    /// The workers' calls by the task kind they were made for (receives, batched
    /// acknowledgements and children sends are in `worker_calls` only).
    pub(crate) calls_by_kind: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) cpu_ticks: u64,
    pub(crate) clk_tck: u64,
    pub(crate) peak_rss_kib: u64,
    /// What the end-of-run checks found wrong (empty: all good).
    pub(crate) problems: Vec<String>,
    /// Whether the emulator's realism layer (pending snapshots, quotas) was on.
    pub(crate) realistic: bool,
    /// Source regions of the volumes.
    pub(crate) regions: usize,
}

impl EstateRun {
    /// Tasks that reached an end (attempts that were retried, parked or handed back are not
    /// tasks, and duplicates did nothing).
    pub(crate) fn executed(&self) -> u64 {
        self.tasks.values().flat_map(|d| d.iter()).filter(|(d, _)| TERMINAL.contains(&d.as_str())).map(|(_, n)| n).sum()
    }

    /// The shortest time CreateSnapshot's rate limit allows for the estate: each region's
    /// volumes at 5 per second (the burst of 100 ignored, as the target states it).
    pub(crate) fn rate_floor_secs(&self) -> f64 {
        self.volumes.div_ceil(self.regions) as f64 / CREATE_SNAPSHOT_PER_SEC
    }

    /// The volumes per second CreateSnapshot's rate limit allows: per region, a burst of 100
    /// at once and then 5 per second.
    pub(crate) fn rate_limit_volumes_per_sec(&self) -> f64 {
        let per_region = self.volumes.div_ceil(self.regions) as f64;
        let secs = (per_region - CREATE_SNAPSHOT_BURST).max(0.0) / CREATE_SNAPSHOT_PER_SEC;
        if secs == 0.0 {
            f64::INFINITY
        } else {
            self.volumes as f64 / secs
        }
    }

    /// Coordination calls per volume backed up (all of them, whatever task they served).
    pub(crate) fn coordination_per_volume(&self) -> f64 {
        let coordination: u64 = self.worker_calls.iter().filter(|(op, _)| is_coordination(op)).map(|(_, n)| n).sum();
        coordination as f64 / self.volumes.max(1) as f64
    }

    pub(crate) fn cpu_ms_per_volume(&self) -> f64 {
        self.cpu_ticks as f64 * 1000.0 / self.clk_tck as f64 / self.volumes.max(1) as f64
    }

    pub(crate) fn tasks_per_sec(&self) -> f64 {
        self.executed() as f64 / self.seconds
    }

    pub(crate) fn cpu_ms_per_task(&self) -> f64 {
        self.cpu_ticks as f64 * 1000.0 / self.clk_tck as f64 / self.executed().max(1) as f64
    }

    /// Per task kind: executed tasks, and the coordination and backup-work calls made for them
    /// per executed task; then `shared`: the calls made for no one task (receives, batched
    /// deletes, visibility changes and children sends) per executed task of any kind.
    pub(crate) fn breakdown(&self) -> Vec<(String, u64, f64, f64)> {
        let mut rows = Vec::new();
        let mut attributed_coordination = 0;
        for (kind, dispositions) in &self.tasks {
            let executed: u64 =
                dispositions.iter().filter(|(d, _)| TERMINAL.contains(&d.as_str())).map(|(_, n)| n).sum();
            let calls = self.calls_by_kind.get(kind);
            let coordination: u64 =
                calls.into_iter().flatten().filter(|(op, _)| is_coordination(op)).map(|(_, n)| n).sum();
            let work: u64 = calls.into_iter().flatten().filter(|(op, _)| !is_coordination(op)).map(|(_, n)| n).sum();
            attributed_coordination += coordination;
            let per = executed.max(1) as f64;
            rows.push((kind.clone(), executed, coordination as f64 / per, work as f64 / per));
        }
        let all_coordination: u64 =
            self.worker_calls.iter().filter(|(op, _)| is_coordination(op)).map(|(_, n)| n).sum();
        let shared = all_coordination.saturating_sub(attributed_coordination);
        rows.push(("shared".to_owned(), self.executed(), shared as f64 / self.executed().max(1) as f64, 0.0));
        rows
    }

    /// Calls per executed task, split into coordination (SQS, DynamoDB) and the backup work.
    pub(crate) fn calls_per_task(&self) -> (f64, f64) {
        let n = self.executed().max(1) as f64;
        let coordination: u64 = self.worker_calls.iter().filter(|(op, _)| is_coordination(op)).map(|(_, n)| n).sum();
        let total: u64 = self.worker_calls.values().sum();
        (coordination as f64 / n, (total - coordination) as f64 / n)
    }

    pub(crate) fn json(&self) -> Value {
        let (coordination, work) = self.calls_per_task();
        json!({
            "k": self.k,
            "volumes": self.volumes,
            "objects": self.objects,
            "seed_secs": self.seed_secs,
            "seconds": self.seconds,
            "executed_tasks": self.executed(),
            "tasks_per_sec": self.tasks_per_sec(),
            "tasks": self.tasks,
            "worker_calls": self.worker_calls,
            "calls_by_kind": self.calls_by_kind,
            "breakdown": self.breakdown().iter().map(|(kind, executed, coordination, work)| json!({
                "kind": kind, "executed": executed, "coordination_per_task": coordination, "backup_calls_per_task": work,
            })).collect::<Vec<_>>(),
            "coordination_calls_per_task": coordination,
            "backup_calls_per_task": work,
            "cpu_ms_per_task": self.cpu_ms_per_task(),
            "peak_rss_mib": mib(self.peak_rss_kib),
            "producer": {
                "seconds": self.producer_secs,
                "cpu_ms": self.producer_cpu_ms,
                "tasks": self.producer_tasks,
            },
            "problems": self.problems,
            "realistic": self.realistic,
            "rate_floor_secs": self.rate_floor_secs(),
        })
    }
}

/// SQS and DynamoDB calls are the fleet's coordination (the catalog included); the rest is the
/// backup work itself.
fn is_coordination(op: &str) -> bool {
    op.starts_with("SQS.") || op.starts_with("DynamoDB.")
}

fn policy(shape: Shape, prefix: &str, backup_bucket: &str) -> String {
    if shape == Shape::Volumes {
        return format!(
            r#"[[plan]]
name = "bench"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume"]
regions = ["{}"]
select.tags = {{ {SELECT_TAG} = "{prefix}" }}
retain = {{ days = 7, count = 7, min_keep = 3 }}
verify = false
"#,
            REGIONS[0]
        );
    }
    format!(
        r#"[[plan]]
name = "bench"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume", "s3-bucket"]
regions = ["us-east-1", "eu-west-1"]
select.tags = {{ {SELECT_TAG} = "{prefix}" }}
retain = {{ days = 7, count = 7, min_keep = 3 }}
copy_to = [{{ region = "{DR_REGION}", retain_days = 30 }}]
s3 = {{ backup_bucket = "{backup_bucket}", lock_days = 1 }}
"#
    )
}

/// Creates the volumes (half in each region) and the source bucket with its objects; returns
/// the volumes as (region, id).
async fn seed(
    fleet: &Fleet,
    estate: &EstateConfig,
    source: &str,
    backup: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut set: JoinSet<anyhow::Result<(String, String)>> = JoinSet::new();
    let mut volumes = Vec::with_capacity(estate.volumes);
    for i in 0..estate.volumes {
        let region = estate.regions()[i % estate.regions().len()];
        let ec2 = fleet.aws.clients_in(region).ec2;
        let tag = Tag::builder().key(SELECT_TAG).value(&fleet.prefix).build();
        set.spawn(async move {
            let out = ec2
                .create_volume()
                .availability_zone(format!("{region}a"))
                .size(8)
                // As in an account with EBS encryption by default (and because the emulator's
                // CopySnapshot ignores Encrypted=true: docs/EMULATOR.md).
                .encrypted(true)
                .tag_specifications(
                    TagSpecification::builder().resource_type(Ec2ResourceType::Volume).tags(tag).build(),
                )
                .send()
                .await?;
            Ok((region.to_owned(), out.volume_id.context("CreateVolume returned no id")?))
        });
        while set.len() >= 16 {
            volumes.push(set.join_next().await.expect("non-empty")??);
        }
    }
    while let Some(volume) = set.join_next().await {
        volumes.push(volume??);
    }

    if estate.shape == Shape::Volumes {
        return Ok(volumes);
    }
    let s3 = fleet.aws.clients().s3;
    s3.create_bucket().bucket(source).send().await?;
    s3.put_bucket_tagging()
        .bucket(source)
        .tagging(
            Tagging::builder()
                .tag_set(aws_sdk_s3::types::Tag::builder().key(SELECT_TAG).value(&fleet.prefix).build()?)
                .build()?,
        )
        .send()
        .await?;
    s3.create_bucket().bucket(backup).object_lock_enabled_for_bucket(true).send().await?;
    s3.put_bucket_versioning()
        .bucket(backup)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await?;
    let mut puts: JoinSet<anyhow::Result<()>> = JoinSet::new();
    for i in 0..estate.objects {
        let (s3, source) = (s3.clone(), source.to_owned());
        puts.spawn(async move {
            let key = format!("data/{:03}/object-{i:05}.bin", i % 50);
            let body: Vec<u8> = (0..1024 + i % 4096).map(|b| (b * 31 + i) as u8).collect();
            s3.put_object().bucket(source).key(key).body(ByteStream::from(body)).send().await?;
            Ok(())
        });
        while puts.len() >= 16 {
            puts.join_next().await.expect("non-empty")??;
        }
    }
    while let Some(put) = puts.join_next().await {
        put??;
    }
    Ok(volumes)
}

/// CPU time (ms) of this process's reaped children so far: cutime + cstime of /proc/self/stat.
fn children_cpu_ms(clk_tck: u64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |at| &stat[at + 1..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name, field 3 (state) is index 0: cutime (16) is 13 and cstime (17) 14.
    let ticks: u64 = [13, 14].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    ticks as f64 * 1000.0 / clk_tck as f64
}

pub(crate) async fn run(
    config: &Config,
    estate: &EstateConfig,
    k: usize,
    producer: &Path,
    clk_tck: u64,
    bench_dir: &Path,
) -> anyhow::Result<EstateRun> {
    let name = match estate.shape {
        Shape::Estate => format!("estate{k}"),
        Shape::Volumes => format!("volumes{k}"),
    };
    let fleet = if estate.realism { Fleet::realistic(&name).await } else { Fleet::new(&name).await };
    let source = format!("{}-src", fleet.prefix).to_lowercase();
    let backup = format!("{}-bak", fleet.prefix).to_lowercase();
    let dir = bench_dir.join(format!("{name}-k{k}"));
    std::fs::create_dir_all(&dir)?;

    let seeding = Instant::now();
    let volumes = seed(&fleet, estate, &source, &backup).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy(estate.shape, &fleet.prefix, &backup))?;

    // K workers as a deployment runs them: each with its share of the account's API rate limits.
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy_path.display().to_string()));
    let mut args = vec![
        format!("--concurrency={}", config.concurrency),
        format!("--exit-when-idle={}", config.idle_secs),
        format!("--rate-share={}", 1.0 / k as f64),
    ];
    if fleet.is_realistic() {
        args.extend(backup_tests::REALISTIC_WORKER_ARGS.iter().map(|a| (*a).to_owned()));
    } else {
        args.push("--recheck-secs=2".to_owned());
    }
    let mut workers: Vec<FleetProcess> =
        (0..k).map(|i| spawn_worker(config, &env, &dir, &format!("w{i}"), &args)).collect::<anyhow::Result<_>>()?;
    let monitor = Monitor::default();
    let stop_sampling = monitor.spawn(workers.iter().map(FleetProcess::pid).collect(), Duration::from_millis(200));
    wait_started(&mut workers, Duration::from_secs(60)).await?;

    let started = Instant::now();
    let cpu_before = children_cpu_ms(clk_tck);
    let output = tokio::process::Command::new(producer)
        .args(["run", "--plan", "bench", "--json"])
        .envs(env.iter().cloned())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .with_context(|| format!("starting {}", producer.display()))?;
    let producer_secs = started.elapsed().as_secs_f64();
    let producer_cpu_ms = children_cpu_ms(clk_tck) - cpu_before;
    ensure!(
        output.status.success(),
        "backup-producer run failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).context("backup-producer --json output")?;
    let producer_tasks = report["sent"]["sent"].as_u64().unwrap_or(0);
    eprintln!(
        "  K={k}: producer discovered {} resources and sent {producer_tasks} tasks in {producer_secs:.1} s",
        report["discovered"]
    );

    let queue = fleet.queue();
    let timeout = Duration::from_secs(300 + 2 * (estate.volumes + estate.objects) as u64);
    let seconds = loop {
        let depth = queue.depth().await?;
        if depth.visible + depth.in_flight + depth.delayed == 0 {
            break started.elapsed().as_secs_f64();
        }
        ensure!(started.elapsed() < timeout, "K={k}: the estate's tasks were not done after {timeout:?} ({depth:?})");
        // The emulator counts a queue's messages by scanning it: a large estate is polled less often.
        tokio::time::sleep(Duration::from_millis(if estate.volumes > 500 { 1000 } else { 200 })).await;
    };
    eprintln!("  K={k}: the queue emptied after {seconds:.1} s; waiting for the workers to exit");
    wait_exit(&mut workers, &monitor, Duration::from_secs(config.idle_secs + 80)).await?;
    stop_sampling.cancel();

    let mut run = EstateRun {
        k,
        volumes: estate.volumes,
        objects: estate.objects,
        seed_secs,
        seconds,
        producer_secs,
        producer_cpu_ms,
        producer_tasks,
        tasks: BTreeMap::new(),
        worker_calls: BTreeMap::new(),
        calls_by_kind: BTreeMap::new(),
        cpu_ticks: 0,
        clk_tck,
        peak_rss_kib: 0,
        problems: Vec::new(),
        realistic: fleet.is_realistic(),
        regions: estate.regions().len(),
    };
    for worker in &workers {
        let summary = worker.summary();
        for (kind, dispositions) in summary["counts"]["tasks"].as_object().into_iter().flatten() {
            for (disposition, n) in dispositions.as_object().into_iter().flatten() {
                *run.tasks.entry(kind.clone()).or_default().entry(disposition.clone()).or_default() +=
                    n.as_u64().unwrap_or(0);
            }
        }
        for (op, n) in summary["aws_calls"].as_object().into_iter().flatten() {
            *run.worker_calls.entry(op.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
        for (kind, calls) in summary["aws_calls_by_kind"].as_object().into_iter().flatten() {
            for (op, n) in calls.as_object().into_iter().flatten() {
                *run.calls_by_kind.entry(kind.clone()).or_default().entry(op.clone()).or_default() +=
                    n.as_u64().unwrap_or(0);
            }
        }
        let stats = monitor.get(worker.pid());
        run.cpu_ticks += stats.cpu_ticks;
        run.peak_rss_kib = run.peak_rss_kib.max(stats.hwm_kib);
    }
    for (kind, dispositions) in &run.tasks {
        for (disposition, n) in dispositions {
            if ["failed", "dead", "poison"].contains(&disposition.as_str()) {
                run.problems.push(format!("{n} {kind} tasks ended {disposition}"));
            }
        }
    }
    check_artifacts(&fleet, estate.shape, &volumes, &backup, estate.objects, &mut run.problems).await?;
    Ok(run)
}

/// Every volume has exactly one snapshot in its region and one copy in the DR region; the backup
/// bucket holds one version of every object.
async fn check_artifacts(
    fleet: &Fleet,
    shape: Shape,
    volumes: &[(String, String)],
    backup: &str,
    objects: usize,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut per_source: BTreeMap<(String, String), usize> = BTreeMap::new();
    for region in REGIONS.iter().copied().chain([DR_REGION]) {
        let ec2 = fleet.aws.clients_in(region).ec2;
        let mut token = None;
        loop {
            let out = ec2
                .describe_snapshots()
                .owner_ids("self")
                .filters(Filter::builder().name(format!("tag:{}", tags::PLAN)).values("bench").build())
                .set_next_token(token.take())
                .send()
                .await?;
            for snapshot in out.snapshots() {
                let source = snapshot.tags().iter().find(|t| t.key() == Some(tags::SOURCE)).and_then(|t| t.value());
                if let Some(source) = source {
                    *per_source.entry((region.to_owned(), source.to_owned())).or_default() += 1;
                }
            }
            match out.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
    }
    let mut wrong = Vec::new();
    for (region, volume) in volumes {
        for at in [region.as_str(), DR_REGION] {
            let n = per_source.get(&(at.to_owned(), volume.clone())).copied().unwrap_or(0);
            let expected = if at == DR_REGION && shape == Shape::Volumes { 0 } else { 1 };
            if n != expected {
                wrong.push(format!("{volume}: {n} snapshots in {at}"));
            }
        }
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{} of {} volumes lack exactly one snapshot (and one DR copy in the estate): {}",
            wrong.len(),
            volumes.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }

    if shape == Shape::Volumes {
        return Ok(());
    }
    let keys = count_versions(fleet, backup).await?;
    if keys != objects {
        problems.push(format!("the backup bucket holds {keys} object versions, {objects} expected"));
    }
    Ok(())
}

/// Object versions in `bucket` (every page of ListObjectVersions).
pub(crate) async fn count_versions(fleet: &Fleet, bucket: &str) -> anyhow::Result<usize> {
    let s3 = fleet.aws.clients().s3;
    let mut versions = 0;
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await?;
        versions += out.versions().len();
        if out.is_truncated != Some(true) {
            return Ok(versions);
        }
        (key_marker, version_marker) = (out.next_key_marker, out.next_version_id_marker);
    }
}
