//! S3 backups: a bucket scan one listing page at a time (fanning out copy batches and its own
//! continuation), the batch copy, and the single-object copy that serves object-created events.
//! Backups go to `<dest.bucket>/<source-bucket>/<key>` in a versioned (usually Object Lock) bucket.
//!
//! **Incremental skip.** A scan compares each source page with a listing of the backup prefix
//! over the same key range (both come back in S3's key order): an object whose backup key's
//! latest version has the listed size and ETag is dropped before any copy task exists. A nightly
//! re-run of an unchanged bucket therefore costs about two LIST requests per 1,000 objects, and a
//! scan task walks up to [`PAGES_PER_TASK`] pages while they hold nothing to copy. What the
//! listing cannot settle (a copy whose ETag differs because it was copied in parts or under
//! SSE-KMS) goes to the copy batch, which skips an object when the backup key's latest version
//! has the listed size and came from the listed ETag: its own ETag equals the source's, or else
//! its `backup-fleet:source-etag` tag does. That costs a HEAD (and the tag read); a batch that
//! failed midway re-runs as a no-op for what it already copied.
//!
//! **Verification.** After each copy the new version is read back (HEAD with checksums): the size
//! must match, and the SHA-256 S3 computed for the copy must match the source's. When the source
//! has no full-object SHA-256 (uploaded without one, or multipart) and is at most
//! [`HASH_LIMIT`], the source (and a multipart copy, whose checksum is composite) is read and
//! hashed; above that, only the size is compared and S3's server-side integrity is relied on. The
//! catalog records which check was made (`verified_by`). A mismatch hides the copy behind a delete
//! marker (Object Lock forbids deleting the version, not placing a marker), so the skip cannot
//! accept it, and fails the task as retryable: the copy is redone.

use async_trait::async_trait;
use backup_aws::s3::sha256_base64;
use backup_core::artifacts::{artifact_tags, Tags};
use backup_core::services::objects::{bare_etag, merge_object_tags, CopyRequest, CopyResult, ObjectHead, SOURCE_ETAG};
use backup_core::{AwsError, ErrorClass, RetryClass, TaskError};
use backup_schemas::{
    ArtifactKind, ArtifactRef, BackupContext, CopyObject, CopyObjects, ObjectRef, S3Destination, ScanBucket, Task,
};
use chrono::Utc;
use futures::StreamExt;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use tokio::sync::Semaphore;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::{missing, record, Services};

/// Keys listed per scan page (S3's maximum).
pub const PAGE_KEYS: i32 = 1000;
/// Source pages one scan task walks at most. A task hands on to its continuation sooner once a
/// page's worth of objects is waiting to be copied, so a first full backup starts copying after
/// one page while an unchanged bucket is walked 10,000 keys per task.
pub const PAGES_PER_TASK: u32 = 10;
/// The copy batches of scan page `p` are numbered `p * BATCH_STRIDE + i`: distinct task ids
/// whether or not a page had to be split (a page splits into at most a few dozen batches).
pub const BATCH_STRIDE: u32 = 1000;
/// Budget of one batch's task JSON. SQS takes 256 KiB per message, the envelope keeps 4 KiB for
/// attributes and adds its own fields (ids, origin, trace): 192 KiB leaves ample room. Keys of up
/// to 1 KiB can encode to 6 KiB (escaped control characters), so a full page of long keys splits.
pub const BATCH_TASK_BYTES: usize = 192 * 1024;
/// Objects of one batch copied at once.
const OBJECT_CONCURRENCY: usize = 8;
/// Sources up to this size without a comparable SHA-256 are read and hashed to verify the copy.
pub const HASH_LIMIT: u64 = 16 * 1024 * 1024;
/// Read-and-hash verifications at once per process: bounds memory to a few times `HASH_LIMIT`.
static HASHING: Semaphore = Semaphore::const_new(2);

/// The backup key of `key` from `source_bucket`.
pub fn backup_key(source_bucket: &str, key: &str) -> String {
    format!("{source_bucket}/{key}")
}

/// The catalog id of one backup copy: `<bucket>/<key>#<version id>`.
pub fn artifact_id(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    format!("{bucket}/{key}#{}", version_id.unwrap_or("null"))
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq)]
enum ObjectOutcome {
    Copied {
        bytes: u64,
        multipart: bool,
        version_id: Option<String>,
    },
    /// The backup already holds this content.
    Unchanged,
    /// Deleted since it was listed (or since the event): a normal race, not an error.
    SourceGone,
}

