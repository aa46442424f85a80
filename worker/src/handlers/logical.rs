//! Logical backups (`db.dump`): `pg_dump` of one PostgreSQL database streamed into the backup
//! bucket with a multipart upload, and the drill that proves one restores.
//!
//! **Consistency.** A `psql` session opens a read-only repeatable-read transaction and exports its
//! snapshot; the table statistics (row counts and checksums, `backup_logical::TableStats`) are
//! read in that transaction and `pg_dump --snapshot` dumps the same one, so what the manifest
//! says the tables held is exactly what the dump holds, whatever writes happen meanwhile.
//!
//! **Bounded memory.** The dump is read into one part at a time (`--dump-part-mib`, growing by
//! one base size per 1,000 parts so S3's 10,000-part limit is reached only at ~860 GiB with the
//! 16 MiB default) and uploaded before the next is read: `pg_dump` waits on its pipe meanwhile.
//! The SHA-256 of the whole archive is computed on the way. Nothing touches the local disk.
//!
//! **Idempotency.** The dump's key derives from the database, plan and window. The manifest
//! (`<key>.manifest.json`: the archive's version, size and SHA-256, the server version, the table
//! statistics) is written last, after the archive is complete; a later attempt that finds this
//! task's manifest catalogs it and is done. An attempt that died mid-upload leaves an incomplete
//! upload, which the bucket's lifecycle aborts; the next attempt dumps again.
//!
//! **Secrets.** Only the secret's ARN travels in the task. The worker reads the secret when it
//! connects and hands the password to the tools through a private password file
//! (`backup_logical::Connection`); it is never logged, recorded or put on a command line.

use async_trait::async_trait;
use backup_core::artifacts::{artifact_tags, CatalogRecord};
use backup_core::services::objects::{UploadRequest, UploadedPart};
use backup_core::services::secrets::DatabaseSecret;
use backup_core::{RetryClass, TaskError};
use backup_logical::{Connection, PgError, TableStats, Tools, STATS_VERSION};
use backup_schemas::{ArtifactKind, ArtifactRef, BackupContext, DumpDatabase};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::s3::artifact_id;
use crate::handlers::services::{follow_ups, record, Services};

const MIB: usize = 1024 * 1024;
/// S3's smallest part but the last.
const MIN_PART: usize = 5 * MIB;
const MAX_PART: usize = 5 * 1024 * MIB;
/// Prefix of dumps in the backup bucket. S3 bucket names cannot start with `_`, so no source
/// bucket's backups (stored under `<source bucket>/`) can collide with it.
pub const DUMP_PREFIX: &str = "_db-dumps";
const MANIFEST_VERSION: u32 = 1;

/// How logical backups run on this worker.
#[derive(Clone, Debug)]
pub struct LogicalSettings {
    pub tools: Tools,
    /// Base size of the dump's upload parts (bytes).
    pub part_size: usize,
    /// libpq `sslmode` for every connection (`verify-full` with `PGSSLROOTCERT` in production).
    pub sslmode: Option<String>,
    /// Statement timeout of each SQL check of a drill.
    pub check_timeout_secs: u64,
}

impl Default for LogicalSettings {
    fn default() -> Self {
        Self { tools: Tools::default(), part_size: 16 * MIB, sslmode: None, check_timeout_secs: 300 }
    }
}

impl LogicalSettings {
    /// The size of part `number` (1-based).
    pub fn part_size(&self, number: usize) -> usize {
        (self.part_size.max(MIN_PART) * (1 + (number.saturating_sub(1)) / 1000)).min(MAX_PART)
    }
}

/// What a dump's manifest records: enough to catalog the dump again and to validate a restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DumpManifest {
    pub manifest_version: u32,
    pub task_id: String,
    pub database: String,
    pub engine: String,
    pub server_version: String,
    pub created_at: DateTime<Utc>,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub bytes: u64,
    /// Hex SHA-256 of the whole archive.
    pub sha256: String,
    pub stats_version: u32,
    pub tables: BTreeMap<String, TableStats>,
}

