//! Test harness for the integration tests: makes sure the local emulator runs, gives every test
//! its own uniquely named queues, tables and bus, and starts the fleet's real binaries as
//! processes (so tests can SIGKILL and SIGTERM them).

pub mod fault_proxy;
pub mod inventory;
pub mod sqs_stub;

use backup_aws::bootstrap::{bootstrap, BootstrapSettings, FleetResources};
use backup_aws::dynamo::DynamoTaskStore;
use backup_aws::sqs::SqsQueue;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::ports::{OutgoingMessage, ReceivedMessage, TaskQueue, TaskRecord, TaskStore};
use backup_schemas::{Canary, CanaryMode, Envelope, Origin, RunId, Task, TaskId};
use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const DR_REGION: &str = "us-west-2";

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests crate has a parent").to_path_buf()
}

/// Endpoint of the plain emulator (moto as it is), started by the project's script when nothing
/// answers yet. For the runtime, producer and CLI tests, whose subject is the fleet's own
/// coordination, not AWS's behaviour.
pub fn emulator_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| start_emulator(port_from("MOTO_PORT", 4566), None))
}

/// Endpoint of the emulator with the realism layer on (`docs/EMULATOR.md`): snapshots, copies,
/// images and restores stay pending for a while, new resources are invisible to Describe for a
/// moment, and AWS's quotas answer with AWS's error codes. Every test of a backup, copy, prune,
/// verify or restore path runs against this one. Its settings are `tests/realism.json`.
pub fn realistic_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let config = std::fs::read_to_string(repo_root().join("tests/realism.json")).expect("tests/realism.json");
        let default = port_from("MOTO_PORT", 4566) + 1;
        start_emulator(port_from("MOTO_REALISTIC_PORT", default), Some(config))
    })
}

fn port_from(variable: &str, default: u16) -> u16 {
    std::env::var(variable).ok().and_then(|p| p.parse().ok()).unwrap_or(default)
}

fn start_emulator(port: u16, realism: Option<String>) -> String {
    let address = format!("127.0.0.1:{port}");
    if TcpStream::connect(&address).is_err() {
        let mut command = Command::new("bash");
        command.arg(repo_root().join("scripts/emulator.sh")).arg("start").env("MOTO_PORT", port.to_string());
        if let Some(config) = realism {
            command.env("EMULATOR_REALISM", config);
        }
        let status = command.status().expect("running scripts/emulator.sh start");
        assert!(status.success(), "could not start the emulator on port {port} (scripts/emulator.sh start)");
    }
    format!("http://{address}")
}

/// Changes the realism layer's settings at run time (`POST /_realism/config`), for a test that
/// needs, say, a quota lower than AWS's. The emulator is shared by tests running in parallel, so
/// prefer per-resource directives (tags, see `docs/EMULATOR.md`) where they can do the job.
pub async fn realism_config(change: serde_json::Value) -> serde_json::Value {
    let body = change.to_string();
    let url = format!("{}/_realism/config", realistic_endpoint());
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-f", "-X", "POST", "-H", "content-type: application/json", "--data", &body, &url])
        .output()
        .await
        .expect("curl");
    assert!(output.status.success(), "POST {url} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the realism config is JSON")
}

/// A unique, valid resource-name prefix for one test.
pub fn unique_prefix(name: &str) -> String {
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect();
    format!("t{}-{clean}", &format!("{:08x}", rand::random::<u32>())[..8])
}

pub async fn aws(region: &str) -> AwsContext {
    aws_at(emulator_endpoint(), region).await
}

pub async fn aws_at(endpoint: &str, region: &str) -> AwsContext {
    let mut settings = AwsSettings::emulator(endpoint, region);
    settings.max_attempts = 2;
    AwsContext::load(&settings).await.expect("the emulator settings name a region")
}

/// One test's own fleet resources on the emulator.
pub struct Fleet {
    pub prefix: String,
    pub aws: AwsContext,
    pub resources: FleetResources,
    pub settings: BootstrapSettings,
    /// The emulator this fleet lives on (plain or realistic).
    pub endpoint: String,
}