fn gone(err: &AwsError) -> bool {
    matches!(err.code.as_str(), "NoSuchKey" | "NoSuchVersion" | "NotFound")
}

/// A full-object SHA-256 (a composite one, of a multipart object, ends in `-<parts>`).
fn full_object(checksum: Option<&str>) -> Option<&str> {
    checksum.filter(|c| !c.contains('-'))
}

fn mismatch(reason: String) -> TaskError {
    TaskError::retry(RetryClass::Transient, reason)
}

/// Splits one listing page into copy batches whose encoded task stays under [`BATCH_TASK_BYTES`].
pub(super) fn batches(p: &ScanBucket, page: u32, objects: Vec<ObjectRef>) -> Result<Vec<CopyObjects>, TaskError> {
    let first = page.checked_mul(BATCH_STRIDE).ok_or_else(|| {
        TaskError::permanent(format!("scan of {} reached page {page}: batch numbers would overflow", p.bucket))
    })?;
    let batch = |page: u32, objects: Vec<ObjectRef>| CopyObjects {
        region: p.region.clone(),
        bucket: p.bucket.clone(),
        page,
        objects,
        dest: p.dest.clone(),
        ctx: p.ctx.clone(),
    };
    let overhead = json_len(&Task::CopyObjects(batch(u32::MAX, Vec::new())));
    let mut groups: Vec<Vec<ObjectRef>> = Vec::new();
    let mut current: Vec<ObjectRef> = Vec::new();
    let mut bytes = overhead;
    for object in objects {
        let size = json_len(&object) + 1;
        if !current.is_empty() && bytes + size > BATCH_TASK_BYTES {
            groups.push(std::mem::take(&mut current));
            bytes = overhead;
        }
        bytes += size;
        current.push(object);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(i, objects)| {
            let page = u32::try_from(i)
                .ok()
                .and_then(|i| first.checked_add(i))
                .ok_or_else(|| TaskError::permanent(format!("scan of {} page {page}: too many batches", p.bucket)))?;
            Ok(batch(page, objects))
        })
        .collect()
}

/// Length of a value's JSON, for batch sizing.
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(BATCH_TASK_BYTES)
}

impl Services {
    /// Whether the backup's latest version at `dest_key` already holds the object listed as
    /// (`etag`, `size`).
    async fn is_current(
        &self,
        dest: &S3Destination,
        dest_key: &str,
        copy: &ObjectHead,
        etag: &str,
        size: u64,
    ) -> Result<bool, TaskError> {
        if copy.size != size {
            return Ok(false);
        }
        if copy.etag.as_deref().map(bare_etag) == Some(bare_etag(etag)) {
            return Ok(true);
        }
        let tags = self.objects.object_tags(&dest.region, &dest.bucket, dest_key, copy.version_id.as_deref()).await?;
        Ok(tags.get(SOURCE_ETAG).map(String::as_str) == Some(bare_etag(etag)))
    }

