//! Soak mode of the benchmark (`make soak`, `BENCH_PHASES=soak`): a steady, mixed workload for an
//! hour against long-lived workers, sampling every worker's resident memory every 10 s. It fails
//! when memory grows after the warm-up, when a worker dies, or when any task ends anywhere but
//! where it should: a leak shows up as slow growth long after a short benchmark has finished.
//!
//! The workload exercises every path of the runtime, not only the happy one: succeeding canaries
//! of varied duration, retries, parking, fan-out, permanent failures, duplicate deliveries,
//! poison, and (unless `BENCH_SOAK_FAULTS=0`) the fault proxy's throttling, 5xx and connection
//! resets on the workers' AWS calls.

use super::{mib, read_proc, spawn_worker, wait_exit, wait_started, Config, Monitor};
use anyhow::{ensure, Context as _};
use backup_core::ports::{OutgoingMessage, TaskQueue, TaskStore};
use backup_schemas::{Canary, CanaryMode, Envelope, Origin, RunId, Task, TaskId, TaskState};
use backup_tests::fault_proxy::{FaultConfig, FaultProxy};
use backup_tests::{drain_messages, emulator_endpoint, Fleet, FleetProcess};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Marks the end of the soak table in docs/BENCHMARKS.md.
const SOAK_ROWS_END: &str = "<!-- soak rows end -->";
/// Only soaks at least this long are recorded in docs/BENCHMARKS.md (shorter ones check the tool).
const RECORD_MIN_SECS: u64 = 3600;

#[derive(Clone, Debug)]
pub(crate) struct SoakConfig {
    secs: u64,
    sample_secs: u64,
    /// Tasks per second sent by the feeder (in batches of 10).
    rate: f64,
    workers: usize,
    concurrency: usize,
    warmup_secs: u64,
    limit: GrowthLimit,
    faults: bool,
    poison_every_secs: u64,
}

