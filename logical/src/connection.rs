//! Where a database is and who the fleet is there. The password goes to the tools through a
//! private password file (`PGPASSFILE`, mode 0600, removed when dropped): never an argument
//! (visible in `ps`), never the environment of the worker itself, never a log line.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
    /// libpq's `sslmode` (`disable`, `require`, `verify-full`, ...); libpq's default (`prefer`)
    /// when absent.
    pub sslmode: Option<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl Connection {
    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> Connection {
        Connection { dbname: dbname.to_owned(), ..self.clone() }
    }
}

/// A `.pgpass` file holding one connection's password, deleted on drop.
pub(crate) struct PassFile {
    path: PathBuf,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl PassFile {
    pub(crate) fn write(conn: &Connection) -> std::io::Result<PassFile> {
        let path = std::env::temp_dir().join(format!(
            "backup-fleet-pgpass-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        // hostname:port:database:username:password, with ':' and '\' escaped.
        let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
        let line = format!("*:*:*:{}:{}\n", escape(&conn.user), escape(&conn.password));
        let written = file.write_all(line.as_bytes());
        let pass = PassFile { path };
        written?;
        Ok(pass)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for PassFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