/// Worker flags that match the realism layer's windows in `tests/realism.json` (short re-checks,
/// a consistency window longer than the emulator's).
pub const REALISTIC_WORKER_ARGS: &[&str] =
    &["--recheck-secs=1", "--consistency-window-secs=3", "--tier-recheck-secs=1"];

impl Fleet {
    /// A fleet on the plain emulator.
    pub async fn new(name: &str) -> Self {
        Self::with(name, |_| {}).await
    }

    /// A fleet on the plain emulator whose bootstrap settings are adjusted first (short
    /// visibility, few receives).
    pub async fn with(name: &str, adjust: impl FnOnce(&mut BootstrapSettings)) -> Self {
        Self::on(emulator_endpoint(), name, adjust).await
    }

    /// A fleet on the realistic emulator: for every test of a backup, copy, prune, verify or
    /// restore path.
    pub async fn realistic(name: &str) -> Self {
        Self::realistic_with(name, |_| {}).await
    }

    pub async fn realistic_with(name: &str, adjust: impl FnOnce(&mut BootstrapSettings)) -> Self {
        Self::on(realistic_endpoint(), name, adjust).await
    }

    async fn on(endpoint: &str, name: &str, adjust: impl FnOnce(&mut BootstrapSettings)) -> Self {
        let prefix = unique_prefix(name);
        let mut settings = BootstrapSettings::new(&prefix);
        adjust(&mut settings);
        let aws = aws_at(endpoint, REGION).await;
        let resources = bootstrap(&aws, &settings).await.expect("bootstrap on the emulator");
        Self { prefix, aws, resources, settings, endpoint: endpoint.to_owned() }
    }

    /// Whether this fleet runs against the realism layer.
    pub fn is_realistic(&self) -> bool {
        self.endpoint == realistic_endpoint()
    }

    /// Clients of this fleet's emulator in another region.
    pub async fn aws_in(&self, region: &str) -> AwsContext {
        aws_at(&self.endpoint, region).await
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.aws.clients().sqs, &self.resources.task_queue_url)
    }

    pub fn dlq(&self) -> SqsQueue {
        SqsQueue::new(self.aws.clients().sqs, &self.resources.task_dlq_url)
    }

    pub fn store(&self) -> DynamoTaskStore {
        DynamoTaskStore::new(self.aws.clients().dynamodb, &self.resources.state_table)
    }

    /// Environment for a fleet binary pointed at this fleet.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            self.resources.env().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        env.extend([
            ("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone()),
            ("AWS_REGION".to_owned(), REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            ("BACKUP_LOG_FORMAT".to_owned(), "json".to_owned()),
        ]);
        env
    }

    /// This fleet's environment with every AWS call going to `endpoint` (a fault proxy).
    pub fn env_at(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        for (key, value) in env.iter_mut() {
            if key == "AWS_ENDPOINT_URL" {
                *value = endpoint.to_owned();
            }
        }
        env
    }

    pub async fn send(&self, envelope: &Envelope) {
        self.send_body(&envelope.encode().expect("encodes")).await;
    }

    pub async fn send_body(&self, body: &str) {
        let message = OutgoingMessage { id: "0".into(), body: body.to_owned(), ..Default::default() };
        self.queue().send(&message).await.expect("send to task queue");
    }

    pub async fn task(&self, id: &TaskId) -> Option<TaskRecord> {
        self.store().get(id).await.expect("get task")
    }

    /// Starts a worker process on this fleet with extra flags.
    pub fn worker(&self, name: &str, args: &[&str]) -> FleetProcess {
        FleetProcess::spawn("backup-worker", name, &self.prefix, &self.env(), args)
    }

    /// Waits until the task reaches `predicate`, or panics with its last record after `timeout`.
    pub async fn wait_task(
        &self,
        id: &TaskId,
        timeout: Duration,
        predicate: impl Fn(&TaskRecord) -> bool,
    ) -> TaskRecord {
        let deadline = Instant::now() + timeout;
        loop {
            let record = self.task(id).await;
            if let Some(record) = record.as_ref().filter(|r| predicate(r)) {
                return record.clone();
            }
            if Instant::now() >= deadline {
                panic!("task {id} did not reach the expected state in {timeout:?}; last record: {record:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Receives every message currently in the DLQ (they become invisible for a while).
    pub async fn dlq_messages(&self, expected: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        drain_messages(&self.dlq(), expected, timeout).await
    }
}

/// Receives until `expected` messages were seen or `timeout` passes.
pub async fn drain_messages(queue: &SqsQueue, expected: usize, timeout: Duration) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<ReceivedMessage> = Vec::new();
    while Instant::now() < deadline && seen.len() < expected {
        let batch = queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        for message in batch {
            if !seen.iter().any(|m| m.message_id == message.message_id) {
                seen.push(message);
            }
        }
    }
    seen
}

/// Polls `check` every 200 ms until it yields `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A canary task envelope.
pub fn canary(nonce: &str, mode: CanaryMode, sleep_ms: u64) -> Envelope {
    let task =
        Task::Canary(Canary { nonce: format!("{nonce}-{:08x}", rand::random::<u32>()), sleep_ms, mode, spawn: 0 });
    Envelope::new(task, RunId::new("test-run"), Origin::Operator { command: "test".into() }, chrono::Utc::now())
}

/// Path of a fleet binary built next to the test executable (`make test` builds them first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`, which `make test` does)",
        path.display()
    );
    path
}

