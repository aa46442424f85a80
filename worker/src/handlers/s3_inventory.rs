//! S3 bucket scans from an S3 Inventory report instead of a listing (the plan's
//! `s3.inventory_id`). The first task finds the configuration's latest complete report (its
//! folder holds `manifest.checksum`) and refuses a stale or unusable one with a reason, and the
//! scan then lists the bucket as usual; later tasks carry the report and their position in it.
//!
//! Each task reads up to [`ROWS_PER_TASK`] rows, sorts them (nothing orders a report's rows) and
//! compares them with listings of the backup prefix where the rows are, as a listing scan
//! compares its pages: what the backup visibly holds is dropped, the rest goes to copy batches,
//! which HEAD-check each object before copying. Each backup listing starts at the first row not
//! yet settled, so rows in key order cost about a request per 1,000 and scattered rows never
//! more than a request each.
//!
//! **The trade-off.** A report is up to a day old (plus S3's delivery time): objects written
//! since are not in it and wait for the next report (or an object-created event), and objects
//! deleted since are found gone by their copy batch. In exchange a scan makes no LIST request on
//! the source: for a bucket of millions of objects that is thousands of requests and hours less.

use backup_core::inventory::{report_folders, Manifest};
use backup_core::services::objects::bare_etag;
use backup_core::TaskError;
use backup_schemas::{InventoryCursor, InventoryScan, ObjectRef, ScanBucket, Task};
use chrono::Utc;
use serde_json::json;

use super::s3::{backup_key, batches, BATCH_STRIDE, PAGE_KEYS};
use crate::handler::{Outcome, TaskContext};
use crate::handlers::services::{missing, Services};

/// Report rows one scan task reads: the rows of an unchanged bucket cost only the backup
/// listing, about one request per 1,000; a first backup hands on after at most this many copies.
pub const ROWS_PER_TASK: u64 = 50_000;

impl Services {
    /// Scans from the inventory report: `Ok(Err(reason))` when the first task finds no report
    /// it can use (the caller lists the bucket instead and says why).
    pub(super) async fn scan_inventory(
        &self,
        p: &ScanBucket,
        inventory: &InventoryScan,
        ctx: &TaskContext,
    ) -> Result<Result<Outcome, String>, TaskError> {
        let first = inventory.report.is_none();
        let cursor = match &inventory.report {
            Some(cursor) => cursor.clone(),
            None => match self.latest_report(p, inventory).await? {
                Ok(cursor) => cursor,
                Err(reason) => return Ok(Err(reason)),
            },
        };
        let bytes = match self.objects.get_bytes(&p.region, &cursor.bucket, &cursor.manifest_key, None).await {
            Ok(bytes) => bytes,
            Err(err) if first && unreadable(&err) => {
                return Ok(Err(format!("cannot read s3://{}/{}: {err}", cursor.bucket, cursor.manifest_key)))
            }
            Err(err) => return Err(err.into()),
        };
        let checked = Manifest::parse(&bytes).and_then(|manifest| {
            if manifest.source_bucket != p.bucket {
                return Err(format!("the report is of bucket {}, not {}", manifest.source_bucket, p.bucket));
            }
            if manifest.files.is_empty() {
                return Err("the report lists no data files".to_owned());
            }
            let layout = manifest.layout()?;
            let created = manifest.created_at()?;
            Ok((manifest, layout, created))
        });
        let (manifest, layout, created) = match checked {
            Ok(checked) => checked,
            Err(reason) if first => {
                return Ok(Err(format!("s3://{}/{}: {reason}", cursor.bucket, cursor.manifest_key)))
            }
            // The manifest a first task accepted cannot have changed: S3 never rewrites a report.
            Err(reason) => {
                return Err(TaskError::permanent(format!("s3://{}/{}: {reason}", cursor.bucket, cursor.manifest_key)))
            }
        };

        // Read the task's rows, file after file.
        let (mut file, mut row) = (cursor.file as usize, cursor.row);
        let mut objects = Vec::new();
        let mut read = 0u64;
        while file < manifest.files.len() && read < ROWS_PER_TASK && !ctx.cancel.is_cancelled() {
            let key = &manifest.files[file].key;
            let stream = self.objects.get_stream(&p.region, &cursor.bucket, key, None).await?;
            let (prefix, skip, take) = (p.prefix.clone(), row, ROWS_PER_TASK - read);
            // Decompression is CPU work: off the runtime, reading the body as it arrives.
            let rows = tokio::task::spawn_blocking(move || {
                let body = tokio_util::io::SyncIoBridge::new(stream);
                backup_core::inventory::read_rows(body, layout, prefix.as_deref(), skip, take)
            })
            .await
            .map_err(|err| TaskError::permanent(format!("reading an inventory data file: {err}")))?
            .map_err(|reason| TaskError::permanent(format!("s3://{}/{key}: {reason}", cursor.bucket)))?;
            read += rows.read;
            objects.extend(rows.objects);
            if rows.ended {
                (file, row) = (file + 1, 0);
            } else {
                row += rows.read;
            }
        }

        // Compare with what the backup holds, listing only where the rows are.
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects.dedup_by(|a, b| a.key == b.key);
        let total = objects.len();
        let held = self.held_by_backup(p, &objects).await?;
        let changed: Vec<ObjectRef> =
            objects.into_iter().zip(held).filter_map(|(object, held)| (!held).then_some(object)).collect();
        let unchanged = (total - changed.len()) as u64;
        let to_copy = changed.len();
        let mut children: Vec<Task> = batches(p, p.page, changed)?.into_iter().map(Task::CopyObjects).collect();
        let batch_count = children.len();
        let more = file < manifest.files.len();
        if more {
            // Batch ids are `page * BATCH_STRIDE + i`: the next task's page starts past this one's.
            let pages_used = u32::try_from(batch_count.div_ceil(BATCH_STRIDE as usize).max(1)).unwrap_or(u32::MAX);
            let page =
                p.page.checked_add(pages_used).ok_or_else(|| TaskError::permanent("scan page number overflow"))?;
            children.push(Task::ScanBucket(ScanBucket {
                page,
                inventory: Some(InventoryScan {
                    report: Some(InventoryCursor { file: file as u32, row, ..cursor.clone() }),
                    ..inventory.clone()
                }),
                ..p.clone()
            }));
        }
        Ok(Ok(Outcome::done(json!({
            "bucket": p.bucket,
            "page": p.page,
            "source": "inventory",
            "report": format!("s3://{}/{}", cursor.bucket, cursor.manifest_key),
            "report_created_at": created,
            "rows": read,
            "objects": total,
            "unchanged": unchanged,
            "to_copy": to_copy,
            "batches": batch_count,
            "more": more,
        }))
        .with_children(children)))
    }

