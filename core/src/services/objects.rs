//! S3: the `ObjectStore` port (listing, heads, tags, server-side copies, versions, buckets) and the
//! tag rules of backup copies (S3's 10-tag limit, the source-ETag marker the incremental skip
//! relies on).

use async_trait::async_trait;
use backup_schemas::{tags, ObjectRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::artifacts::Tags;
use crate::error::AwsError;

/// S3's limit on tags per object.
pub const MAX_OBJECT_TAGS: usize = 10;

/// Tag on a backup copy: the ETag (without quotes) of the source object it was copied from. The
/// incremental skip compares it with the listed source ETag when the copy's own ETag differs from
/// the source's (multipart copies, SSE-KMS objects).
pub const SOURCE_ETAG: &str = "backup-fleet:source-etag";

/// Fleet tags a backup copy always keeps, whatever the source object carries: the marker
/// retention relies on, the idempotency key, the plan and source, the skip marker, and the tier
/// (the backup bucket's lifecycle rules select each tier's transitions by it).
pub const ESSENTIAL_TAGS: &[&str] = &[tags::MANAGED, tags::TASK_ID, tags::PLAN, tags::SOURCE, SOURCE_ETAG, tags::TIER];

/// An object's HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHead {
    pub key: String,
    pub size: u64,
    /// As S3 returns it, quotes included.
    pub etag: Option<String>,
    /// `None` for objects of a bucket that was never versioned (S3's `null` version).
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    /// `None` means STANDARD (S3 omits it).
    pub storage_class: Option<String>,
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// Base64 SHA-256 when the object has one: the full-object digest, or for a multipart object
    /// the digest of the parts' digests suffixed `-<parts>`.
    pub checksum_sha256: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub lock_mode: Option<String>,
    pub legal_hold: bool,
    /// Filled only by methods that say so (`head` does not: tags cost another call).
    pub tags: Tags,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRef>,
    /// Continuation token of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One version (or delete marker) of a key in a versioned bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub is_latest: bool,
    pub delete_marker: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub region: String,
    pub tags: Tags,
}

/// A server-side copy of one object version into the backup bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRequest {
    pub source_region: String,
    pub source_bucket: String,
    pub source_key: String,
    /// Pins the copy to the version that was inspected; `None` copies the current one.
    pub source_version_id: Option<String>,
    pub dest_region: String,
    pub dest_bucket: String,
    pub dest_key: String,
    pub storage_class: Option<String>,
    /// Object Lock retain-until (GOVERNANCE mode) of the copy.
    pub lock_until: Option<DateTime<Utc>>,
    /// The copy's complete tag set (see [`merge_object_tags`]); replaces the source's tags.
    pub tags: Tags,
    /// Size of the source, to choose between one CopyObject and a multipart copy.
    pub size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyResult {
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// What S3 reported: full-object for a single copy, composite (`…-N`) for a multipart copy.
    pub checksum_sha256: Option<String>,
    pub multipart: bool,
}

/// A new object written by the fleet (a logical dump, an export manifest).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRequest {
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub content_type: Option<String>,
    pub storage_class: Option<String>,
    /// Object Lock retain-until (GOVERNANCE mode).
    pub lock_until: Option<DateTime<Utc>>,
    pub tags: Tags,
}

/// One uploaded part of a multipart upload, as CompleteMultipartUpload needs it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedPart {
    pub number: i32,
    pub etag: Option<String>,
    pub checksum_sha256: Option<String>,
}

/// What S3 answered for a finished upload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResult {
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// The server-side encryption S3 applied (`AES256`, `aws:kms`, ...), when it says.
    pub encryption: Option<String>,
}

