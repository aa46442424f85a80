//! Worker settings: flags, each also read from a `BACKUP_*` environment variable.

use clap::Args;
use std::time::Duration;

#[derive(Args, Clone, Debug)]
pub struct WorkerSettings {
    /// URL of the task queue.
    #[arg(long, env = "BACKUP_TASK_QUEUE_URL")]
    pub task_queue_url: String,
    /// URL of the task queue's DLQ (poison messages are moved there at once).
    #[arg(long, env = "BACKUP_TASK_DLQ_URL")]
    pub task_dlq_url: String,
    /// DynamoDB table holding task state, leases and runs.
    #[arg(long, env = "BACKUP_STATE_TABLE")]
    pub state_table: String,
    /// DynamoDB table holding the backup catalog.
    #[arg(long, env = "BACKUP_CATALOG_TABLE")]
    pub catalog_table: Option<String>,
    /// The fleet's EventBridge bus for failure and backup events (none: events are not published).
    #[arg(long, env = "BACKUP_EVENT_BUS")]
    pub event_bus: Option<String>,
    /// Tasks run at once by this process.
    #[arg(long, env = "BACKUP_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// Threads of the async runtime. One is the default: the worker waits on AWS almost all the
    /// time, and a single-threaded runtime spends about a third less CPU per task than a
    /// multi-threaded one (no work stealing, no cross-thread wake-ups); scale out with more
    /// workers. More threads help a worker whose tasks hash large dumps.
    #[arg(long, env = "BACKUP_RUNTIME_THREADS", default_value_t = 1)]
    pub runtime_threads: usize,
    /// Visibility timeout given to a message while its task runs (extended by the heartbeat).
    #[arg(long, env = "BACKUP_VISIBILITY_TIMEOUT_SECS", default_value_t = 60)]
    pub visibility_timeout_secs: u64,
    /// Length of the DynamoDB lease (extended by the heartbeat).
    #[arg(long, env = "BACKUP_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// Interval of the heartbeat that extends visibility and lease of a running task.
    #[arg(long, env = "BACKUP_HEARTBEAT_SECS", default_value_t = 20)]
    pub heartbeat_secs: u64,
    /// After SIGTERM, how long in-flight tasks may finish before they are handed back. Keep it
    /// below ECS's stopTimeout (30 s by default).
    #[arg(long, env = "BACKUP_DRAIN_DEADLINE_SECS", default_value_t = 25)]
    pub drain_deadline_secs: u64,
    /// Receives before SQS moves a message to the DLQ; read from the queue's redrive policy when
    /// not given. When given, it must equal the queue's: a lower value would make tasks DEAD
    /// whose messages then never reach the DLQ, a higher one would leave dead-lettered tasks
    /// unrecorded.
    #[arg(long, env = "BACKUP_MAX_RECEIVE_COUNT")]
    pub max_receive_count: Option<u32>,
    /// Long-poll wait of each receive (at most 20 s).
    #[arg(long, env = "BACKUP_RECEIVE_WAIT_SECS", default_value_t = 20)]
    pub receive_wait_secs: u64,
    /// Concurrent long polls (0: one per 64 slots of concurrency, at most 4).
    #[arg(long, env = "BACKUP_POLLERS", default_value_t = 0)]
    pub pollers: usize,
    /// When slots are scarce, how long a poller waits for more of them to free up before it
    /// receives: longer fills receives fuller (fewer ReceiveMessage calls per task) at the cost
    /// of slots left idle meanwhile. Irrelevant when the worker is idle (every slot is free).
    #[arg(long, env = "BACKUP_RECEIVE_GATHER_MS", default_value_t = 25)]
    pub receive_gather_ms: u64,
    /// How long deletes, visibility changes and the children of finishing tasks may wait to be
    /// batched (a task is recorded done once its children are sent).
    #[arg(long, env = "BACKUP_ACK_FLUSH_MS", default_value_t = 200)]
    pub ack_flush_ms: u64,
    /// Exit once no message has arrived for this many seconds and nothing runs.
    #[arg(long, env = "BACKUP_EXIT_WHEN_IDLE_SECS")]
    pub exit_when_idle: Option<u64>,
    /// How long a task waiting on a pending artifact (snapshot, copy, restore) waits between checks.
    #[arg(long, env = "BACKUP_RECHECK_SECS", default_value_t = 60)]
    pub recheck_secs: u64,
    /// How long in all one attempt may wait in place (holding its slot) for a pending artifact
    /// whose next check is due within that time, instead of parking: parking costs four
    /// coordination calls per check. With the default 60 s checks nothing waits in place; with
    /// short checks (`--recheck-secs 5`) quick snapshots finish within one attempt. 0: always park.
    #[arg(long, env = "BACKUP_HOLD_PENDING_SECS", default_value_t = 20)]
    pub hold_pending_secs: u64,
    /// How long a task waits between checks of an EBS archive-tier operation (archiving a
    /// snapshot, or restoring one from the archive tier, which takes up to 72 hours).
    #[arg(long, env = "BACKUP_TIER_RECHECK_SECS", default_value_t = 900)]
    pub tier_recheck_secs: u64,
    /// How long after a create EC2 and RDS may still answer "not found" for the new resource
    /// (eventual consistency): a lookup that finds nothing is trusted only after this.
    #[arg(long, env = "BACKUP_CONSISTENCY_WINDOW_SECS", default_value_t = 30)]
    pub consistency_window_secs: u64,
    /// How long a copy slot stays held without renewal (a copy's re-checks renew it); a holder
    /// that vanished gives its slot back after this.
    #[arg(long, env = "BACKUP_COPY_SLOT_HOLD_SECS", default_value_t = 600)]
    pub copy_slot_hold_secs: u64,
    /// A task waiting this long for capacity (a full copy quota, 5 pending snapshots of one
    /// volume) fails with the reason instead of waiting on.
    #[arg(long, env = "BACKUP_CAPACITY_WAIT_LIMIT_HOURS", default_value_t = 24)]
    pub capacity_wait_limit_hours: u64,
    /// This process's share of the account's AWS API budget (client-side rate limits, e.g. 0.25
    /// with four workers).
    #[arg(long, env = "BACKUP_RATE_SHARE", default_value_t = 1.0)]
    pub rate_share: f64,
    /// Directory of the PostgreSQL client tools (psql, pg_dump, pg_restore); the PATH when unset.
    #[arg(long, env = "BACKUP_PG_BIN_DIR")]
    pub pg_bin_dir: Option<std::path::PathBuf>,
    /// libpq sslmode of logical backups and drills (verify-full with PGSSLROOTCERT pointing at the
    /// RDS CA bundle in production; libpq's default "prefer" when unset).
    #[arg(long, env = "BACKUP_PG_SSLMODE")]
    pub pg_sslmode: Option<String>,
    /// Base size of a logical dump's upload parts, in MiB (5-5120): a running dump holds one part in
    /// memory (up to about four with glibc's default malloc settings, which the worker image
    /// changes; docs/BENCHMARKS.md). Parts grow by this much every 1,000 parts (S3 allows 10,000).
    #[arg(long, env = "BACKUP_DUMP_PART_MIB", default_value_t = 16)]
    pub dump_part_mib: usize,
    /// Statement timeout of each SQL check a drill runs against a restored database.
    #[arg(long, env = "BACKUP_CHECK_TIMEOUT_SECS", default_value_t = 300)]
    pub check_timeout_secs: u64,
    /// Write the exit summary (JSON) to this file as well as to the log.
    #[arg(long, env = "BACKUP_SUMMARY_FILE")]
    pub summary_file: Option<std::path::PathBuf>,
}