    /// Which of `rows` (sorted by key) the backup visibly holds: the backup key's latest version
    /// has the row's size and ETag. Each request lists 1,000 backup keys from just before the
    /// first row not yet settled, so rows in key order cost about one request per 1,000 (as a
    /// listing scan), and rows spread thin over a large bucket at most one request per row,
    /// never a walk over what lies between them.
    async fn held_by_backup(&self, p: &ScanBucket, rows: &[ObjectRef]) -> Result<Vec<bool>, TaskError> {
        let root = backup_key(&p.bucket, "");
        let prefix = backup_key(&p.bucket, p.prefix.as_deref().unwrap_or(""));
        let mut held = vec![false; rows.len()];
        let mut next = 0;
        let mut listed_to: Option<String> = None;
        while next < rows.len() {
            let before_next = just_before(&backup_key(&p.bucket, &rows[next].key));
            let start = match listed_to.take() {
                Some(listed) if listed > before_next => listed,
                _ => before_next,
            };
            let page = self
                .objects
                .list_page(&p.dest.region, &p.dest.bucket, Some(&prefix), Some(&start), None, PAGE_KEYS)
                .await?;
            for object in &page.objects {
                let Some(key) = object.key.strip_prefix(&root) else { continue };
                // Rows before this key are not in the backup: the listing passed them.
                while rows.get(next).is_some_and(|row| row.key.as_str() < key) {
                    next += 1;
                }
                if let Some(row) = rows.get(next).filter(|row| row.key == key) {
                    let etag = row.etag.as_deref().map(bare_etag).filter(|e| !e.is_empty());
                    held[next] =
                        row.size == object.size && etag.is_some() && etag == object.etag.as_deref().map(bare_etag);
                    next += 1;
                }
            }
            match page.objects.last() {
                Some(last) if page.next.is_some() => listed_to = Some(last.key.clone()),
                // The listing reached the end of the prefix: the rows left are not in the backup.
                _ => break,
            }
        }
        Ok(held)
    }

