//! The client tools as processes: a `psql` session that exports a snapshot and reads the table
//! statistics inside it, `pg_dump` reading that same snapshot, `pg_restore` fed from a stream,
//! and one-shot `psql` runs (statistics of a restore, SQL checks, scratch databases). Every child
//! is killed if its handle is dropped (a task cancelled on SIGTERM leaves no dump running).

use backup_schemas::SqlCheck;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::connection::{Connection, PassFile};
use crate::stats::{parse_stats, TableStats, STABLE_OUTPUT, STATS_QUERY};

/// Field separator of psql's unaligned output (ASCII unit separator: never in a name or number).
const FIELD_SEP: &str = "\u{1f}";
/// Marks the end of one request's output in a psql session.
const SENTINEL: &str = "__backup_fleet_end_of_output__";
/// How much of a tool's stderr an error quotes (its last lines say why it failed).
const STDERR_TAIL: usize = 2048;
/// How much output of a SQL check is read (its first row is what counts).
const CHECK_OUTPUT_LIMIT: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("{tool} could not be started ({source}); are the PostgreSQL client tools installed?")]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed: {message}")]
    Failed { tool: &'static str, message: String },
    #[error("{tool}: {source}")]
    Io {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl PgError {
    /// Errors that retrying cannot fix: a database, role or table that does not exist, or a
    /// permission the backup user lacks. Everything else (a server restarting, a refused
    /// connection, a rotated password not yet in the secret) is worth another attempt.
    pub fn is_permanent(&self) -> bool {
        match self {
            PgError::Spawn { .. } => true,
            PgError::Failed { message, .. } => {
                message.contains("does not exist")
                    || message.contains("permission denied")
                    || message.contains("server version mismatch")
            }
            PgError::Io { .. } => false,
        }
    }

    fn io(tool: &'static str) -> impl FnOnce(std::io::Error) -> PgError {
        move |source| PgError::Io { tool, source }
    }
}

/// The result of one SQL check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub name: String,
    pub ok: bool,
    /// What the query returned (first column of the first row), or why it did not run.
    pub got: String,
}

/// Where the client tools are: `bin_dir`, or the `PATH` when `None`.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    bin_dir: Option<PathBuf>,
}

impl Tools {
    pub fn new(bin_dir: Option<PathBuf>) -> Self {
        Self { bin_dir }
    }

    /// A tool's command with the connection in libpq's environment, nothing inherited that could
    /// redirect it (`PGPASSWORD`, `PGSERVICE`), stdout and stderr piped, killed on drop.
    fn command(&self, tool: &'static str, conn: &Connection, pass: &PassFile) -> Command {
        let program = match &self.bin_dir {
            Some(dir) => dir.join(tool),
            None => PathBuf::from(tool),
        };
        let mut cmd = Command::new(program);
        for inherited in ["PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGSSLMODE", "PGHOSTADDR"] {
            cmd.env_remove(inherited);
        }
        cmd.env("PGHOST", &conn.host)
            .env("PGPORT", conn.port.to_string())
            .env("PGUSER", &conn.user)
            .env("PGDATABASE", &conn.dbname)
            .env("PGPASSFILE", pass.path())
            .env("PGCONNECT_TIMEOUT", "15")
            .env("PGAPPNAME", "backup-fleet")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(mode) = &conn.sslmode {
            cmd.env("PGSSLMODE", mode);
        }
        cmd
    }