    /// Backs up one object: skip when current, else copy, verify and catalog.
    async fn backup_object(
        &self,
        region: &str,
        bucket: &str,
        object: &ObjectRef,
        dest: &S3Destination,
        backup: &BackupContext,
        ctx: &TaskContext,
    ) -> Result<ObjectOutcome, TaskError> {
        if ctx.cancel.is_cancelled() {
            return Err(TaskError::cancelled("cancelled before copying the next object"));
        }
        let dest_key = backup_key(bucket, &object.key);
        let mut source = None;
        let (etag, size) = match &object.etag {
            Some(etag) => (etag.clone(), object.size),
            // An event without an ETag: the source's HEAD says what the backup should hold.
            None => match self.objects.head(region, bucket, &object.key, object.version_id.as_deref()).await? {
                Some(head) => {
                    let listed = (head.etag.clone().unwrap_or_default(), head.size);
                    source = Some(head);
                    listed
                }
                None => return Ok(ObjectOutcome::SourceGone),
            },
        };
        if let Some(copy) = self.objects.head(&dest.region, &dest.bucket, &dest_key, None).await? {
            if !etag.is_empty() && self.is_current(dest, &dest_key, &copy, &etag, size).await? {
                return Ok(ObjectOutcome::Unchanged);
            }
        }
        let source = match source {
            Some(source) => source,
            None => match self.objects.head(region, bucket, &object.key, object.version_id.as_deref()).await? {
                Some(source) => source,
                None => return Ok(ObjectOutcome::SourceGone),
            },
        };
        let source_tags =
            match self.objects.object_tags(region, bucket, &object.key, source.version_id.as_deref()).await {
                Ok(tags) => tags,
                Err(err) if gone(&err) => return Ok(ObjectOutcome::SourceGone),
                Err(err) => return Err(err.into()),
            };
        let mut fleet: Tags = artifact_tags(&ctx.task_id, backup, bucket, None);
        if let Some(etag) = &source.etag {
            fleet.insert(SOURCE_ETAG.to_owned(), bare_etag(etag).to_owned());
        }
        let request = CopyRequest {
            source_region: region.to_owned(),
            source_bucket: bucket.to_owned(),
            source_key: object.key.clone(),
            // Pinned to the version inspected, so the checksum compared is the one copied.
            source_version_id: source.version_id.clone(),
            dest_region: dest.region.clone(),
            dest_bucket: dest.bucket.clone(),
            dest_key: dest_key.clone(),
            storage_class: dest.storage_class.clone(),
            lock_until: dest.lock_days.map(|days| Utc::now() + chrono::Duration::days(i64::from(days))),
            tags: merge_object_tags(&fleet, &source_tags),
            size: source.size,
        };
        let result = match self.objects.copy(&request).await {
            Ok(result) => result,
            Err(err) if gone(&err) => return Ok(ObjectOutcome::SourceGone),
            Err(err) => return Err(err.into()),
        };
        let copy = self
            .objects
            .head(&dest.region, &dest.bucket, &dest_key, result.version_id.as_deref())
            .await?
            .ok_or_else(|| mismatch(format!("copy {}/{dest_key} is not visible after copying", dest.bucket)))?;
        let (checksum, verified_by) = match self.verify_copy(region, bucket, &source, dest, &copy, &result).await {
            Ok(verified) => verified,
            Err(err) => {
                if let Err(hide) = self.objects.hide_latest(&dest.region, &dest.bucket, &dest_key).await {
                    tracing::warn!(key = %dest_key, error = %hide, "could not hide a copy that failed verification");
                }
                return Err(err);
            }
        };

        let version_id = copy.version_id.clone().or(result.version_id.clone());
        let artifact = ArtifactRef {
            kind: ArtifactKind::S3Object,
            region: dest.region.clone(),
            id: artifact_id(&dest.bucket, &dest_key, version_id.as_deref()),
        };
        let mut entry = record(artifact, bucket, region, backup, &ctx.task_id, copy.last_modified, None);
        entry.size_bytes = Some(copy.size);
        let details = [
            ("bucket", Some(dest.bucket.clone())),
            ("key", Some(dest_key.clone())),
            ("version_id", version_id.clone()),
            ("source_key", Some(object.key.clone())),
            ("source_version_id", source.version_id.clone()),
            ("source_etag", source.etag.as_deref().map(|e| bare_etag(e).to_owned())),
            ("checksum_sha256", checksum),
            ("verified_by", Some(verified_by.to_owned())),
            ("storage_class", copy.storage_class.clone().or(dest.storage_class.clone())),
            ("lock_until", copy.lock_until.or(request.lock_until).map(|t| t.to_rfc3339())),
            ("multipart", Some(result.multipart.to_string())),
        ];
        entry.details.extend(details.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
        self.catalog.put(&entry).await?;
        Ok(ObjectOutcome::Copied { bytes: copy.size, multipart: result.multipart, version_id })
    }

    /// Compares the copy with its source (see the module docs); returns the copy's SHA-256 and how
    /// it was verified, or a retryable error.
    async fn verify_copy<'a>(
        &self,
        region: &str,
        bucket: &str,
        source: &ObjectHead,
        dest: &S3Destination,
        copy: &'a ObjectHead,
        result: &'a CopyResult,
    ) -> Result<(Option<String>, &'static str), TaskError> {
        let name = format!("{}/{}", dest.bucket, copy.key);
        if copy.size != source.size {
            return Err(mismatch(format!("copy {name} has {} bytes, the source {}", copy.size, source.size)));
        }
        // A multipart copy's SHA-256 is composite (a digest of part digests) even where the
        // `-<parts>` suffix is missing (moto's HEAD drops it): never compare it as a full digest.
        let full = |checksum: Option<&'a str>| if result.multipart { None } else { full_object(checksum) };
        let reported = full(result.checksum_sha256.as_deref());
        let stored = full(copy.checksum_sha256.as_deref());
        if let (Some(reported), Some(stored)) = (reported, stored) {
            if reported != stored {
                return Err(mismatch(format!("copy {name}: S3 reported SHA-256 {reported} but stores {stored}")));
            }
        }
        let copy_checksum = stored.or(reported);
        let recorded = copy.checksum_sha256.clone().or(result.checksum_sha256.clone());
        if let (Some(expected), Some(actual)) = (full_object(source.checksum_sha256.as_deref()), copy_checksum) {
            return if expected == actual {
                Ok((recorded, "sha256"))
            } else {
                Err(mismatch(format!("copy {name}: SHA-256 {actual} differs from the source's {expected}")))
            };
        }
        if source.size > HASH_LIMIT {
            // Too large to read: sizes match, and S3 checks its own server-side copy.
            return Ok((recorded, "size"));
        }
        let _permit = HASHING.acquire().await.map_err(|_| TaskError::cancelled("hashing closed"))?;
        let expected =
            sha256_base64(&self.objects.get_bytes(region, bucket, &source.key, source.version_id.as_deref()).await?);
        let actual = match copy_checksum {
            Some(checksum) => checksum.to_owned(),
            None => sha256_base64(
                &self.objects.get_bytes(&dest.region, &dest.bucket, &copy.key, copy.version_id.as_deref()).await?,
            ),
        };
        if expected == actual {
            Ok((recorded.or(Some(actual)), "sha256-read"))
        } else {
            Err(mismatch(format!("copy {name}: SHA-256 {actual} differs from the source's (read) {expected}")))
        }
    }
}