impl WorkerSettings {
    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_secs)
    }
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
    /// The receive count to work with, given the queue's redrive policy: the queue's own, which
    /// an explicit setting must match.
    pub fn max_receive_count(&self, queue: Option<u32>) -> Result<u32, String> {
        match (self.max_receive_count, queue) {
            (Some(ours), Some(queue)) if ours != queue => Err(format!(
                "--max-receive-count (BACKUP_MAX_RECEIVE_COUNT) is {ours} but the task queue's redrive policy moves \
                 messages to the DLQ after {queue} receives; leave the setting out to use the queue's value"
            )),
            (_, Some(queue)) => Ok(queue),
            (Some(ours), None) => Ok(ours),
            (None, None) => {
                Err("the task queue has no redrive policy: configure its DLQ (Terraform's queues module does) or pass \
                 --max-receive-count"
                    .into())
            }
        }
    }

    pub fn drain_deadline(&self) -> Duration {
        Duration::from_secs(self.drain_deadline_secs)
    }
    pub fn pollers(&self) -> usize {
        if self.pollers > 0 {
            self.pollers
        } else {
            // A long poll returns as soon as messages arrive and a receive takes milliseconds, so
            // one poller keeps dozens of slots fed. More pollers split the free slots between
            // them and each receive carries fewer messages: with 32 slots, four pollers made 0.35
            // ReceiveMessage calls per task and one made 0.12 (docs/BENCHMARKS.md).
            self.concurrency.div_ceil(64).clamp(1, 4)
        }
    }

    /// Settings that cannot work together are refused at start, not discovered in production.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if !(1..=64).contains(&self.runtime_threads) {
            return Err(format!("--runtime-threads (BACKUP_RUNTIME_THREADS) is {}: 1 to 64", self.runtime_threads));
        }
        if !(5..=5120).contains(&self.dump_part_mib) {
            return Err(format!(
                "--dump-part-mib (BACKUP_DUMP_PART_MIB) is {}: S3 parts are 5 to 5120 MiB",
                self.dump_part_mib
            ));
        }
        const SSLMODES: &[&str] = &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
        if let Some(mode) = self.pg_sslmode.as_deref().filter(|m| !SSLMODES.contains(m)) {
            return Err(format!("--pg-sslmode (BACKUP_PG_SSLMODE) {mode:?}: expected one of {}", SSLMODES.join(", ")));
        }
        if self.visibility_timeout_secs < 2 * self.heartbeat_secs {
            return Err(format!(
                "visibility timeout ({} s) must be at least twice the heartbeat interval ({} s), or a slow heartbeat lets the message reappear",
                self.visibility_timeout_secs, self.heartbeat_secs
            ));
        }
        if self.lease_secs < 2 * self.heartbeat_secs {
            return Err(format!(
                "lease ({} s) must be at least twice the heartbeat interval ({} s)",
                self.lease_secs, self.heartbeat_secs
            ));
        }
        if self.receive_wait_secs > 20 {
            return Err("receive wait is at most 20 s (SQS limit)".into());
        }
        Ok(())
    }
}
