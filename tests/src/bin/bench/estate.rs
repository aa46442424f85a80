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

/// Worker dispositions that end a task.
const TERMINAL: [&str; 3] = ["succeeded", "failed", "dead"];

#[derive(Clone, Debug)]
pub(crate) struct EstateConfig {
    pub(crate) volumes: usize,
    pub(crate) objects: usize,
    /// Fleet sizes to run the estate with.
    pub(crate) ks: Vec<usize>,
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
        Ok(Self { volumes: super::env_or("BENCH_VOLUMES", 200)?, objects: super::env_or("BENCH_OBJECTS", 100)?, ks })
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
    pub(crate) cpu_ticks: u64,
    pub(crate) clk_tck: u64,
    pub(crate) peak_rss_kib: u64,
    /// What the end-of-run checks found wrong (empty: all good).
    pub(crate) problems: Vec<String>,
}

impl EstateRun {
    /// Tasks that reached an end (attempts that were retried, parked or handed back are not
    /// tasks, and duplicates did nothing).
    pub(crate) fn executed(&self) -> u64 {
        self.tasks.values().flat_map(|d| d.iter()).filter(|(d, _)| TERMINAL.contains(&d.as_str())).map(|(_, n)| n).sum()
    }

    pub(crate) fn tasks_per_sec(&self) -> f64 {
        self.executed() as f64 / self.seconds
    }

    pub(crate) fn cpu_ms_per_task(&self) -> f64 {
        self.cpu_ticks as f64 * 1000.0 / self.clk_tck as f64 / self.executed().max(1) as f64
    }

    /// Calls per executed task, split into coordination (SQS, DynamoDB) and the backup work.
    pub(crate) fn calls_per_task(&self) -> (f64, f64) {
        let n = self.executed().max(1) as f64;
        let coordination: u64 = self
            .worker_calls
            .iter()
            .filter(|(op, _)| op.starts_with("SQS.") || op.starts_with("DynamoDB."))
            .map(|(_, n)| n)
            .sum();
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
        })
    }
}

fn policy(prefix: &str, backup_bucket: &str) -> String {
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
        let region = REGIONS[i % 2];
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
    let fleet = Fleet::new(&format!("estate{k}")).await;
    let source = format!("{}-src", fleet.prefix).to_lowercase();
    let backup = format!("{}-bak", fleet.prefix).to_lowercase();
    let dir = bench_dir.join(format!("estate-k{k}"));
    std::fs::create_dir_all(&dir)?;

    let seeding = Instant::now();
    let volumes = seed(&fleet, estate, &source, &backup).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy(&fleet.prefix, &backup))?;

    // K workers as a deployment runs them: each with its share of the account's API rate limits.
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy_path.display().to_string()));
    let args = vec![
        format!("--concurrency={}", config.concurrency),
        format!("--exit-when-idle={}", config.idle_secs),
        format!("--rate-share={}", 1.0 / k as f64),
        "--recheck-secs=2".to_owned(),
    ];
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
        tokio::time::sleep(Duration::from_millis(200)).await;
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
        cpu_ticks: 0,
        clk_tck,
        peak_rss_kib: 0,
        problems: Vec::new(),
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
    check_artifacts(&fleet, &volumes, &backup, estate.objects, &mut run.problems).await?;
    Ok(run)
}

/// Every volume has exactly one snapshot in its region and one copy in the DR region; the backup
/// bucket holds one version of every object.
async fn check_artifacts(
    fleet: &Fleet,
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
            if n != 1 {
                wrong.push(format!("{volume}: {n} snapshots in {at}"));
            }
        }
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{} of {} volumes lack exactly one snapshot and one DR copy: {}",
            wrong.len(),
            volumes.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }

    let s3 = fleet.aws.clients().s3;
    let mut keys = 0;
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let out = s3
            .list_object_versions()
            .bucket(backup)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await?;
        keys += out.versions().len();
        if out.is_truncated != Some(true) {
            break;
        }
        (key_marker, version_marker) = (out.next_key_marker, out.next_version_id_marker);
    }
    if keys != objects {
        problems.push(format!("the backup bucket holds {keys} object versions, {objects} expected"));
    }
    Ok(())
}