/// Where the backup listing compared with a source page starts.
#[derive(Clone, Debug, PartialEq)]
enum BackupCursor {
    /// At the start of the scanned prefix (the first page).
    Start,
    /// After the backup key of this source key (the last one of the page before).
    After(String),
    /// Not known (a later page sent without `listed_after`): the page is checked object by object.
    Unknown,
}

impl BackupCursor {
    fn of(p: &ScanBucket) -> Self {
        match (&p.listed_after, &p.continuation) {
            (Some(after), _) => BackupCursor::After(after.clone()),
            (None, None) => BackupCursor::Start,
            (None, Some(_)) => BackupCursor::Unknown,
        }
    }
}

/// Keeps the objects of a source page the backup does not visibly hold: those whose backup key's
/// latest version is missing or differs from the listed size and ETag. Returns them and how many
/// were dropped as unchanged.
fn changed_objects(page: Vec<ObjectRef>, backed_up: &HashMap<String, (u64, String)>) -> (Vec<ObjectRef>, u64) {
    let before = page.len();
    let changed: Vec<ObjectRef> = page
        .into_iter()
        .filter(|object| {
            let Some(etag) = object.etag.as_deref().map(bare_etag).filter(|e| !e.is_empty()) else {
                return true;
            };
            backed_up.get(&object.key) != Some(&(object.size, etag.to_owned()))
        })
        .collect();
    let unchanged = (before - changed.len()) as u64;
    (changed, unchanged)
}

/// The listing of the backup prefix, walked beside the source listing: both come back in S3's
/// key order, and the backup key of a source key is the source bucket's name and `/` before it.
struct BackupListing<'a> {
    services: &'a Services,
    p: &'a ScanBucket,
    /// `<source-bucket>/`: stripped from backup keys to get source keys.
    root: String,
    prefix: String,
    /// Where the first request starts; S3 ignores it once there is a continuation token.
    start_after: Option<String>,
    token: Option<String>,
    done: bool,
    /// Listed, not yet compared (in key order).
    listed: VecDeque<ObjectRef>,
}

impl<'a> BackupListing<'a> {
    /// `None` when the cursor is unknown: the page is then checked object by object.
    fn new(services: &'a Services, p: &'a ScanBucket, cursor: &BackupCursor) -> Option<Self> {
        let start_after = match cursor {
            BackupCursor::Start => None,
            BackupCursor::After(key) => Some(backup_key(&p.bucket, key)),
            BackupCursor::Unknown => return None,
        };
        Some(Self {
            services,
            p,
            root: backup_key(&p.bucket, ""),
            prefix: backup_key(&p.bucket, p.prefix.as_deref().unwrap_or("")),
            start_after,
            token: None,
            done: false,
            listed: VecDeque::new(),
        })
    }

