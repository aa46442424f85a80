//! S3 phase of the benchmark: the nightly re-run of a bucket backup. A source bucket of
//! `BENCH_S3_OBJECTS` objects is seeded with its backup copies already in place (the same bodies
//! at `<source-bucket>/<key>` in a versioned Object Lock bucket, as an earlier run leaves them).
//! One real worker then runs the scan twice: over the unchanged bucket (S3 requests per object,
//! wall time against a bare ListObjectsV2 walk of the same bucket on the same emulator), and
//! after 1% of the objects were rewritten and 0.5% added (each copied exactly once, nothing
//! else). Between the two, the unchanged bucket is scanned twice more from an S3 Inventory report
//! written as S3 delivers one (the emulator makes none): rows in key order, and rows shuffled
//! over the files (nothing documents the order), to count the requests both ways.

use super::{spawn_worker, wait_exit, wait_started, Config, Monitor};
use anyhow::{ensure, Context as _};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backup_core::ports::TaskQueue;
use backup_schemas::{BackupContext, Envelope, InventoryScan, Origin, RunId, S3Destination, ScanBucket, Task, Tier};
use backup_tests::{Fleet, REGION};
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bare walks of the source bucket; the median is the reference.
const WALK_REPS: usize = 3;

#[derive(Debug)]
pub(crate) struct ScanPass {
    pub(crate) seconds: f64,
    pub(crate) s3_calls: BTreeMap<String, u64>,
    pub(crate) tasks: u64,
}

impl ScanPass {
    pub(crate) fn s3_requests(&self) -> u64 {
        self.s3_calls.values().sum()
    }
}

#[derive(Debug)]
pub(crate) struct S3Run {
    pub(crate) objects: usize,
    pub(crate) seed_secs: f64,
    pub(crate) unchanged: ScanPass,
    /// Median wall time of a bare ListObjectsV2 walk of the source bucket, and its requests.
    pub(crate) walk_secs: f64,
    pub(crate) walk_requests: u64,
    pub(crate) changed: usize,
    pub(crate) added: usize,
    pub(crate) after_changes: ScanPass,
    /// The unchanged bucket scanned from an inventory report: rows in key order, rows shuffled.
    pub(crate) inventory_ordered: ScanPass,
    pub(crate) inventory_shuffled: ScanPass,
    /// What the end-of-run checks found wrong (empty: all good).
    pub(crate) problems: Vec<String>,
}

impl S3Run {
    pub(crate) fn requests_per_unchanged_object(&self) -> f64 {
        self.unchanged.s3_requests() as f64 / self.objects.max(1) as f64
    }

    pub(crate) fn walk_ratio(&self) -> f64 {
        self.unchanged.seconds / self.walk_secs
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "objects": self.objects,
            "seed_secs": self.seed_secs,
            "unchanged": { "seconds": self.unchanged.seconds, "s3_calls": self.unchanged.s3_calls, "tasks": self.unchanged.tasks },
            "requests_per_unchanged_object": self.requests_per_unchanged_object(),
            "walk_secs": self.walk_secs,
            "walk_requests": self.walk_requests,
            "scan_over_walk": self.walk_ratio(),
            "changed": self.changed,
            "added": self.added,
            "after_changes": { "seconds": self.after_changes.seconds, "s3_calls": self.after_changes.s3_calls, "tasks": self.after_changes.tasks },
            "inventory_ordered": { "seconds": self.inventory_ordered.seconds, "s3_calls": self.inventory_ordered.s3_calls, "tasks": self.inventory_ordered.tasks },
            "inventory_shuffled": { "seconds": self.inventory_shuffled.seconds, "s3_calls": self.inventory_shuffled.s3_calls, "tasks": self.inventory_shuffled.tasks },
            "problems": self.problems,
        })
    }
}

fn key(i: usize) -> String {
    format!("data/{:03}/object-{i:06}.bin", i % 100)
}

fn body(i: usize, generation: u8) -> Vec<u8> {
    (0..256 + i % 768).map(|b| (b * 31 + i) as u8 ^ generation).collect()
}