/// An object's body as a byte stream: read with bounded memory, whatever its size.
pub type ObjectStream = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// One page of ListObjectsV2 (keys decoded, whatever characters they hold), in S3's order
    /// (UTF-8 binary). The first page starts after `start_after` when given; S3 ignores it once
    /// a continuation token is passed.
    async fn list_page(
        &self,
        region: &str,
        bucket: &str,
        prefix: Option<&str>,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ObjectPage, AwsError>;
    /// HEAD with `ChecksumMode=ENABLED`; `None` when the object (or version) does not exist or the
    /// latest version is a delete marker.
    async fn head(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, AwsError>;
    async fn object_tags(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Tags, AwsError>;
    /// One CopyObject up to the multipart threshold, UploadPartCopy above it. Metadata and content
    /// type are the source's, tags are `request.tags`, SHA-256 checksum requested.
    async fn copy(&self, request: &CopyRequest) -> Result<CopyResult, AwsError>;
    /// Every version and delete marker under `prefix`, paginated to the end; per key newest first.
    async fn list_versions(&self, region: &str, bucket: &str, prefix: &str) -> Result<Vec<ObjectVersion>, AwsError>;
    /// The whole object in memory: tests and small verifications only.
    async fn get_bytes(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<u8>, AwsError>;
    /// Deletes one version for good (no Object Lock bypass: a locked version stays). A version
    /// already gone is success.
    async fn delete_version(&self, region: &str, bucket: &str, key: &str, version_id: &str) -> Result<(), AwsError>;
    /// Places a delete marker on `key` (DeleteObject without a version id), which Object Lock
    /// allows: the locked versions stay, but the key reads as absent. Used to hide a copy that
    /// failed verification so that the next run copies it again instead of skipping it.
    async fn hide_latest(&self, region: &str, bucket: &str, key: &str) -> Result<(), AwsError>;
    /// Starts restoring a temporary copy of an archived (GLACIER, DEEP_ARCHIVE) version for
    /// `days`; a restore already under way is not an error.
    async fn restore_archived(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        days: i32,
    ) -> Result<(), AwsError>;
    /// Starts a multipart upload (SHA-256 part checksums, which an Object Lock bucket requires);
    /// returns its upload id.
    async fn start_upload(&self, request: &UploadRequest) -> Result<String, AwsError>;
    /// Uploads part `number` (1-based; every part but the last at least 5 MiB).
    async fn upload_part(
        &self,
        request: &UploadRequest,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<UploadedPart, AwsError>;
    async fn complete_upload(
        &self,
        request: &UploadRequest,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> Result<UploadResult, AwsError>;
    /// Abandons an upload; one already gone is success.
    async fn abort_upload(&self, request: &UploadRequest, upload_id: &str) -> Result<(), AwsError>;
    /// One PutObject of a small body (SHA-256 checksum sent).
    async fn put_bytes(&self, request: &UploadRequest, body: Vec<u8>) -> Result<UploadResult, AwsError>;
    /// The object's body as a stream.
    async fn get_stream(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectStream, AwsError>;
    /// Buckets located in `region` (GetBucketLocation), with their tags (none: no tags).
    async fn list_buckets(&self, region: &str) -> Result<Vec<BucketInfo>, AwsError>;
    async fn bucket_tags(&self, region: &str, bucket: &str) -> Result<Tags, AwsError>;
    /// The bucket's S3 Inventory configuration `id` (GetBucketInventoryConfiguration); `None`
    /// when the bucket has none by that id.
    async fn inventory_config(
        &self,
        region: &str,
        bucket: &str,
        id: &str,
    ) -> Result<Option<crate::inventory::InventoryConfig>, AwsError>;
    /// The "folders" directly under `prefix` (ListObjectsV2 with delimiter `/`: the common
    /// prefixes, each ending with `/`), paginated to the end.
    async fn list_folders(&self, region: &str, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError>;
}

/// The tag set of a backup copy: the fleet's tags merged over the source object's own, within
/// S3's limit of 10 per object. The essential fleet tags ([`ESSENTIAL_TAGS`]) always stay; then as
/// many source tags as fit (in key order, so the choice is stable across runs); then the remaining
/// fleet tags (the expiry) if room is left. The expiry also lives in the catalog record, which is
/// what retention reads. Source tags in the fleet's `backup-fleet:` namespace are dropped: on a
/// backup that namespace belongs to the fleet (a stray `expires-at` must not be inherited).
pub fn merge_object_tags(fleet: &Tags, source: &Tags) -> Tags {
    let mut merged = Tags::new();
    for key in ESSENTIAL_TAGS {
        if let Some(value) = fleet.get(*key) {
            merged.insert((*key).to_owned(), value.clone());
        }
    }
    let source_tags = source.iter().filter(|(key, _)| !key.starts_with("backup-fleet:") && !fleet.contains_key(*key));
    let rest = fleet.iter().filter(|(key, _)| !ESSENTIAL_TAGS.contains(&key.as_str()));
    for (key, value) in source_tags.chain(rest) {
        if merged.len() >= MAX_OBJECT_TAGS {
            break;
        }
        merged.insert(key.clone(), value.clone());
    }
    merged
}

/// An ETag without its quotes, as stored in the [`SOURCE_ETAG`] tag (S3 tag values cannot hold
/// quotes).
pub fn bare_etag(etag: &str) -> &str {
    etag.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn merge_keeps_essentials_then_source_tags_then_the_rest() {
        let fleet = tags(&[
            (tags::MANAGED, "true"),
            (tags::TASK_ID, "t-1"),
            (tags::PLAN, "p"),
            (tags::SOURCE, "bucket"),
            (tags::TIER, "daily"),
            (tags::EXPIRES_AT, "2030-01-01T00:00:00Z"),
            (SOURCE_ETAG, "abc"),
        ]);
        let source: Tags = (0..8).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
        let merged = merge_object_tags(&fleet, &source);
        assert_eq!(merged.len(), MAX_OBJECT_TAGS);
        for key in ESSENTIAL_TAGS {
            assert!(merged.contains_key(*key), "{key} kept");
        }
        assert!((0..4).all(|i| merged.contains_key(&format!("k{i}"))));
        assert!(merged.contains_key(tags::TIER), "the lifecycle rules select by tier");
        assert!(!merged.contains_key(tags::EXPIRES_AT), "source tags come before the optional fleet tags");

        let few = merge_object_tags(&fleet, &tags(&[("team", "x"), (tags::EXPIRES_AT, "1999-01-01T00:00:00Z")]));
        assert_eq!(few.len(), 8);
        assert_eq!(few[tags::EXPIRES_AT], "2030-01-01T00:00:00Z", "the fleet's expiry, never the source's");
        assert_eq!(few["team"], "x");
    }

    #[test]
    fn fleet_values_win_and_foreign_fleet_tags_are_dropped() {
        let fleet = tags(&[(tags::MANAGED, "true"), (tags::PLAN, "p")]);
        let source = tags(&[(tags::PLAN, "other"), (tags::LEGAL_HOLD, "x"), ("a", "1")]);
        let merged = merge_object_tags(&fleet, &source);
        assert_eq!(merged, tags(&[(tags::MANAGED, "true"), (tags::PLAN, "p"), ("a", "1")]));
    }

    #[test]
    fn bare_etag_strips_quotes() {
        assert_eq!(bare_etag("\"abc-2\""), "abc-2");
        assert_eq!(bare_etag("abc"), "abc");
    }
}