/// The dump's key: `_db-dumps/<database>/<window>-<plan>.pgdump`.
pub fn dump_key(database: &str, ctx: &BackupContext) -> String {
    format!("{DUMP_PREFIX}/{database}/{}-{}.pgdump", ctx.window.format("%Y%m%dT%H%M%SZ"), ctx.plan)
}

pub fn manifest_key(dump_key: &str) -> String {
    format!("{dump_key}.manifest.json")
}

/// Classifies a client tool's error once: permanent when retrying cannot help.
pub fn pg_error(err: PgError) -> TaskError {
    if err.is_permanent() {
        TaskError::permanent(err.to_string())
    } else {
        TaskError::retry(RetryClass::Transient, err.to_string())
    }
}

impl Services {
    /// The connection a secret describes. Its value is parsed here and goes nowhere else.
    pub(crate) async fn connection(&self, region: &str, secret_arn: &str) -> Result<Connection, TaskError> {
        let text = self.secrets.secret_string(region, secret_arn).await?;
        let secret = DatabaseSecret::parse(secret_arn, &text).map_err(TaskError::permanent)?;
        Ok(Connection {
            host: secret.host,
            port: secret.port,
            user: secret.username,
            password: secret.password,
            dbname: secret.dbname.unwrap_or_else(|| "postgres".to_owned()),
            sslmode: self.logical.sslmode.clone(),
        })
    }