    fn psql(&self, conn: &Connection, pass: &PassFile) -> Command {
        let mut cmd = self.command("psql", conn, pass);
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            FIELD_SEP,
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            "null=NULL",
            "--no-password",
        ]);
        cmd
    }

    /// Opens a read-only repeatable-read transaction, exports its snapshot for `pg_dump`, and
    /// keeps it open until [`SnapshotSession::finish`].
    pub async fn snapshot_session(&self, conn: &Connection) -> Result<SnapshotSession, PgError> {
        let pass = PassFile::write(conn).map_err(PgError::io("psql"))?;
        let mut cmd = self.psql(conn, &pass);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| PgError::Spawn { tool: "psql", source })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let stderr = drain_tail(child.stderr.take().expect("piped stderr"));
        let mut session = SnapshotSession {
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
            snapshot: String::new(),
            server_version: String::new(),
            _pass: pass,
        };
        let rows = session
            .request(&format!(
                "{STABLE_OUTPUT}\nBEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n\
                 SELECT pg_export_snapshot(), current_setting('server_version');\n"
            ))
            .await?;
        match rows.first().map(Vec::as_slice) {
            Some([snapshot, version]) => {
                session.snapshot = snapshot.clone();
                session.server_version = version.clone();
                Ok(session)
            }
            _ => Err(PgError::Failed { tool: "psql", message: "pg_export_snapshot() returned nothing".into() }),
        }
    }

    /// Starts `pg_dump` (custom format, compressed) of the connection's database, reading
    /// `snapshot` when given; its archive is [`DumpProcess::take_stdout`].
    pub fn dump(&self, conn: &Connection, snapshot: Option<&str>) -> Result<DumpProcess, PgError> {
        let pass = PassFile::write(conn).map_err(PgError::io("pg_dump"))?;
        let mut cmd = self.command("pg_dump", conn, &pass);
        cmd.args(["--format=custom", "--no-password"]);
        if let Some(snapshot) = snapshot {
            cmd.arg(format!("--snapshot={snapshot}"));
        }
        let mut child = cmd.spawn().map_err(|source| PgError::Spawn { tool: "pg_dump", source })?;
        let stdout = child.stdout.take();
        let stderr = drain_tail(child.stderr.take().expect("piped stderr"));
        Ok(DumpProcess { child, stdout, stderr, _pass: pass })
    }

    /// Starts `pg_restore` of a custom-format archive written to its stdin into database
    /// `dbname` (objects owned by the connecting user, no grants: a scratch copy).
    pub fn restore(&self, conn: &Connection, dbname: &str) -> Result<RestoreProcess, PgError> {
        let pass = PassFile::write(conn).map_err(PgError::io("pg_restore"))?;
        let mut cmd = self.command("pg_restore", conn, &pass);
        cmd.args(["--no-owner", "--no-privileges", "--no-password"]).arg(format!("--dbname={dbname}"));
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| PgError::Spawn { tool: "pg_restore", source })?;
        let stdin = child.stdin.take();
        // pg_restore writes nothing to stdout with --dbname; drain it anyway so it can never block.
        let stdout = drain_tail(child.stdout.take().expect("piped stdout"));
        let stderr = drain_tail(child.stderr.take().expect("piped stderr"));
        Ok(RestoreProcess { child, stdin, stdout, stderr, _pass: pass })
    }

    /// The statistics of every user table of the connection's database, as a backup records them.
    pub async fn table_stats(&self, conn: &Connection) -> Result<BTreeMap<String, TableStats>, PgError> {
        let rows = self.script(conn, &format!("{STABLE_OUTPUT}\n{STATS_QUERY}\\gexec\n"), None, None).await?;
        parse_stats(&rows).map_err(|message| PgError::Failed { tool: "psql", message })
    }

    /// Runs one SQL check read-only with a statement timeout; a failing query is a failed check.
    pub async fn check(&self, conn: &Connection, check: &SqlCheck, timeout_secs: u64) -> CheckOutcome {
        let options = format!("-c default_transaction_read_only=on -c statement_timeout={}", timeout_secs * 1000);
        let script = format!("{STABLE_OUTPUT}\n{}\n;\n", check.sql.trim().trim_end_matches(';'));
        match self.script(conn, &script, Some(&options), Some(CHECK_OUTPUT_LIMIT)).await {
            Ok(rows) => {
                let got = rows.first().and_then(|r| r.first()).cloned();
                match got {
                    Some(got) => CheckOutcome { name: check.name.clone(), ok: got == check.expect, got },
                    None => CheckOutcome { name: check.name.clone(), ok: false, got: "no rows".into() },
                }
            }
            Err(err) => CheckOutcome { name: check.name.clone(), ok: false, got: format!("error: {err}") },
        }
    }

    /// Creates database `name` (an identifier the fleet made: letters, digits, '_').
    pub async fn create_database(&self, conn: &Connection, name: &str) -> Result<(), PgError> {
        self.script(conn, &format!("CREATE DATABASE \"{name}\";\n"), None, None).await.map(drop)
    }

    /// Drops database `name` if it exists, disconnecting its sessions first.
    pub async fn drop_database(&self, conn: &Connection, name: &str) -> Result<(), PgError> {
        match self.script(conn, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE);\n"), None, None).await {
            // Servers before 13 have no WITH (FORCE).
            Err(PgError::Failed { message, .. }) if message.contains("syntax error") => {
                let script = format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';\n\
                     DROP DATABASE IF EXISTS \"{name}\";\n"
                );
                self.script(conn, &script, None, None).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    /// Runs a psql script from stdin and returns its output rows (at most `limit` bytes read).
    async fn script(
        &self,
        conn: &Connection,
        script: &str,
        options: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Vec<Vec<String>>, PgError> {
        let pass = PassFile::write(conn).map_err(PgError::io("psql"))?;
        let mut cmd = self.psql(conn, &pass);
        cmd.stdin(Stdio::piped());
        if let Some(options) = options {
            cmd.env("PGOPTIONS", options);
        }
        let mut child = cmd.spawn().map_err(|source| PgError::Spawn { tool: "psql", source })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stderr = drain_tail(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");
        let feed = async {
            // psql may stop reading early (an error with ON_ERROR_STOP): that is not our failure.
            let _ = stdin.write_all(script.as_bytes()).await;
            drop(stdin);
        };
        let read = async {
            let mut out = Vec::new();
            let result = stdout.take(limit.unwrap_or(u64::MAX)).read_to_end(&mut out).await;
            result.map(|_| out)
        };
        let ((), out) = tokio::join!(feed, read);
        let out = out.map_err(PgError::io("psql"))?;
        if limit.is_some_and(|limit| out.len() as u64 >= limit) {
            // Enough read: the rest of a large result does not matter.
            let _ = child.start_kill();
        }
        let status = child.wait().await.map_err(PgError::io("psql"))?;
        let tail = stderr.await.unwrap_or_default();
        let limited = limit.is_some_and(|limit| out.len() as u64 >= limit);
        if !status.success() && !limited {
            return Err(PgError::Failed { tool: "psql", message: exit_message(status, &tail) });
        }
        Ok(rows_of(&String::from_utf8_lossy(&out)))
    }
}

/// The psql session holding the exported snapshot.
pub struct SnapshotSession {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
    snapshot: String,
    server_version: String,
    _pass: PassFile,
}

impl SnapshotSession {
    /// The snapshot id to give `pg_dump --snapshot`.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The statistics of every user table, read in the exported snapshot.
    pub async fn table_stats(&mut self) -> Result<BTreeMap<String, TableStats>, PgError> {
        let rows = self.request(&format!("{STATS_QUERY}\\gexec\n")).await?;
        parse_stats(&rows).map_err(|message| PgError::Failed { tool: "psql", message })
    }

    /// Ends the transaction (releasing the snapshot) and the session.
    pub async fn finish(mut self) -> Result<(), PgError> {
        let _ = self.stdin.write_all(b"COMMIT;\n\\q\n").await;
        let status = self.child.wait().await.map_err(PgError::io("psql"))?;
        if status.success() {
            Ok(())
        } else {
            let tail = match self.stderr.take() {
                Some(stderr) => stderr.await.unwrap_or_default(),
                None => String::new(),
            };
            Err(PgError::Failed { tool: "psql", message: exit_message(status, &tail) })
        }
    }

    /// Sends `sql` and reads its output rows up to the sentinel.
    async fn request(&mut self, sql: &str) -> Result<Vec<Vec<String>>, PgError> {
        let text = format!("{sql}\\echo {SENTINEL}\n");
        if let Err(err) = self.stdin.write_all(text.as_bytes()).await {
            return Err(self.died(Some(err)).await);
        }
        let mut rows = Vec::new();
        loop {
            match self.stdout.next_line().await {
                Ok(Some(line)) if line == SENTINEL => return Ok(rows),
                Ok(Some(line)) => rows.push(line.split(FIELD_SEP).map(str::to_owned).collect()),
                Ok(None) => return Err(self.died(None).await),
                Err(err) => return Err(self.died(Some(err)).await),
            }
        }
    }

    /// The error of a session that ended early: its exit status and stderr.
    async fn died(&mut self, io: Option<std::io::Error>) -> PgError {
        let status = self.child.wait().await.ok();
        let tail = match self.stderr.take() {
            Some(stderr) => stderr.await.unwrap_or_default(),
            None => String::new(),
        };
        let message = match (status, io) {
            (Some(status), _) => exit_message(status, &tail),
            (None, Some(err)) => format!("{err}: {tail}"),
            (None, None) => tail,
        };
        PgError::Failed { tool: "psql", message }
    }
}

/// A running `pg_dump`.
pub struct DumpProcess {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: JoinHandle<String>,
    _pass: PassFile,
}

impl DumpProcess {
    /// The archive as it is written (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// Waits for `pg_dump` to exit: success only when it says so.
    pub async fn finish(mut self) -> Result<(), PgError> {
        let status = self.child.wait().await.map_err(PgError::io("pg_dump"))?;
        let tail = self.stderr.await.unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(PgError::Failed { tool: "pg_dump", message: exit_message(status, &tail) })
        }
    }
}

/// A running `pg_restore`.
pub struct RestoreProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    _pass: PassFile,
}

impl RestoreProcess {
    /// Where the archive is written (once); drop it to signal the end.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Waits for `pg_restore`: `Err` with its messages when it reported errors (it goes on past
    /// most of them, so the database may still hold most of the data).
    pub async fn finish(mut self) -> Result<(), PgError> {
        drop(self.stdin.take());
        let status = self.child.wait().await.map_err(PgError::io("pg_restore"))?;
        let _ = self.stdout.await;
        let tail = self.stderr.await.unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(PgError::Failed { tool: "pg_restore", message: exit_message(status, &tail) })
        }
    }
}

/// Reads a pipe to its end in the background, keeping its last [`STDERR_TAIL`] bytes.
fn drain_tail<R: AsyncRead + Unpin + Send + 'static>(mut pipe: R) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        let start = tail.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&tail[start..]).trim().to_owned()
    })
}

fn exit_message(status: ExitStatus, stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {}", stderr.replace('\n', " | "))
    }
}

fn rows_of(text: &str) -> Vec<Vec<String>> {
    text.lines().filter(|l| !l.is_empty()).map(|l| l.split(FIELD_SEP).map(str::to_owned).collect()).collect()
}