async fn put_all(fleet: &Fleet, puts: Vec<(String, String, Vec<u8>)>) -> anyhow::Result<()> {
    let s3 = fleet.aws.clients().s3;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(puts)
        .map(|(bucket, key, body)| {
            let s3 = s3.clone();
            async move {
                s3.put_object().bucket(bucket).key(&key).body(ByteStream::from(body)).send().await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A scan of the bench's bucket from its inventory report `id`.
fn inventory_scan_task(source: &str, backup: &str, day: u32, id: &str) -> Task {
    let Task::ScanBucket(mut scan) = scan_task(source, backup, day) else { unreachable!("a scan") };
    scan.inventory = Some(InventoryScan { id: id.into(), max_age_hours: 48, report: None });
    Task::ScanBucket(scan)
}

fn scan_task(source: &str, backup: &str, day: u32) -> Task {
    let window = Utc.with_ymd_and_hms(2026, 11, day, 2, 0, 0).single().expect("a valid date");
    Task::ScanBucket(ScanBucket {
        region: REGION.into(),
        bucket: source.into(),
        prefix: None,
        continuation: None,
        page: 0,
        listed_after: None,
        inventory: None,
        dest: S3Destination { bucket: backup.into(), region: REGION.into(), storage_class: None, lock_days: Some(1) },
        ctx: BackupContext {
            plan: "bench-s3".into(),
            tier: Tier::Daily,
            window,
            expires_at: None,
            copy_to: vec![],
            verify: false,
            retain: None,
            export: None,
        },
    })
}

/// One worker runs one scan and whatever it spawns; the clock runs from the send to an empty
/// queue (sampled every 20 ms).
async fn scan_pass(config: &Config, fleet: &Fleet, task: Task, dir: &Path, name: &str) -> anyhow::Result<ScanPass> {
    let env = fleet.env();
    let args = vec![format!("--concurrency={}", config.concurrency), format!("--exit-when-idle={}", config.idle_secs)];
    let mut workers = vec![spawn_worker(config, &env, dir, name, &args)?];
    let monitor = Monitor::default();
    let stop_sampling = monitor.spawn(workers.iter().map(|w| w.pid()).collect(), Duration::from_millis(200));
    wait_started(&mut workers, Duration::from_secs(60)).await?;
    let queue = fleet.queue();
    let envelope =
        Envelope::new(task, RunId::new("bench-s3"), Origin::Operator { command: "bench".into() }, Utc::now());
    let started = Instant::now();
    fleet.send(&envelope).await;
    let seconds = loop {
        let depth = queue.depth().await?;
        if depth.visible + depth.in_flight + depth.delayed == 0 {
            break started.elapsed().as_secs_f64();
        }
        ensure!(started.elapsed() < Duration::from_secs(1800), "the scan was not done after 30 minutes ({depth:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_exit(&mut workers, &monitor, Duration::from_secs(config.idle_secs + 80)).await?;
    stop_sampling.cancel();
    let summary = workers[0].summary();
    let s3_calls = summary["aws_calls"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(op, n)| Some((op.strip_prefix("S3.")?.to_owned(), n.as_u64().unwrap_or(0))))
        .collect();
    let tasks = summary["counts"]["tasks"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, d)| d.as_object().into_iter().flatten().map(|(_, n)| n.as_u64().unwrap_or(0)))
        .sum();
    Ok(ScanPass { seconds, s3_calls, tasks })
}

/// Walks the bucket with ListObjectsV2 pages of 1,000, as the scan does, and nothing else.
async fn bare_walk(fleet: &Fleet, bucket: &str) -> anyhow::Result<(f64, u64, usize)> {
    let s3 = fleet.aws.clients().s3;
    let start = Instant::now();
    let (mut requests, mut keys, mut token) = (0u64, 0usize, None);
    loop {
        let out =
            s3.list_objects_v2().bucket(bucket).max_keys(1000).set_continuation_token(token.take()).send().await?;
        requests += 1;
        keys += out.contents().len();
        match out.next_continuation_token {
            Some(next) if out.is_truncated == Some(true) => token = Some(next),
            _ => break,
        }
    }
    Ok((start.elapsed().as_secs_f64(), requests, keys))
}

pub(crate) async fn run(config: &Config, objects: usize, bench_dir: &Path) -> anyhow::Result<S3Run> {
    let fleet = Fleet::new("s3scan").await;
    let source = format!("{}-src", fleet.prefix).to_lowercase();
    let backup = format!("{}-bak", fleet.prefix).to_lowercase();
    let dir = bench_dir.join("s3");
    std::fs::create_dir_all(&dir)?;

    let seeding = Instant::now();
    let s3 = fleet.aws.clients().s3;
    s3.create_bucket().bucket(&source).send().await?;
    s3.create_bucket().bucket(&backup).object_lock_enabled_for_bucket(true).send().await?;
    s3.put_bucket_versioning()
        .bucket(&backup)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await?;
    let mut puts = Vec::with_capacity(2 * objects);
    for i in 0..objects {
        puts.push((source.clone(), key(i), body(i, 0)));
        puts.push((backup.clone(), format!("{source}/{}", key(i)), body(i, 0)));
    }
    put_all(&fleet, puts).await.context("seeding the buckets")?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    let unchanged = scan_pass(config, &fleet, scan_task(&source, &backup, 20), &dir, "unchanged").await?;
    let mut walks = Vec::with_capacity(WALK_REPS);
    let mut walk_requests = 0;
    for _ in 0..WALK_REPS {
        let (secs, requests, keys) = bare_walk(&fleet, &source).await?;
        ensure!(keys == objects, "the walk listed {keys} keys, {objects} seeded");
        walks.push(secs);
        walk_requests = requests;
    }
    walks.sort_by(f64::total_cmp);

    // The same unchanged bucket from an inventory report (delivered an hour ago, one data file
    // per 25,000 objects), rows in key order and shuffled.
    let reports = format!("{}-inv", fleet.prefix).to_lowercase();
    s3.create_bucket().bucket(&reports).send().await?;
    let rows = backup_tests::inventory::rows_of(&s3, &source).await;
    let mut inventory = Vec::new();
    // Windows of their own: a scan's task id is its bucket, page and window, whatever it reads.
    for (id, ordered, day) in [("ordered", true, 22), ("shuffled", false, 23)] {
        let report = backup_tests::inventory::Report {
            source: &source,
            id,
            bucket: &reports,
            prefix: "inventory",
            format: aws_sdk_s3::types::InventoryFormat::Csv,
            created: Utc::now() - chrono::Duration::hours(1),
            files: objects.div_ceil(25_000),
            complete: true,
            ordered,
        };
        backup_tests::inventory::configure(&s3, &report).await;
        backup_tests::inventory::write(&s3, &report, &rows).await;
        let task = inventory_scan_task(&source, &backup, day, id);
        inventory.push(scan_pass(config, &fleet, task, &dir, &format!("inventory-{id}")).await?);
    }
    let inventory_shuffled = inventory.pop().expect("two passes");
    let inventory_ordered = inventory.pop().expect("two passes");

    // A night with changes: 1% rewritten in place (same size: only the ETag tells), 0.5% new.
    let changed = (objects / 100).max(1);
    let added = (objects / 200).max(1);
    let mut puts = Vec::new();
    for i in (0..objects).step_by(objects / changed).take(changed) {
        puts.push((source.clone(), key(i), body(i, 0xff)));
    }
    for i in objects..objects + added {
        puts.push((source.clone(), key(i), body(i, 0)));
    }
    put_all(&fleet, puts).await.context("changing the source")?;
    let after_changes = scan_pass(config, &fleet, scan_task(&source, &backup, 21), &dir, "changes").await?;

    let mut problems = Vec::new();
    if unchanged.s3_calls.keys().any(|op| op != "ListObjectsV2") {
        problems.push(format!("the unchanged re-run made more than listings: {:?}", unchanged.s3_calls));
    }
    for (how, pass) in [("ordered", &inventory_ordered), ("shuffled", &inventory_shuffled)] {
        // The configuration, the report folders, a checksum HEAD, manifests, data files and
        // backup listings: never a copy, never a HEAD per object.
        let heads = pass.s3_calls.get("HeadObject").copied().unwrap_or(0);
        if heads > 1 || pass.s3_calls.contains_key("CopyObject") {
            problems.push(format!("the inventory scan ({how}) of the unchanged bucket did more: {:?}", pass.s3_calls));
        }
    }
    let copies = after_changes.s3_calls.get("CopyObject").copied().unwrap_or(0);
    if copies != (changed + added) as u64 {
        problems.push(format!("{copies} objects copied after {changed} changes and {added} additions"));
    }
    let versions = super::estate::count_versions(&fleet, &backup).await?;
    let expected = objects + changed + added;
    if versions != expected {
        problems.push(format!("the backup bucket holds {versions} versions, {expected} expected"));
    }
    Ok(S3Run {
        objects,
        seed_secs,
        unchanged,
        walk_secs: walks[walks.len() / 2],
        walk_requests,
        changed,
        added,
        after_changes,
        inventory_ordered,
        inventory_shuffled,
        problems,
    })
}