    /// Lists the next page of the backup prefix.
    async fn fetch(&mut self) -> Result<(), TaskError> {
        if self.done {
            return Ok(());
        }
        let page = self
            .services
            .objects
            .list_page(
                &self.p.dest.region,
                &self.p.dest.bucket,
                Some(&self.prefix),
                self.start_after.take().as_deref(),
                self.token.as_deref(),
                PAGE_KEYS,
            )
            .await?;
        self.listed.extend(page.objects);
        self.token = page.next;
        self.done = self.token.is_none();
        Ok(())
    }

    /// Lists ahead while nothing is waiting to be compared, so that the request can run beside
    /// the source page's.
    async fn prefetch(&mut self) -> Result<(), TaskError> {
        if self.listed.is_empty() {
            self.fetch().await?;
        }
        Ok(())
    }

    /// The latest backup version of every source key up to `last` (and after the previous
    /// call's): (size, ETag without quotes) by source key. Keys hidden behind a delete marker are
    /// not listed, so a copy that failed verification is never taken as current.
    async fn through(&mut self, last: &str) -> Result<HashMap<String, (u64, String)>, TaskError> {
        let last = backup_key(&self.p.bucket, last);
        while !self.done && self.listed.back().is_none_or(|o| o.key < last) {
            self.fetch().await?;
        }
        let mut found = HashMap::new();
        while self.listed.front().is_some_and(|o| o.key <= last) {
            let Some(object) = self.listed.pop_front() else { break };
            if let (Some(key), Some(etag)) = (object.key.strip_prefix(&self.root), object.etag.as_deref()) {
                found.insert(key.to_owned(), (object.size, bare_etag(etag).to_owned()));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl Handler<ScanBucket> for Services {
    async fn run(&self, p: &ScanBucket, ctx: &TaskContext) -> HandlerResult {
        let mut inventory_unused = None;
        if let Some(inventory) = &p.inventory {
            match self.scan_inventory(p, inventory, ctx).await {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(reason)) => {
                    tracing::warn!(bucket = %p.bucket, inventory = %inventory.id, reason = %reason, "not scanning from the inventory report: listing the bucket");
                    inventory_unused = Some(reason);
                }
                Err(err) => return Err(err),
            }
        }
        let mut children: Vec<Task> = Vec::new();
        let (mut page_no, mut pages, mut objects, mut bytes, mut unchanged, mut to_copy) =
            (p.page, 0u32, 0usize, 0u64, 0u64, 0usize);
        let mut continuation = p.continuation.clone();
        let mut cursor = BackupCursor::of(p);
        let mut backup = BackupListing::new(self, p, &cursor);
        let next = loop {
            let source = self.objects.list_page(
                &p.region,
                &p.bucket,
                p.prefix.as_deref(),
                None,
                continuation.as_deref(),
                PAGE_KEYS,
            );
            let ahead = async {
                match backup.as_mut() {
                    Some(backup) => backup.prefetch().await,
                    None => Ok(()),
                }
            };
            let (page, ahead) = tokio::join!(source, ahead);
            let page = match page {
                Ok(page) => page,
                Err(err) if err.is_code("NoSuchBucket") => return Err(missing("bucket", &p.bucket, &p.region)),
                Err(err) => return Err(err.into()),
            };
            ahead?;
            pages += 1;
            objects += page.objects.len();
            bytes += page.objects.iter().map(|o| o.size).sum::<u64>();
            let last = page.objects.last().map(|o| o.key.clone());
            let changed = match (backup.as_mut(), &last) {
                (Some(backup), Some(last)) => {
                    let (changed, same) = changed_objects(page.objects, &backup.through(last).await?);
                    unchanged += same;
                    changed
                }
                _ => page.objects,
            };
            to_copy += changed.len();
            children.extend(batches(p, page_no, changed)?.into_iter().map(Task::CopyObjects));
            if let Some(last) = last {
                cursor = BackupCursor::After(last);
            }
            let Some(token) = page.next else { break None };
            page_no = page_no.checked_add(1).ok_or_else(|| TaskError::permanent("scan page number overflow"))?;
            continuation = Some(token);
            // Hand on once there is copying to start, after a bounded walk, or when asked to stop.
            if to_copy >= PAGE_KEYS as usize || pages >= PAGES_PER_TASK || ctx.cancel.is_cancelled() {
                break continuation.clone();
            }
        };
        let batch_count = children.len();
        if let Some(next) = &next {
            children.push(Task::ScanBucket(ScanBucket {
                continuation: Some(next.clone()),
                page: page_no,
                listed_after: match &cursor {
                    BackupCursor::After(key) => Some(key.clone()),
                    BackupCursor::Start | BackupCursor::Unknown => None,
                },
                inventory: None,
                ..p.clone()
            }));
        }
        Ok(Outcome::done(json!({
            "bucket": p.bucket,
            "page": p.page,
            "pages": pages,
            "objects": objects,
            "bytes": bytes,
            "unchanged": unchanged,
            "batches": batch_count,
            "more": next.is_some(),
            "inventory_unused": inventory_unused,
        }))
        .with_children(children))
    }
}

#[async_trait]
impl Handler<CopyObjects> for Services {
    async fn run(&self, p: &CopyObjects, ctx: &TaskContext) -> HandlerResult {
        // The futures are built before streaming them: a closure inside the stream would have
        // to be generic over the borrow's lifetime, which async-trait's `Send` check rejects.
        let copies: Vec<_> = p
            .objects
            .iter()
            .map(|object| async move {
                (object, self.backup_object(&p.region, &p.bucket, object, &p.dest, &p.ctx, ctx).await)
            })
            .collect();
        let outcomes: Vec<(&ObjectRef, Result<ObjectOutcome, TaskError>)> =
            futures::stream::iter(copies).buffer_unordered(OBJECT_CONCURRENCY).collect().await;
        let (mut copied, mut unchanged, mut source_gone, mut multipart, mut bytes) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut failures: Vec<(&str, TaskError)> = Vec::new();
        for (object, outcome) in outcomes {
            match outcome {
                Ok(ObjectOutcome::Copied { bytes: size, multipart: parts, .. }) => {
                    copied += 1;
                    bytes += size;
                    multipart += u64::from(parts);
                }
                Ok(ObjectOutcome::Unchanged) => unchanged += 1,
                Ok(ObjectOutcome::SourceGone) => source_gone += 1,
                Err(err) => failures.push((&object.key, err)),
            }
        }
        if !failures.is_empty() {
            // Whatever was copied stays copied: the re-run skips it. Cancellation wins (hand the
            // task back), then retryable (another attempt may finish), then permanent.
            let pick = |class: fn(&ErrorClass) -> bool| failures.iter().find(|(_, e)| class(&e.class));
            let (key, first) = pick(|c| matches!(c, ErrorClass::Cancelled))
                .or_else(|| pick(|c| matches!(c, ErrorClass::Retry(_))))
                .unwrap_or(&failures[0]);
            let reason = format!(
                "{} of {} objects failed (copied {copied}, unchanged {unchanged}); first: {key:?}: {}",
                failures.len(),
                p.objects.len(),
                first.reason
            );
            return Err(TaskError { class: first.class, reason, retry_after: first.retry_after });
        }
        Ok(Outcome::done(json!({
            "bucket": p.bucket,
            "page": p.page,
            "objects": p.objects.len(),
            "copied": copied,
            "skipped": unchanged,
            "source_gone": source_gone,
            "multipart": multipart,
            "bytes_copied": bytes,
        })))
    }
}

#[async_trait]
impl Handler<CopyObject> for Services {
    async fn run(&self, p: &CopyObject, ctx: &TaskContext) -> HandlerResult {
        let outcome = self.backup_object(&p.region, &p.bucket, &p.object, &p.dest, &p.ctx, ctx).await?;
        let key = backup_key(&p.bucket, &p.object.key);
        Ok(Outcome::done(match outcome {
            ObjectOutcome::Copied { bytes, multipart, version_id } => json!({
                "copied": true, "bucket": p.dest.bucket, "key": key, "version_id": version_id,
                "bytes": bytes, "multipart": multipart,
            }),
            ObjectOutcome::Unchanged => {
                json!({ "copied": false, "skipped": "unchanged", "bucket": p.dest.bucket, "key": key })
            }
            ObjectOutcome::SourceGone => json!({ "copied": false, "skipped": "source gone", "source": p.object.key }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_schemas::Tier;

    fn scan(page: u32) -> ScanBucket {
        ScanBucket {
            region: "us-east-1".into(),
            bucket: "src".into(),
            prefix: None,
            continuation: None,
            page,
            listed_after: None,
            inventory: None,
            dest: S3Destination {
                bucket: "backup".into(),
                region: "us-west-2".into(),
                storage_class: None,
                lock_days: None,
            },
            ctx: BackupContext {
                plan: "p".into(),
                tier: Tier::Daily,
                window: Utc::now(),
                expires_at: None,
                copy_to: vec![],
                verify: false,
                retain: None,
                export: None,
            },
        }
    }

    fn object(key: String) -> ObjectRef {
        ObjectRef { key, size: 1, etag: Some("\"0123456789abcdef0123456789abcdef\"".into()), version_id: None }
    }

    #[test]
    fn a_page_of_short_keys_is_one_batch_numbered_after_the_page() {
        let objects: Vec<_> = (0..1000).map(|i| object(format!("dir/file-{i:05}.txt"))).collect();
        let out = batches(&scan(3), 3, objects).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].page, 3000);
        assert_eq!(out[0].objects.len(), 1000);
    }

    #[test]
    fn a_page_of_long_keys_splits_and_every_batch_fits_a_message() {
        // 1000 keys of 1024 bytes of control characters: ~6 KiB each once JSON-escaped.
        let objects: Vec<_> = (0..1000).map(|i| object(format!("{i:04}{}", "\u{1}".repeat(1020)))).collect();
        let out = batches(&scan(7), 7, objects.clone()).unwrap();
        assert!(out.len() > 1);
        let pages: Vec<u32> = out.iter().map(|b| b.page).collect();
        assert_eq!(pages, (7000..7000 + out.len() as u32).collect::<Vec<_>>());
        assert_eq!(out.iter().flat_map(|b| b.objects.clone()).collect::<Vec<_>>(), objects, "order and content kept");
        for batch in out {
            let task = Task::CopyObjects(batch);
            let envelope = backup_schemas::Envelope::new(
                task,
                backup_schemas::RunId::new("r"),
                backup_schemas::Origin::Operator { command: "test".into() },
                Utc::now(),
            );
            envelope.encode().expect("every batch fits one SQS message");
        }
    }

    #[test]
    fn an_empty_page_makes_no_batch() {
        assert!(batches(&scan(0), 0, Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn only_objects_the_backup_listing_shows_with_the_same_size_and_etag_are_unchanged() {
        let listed = |key: &str, size: u64, etag: Option<&str>| ObjectRef {
            key: key.into(),
            size,
            etag: etag.map(str::to_owned),
            version_id: None,
        };
        let backed_up: HashMap<String, (u64, String)> = [
            ("same".to_owned(), (5, "aaa".to_owned())),
            ("resized".to_owned(), (6, "bbb".to_owned())),
            ("rewritten".to_owned(), (5, "ccc".to_owned())),
        ]
        .into();
        let page = vec![
            listed("same", 5, Some("\"aaa\"")),
            listed("resized", 5, Some("\"bbb\"")),
            listed("rewritten", 5, Some("\"ddd\"")),
            listed("new", 1, Some("\"eee\"")),
            listed("no-etag", 5, None),
        ];
        let (changed, unchanged) = changed_objects(page, &backed_up);
        let keys: Vec<&str> = changed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!((keys, unchanged), (vec!["resized", "rewritten", "new", "no-etag"], 1));
    }

    #[test]
    fn a_later_page_without_its_listing_cursor_is_checked_object_by_object() {
        let mut p = scan(4);
        p.continuation = Some("token".into());
        assert_eq!(BackupCursor::of(&p), BackupCursor::Unknown);
        p.listed_after = Some("k".into());
        assert_eq!(BackupCursor::of(&p), BackupCursor::After("k".into()));
        assert_eq!(BackupCursor::of(&scan(0)), BackupCursor::Start);
    }

    #[test]
    fn composite_checksums_are_not_full_object() {
        assert_eq!(full_object(Some("abc=")), Some("abc="));
        assert_eq!(full_object(Some("abc=-3")), None);
        assert_eq!(full_object(None), None);
    }
}