impl SoakConfig {
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        let secs = super::env_or("BENCH_SOAK_SECS", 3600u64)?;
        let config = Self {
            secs,
            sample_secs: super::env_or("BENCH_SOAK_SAMPLE_SECS", 10)?,
            rate: super::env_or("BENCH_SOAK_RATE", 10.0)?,
            workers: super::env_or("BENCH_SOAK_WORKERS", 2)?,
            concurrency: super::env_or("BENCH_SOAK_CONCURRENCY", 32)?,
            // Allocator arenas and connection pools settle in the first minutes.
            warmup_secs: super::env_or("BENCH_SOAK_WARMUP_SECS", (secs / 6).min(300))?,
            limit: GrowthLimit {
                abs_mib: super::env_or("BENCH_SOAK_MAX_GROWTH_MIB", 4.0)?,
                pct: super::env_or("BENCH_SOAK_MAX_GROWTH_PCT", 10.0)?,
            },
            faults: super::env_or("BENCH_SOAK_FAULTS", 1u8)? != 0,
            poison_every_secs: super::env_or("BENCH_SOAK_POISON_EVERY_SECS", 60)?,
        };
        ensure!(config.sample_secs >= 1, "BENCH_SOAK_SAMPLE_SECS must be at least 1");
        ensure!(config.rate > 0.0, "BENCH_SOAK_RATE must be positive");
        ensure!(config.workers >= 1, "BENCH_SOAK_WORKERS must be at least 1");
        ensure!(
            config.secs >= config.warmup_secs + 10 * config.sample_secs,
            "BENCH_SOAK_SECS ({}) leaves fewer than 10 samples after the warm-up ({} s)",
            config.secs,
            config.warmup_secs
        );
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------------------
// Memory growth: the verdict
// ---------------------------------------------------------------------------------------------

/// Growth allowed between the start and the end of the steady state: the larger of an absolute
/// amount and a share of the starting level (allocators return memory to the OS lazily, so a
/// small plateau shift is noise; a leak keeps going).
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrowthLimit {
    pub(crate) abs_mib: f64,
    pub(crate) pct: f64,
}

/// One worker's resident memory over the steady state (the samples after the warm-up).
#[derive(Clone, Debug)]
pub(crate) struct Growth {
    /// Median of the first fifth of the steady state.
    pub(crate) baseline_mib: f64,
    /// Median of the last fifth.
    pub(crate) final_mib: f64,
    pub(crate) growth_mib: f64,
    pub(crate) limit_mib: f64,
    pub(crate) peak_mib: f64,
    /// Least-squares slope over the steady state.
    pub(crate) slope_mib_per_hour: f64,
    pub(crate) samples: usize,
    pub(crate) pass: bool,
}

/// Compares the median of the first and the last fifth of the samples taken after `warmup_secs`
/// (medians, so a momentary peak of work at either end does not decide the verdict).
/// `samples` are (seconds since start, MiB).
pub(crate) fn memory_growth(samples: &[(f64, f64)], warmup_secs: f64, limit: GrowthLimit) -> anyhow::Result<Growth> {
    let steady: Vec<(f64, f64)> = samples.iter().copied().filter(|(t, _)| *t >= warmup_secs).collect();
    ensure!(
        steady.len() >= 10,
        "{} samples after the {warmup_secs} s warm-up: at least 10 are needed to judge growth",
        steady.len()
    );
    let window = (steady.len() / 5).max(3);
    let median = |values: &[(f64, f64)]| {
        let mut v: Vec<f64> = values.iter().map(|(_, m)| *m).collect();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        if v.len().is_multiple_of(2) {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        }
    };
    let baseline_mib = median(&steady[..window]);
    let final_mib = median(&steady[steady.len() - window..]);
    let growth_mib = final_mib - baseline_mib;
    let limit_mib = limit.abs_mib.max(baseline_mib * limit.pct / 100.0);

    let n = steady.len() as f64;
    let (mean_t, mean_m) = (steady.iter().map(|s| s.0).sum::<f64>() / n, steady.iter().map(|s| s.1).sum::<f64>() / n);
    let covariance: f64 = steady.iter().map(|(t, m)| (t - mean_t) * (m - mean_m)).sum();
    let variance: f64 = steady.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let slope_per_sec = if variance > 0.0 { covariance / variance } else { 0.0 };

    Ok(Growth {
        baseline_mib,
        final_mib,
        growth_mib,
        limit_mib,
        peak_mib: steady.iter().map(|(_, m)| *m).fold(f64::MIN, f64::max),
        slope_mib_per_hour: slope_per_sec * 3600.0,
        samples: steady.len(),
        pass: growth_mib <= limit_mib,
    })
}

// ---------------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------------

/// Where a task the feeder sent must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    Succeeded,
    Failed,
}

/// Shares of the mix, per hundred tasks (the rest succeed at once after 0–99 ms of "work").
fn task_for(index: u64, stamp: &str) -> (Task, Expect, bool) {
    let slot = index % 100;
    let (mode, spawn, expect) = match slot {
        0 => (CanaryMode::Fail, 0, Expect::Failed),
        1..=4 => (CanaryMode::RetryUntil(2), 0, Expect::Succeeded),
        5 | 6 => (CanaryMode::PendingTimes(1), 0, Expect::Succeeded),
        7 => (CanaryMode::Succeed, 2, Expect::Succeeded),
        _ => (CanaryMode::Succeed, 0, Expect::Succeeded),
    };
    let task = Task::Canary(Canary {
        // Unique per run and index: random nonces would collide among tens of thousands of tasks.
        nonce: format!("soak-{stamp}-{index}"),
        sleep_ms: index * 37 % 100,
        mode,
        spawn,
    });
    // Every hundredth task is also delivered a second time.
    (task, expect, slot == 8)
}