    /// The catalog record of a dump its manifest describes.
    fn dump_record(
        &self,
        p: &DumpDatabase,
        ctx: &TaskContext,
        manifest: &DumpManifest,
        manifest_version: Option<&str>,
        encrypted: Option<bool>,
    ) -> CatalogRecord {
        let artifact = ArtifactRef {
            kind: ArtifactKind::DatabaseDump,
            region: p.dest.region.clone(),
            id: artifact_id(&manifest.bucket, &manifest.key, manifest.version_id.as_deref()),
        };
        let mut entry =
            record(artifact, &p.database.name, &p.region, &p.ctx, &ctx.task_id, Some(manifest.created_at), None);
        entry.size_bytes = Some(manifest.bytes);
        entry.encrypted = encrypted;
        let rows: u64 = manifest.tables.values().map(|t| t.rows).sum();
        let details = [
            ("bucket", Some(manifest.bucket.clone())),
            ("key", Some(manifest.key.clone())),
            ("version_id", manifest.version_id.clone()),
            ("sha256", Some(manifest.sha256.clone())),
            ("manifest_key", Some(manifest_key(&manifest.key))),
            ("manifest_version_id", manifest_version.map(str::to_owned)),
            ("engine", Some(manifest.engine.clone())),
            ("format", Some("pg_dump custom".to_owned())),
            ("server_version", Some(manifest.server_version.clone())),
            ("tables", Some(manifest.tables.len().to_string())),
            ("rows", Some(rows.to_string())),
            ("storage_class", p.dest.storage_class.clone()),
        ];
        entry.details.extend(details.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
        entry
    }

    /// Reads `source` into parts and uploads each before reading the next; returns the parts,
    /// the archive's hex SHA-256 and its size.
    async fn upload_stream(
        &self,
        upload: &UploadRequest,
        upload_id: &str,
        mut source: impl AsyncRead + Unpin,
        ctx: &TaskContext,
    ) -> Result<(Vec<UploadedPart>, String, u64), TaskError> {
        let mut hasher = Sha256::new();
        let (mut parts, mut bytes) = (Vec::new(), 0u64);
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(TaskError::cancelled("cancelled while dumping"));
            }
            let size = self.logical.part_size(parts.len() + 1);
            let mut part = Vec::with_capacity(size);
            while part.len() < size {
                let read =
                    (&mut source).take((size - part.len()) as u64).read_to_end(&mut part).await.map_err(|e| {
                        TaskError::retry(RetryClass::Transient, format!("reading pg_dump's output: {e}"))
                    })?;
                if read == 0 {
                    break;
                }
            }
            // The last part may be short; an empty one is only uploaded when nothing came at all.
            if part.is_empty() && !parts.is_empty() {
                break;
            }
            let last = part.len() < size;
            // Off the runtime, as S3's own checksum of the part: see `upload_part`.
            let hashed = tokio::task::spawn_blocking(move || {
                hasher.update(&part);
                (hasher, part)
            });
            let (updated, part) = hashed.await.expect("hashing a part does not panic");
            hasher = updated;
            bytes += part.len() as u64;
            let number = parts.len() as i32 + 1;
            parts.push(self.objects.upload_part(upload, upload_id, number, part).await?);
            if last {
                break;
            }
        }
        Ok((parts, hex(&hasher.finalize()), bytes))
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl Handler<DumpDatabase> for Services {
    async fn run(&self, p: &DumpDatabase, ctx: &TaskContext) -> HandlerResult {
        let key = dump_key(&p.database.name, &p.ctx);
        let manifest_at = manifest_key(&key);
        let dest = &p.dest;
        // An earlier attempt finished the dump: its manifest is the proof, catalog it again.
        if let Some(head) = self.objects.head(&dest.region, &dest.bucket, &manifest_at, None).await? {
            let body =
                self.objects.get_bytes(&dest.region, &dest.bucket, &manifest_at, head.version_id.as_deref()).await?;
            let manifest: DumpManifest = serde_json::from_slice(&body).map_err(|e| {
                TaskError::permanent(format!("manifest {}/{manifest_at} is not readable: {e}", dest.bucket))
            })?;
            if manifest.task_id == ctx.task_id.as_str() {
                let entry = self.dump_record(p, ctx, &manifest, head.version_id.as_deref(), None);
                self.catalog.put(&entry).await?;
                let children = follow_ups(&entry.artifact, &p.database.name, &p.ctx, |_| None);
                return Ok(Outcome::done(json!({ "dump": entry.artifact, "adopted": true })).with_children(children));
            }
        }
        ctx.may_start("the dump")?;
        let conn = self.connection(&p.region, &p.database.secret_arn).await?;
        let tools = &self.logical.tools;
        let mut session = tools.snapshot_session(&conn).await.map_err(pg_error)?;
        let tables = session.table_stats().await.map_err(pg_error)?;
        let server_version = session.server_version().to_owned();
        let mut dump = tools.dump(&conn, Some(session.snapshot())).map_err(pg_error)?;
        let stdout = dump.take_stdout().expect("pg_dump's stdout is piped");

        let lock_until = dest.lock_days.map(|days| Utc::now() + chrono::Duration::days(i64::from(days)));
        let upload = UploadRequest {
            region: dest.region.clone(),
            bucket: dest.bucket.clone(),
            key: key.clone(),
            content_type: Some("application/octet-stream".into()),
            storage_class: dest.storage_class.clone(),
            lock_until,
            tags: artifact_tags(&ctx.task_id, &p.ctx, &p.database.name, None),
        };
        let upload_id = self.objects.start_upload(&upload).await?;
        let streamed = self.upload_stream(&upload, &upload_id, stdout, ctx).await;
        // pg_dump's own verdict decides, whatever the upload saw (a dump cut short is no backup).
        let dumped = match &streamed {
            Ok(_) => dump.finish().await.map_err(pg_error),
            Err(_) => {
                drop(dump);
                Ok(())
            }
        };
        if let Err(err) = session.finish().await {
            tracing::warn!(database = %p.database.name, error = %err, "could not end the snapshot session cleanly");
        }
        let (parts, sha256, bytes) = match (streamed, dumped) {
            (Ok(streamed), Ok(())) => streamed,
            (Err(err), _) | (_, Err(err)) => {
                if let Err(abort) = self.objects.abort_upload(&upload, &upload_id).await {
                    tracing::warn!(key = %key, error = %abort, "could not abort the dump's upload (the bucket lifecycle will)");
                }
                return Err(err);
            }
        };
        let uploaded = self.objects.complete_upload(&upload, &upload_id, &parts).await?;
        let manifest = DumpManifest {
            manifest_version: MANIFEST_VERSION,
            task_id: ctx.task_id.to_string(),
            database: p.database.name.clone(),
            engine: "postgres".into(),
            server_version,
            created_at: Utc::now(),
            bucket: dest.bucket.clone(),
            key: key.clone(),
            version_id: uploaded.version_id.clone(),
            bytes,
            sha256,
            stats_version: STATS_VERSION,
            tables,
        };
        let manifest_upload =
            UploadRequest { key: manifest_at.clone(), content_type: Some("application/json".into()), ..upload.clone() };
        let body = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        let written = self.objects.put_bytes(&manifest_upload, body).await?;
        let mut entry = self.dump_record(
            p,
            ctx,
            &manifest,
            written.version_id.as_deref(),
            uploaded.encryption.as_ref().map(|_| true),
        );
        if let Some(until) = lock_until {
            entry.details.insert("lock_until".into(), until.to_rfc3339());
        }
        self.catalog.put(&entry).await?;
        tracing::info!(
            database = %p.database.name,
            bytes,
            parts = parts.len(),
            tables = manifest.tables.len(),
            "logical backup complete"
        );
        let children = follow_ups(&entry.artifact, &p.database.name, &p.ctx, |_| None);
        Ok(Outcome::done(json!({
            "dump": entry.artifact,
            "bytes": bytes,
            "parts": parts.len(),
            "sha256": manifest.sha256,
            "tables": manifest.tables.len(),
        }))
        .with_children(children))
    }
}

/// The scratch database a drill restores into: derived from the task, so a retry finds (and
/// drops) what an earlier attempt left.
pub fn scratch_database(task_id: &backup_schemas::TaskId) -> String {
    let digits: String = task_id.as_str().trim_start_matches("t-").chars().take(24).collect();
    format!("backup_fleet_drill_{digits}")
}

/// What a drill of a dump found, check by check.
pub(crate) struct DumpDrill {
    pub checks: Vec<(String, bool, String)>,
}

impl Services {
    /// Restores a dump into a scratch database on the drill's server and validates the data:
    /// the archive's SHA-256, `pg_restore`'s verdict, every table's row count and checksum
    /// against the manifest, and the plan's SQL checks. The scratch database is dropped before
    /// this returns, whatever happened (and by the drill's clean-up, should this attempt die).
    pub(crate) async fn drill_dump(
        &self,
        drill: &backup_schemas::RestoreDrill,
        ctx: &TaskContext,
        dump: &CatalogRecord,
    ) -> Result<DumpDrill, TaskError> {
        let scratch_secret = drill.target.scratch_secret_arn.as_deref().ok_or_else(|| {
            TaskError::permanent("the drill plan has no drill.scratch_secret_arn to restore the dump into")
        })?;
        let detail = |k: &str| dump.details.get(k).cloned();
        let (Some(bucket), Some(key)) = (detail("bucket"), detail("key")) else {
            return Err(TaskError::permanent(format!("catalog record {} names no bucket and key", dump.artifact.id)));
        };
        let region = &dump.artifact.region;
        let version = detail("version_id").filter(|v| v != "null");
        let manifest_key = detail("manifest_key").unwrap_or_else(|| manifest_key(&key));
        let manifest_body =
            self.objects.get_bytes(region, &bucket, &manifest_key, detail("manifest_version_id").as_deref()).await?;
        let manifest: DumpManifest = serde_json::from_slice(&manifest_body)
            .map_err(|e| TaskError::permanent(format!("manifest {bucket}/{manifest_key} is not readable: {e}")))?;

        let secret_region = backup_core::services::secrets::secret_region(scratch_secret).unwrap_or(region);
        let server = self.connection(secret_region, scratch_secret).await?;
        let scratch = scratch_database(&ctx.task_id);
        let tools = &self.logical.tools;
        // Whatever an earlier attempt left goes first.
        tools.drop_database(&server, &scratch).await.map_err(pg_error)?;
        ctx.may_start("the drill's restore")?;
        tools.create_database(&server, &scratch).await.map_err(pg_error)?;
        let result = self
            .restore_and_validate(&server, &scratch, &bucket, &key, version.as_deref(), region, &manifest, drill)
            .await;
        let dropped = tools.drop_database(&server, &scratch).await;
        let checks = result?;
        dropped.map_err(pg_error)?;
        Ok(checks)
    }