    /// The newest complete report of the scan's inventory configuration, or why there is none
    /// the scan may use.
    async fn latest_report(
        &self,
        p: &ScanBucket,
        inventory: &InventoryScan,
    ) -> Result<Result<InventoryCursor, String>, TaskError> {
        let config = match self.objects.inventory_config(&p.region, &p.bucket, &inventory.id).await {
            Ok(config) => config,
            Err(err) if err.is_code("NoSuchBucket") => return Err(missing("bucket", &p.bucket, &p.region)),
            Err(err) if unreadable(&err) => {
                return Ok(Err(format!("cannot read the inventory configuration {:?}: {err}", inventory.id)))
            }
            Err(err) => return Err(err.into()),
        };
        let Some(config) = config else {
            return Ok(Err(format!("bucket {} has no inventory configuration {:?}", p.bucket, inventory.id)));
        };
        if let Some(reason) = config.unusable_for(p.prefix.as_deref()) {
            return Ok(Err(reason));
        }
        let reports = config.reports_prefix(&p.bucket);
        let folders = match self.objects.list_folders(&p.region, &config.bucket, &reports).await {
            Ok(folders) => folders,
            // The worker may not read this bucket (Terraform's s3_inventory_bucket_arns): the
            // backup goes on by listing, and says why.
            Err(err) if unreadable(&err) || err.is_code("NoSuchBucket") => {
                return Ok(Err(format!("cannot read the reports in s3://{}/{reports}: {err}", config.bucket)))
            }
            Err(err) => return Err(err.into()),
        };
        let oldest = Utc::now() - chrono::Duration::hours(i64::from(inventory.max_age_hours));
        for (started, folder) in report_folders(&folders) {
            if started < oldest {
                return Ok(Err(format!(
                    "the newest report under s3://{}/{reports} that may be complete is from {started}, older than {} hours",
                    config.bucket, inventory.max_age_hours
                )));
            }
            // S3 writes manifest.checksum last: without it the report is still being delivered.
            let checksum = format!("{folder}manifest.checksum");
            let complete = match self.objects.head(&p.region, &config.bucket, &checksum, None).await {
                Ok(head) => head.is_some(),
                Err(err) if unreadable(&err) => {
                    return Ok(Err(format!("cannot read s3://{}/{checksum}: {err}", config.bucket)))
                }
                Err(err) => return Err(err.into()),
            };
            if complete {
                return Ok(Ok(InventoryCursor {
                    bucket: config.bucket.clone(),
                    manifest_key: format!("{folder}manifest.json"),
                    file: 0,
                    row: 0,
                }));
            }
        }
        Ok(Err(format!("no complete report under s3://{}/{reports}", config.bucket)))
    }
}

/// Errors that mean the worker may not read the report (IAM, a bucket policy, a KMS key): the
/// first task lists the bucket instead, and says why.
fn unreadable(err: &backup_core::AwsError) -> bool {
    ["AccessDenied", "Forbidden", "KMS.AccessDeniedException", "403"].iter().any(|code| err.is_code(code))
}

/// The greatest key before `key` worth starting a listing after: `key` with its last character
/// replaced by the one before it followed by the last character there is. Only keys beginning
/// with that lie between it and `key`, where a plain prefix of `key` would let a listing walk
/// over every key that extends it (`a/dir` before `a/dir/` lists all of `a/dir-...`).
fn just_before(key: &str) -> String {
    let mut start = key.to_owned();
    let Some(last) = start.pop() else { return start };
    let previous = (0..u32::from(last)).rev().find_map(char::from_u32);
    if let Some(previous) = previous {
        start.push(previous);
        start.push(char::MAX);
    }
    start
}

#[cfg(test)]
mod tests {
    use super::just_before;

    #[test]
    fn a_listing_starts_just_before_the_key_and_after_every_key_before_it() {
        for key in ["a/dir/", "logs/x", "k/0001 ä+%.txt", "\u{e000}", "a\u{0}", "b"] {
            let start = just_before(key);
            assert!(start.as_str() < key, "{start:?} < {key:?}");
        }
        assert_eq!(just_before("a/dir/"), format!("a/dir.{}", char::MAX), "past every a/dir-... key");
        assert!(just_before("a/dir/").as_str() > "a/dir-zzz");
        assert_eq!(just_before(""), "");
    }
}