/// A fleet binary running as a child process, with its log and exit summary in files.
pub struct FleetProcess {
    pub child: Child,
    pub name: String,
    pub log_path: PathBuf,
    pub summary_path: PathBuf,
}

impl FleetProcess {
    pub fn spawn(binary_name: &str, name: &str, prefix: &str, env: &[(String, String)], args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join("backup-fleet-tests").join(prefix);
        std::fs::create_dir_all(&dir).expect("test dir");
        let log_path = dir.join(format!("{name}.log"));
        let summary_path = dir.join(format!("{name}.summary.json"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(binary(binary_name));
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BACKUP_SUMMARY_FILE", &summary_path)
            .env("RUST_LOG", std::env::var("TEST_WORKER_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("spawn fleet binary");
        Self { child, name: name.to_owned(), log_path, summary_path }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY-free: libc::kill is a plain syscall wrapper; the pid is our own child.
        let rc = unsafe_free_kill(self.pid(), signal);
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    pub fn sigkill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for exit, killing the process (and failing) after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not exit within {timeout:?}; log:\n{}", self.name, self.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub async fn wait_async(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not exit within {timeout:?}; log:\n{}", self.name, self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit summary the process wrote (workers write one on every clean exit).
    pub fn summary(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.summary_path)
            .unwrap_or_else(|e| panic!("{}: no summary ({e}); log:\n{}", self.name, self.log_tail(40)));
        serde_json::from_str(&text).expect("summary is JSON")
    }

    /// Count of `disposition` for `kind` in the summary.
    pub fn count(&self, kind: &str, disposition: &str) -> u64 {
        self.summary()["counts"]["tasks"][kind][disposition].as_u64().unwrap_or(0)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unsafe_free_kill(pid: i32, signal: i32) -> i32 {
    // `kill` via the `kill` command keeps this crate free of `unsafe` (the workspace forbids it).
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    match status {
        Ok(s) if s.success() => 0,
        _ => -1,
    }
}

/// The worker's backup services with the real adapters, pointed at this fleet's emulator
/// resources (S3 multipart threshold lowered so tests exercise UploadPartCopy on small objects).
pub fn services(fleet: &Fleet) -> backup_worker::handlers::services::Services {
    use backup_core::ratelimit::RateLimiter;
    use std::sync::Arc;
    let catalog: Arc<dyn backup_core::ports::Catalog> =
        Arc::new(backup_aws::catalog::DynamoCatalog::new(fleet.aws.clients().dynamodb, &fleet.resources.catalog_table));
    backup_worker::handlers::services::Services {
        block: Arc::new(backup_aws::ec2::Ec2BlockStorage::new(fleet.aws.clone(), RateLimiter::default())),
        databases: Arc::new(backup_aws::rds::RdsDatabases::new(fleet.aws.clone(), RateLimiter::default())),
        objects: Arc::new(backup_aws::s3::S3Objects::with_multipart(
            fleet.aws.clone(),
            5 * 1024 * 1024,
            5 * 1024 * 1024,
        )),
        catalog: catalog.clone(),
        fleet_catalog: catalog,
        accounts: Arc::new(backup_aws::accounts::AssumedRoles::new(fleet.aws.clone(), 1.0)),
        slots: Arc::new(fleet.store()),
        secrets: Arc::new(backup_aws::secrets::SecretsManager::new(fleet.aws.clone())),
        logical: backup_worker::handlers::logical::LogicalSettings::default(),
        timing: test_timing(),
    }
}

/// Handler timing for tests: short re-checks, and a consistency window longer than the realism
/// layer's (`tests/realism.json`).
pub fn test_timing() -> backup_worker::handlers::services::Timing {
    backup_worker::handlers::services::Timing {
        recheck: Duration::from_millis(500),
        consistency_window: Duration::from_secs(3),
        slot_hold: Duration::from_secs(60),
        tier_recheck: Duration::from_millis(500),
        ..backup_worker::handlers::services::Timing::default()
    }
}

/// When each task last ran in this process: what the runtime's task item would say
/// (`previous_activity`), so that running a task again looks like a retry, not a first attempt.
fn activity() -> &'static std::sync::Mutex<std::collections::HashMap<TaskId, chrono::DateTime<chrono::Utc>>> {
    static ACTIVITY: OnceLock<std::sync::Mutex<std::collections::HashMap<TaskId, chrono::DateTime<chrono::Utc>>>> =
        OnceLock::new();
    ACTIVITY.get_or_init(Default::default)
}

/// A handler context for running one task directly: the first attempt, unless this process ran
/// the task before.
pub fn context_for(task: &Task) -> backup_worker::TaskContext {
    context_in(None, task)
}

/// `context_for` a task acting in `account`.
pub fn context_in(account: Option<&backup_schemas::AccountRef>, task: &Task) -> backup_worker::TaskContext {
    let task_id = task.id_in(account);
    let previous_activity = activity().lock().expect("activity").get(&task_id).copied();
    backup_worker::TaskContext {
        task_id,
        run_id: RunId::new("test-run"),
        attempt: if previous_activity.is_some() { 2 } else { 1 },
        checkpoint: None,
        cancel: tokio_util::sync::CancellationToken::new(),
        deadline: None,
        previous_activity,
        account: account.cloned(),
    }
}

/// Runs one task through the worker's exhaustive dispatch as the runtime would over its whole
/// life, minus the queue: a parked task is re-checked with its checkpoint, and a retryable error
/// (waiting for capacity included) is retried after a short pause, until the task is done or
/// fails permanently. Retryable errors that persist are returned after a dozen tries.
pub async fn run_task(
    services: &std::sync::Arc<backup_worker::Handlers>,
    task: &Task,
) -> Result<backup_worker::Outcome, backup_core::TaskError> {
    run_task_in(services, None, task).await
}

/// `run_task` for a task acting in `account` (through its role).
pub async fn run_task_in(
    services: &std::sync::Arc<backup_worker::Handlers>,
    account: Option<&backup_schemas::AccountRef>,
    task: &Task,
) -> Result<backup_worker::Outcome, backup_core::TaskError> {
    let envelope = Envelope::new(
        task.clone(),
        RunId::new("test-run"),
        Origin::Operator { command: "test".into() },
        chrono::Utc::now(),
    )
    .in_account(account.cloned());
    let mut context = context_in(account, task);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut retries = 0;
    loop {
        let result = services.dispatch(&envelope, &context).await;
        let now = chrono::Utc::now();
        activity().lock().expect("activity").insert(context.task_id.clone(), now);
        context.previous_activity = Some(now);
        context.attempt += 1;
        let pause = match &result {
            Ok(backup_worker::Outcome::Pending { checkpoint, recheck_after }) => {
                eprintln!("{} parked: {checkpoint}", task.kind());
                context.checkpoint = Some(checkpoint.clone());
                (*recheck_after).min(Duration::from_secs(1))
            }
            Err(err) if err.is_retryable() && retries < 12 => {
                retries += 1;
                eprintln!("{} retried: {err}", task.kind());
                err.retry_after.unwrap_or(Duration::from_millis(500)).min(Duration::from_secs(3))
            }
            _ => return result,
        };
        assert!(Instant::now() < deadline, "{} did not finish in 120 s; last outcome: {result:?}", task.kind());
        tokio::time::sleep(pause).await;
    }
}

/// Runs a task and, depth first, every child it spawns; returns every (task, outcome) pair.
pub async fn run_tree(
    handlers: &std::sync::Arc<backup_worker::Handlers>,
    root: Task,
) -> Vec<(Task, Result<backup_worker::Outcome, backup_core::TaskError>)> {
    run_tree_in(handlers, None, root).await.into_iter().map(|(_, task, outcome)| (task, outcome)).collect()
}

/// A task outcome with the account its task acted in.
pub type RanIn = (Option<backup_schemas::AccountRef>, Task, Result<backup_worker::Outcome, backup_core::TaskError>);

/// `run_tree` from a root acting in `account`: children run in their parent's account, or in
/// the one their parent named for them.
pub async fn run_tree_in(
    handlers: &std::sync::Arc<backup_worker::Handlers>,
    account: Option<backup_schemas::AccountRef>,
    root: Task,
) -> Vec<RanIn> {
    let mut done = Vec::new();
    let mut stack = vec![(account, root)];
    while let Some((account, task)) = stack.pop() {
        let outcome = run_task_in(handlers, account.as_ref(), &task).await;
        if let Ok(backup_worker::Outcome::Done { children, children_in, .. }) = &outcome {
            stack.extend(children.iter().map(|child| (account.clone(), child.clone())));
            stack.extend(children_in.iter().cloned());
        }
        done.push((account, task, outcome));
    }
    done
}

/// Output of a fleet binary run to completion.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs a fleet binary (`backup-producer`, `backupctl`) to completion with this fleet's settings.
pub async fn run_binary(name: &str, env: &[(String, String)], args: &[&str]) -> Finished {
    let output = tokio::process::Command::new(binary(name))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "info")
        .output()
        .await
        .expect("run fleet binary");
    Finished {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes a policy file for one test and returns its path.
pub fn policy_file(prefix: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("backup-fleet-tests").join(prefix);
    std::fs::create_dir_all(&dir).expect("test dir");
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// The test PostgreSQL server: a throwaway cluster on loopback (`scripts/postgres.sh`), started
/// once per test process when nothing runs on its port yet.
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    pub password: &'static str,
    /// Where psql, pg_dump and pg_restore of the server's own version are.
    pub bin_dir: PathBuf,
}

/// The test server's superuser password: a test-only value that also serves to prove that a
/// secret never reaches a log, message or report.
pub const PG_TEST_PASSWORD: &str = "pw-7f3a9c1e-never-logged";

pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(|| {
        // Below Linux's ephemeral range (32768-60999): a port there can be held by any client
        // connection or test proxy of this parallel suite when the server starts.
        let port = port_from("PG_TEST_PORT", 25432);
        let script = repo_root().join("scripts/postgres.sh");
        let datadir = format!("/tmp/backup-fleet-pg-{port}");
        let status = Command::new("bash")
            .arg(&script)
            .args(["start", &datadir, &port.to_string(), PG_TEST_PASSWORD])
            .status()
            .expect("running scripts/postgres.sh start");
        assert!(status.success(), "could not start PostgreSQL on port {port} (scripts/postgres.sh start)");
        let bin = Command::new("bash").arg(&script).arg("bindir").output().expect("scripts/postgres.sh bindir");
        assert!(bin.status.success(), "no PostgreSQL bin dir (scripts/postgres.sh install)");
        let bin_dir = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        Postgres { port, password: PG_TEST_PASSWORD, bin_dir }
    })
}

impl Postgres {
    /// Runs SQL (psql, stop on the first error) in `dbname` and returns its unaligned output.
    pub fn sql(&self, dbname: &str, sql: &str) -> String {
        let output = Command::new(self.bin_dir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(dbname)
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", self.password)
            .output()
            .expect("psql");
        assert!(output.status.success(), "psql failed on {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The JSON a database secret holds (RDS's shape) for `dbname` on this server.
    pub fn secret_json(&self, dbname: &str) -> String {
        serde_json::json!({
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.port,
            "username": "postgres",
            "password": self.password,
            "dbname": dbname,
        })
        .to_string()
    }
}