    #[allow(clippy::too_many_arguments)]
    async fn restore_and_validate(
        &self,
        server: &Connection,
        scratch: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        region: &str,
        manifest: &DumpManifest,
        drill: &backup_schemas::RestoreDrill,
    ) -> Result<DumpDrill, TaskError> {
        let tools = &self.logical.tools;
        let mut checks = Vec::new();
        let mut restore = tools.restore(server, scratch).map_err(pg_error)?;
        let mut stdin = restore.take_stdin().expect("pg_restore's stdin is piped");
        let mut stream = self.objects.get_stream(region, bucket, key, version).await?;
        // Stream the archive into pg_restore, hashing it on the way: bounded memory.
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut buf = vec![0u8; MIB];
        let mut fed = Ok(());
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    fed = Err(TaskError::retry(RetryClass::Transient, format!("reading {bucket}/{key}: {e}")));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
            if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut stdin, &buf[..n]).await {
                // pg_restore stopped reading: its own verdict below says why.
                checks.push((
                    "archive_streamed".into(),
                    false,
                    format!("pg_restore stopped reading after {bytes} bytes: {e}"),
                ));
                break;
            }
        }
        drop(stdin);
        let restored = restore.finish().await;
        fed?;
        let digest = hex(&hasher.finalize());
        if checks.is_empty() {
            checks.push((
                "sha256".into(),
                digest == manifest.sha256,
                format!("{digest} over {bytes} bytes, recorded {}", manifest.sha256),
            ));
        }
        match restored {
            Ok(()) => checks.push(("pg_restore".into(), true, "no errors".into())),
            Err(err) => checks.push(("pg_restore".into(), false, err.to_string())),
        }
        let scratch_conn = server.with_dbname(scratch);
        let stats = tools.table_stats(&scratch_conn).await.map_err(pg_error)?;
        if manifest.stats_version != STATS_VERSION {
            checks.push((
                "tables".into(),
                false,
                format!("recorded with statistics v{}, this worker computes v{STATS_VERSION}", manifest.stats_version),
            ));
        } else {
            let differences = backup_logical::compare(&manifest.tables, &stats);
            let rows: u64 = stats.values().map(|t| t.rows).sum();
            let detail = if differences.is_empty() {
                format!("{} tables, {rows} rows, every count and checksum as at backup time", stats.len())
            } else {
                let listed: Vec<String> =
                    differences.iter().take(10).map(|d| format!("{}: {}", d.table, d.what)).collect();
                format!("{} of {} tables differ: {}", differences.len(), manifest.tables.len(), listed.join("; "))
            };
            checks.push(("tables".into(), differences.is_empty(), detail));
        }
        for check in &drill.target.checks {
            let outcome = tools.check(&scratch_conn, check, self.logical.check_timeout_secs).await;
            let detail = format!("got {:?}, expected {:?}", outcome.got, check.expect);
            checks.push((format!("sql:{}", outcome.name), outcome.ok, detail));
        }
        Ok(DumpDrill { checks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_that_ten_thousand_hold_a_large_dump() {
        let settings = LogicalSettings { part_size: 16 * MIB, ..LogicalSettings::default() };
        assert_eq!(settings.part_size(1), 16 * MIB);
        assert_eq!(settings.part_size(1000), 16 * MIB);
        assert_eq!(settings.part_size(1001), 32 * MIB);
        let total: usize = (1..=10_000).map(|n| settings.part_size(n)).sum();
        assert!(total > 400 * 1024 * MIB, "{total}");
        // Below S3's minimum is raised to it.
        assert_eq!(LogicalSettings { part_size: MIB, ..LogicalSettings::default() }.part_size(1), MIN_PART);
    }
}