/// The `n`th poison message: one a worker must dead-letter at once, each for a different reason
/// in turn, each body unique so the DLQ can be compared with what was sent.
fn poison(n: u64) -> String {
    match n % 4 {
        0 => format!("this is not JSON, soak poison {n}"),
        1 => format!("[{n}, 2, 3]"),
        2 => format!(r#"{{"v": 1, "kind": "no_such_kind", "task_id": "poison-{n}", "params": {{}}}}"#),
        _ => format!(r#"{{"v": 99, "kind": "fleet.canary", "task_id": "poison-{n}", "params": {{}}}}"#),
    }
}

#[derive(Debug, Default)]
struct Fed {
    tasks: Vec<(TaskId, Expect)>,
    duplicates: u64,
    poison: Vec<String>,
    send_calls: u64,
}

/// Sends `rate` tasks per second in batches of 10, plus the duplicates and the poison, until
/// `stop` fires.
async fn feed(
    queue: backup_aws::sqs::SqsQueue,
    config: SoakConfig,
    stamp: String,
    fed: Arc<Mutex<Fed>>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(10.0 / config.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let (mut index, mut poison_sent) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        let mut batch = Vec::with_capacity(10);
        let mut sent = Vec::with_capacity(10);
        let mut again = Vec::new();
        for i in 0..10 {
            let (task, expect, duplicate) = task_for(index, &stamp);
            index += 1;
            let envelope = Envelope::new(task, RunId::new("soak"), Origin::Operator { command: "soak".into() }, now);
            let body = envelope.encode()?;
            if duplicate {
                again.push(OutgoingMessage { id: "0".into(), body: body.clone(), ..Default::default() });
            }
            sent.push((envelope.task_id, expect));
            batch.push(OutgoingMessage { id: i.to_string(), body, ..Default::default() });
        }
        let failed = queue.send_batch(&batch).await?;
        ensure!(failed.is_empty(), "SendMessageBatch refused entries: {failed:?}");
        let mut calls = 1;
        for message in &again {
            queue.send(message).await?;
            calls += 1;
        }
        let due = started.elapsed().as_secs() / config.poison_every_secs.max(1);
        let mut new_poison = None;
        if due > poison_sent {
            let body = poison(poison_sent);
            queue.send(&OutgoingMessage { id: "0".into(), body: body.clone(), ..Default::default() }).await?;
            new_poison = Some(body);
            poison_sent += 1;
            calls += 1;
        }
        let mut fed = fed.lock().expect("fed");
        fed.tasks.extend(sent);
        fed.duplicates += again.len() as u64;
        fed.poison.extend(new_poison);
        fed.send_calls += calls;
    }
}

/// Low-rate faults on the workers' AWS calls: enough to run every error path thousands of times
/// in an hour, not enough to exhaust a task's attempts.
fn soak_faults() -> FaultConfig {
    FaultConfig {
        throttle: 0.02,
        server_error: 0.01,
        reset: 0.001,
        reset_after_forward: 0.001,
        latency: Some((Duration::from_millis(100), 0.02)),
        seed: rand::random(),
        ..FaultConfig::none()
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// One sample: seconds since the start, then per worker VmRSS (KiB), then the queue depth.
#[derive(Clone, Debug)]
struct Sample {
    secs: f64,
    rss_kib: Vec<u64>,
    visible: u64,
    in_flight: u64,
    fed: usize,
}

/// Runs the soak; `Ok(false)` when it ran to the end and found a fault (the report says which).
pub(crate) async fn run(config: &Config, soak: &SoakConfig, bench_dir: &Path) -> anyhow::Result<bool> {
    let timestamp = Utc::now();
    let stamp = timestamp.format("%Y%m%dT%H%M%SZ").to_string();
    let fleet = Fleet::new("soak").await;
    let proxy = if soak.faults { Some(FaultProxy::start(emulator_endpoint(), soak_faults()).await?) } else { None };
    let mut env = fleet.env();
    if let Some(proxy) = &proxy {
        for (key, value) in env.iter_mut() {
            if key == "AWS_ENDPOINT_URL" {
                value.clone_from(&proxy.endpoint());
            }
        }
    }
    let dir = bench_dir.join("soak");
    let args = vec![
        format!("--concurrency={}", soak.concurrency),
        // Parked canaries come back after seconds, not the production minute.
        "--recheck-secs=5".to_owned(),
    ];
    let mut workers: Vec<FleetProcess> = (0..soak.workers)
        .map(|i| spawn_worker(config, &env, &dir, &format!("w{i}"), &args))
        .collect::<anyhow::Result<_>>()?;
    wait_started(&mut workers, Duration::from_secs(60)).await?;
    let pids: Vec<i32> = workers.iter().map(FleetProcess::pid).collect();
    eprintln!(
        "soak: {} s, {} workers (--concurrency {}), {} tasks/s, memory sampled every {} s, warm-up {} s, faults {}",
        soak.secs,
        soak.workers,
        soak.concurrency,
        soak.rate,
        soak.sample_secs,
        soak.warmup_secs,
        if soak.faults { "on" } else { "off" }
    );

    let fed = Arc::new(Mutex::new(Fed::default()));
    let stop_feeding = tokio_util::sync::CancellationToken::new();
    let feeder = tokio::spawn(feed(fleet.queue(), soak.clone(), stamp.clone(), fed.clone(), stop_feeding.clone()));

    let queue = fleet.queue();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_progress = 60;
    while started.elapsed() < Duration::from_secs(soak.secs) {
        tokio::time::sleep(Duration::from_secs(soak.sample_secs)).await;
        for worker in workers.iter_mut() {
            if let Some(status) = worker.child.try_wait()? {
                anyhow::bail!("{} exited mid-soak with {status}; log:\n{}", worker.name, worker.log_tail(30));
            }
        }
        ensure!(!feeder.is_finished(), "the feeder stopped: {:?}", feeder.await);
        let rss_kib: Vec<u64> = pids.iter().map(|pid| read_proc(*pid).map_or(0, |(_, rss, _)| rss)).collect();
        let depth = queue.depth().await?;
        let sample = Sample {
            secs: started.elapsed().as_secs_f64(),
            rss_kib,
            visible: depth.visible,
            in_flight: depth.in_flight,
            fed: fed.lock().expect("fed").tasks.len(),
        };
        if sample.secs as u64 >= next_progress {
            next_progress += 60;
            let rss: Vec<String> = sample.rss_kib.iter().map(|k| format!("{:.1}", mib(*k))).collect();
            eprintln!(
                "soak: {:>4}/{} s  {} tasks sent  RSS MiB [{}]  queue visible {} in flight {}",
                sample.secs as u64,
                soak.secs,
                sample.fed,
                rss.join(", "),
                sample.visible,
                sample.in_flight
            );
        }
        samples.push(sample);
    }
    stop_feeding.cancel();
    feeder.await.context("feeder panicked")??;
    let fed = std::mem::take(&mut *fed.lock().expect("fed"));
    eprintln!("soak: feeding stopped after {} tasks; waiting for the queue to empty", fed.tasks.len());

    // Settle: every message consumed (retries and parked tasks come back within seconds).
    let settle_deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let depth = queue.depth().await?;
        if depth.visible + depth.in_flight + depth.delayed == 0 {
            break;
        }
        ensure!(Instant::now() < settle_deadline, "the task queue did not empty within 10 minutes: {depth:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let monitor = Monitor::default();
    for worker in &workers {
        monitor.sample(worker.pid());
        worker.sigterm();
    }
    wait_exit(&mut workers, &monitor, Duration::from_secs(120)).await?;
    let cpu_ticks: u64 = workers.iter().map(|w| monitor.get(w.pid()).cpu_ticks).sum();

    // ---- verdicts ----
    let mut faults: Vec<String> = Vec::new();
    let mut growth = Vec::new();
    for (i, worker) in workers.iter().enumerate() {
        let series: Vec<(f64, f64)> = samples.iter().map(|s| (s.secs, mib(s.rss_kib[i]))).collect();
        let g = memory_growth(&series, soak.warmup_secs as f64, soak.limit)?;
        if !g.pass {
            faults.push(format!(
                "{}: resident memory grew {:.1} MiB ({:.1} -> {:.1}) over the steady state, limit {:.1}",
                worker.name, g.growth_mib, g.baseline_mib, g.final_mib, g.limit_mib
            ));
        }
        growth.push(g);
    }
    // The DLQ holds the poison and nothing else. Poison is moved send-first, delete-second, so a
    // lost reply may leave a body twice (a duplicate, never a loss); a body that is not poison
    // must never appear.
    let dead = drain_messages(&fleet.dlq(), fed.poison.len() + 50, Duration::from_secs(15)).await;
    let dead_lettered = dead.len();
    let dead_bodies: BTreeSet<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    let poison_set: BTreeSet<&str> = fed.poison.iter().map(String::as_str).collect();
    let strays = dead_bodies.difference(&poison_set).count();
    let missing = poison_set.difference(&dead_bodies).count();
    if strays > 0 || missing > 0 {
        faults.push(format!(
            "the DLQ holds {strays} messages that are not poison and lacks {missing} of the {} poison",
            fed.poison.len()
        ));
    }
    let wrong = verify_records(&fleet, &fed.tasks).await?;
    if !wrong.is_empty() {
        faults.push(format!(
            "{} of {} tasks did not end as expected, e.g. {}",
            wrong.len(),
            fed.tasks.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }

    let mut dispositions: BTreeMap<String, u64> = BTreeMap::new();
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for worker in &workers {
        let summary = worker.summary();
        for kind in summary["counts"]["tasks"].as_object().into_iter().flatten().map(|(_, d)| d) {
            for (disposition, n) in kind.as_object().into_iter().flatten() {
                *dispositions.entry(disposition.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        for (op, n) in summary["aws_calls"].as_object().into_iter().flatten() {
            *calls.entry(op.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    let injected = proxy.as_ref().map(|p| p.counts());
    let tasks = fed.tasks.len() as f64;
    let clk_tck = super::clock_ticks() as f64;
    let cpu_ms_per_task = cpu_ticks as f64 * 1000.0 / clk_tck / tasks.max(1.0);
    let calls_per_task = calls.values().sum::<u64>() as f64 / tasks.max(1.0);

    // ---- report ----
    let mut out = String::new();
    writeln!(
        out,
        "\n== backup-fleet soak {} ({} s, profile {}) ==",
        timestamp.format("%Y-%m-%d %H:%M UTC"),
        soak.secs,
        config.profile
    )?;
    writeln!(
        out,
        "fed {} tasks (+{} duplicate deliveries, {} poison) at {} tasks/s to {} workers; {} samples every {} s",
        fed.tasks.len(),
        fed.duplicates,
        fed.poison.len(),
        soak.rate,
        soak.workers,
        samples.len(),
        soak.sample_secs
    )?;
    if let Some(counts) = &injected {
        writeln!(
            out,
            "faults injected on the workers' calls: {} of {} requests",
            counts.injected(),
            counts.total_requests()
        )?;
    }
    writeln!(out, "dispositions: {dispositions:?}")?;
    writeln!(out, "worker CPU {cpu_ms_per_task:.2} ms/task, coordination calls {calls_per_task:.2}/task (incl. retries of injected faults)")?;
    writeln!(
        out,
        "{:<4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}  verdict",
        "", "base MiB", "end MiB", "growth", "limit", "peak", "slope MiB/h"
    )?;
    for (worker, g) in workers.iter().zip(&growth) {
        writeln!(
            out,
            "{:<4} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>12.2}  {}",
            worker.name,
            g.baseline_mib,
            g.final_mib,
            g.growth_mib,
            g.limit_mib,
            g.peak_mib,
            g.slope_mib_per_hour,
            if g.pass { "PASS" } else { "FAIL" }
        )?;
    }
    if faults.is_empty() {
        writeln!(
            out,
            "soak PASSED: no memory growth, every task ended where it should, the DLQ holds only the poison"
        )?;
    } else {
        for fault in &faults {
            writeln!(out, "FAIL: {fault}")?;
        }
    }
    print!("{out}");

    let result = json!({
        "timestamp": timestamp.to_rfc3339(),
        "commit": config.commit,
        "profile": config.profile,
        "emulator": config.emulator_version,
        "machine": super::machine(),
        "config": {
            "secs": soak.secs,
            "sample_secs": soak.sample_secs,
            "rate": soak.rate,
            "workers": soak.workers,
            "concurrency": soak.concurrency,
            "warmup_secs": soak.warmup_secs,
            "max_growth_mib": soak.limit.abs_mib,
            "max_growth_pct": soak.limit.pct,
            "faults": soak.faults,
        },
        "fed": {"tasks": fed.tasks.len(), "duplicates": fed.duplicates, "poison": fed.poison.len(), "send_calls": fed.send_calls},
        "faults_injected": injected.as_ref().map(|c| c.injected()),
        "dispositions": dispositions,
        "aws_calls": calls,
        "cpu_ms_per_task": cpu_ms_per_task,
        "calls_per_task": calls_per_task,
        "dead_lettered": dead_lettered,
        "memory": workers.iter().zip(&growth).map(|(w, g)| json!({
            "worker": w.name,
            "baseline_mib": g.baseline_mib,
            "final_mib": g.final_mib,
            "growth_mib": g.growth_mib,
            "limit_mib": g.limit_mib,
            "peak_mib": g.peak_mib,
            "slope_mib_per_hour": g.slope_mib_per_hour,
            "steady_samples": g.samples,
            "pass": g.pass,
        })).collect::<Vec<_>>(),
        "samples": samples.iter().map(|s| json!({
            "secs": s.secs, "rss_kib": s.rss_kib, "visible": s.visible, "in_flight": s.in_flight, "fed": s.fed,
        })).collect::<Vec<_>>(),
        "faults": faults,
        "pass": faults.is_empty(),
    });
    let json_path = config.repo.join(".bench").join(format!("soak-{stamp}.json"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&result)?)?;
    println!("\nJSON (every sample): {}", json_path.display());
    println!("worker logs and summaries: {}", dir.display());

    if config.record && soak.secs >= RECORD_MIN_SECS {
        record(config, soak, &timestamp, &result, &growth, faults.is_empty())?;
    } else if config.record {
        println!("not recorded in docs/BENCHMARKS.md: only soaks of at least {RECORD_MIN_SECS} s are");
    }
    Ok(faults.is_empty())
}

/// Reads every fed task's record; returns a line per task that is not where it should be.
async fn verify_records(fleet: &Fleet, tasks: &[(TaskId, Expect)]) -> anyhow::Result<Vec<String>> {
    let store = Arc::new(fleet.store());
    let mut wrong = Vec::new();
    let mut gets: JoinSet<anyhow::Result<Option<String>>> = JoinSet::new();
    for (i, (id, expect)) in tasks.iter().enumerate() {
        let (store, id, expect) = (store.clone(), id.clone(), *expect);
        gets.spawn(async move {
            let state = store.get(&id).await?.map(|r| r.state);
            let ok = matches!(
                (expect, state),
                (Expect::Succeeded, Some(TaskState::Succeeded)) | (Expect::Failed, Some(TaskState::Failed))
            );
            Ok((!ok).then(|| format!("{id}: expected {expect:?}, found {state:?}")))
        });
        while gets.len() >= 16 {
            wrong.extend(gets.join_next().await.expect("non-empty")??);
        }
        if i > 0 && i % 20_000 == 0 {
            eprintln!("soak: verified {i} of {} task records", tasks.len());
        }
    }
    while let Some(result) = gets.join_next().await {
        wrong.extend(result??);
    }
    Ok(wrong)
}

/// Inserts a row into the soak table of docs/BENCHMARKS.md.
fn record(
    config: &Config,
    soak: &SoakConfig,
    timestamp: &DateTime<Utc>,
    result: &Value,
    growth: &[Growth],
    pass: bool,
) -> anyhow::Result<()> {
    let machine = &result["machine"];
    let cells = [
        timestamp.format("%Y-%m-%d %H:%M").to_string(),
        config.commit.clone(),
        config.profile.clone(),
        format!(
            "{} cpus, load {}; {}",
            machine["nproc"],
            machine["loadavg_at_start"].as_str().unwrap_or("?"),
            config.emulator_version
        ),
        format!(
            "{} s, {} workers, {}/s, faults {}",
            soak.secs,
            soak.workers,
            soak.rate,
            if soak.faults { "on" } else { "off" }
        ),
        format!(
            "{} (+{} dup, {} poison)",
            result["fed"]["tasks"], result["fed"]["duplicates"], result["fed"]["poison"]
        ),
        growth
            .iter()
            .map(|g| {
                format!(
                    "{:.1} → {:.1} (peak {:.1}, {:+.2}/h)",
                    g.baseline_mib, g.final_mib, g.peak_mib, g.slope_mib_per_hour
                )
            })
            .collect::<Vec<_>>()
            .join("<br>"),
        format!("{:.2}", result["cpu_ms_per_task"].as_f64().unwrap_or(f64::NAN)),
        if pass { "PASS".into() } else { format!("FAIL: {}", result["faults"]) },
    ];
    super::insert_row(&config.repo, SOAK_ROWS_END, &cells)?;
    println!("recorded in {}", config.repo.join("docs/BENCHMARKS.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: GrowthLimit = GrowthLimit { abs_mib: 4.0, pct: 10.0 };

    /// An hour of samples every 10 s from `f(seconds)`.
    fn hour(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (1..=360).map(|i| i as f64 * 10.0).map(|t| (t, f(t))).collect()
    }

    #[test]
    fn a_flat_noisy_series_passes() {
        let samples = hour(|t| 30.0 + ((t / 10.0) as u64 % 7) as f64 * 0.3);
        let g = memory_growth(&samples, 300.0, LIMIT).unwrap();
        assert!(g.pass, "{g:?}");
        assert!(g.growth_mib.abs() < 1.0 && g.slope_mib_per_hour.abs() < 1.0, "{g:?}");
    }

    #[test]
    fn a_steady_leak_fails() {
        // 8 MiB an hour: about 6 MiB between the first and the last fifth of the steady state.
        let samples = hour(|t| 30.0 + 8.0 * t / 3600.0);
        let g = memory_growth(&samples, 300.0, LIMIT).unwrap();
        assert!(!g.pass, "{g:?}");
        assert!((g.slope_mib_per_hour - 8.0).abs() < 0.01, "{g:?}");
    }

    #[test]
    fn growth_during_the_warm_up_is_not_a_leak() {
        let settles_at = |end: f64| hour(move |t| if t < end { 10.0 + 24.0 * t / end } else { 34.0 });
        assert!(memory_growth(&settles_at(240.0), 300.0, LIMIT).unwrap().pass);
        // Growth that goes on well past the warm-up is reported.
        assert!(!memory_growth(&settles_at(1500.0), 300.0, LIMIT).unwrap().pass);
    }

    #[test]
    fn a_momentary_peak_at_the_end_does_not_decide() {
        let samples = hour(|t| if t > 3580.0 { 60.0 } else { 30.0 });
        let g = memory_growth(&samples, 300.0, LIMIT).unwrap();
        assert!(g.pass, "{g:?}");
        assert_eq!(g.peak_mib, 60.0);
    }

    #[test]
    fn the_limit_scales_with_the_level() {
        // 5 MiB of growth on 100 MiB is within 10%; on 30 MiB it is above the 4 MiB floor.
        let step = |base: f64| hour(move |t| if t > 1800.0 { base + 5.0 } else { base });
        assert!(memory_growth(&step(100.0), 300.0, LIMIT).unwrap().pass);
        assert!(!memory_growth(&step(30.0), 300.0, LIMIT).unwrap().pass);
    }

    #[test]
    fn too_few_samples_is_an_error_not_a_pass() {
        let samples: Vec<(f64, f64)> = (0..20).map(|i| (i as f64 * 10.0, 30.0)).collect();
        let err = memory_growth(&samples, 150.0, LIMIT).unwrap_err();
        assert!(err.to_string().contains("at least 10"), "{err}");
    }

    #[test]
    fn the_mix_has_every_path_and_unique_ids() {
        let tasks: Vec<(Task, Expect, bool)> = (0..1000).map(|i| task_for(i, "t")).collect();
        let ids: std::collections::BTreeSet<TaskId> = tasks.iter().map(|(t, _, _)| t.id()).collect();
        assert_eq!(ids.len(), 1000);
        assert_eq!(tasks.iter().filter(|(_, e, _)| *e == Expect::Failed).count(), 10);
        assert_eq!(tasks.iter().filter(|(_, _, dup)| *dup).count(), 10);
        let mode = |m: fn(&CanaryMode) -> bool| {
            tasks.iter().filter(|(t, _, _)| matches!(t, Task::Canary(c) if m(&c.mode))).count()
        };
        assert_eq!(mode(|m| matches!(m, CanaryMode::RetryUntil(_))), 40);
        assert_eq!(mode(|m| matches!(m, CanaryMode::PendingTimes(_))), 20);
        assert_eq!(tasks.iter().filter(|(t, _, _)| matches!(t, Task::Canary(c) if c.spawn > 0)).count(), 10);
    }
}
