//! `ObjectStore` on S3: listing, heads, tags, server-side copies (one CopyObject, or a multipart
//! UploadPartCopy above the threshold), versions and bucket discovery.
//!
//! Keys are opaque bytes to S3 and must survive whatever they hold: listings ask for URL-encoded
//! keys (XML cannot carry every character) and decode them, and the copy source is percent-encoded
//! here because the SDK sends `x-amz-copy-source` as given (awslabs/aws-sdk-rust#1357).

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, EncodingType, GlacierJobParameters,
    MetadataDirective, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    RestoreRequest, StorageClass, TaggingDirective, Tier as S3Tier,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backup_core::artifacts::Tags;
use backup_core::inventory::InventoryConfig;
use backup_core::services::objects::{
    BucketInfo, CopyRequest, CopyResult, ObjectHead, ObjectPage, ObjectStore, ObjectStream, ObjectVersion,
    UploadRequest, UploadResult, UploadedPart,
};
use backup_core::{AwsError, ErrorClass, RetryClass};
use backup_schemas::ObjectRef;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::classify::classify;
use crate::config::AwsContext;
use crate::ec2::to_chrono;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
/// CopyObject copies at most 5 GiB; larger objects need UploadPartCopy.
pub const COPY_OBJECT_LIMIT: u64 = 5 * GIB;
pub const DEFAULT_PART_SIZE: u64 = 512 * MIB;
/// S3's limits on multipart uploads.
const MAX_PARTS: u64 = 10_000;
const MAX_PART_SIZE: u64 = 5 * GIB;
/// Base64 MD5 of an empty body (`Content-MD5` of a CopyObject request).
const EMPTY_BODY_MD5: &str = "1B2M2Y8AsgTpgAEwnpOy3Q==";
/// Parts copied at once: the copy is server-side, so this bounds requests, not bandwidth.
const PART_CONCURRENCY: usize = 4;

/// Everything but RFC 3986's unreserved characters and `/`: what S3 expects in
/// `x-amz-copy-source` (the same set as Python's `quote(key, safe="/")`, which boto uses).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
/// Tag keys and values in `x-amz-tagging` (a URL query string): `/` must be encoded too.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Clone, Debug)]
enum Clients {
    /// One client per region from the shared context (production).
    Context(AwsContext),
    /// One given client for every region (SDK mock tests).
    Fixed(aws_sdk_s3::Client),
}

#[derive(Clone, Debug)]
pub struct S3Objects {
    clients: Clients,
    multipart_threshold: u64,
    part_size: u64,
}

impl S3Objects {
    /// Single CopyObject up to 5 GiB, 512 MiB parts above.
    pub fn new(aws: AwsContext) -> Self {
        Self::with_multipart(aws, COPY_OBJECT_LIMIT, DEFAULT_PART_SIZE)
    }

    /// Multipart above `threshold` bytes with parts of `part_size` (S3 wants ≥ 5 MiB but the last;
    /// tests use small values to exercise the multipart path). The threshold is capped at 5 GiB.
    pub fn with_multipart(aws: AwsContext, threshold: u64, part_size: u64) -> Self {
        Self { clients: Clients::Context(aws), multipart_threshold: threshold, part_size }.capped()
    }

    /// Around one given client, used for every region (tests with `aws-smithy-mocks`).
    pub fn from_client(client: aws_sdk_s3::Client) -> Self {
        Self { clients: Clients::Fixed(client), multipart_threshold: COPY_OBJECT_LIMIT, part_size: DEFAULT_PART_SIZE }
    }

    /// Changes the multipart threshold and part size.
    pub fn multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size;
        self.capped()
    }

    fn capped(mut self) -> Self {
        self.multipart_threshold = self.multipart_threshold.min(COPY_OBJECT_LIMIT);
        self.part_size = self.part_size.clamp(1, MAX_PART_SIZE);
        self
    }

    fn client(&self, region: &str) -> aws_sdk_s3::Client {
        match &self.clients {
            Clients::Context(aws) => aws.clients_in(region).s3,
            Clients::Fixed(client) => client.clone(),
        }
    }

    /// Part size for `size` bytes: the configured size, grown so the copy needs at most 10,000 parts.
    fn part_size_for(&self, size: u64) -> u64 {
        let minimum = size.div_ceil(MAX_PARTS).next_multiple_of(MIB);
        self.part_size.max(minimum).min(MAX_PART_SIZE)
    }
}

/// Classifies an S3 error. S3 signals throttling with HTTP 503 "Slow Down", and a HEAD's error has
/// no body to carry the code, so every 503 from S3 counts as throttling.
fn s3_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let mut err = classify("s3", operation, err);
    if status == Some(503) && matches!(err.class, ErrorClass::Retry(_)) {
        err.class = ErrorClass::Retry(RetryClass::Throttled);
    }
    err
}

/// `bucket/key[?versionId=v]` for `x-amz-copy-source`, the key percent-encoded.
pub fn copy_source(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    let mut source = format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE));
    if let Some(version) = version_id {
        source.push_str("?versionId=");
        source.extend(utf8_percent_encode(version, QUERY_VALUE));
    }
    source
}

/// The `x-amz-tagging` header: `k=v&k2=v2`, each part percent-encoded.
pub fn tagging_header(tags: &Tags) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, QUERY_VALUE), utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes a key S3 listed with `EncodingType=url` (form encoding: `+` is a space).
fn decode_key(key: &str) -> String {
    percent_decode_str(&key.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// Base64 SHA-256 of `bytes`, in the form S3 reports `x-amz-checksum-sha256`.
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// S3 reports the version of objects written while versioning was never enabled as `null`.
fn version(version_id: Option<&str>) -> Option<String> {
    version_id.filter(|v| !v.is_empty() && *v != "null").map(str::to_owned)
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn object_head(key: &str, output: &HeadObjectOutput) -> ObjectHead {
    ObjectHead {
        key: key.to_owned(),
        size: output.content_length().unwrap_or_default().max(0) as u64,
        etag: output.e_tag().map(str::to_owned),
        version_id: version(output.version_id()),
        last_modified: output.last_modified().and_then(to_chrono),
        storage_class: output.storage_class().map(|c| c.as_str().to_owned()),
        content_type: output.content_type().map(str::to_owned),
        metadata: output
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        checksum_sha256: output.checksum_sha256().map(str::to_owned),
        lock_until: output.object_lock_retain_until_date().and_then(to_chrono),
        lock_mode: output.object_lock_mode().map(|m| m.as_str().to_owned()),
        legal_hold: output.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        tags: Tags::new(),
    }
}

impl S3Objects {
    async fn head_output(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<HeadObjectOutput>, AwsError> {
        let result = self
            .client(region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output)),
            // 404: no such key (or the latest version is a delete marker); 405: the version asked
            // for is a delete marker.
            Err(err) if matches!(err.raw_response().map(|r| r.status().as_u16()), Some(404 | 405)) => Ok(None),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_error("HeadObject", err)),
        }
    }

    async fn copy_single(&self, request: &CopyRequest) -> Result<CopyResult, AwsError> {
        let copy = self
            .client(&request.dest_region)
            .copy_object()
            .bucket(&request.dest_bucket)
            .key(&request.dest_key)
            .copy_source(copy_source(&request.source_bucket, &request.source_key, request.source_version_id.as_deref()))
            .metadata_directive(MetadataDirective::Copy)
            .tagging_directive(TaggingDirective::Replace)
            .tagging(tagging_header(&request.tags))
            .set_storage_class(request.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(request.lock_until.map(|_| ObjectLockMode::Governance))
            .set_object_lock_retain_until_date(request.lock_until.map(smithy_time))
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        let output = if request.lock_until.is_some() {
            // Object Lock wants an integrity header on writes that set retention; moto applies
            // that to CopyObject too. The MD5 of the (empty) request body is true for any copy.
            copy.customize()
                .mutate_request(|http| {
                    http.headers_mut().insert("content-md5", EMPTY_BODY_MD5);
                })
                .send()
                .await
        } else {
            copy.send().await
        }
        .map_err(|e| s3_error("CopyObject", e))?;
        let result = output.copy_object_result();
        Ok(CopyResult {
            version_id: version(output.version_id()),
            etag: result.and_then(|r| r.e_tag()).map(str::to_owned),
            checksum_sha256: result.and_then(|r| r.checksum_sha256()).map(str::to_owned),
            multipart: false,
        })
    }

    /// CreateMultipartUpload with the source's metadata, then UploadPartCopy by byte ranges, then
    /// CompleteMultipartUpload; the upload is aborted on any failure so no parts linger (a bucket
    /// lifecycle rule aborting incomplete uploads covers a worker that dies mid-copy).
    async fn copy_multipart(&self, request: &CopyRequest) -> Result<CopyResult, AwsError> {
        let client = self.client(&request.dest_region);
        // Metadata does not carry over to a multipart upload: copy the source's system and user
        // metadata from its HEAD, pinned to the version being copied.
        let source = self
            .head_output(
                &request.source_region,
                &request.source_bucket,
                &request.source_key,
                request.source_version_id.as_deref(),
            )
            .await?
            .ok_or_else(|| AwsError {
                service: "s3",
                operation: "HeadObject",
                code: "NoSuchKey".into(),
                message: format!("{}/{} does not exist", request.source_bucket, request.source_key),
                class: ErrorClass::Permanent,
            })?;
        let size = source.content_length().unwrap_or_default().max(0) as u64;
        let created = client
            .create_multipart_upload()
            .bucket(&request.dest_bucket)
            .key(&request.dest_key)
            .set_content_type(source.content_type().map(str::to_owned))
            .set_content_encoding(source.content_encoding().map(str::to_owned))
            .set_content_disposition(source.content_disposition().map(str::to_owned))
            .set_content_language(source.content_language().map(str::to_owned))
            .set_cache_control(source.cache_control().map(str::to_owned))
            .set_expires(source.expires_string().and_then(|s| {
                aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::HttpDate).ok()
            }))
            .set_website_redirect_location(source.website_redirect_location().map(str::to_owned))
            .set_metadata(source.metadata().cloned())
            .tagging(tagging_header(&request.tags))
            .set_storage_class(request.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(request.lock_until.map(|_| ObjectLockMode::Governance))
            .set_object_lock_retain_until_date(request.lock_until.map(smithy_time))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        match self.copy_parts(request, &upload_id, size, source.version_id()).await {
            Ok(result) => Ok(result),
            Err(err) => {
                let abort = client
                    .abort_multipart_upload()
                    .bucket(&request.dest_bucket)
                    .key(&request.dest_key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(abort) = abort {
                    tracing::warn!(upload_id, error = %s3_error("AbortMultipartUpload", abort), "could not abort a failed multipart copy");
                }
                Err(err)
            }
        }
    }

    async fn copy_parts(
        &self,
        request: &CopyRequest,
        upload_id: &str,
        size: u64,
        source_version: Option<&str>,
    ) -> Result<CopyResult, AwsError> {
        let client = self.client(&request.dest_region);
        // Pin every part to the version the HEAD saw, so the parts cannot mix two versions.
        let source_version = version(source_version).or_else(|| request.source_version_id.clone());
        let source = copy_source(&request.source_bucket, &request.source_key, source_version.as_deref());
        let part_size = self.part_size_for(size);
        let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size).max(1))
            .map(|i| (i as i32 + 1, i * part_size, ((i + 1) * part_size).min(size).saturating_sub(1)))
            .collect();
        let mut parts: Vec<CompletedPart> = futures::stream::iter(ranges)
            .map(|(number, first, last)| {
                let client = client.clone();
                let source = source.clone();
                async move {
                    let output = client
                        .upload_part_copy()
                        .bucket(&request.dest_bucket)
                        .key(&request.dest_key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .send()
                        .await
                        .map_err(|e| s3_error("UploadPartCopy", e))?;
                    let result = output.copy_part_result();
                    Ok::<_, AwsError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(result.and_then(|r| r.e_tag()).map(str::to_owned))
                            .set_checksum_sha256(result.and_then(|r| r.checksum_sha256()).map(str::to_owned))
                            .build(),
                    )
                }
            })
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        let completed = client
            .complete_multipart_upload()
            .bucket(&request.dest_bucket)
            .key(&request.dest_key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
        let version_id = version(completed.version_id());
        if let Some(until) = request.lock_until {
            let (region, bucket, key) = (&request.dest_region, &request.dest_bucket, &request.dest_key);
            self.ensure_retention(region, bucket, key, version_id.as_deref(), until).await?;
        }
        Ok(CopyResult {
            version_id,
            etag: completed.e_tag().map(str::to_owned),
            checksum_sha256: completed.checksum_sha256().map(str::to_owned),
            multipart: true,
        })
    }

    /// Sets GOVERNANCE retention on the completed copy when the upload did not carry it (moto
    /// ignores Object Lock headers on CreateMultipartUpload; S3 honours them, making this a HEAD).
    async fn ensure_retention(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        until: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        let head = self.head_output(region, bucket, key, version_id).await?;
        if head.as_ref().and_then(|h| h.object_lock_retain_until_date()).is_some() {
            return Ok(());
        }
        self.client(region)
            .put_object_retention()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(smithy_time(until))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("PutObjectRetention", e))?;
        Ok(())
    }

    async fn bucket_region(&self, region: &str, bucket: &str) -> Result<Option<String>, AwsError> {
        match self.client(region).get_bucket_location().bucket(bucket).send().await {
            Ok(output) => Ok(Some(match output.location_constraint().map(|c| c.as_str()) {
                None | Some("") => "us-east-1".to_owned(),
                Some("EU") => "eu-west-1".to_owned(),
                Some(other) => other.to_owned(),
            })),
            // Deleted between the listing and now.
            Err(err) if err.code() == Some("NoSuchBucket") => Ok(None),
            Err(err) => Err(s3_error("GetBucketLocation", err)),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn list_page(
        &self,
        region: &str,
        bucket: &str,
        prefix: Option<&str>,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ObjectPage, AwsError> {
        let output = self
            .client(region)
            .list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix.filter(|p| !p.is_empty()).map(str::to_owned))
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(continuation.map(str::to_owned))
            .max_keys(max_keys)
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", e))?;
        let encoded = output.encoding_type() == Some(&EncodingType::Url);
        let objects = output
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?;
                Some(ObjectRef {
                    key: if encoded { decode_key(key) } else { key.to_owned() },
                    size: object.size().unwrap_or_default().max(0) as u64,
                    etag: object.e_tag().map(str::to_owned),
                    version_id: None,
                })
            })
            .collect();
        let next = match output.is_truncated() {
            Some(true) => output.next_continuation_token().filter(|t| !t.is_empty()).map(str::to_owned),
            _ => None,
        };
        Ok(ObjectPage { objects, next })
    }

    async fn head(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, AwsError> {
        Ok(self.head_output(region, bucket, key, version_id).await?.map(|output| object_head(key, &output)))
    }

    async fn object_tags(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Tags, AwsError> {
        let output = self
            .client(region)
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error("GetObjectTagging", e))?;
        Ok(output.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
    }

    async fn copy(&self, request: &CopyRequest) -> Result<CopyResult, AwsError> {
        if request.size > self.multipart_threshold {
            self.copy_multipart(request).await
        } else {
            self.copy_single(request).await
        }
    }

    async fn start_upload(&self, request: &UploadRequest) -> Result<String, AwsError> {
        let created = self
            .client(&request.region)
            .create_multipart_upload()
            .bucket(&request.bucket)
            .key(&request.key)
            .set_content_type(request.content_type.clone())
            .tagging(tagging_header(&request.tags))
            .set_storage_class(request.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(request.lock_until.map(|_| ObjectLockMode::Governance))
            .set_object_lock_retain_until_date(request.lock_until.map(smithy_time))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", e))?;
        Ok(created.upload_id().unwrap_or_default().to_owned())
    }

    async fn upload_part(
        &self,
        request: &UploadRequest,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<UploadedPart, AwsError> {
        // Our own SHA-256 of the part, named as the algorithm too: an Object Lock bucket
        // requires an integrity checksum header. Computed off the runtime: a part is up to
        // 5 GiB, and the worker's runtime may be a single thread that also renews every lease.
        let (checksum, body) = tokio::task::spawn_blocking(move || (sha256_base64(&body), body))
            .await
            .expect("hashing a part does not panic");
        let output = self
            .client(&request.region)
            .upload_part()
            .bucket(&request.bucket)
            .key(&request.key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .body(body.into())
            .send()
            .await
            .map_err(|e| s3_error("UploadPart", e))?;
        Ok(UploadedPart {
            number,
            etag: output.e_tag().map(str::to_owned),
            checksum_sha256: output.checksum_sha256().map(str::to_owned).or(Some(checksum)),
        })
    }

    async fn complete_upload(
        &self,
        request: &UploadRequest,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> Result<UploadResult, AwsError> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number)
                    .set_e_tag(p.etag.clone())
                    .set_checksum_sha256(p.checksum_sha256.clone())
                    .build()
            })
            .collect();
        let output = self
            .client(&request.region)
            .complete_multipart_upload()
            .bucket(&request.bucket)
            .key(&request.key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
        if let Some(until) = request.lock_until {
            let version_id = version(output.version_id());
            self.ensure_retention(&request.region, &request.bucket, &request.key, version_id.as_deref(), until).await?;
        }
        Ok(UploadResult {
            version_id: version(output.version_id()),
            etag: output.e_tag().map(str::to_owned),
            encryption: output.server_side_encryption().map(|e| e.as_str().to_owned()),
        })
    }

    async fn abort_upload(&self, request: &UploadRequest, upload_id: &str) -> Result<(), AwsError> {
        match self
            .client(&request.region)
            .abort_multipart_upload()
            .bucket(&request.bucket)
            .key(&request.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.code(), Some("NoSuchUpload")) => Ok(()),
            Err(err) => Err(s3_error("AbortMultipartUpload", err)),
        }
    }

    async fn put_bytes(&self, request: &UploadRequest, body: Vec<u8>) -> Result<UploadResult, AwsError> {
        let checksum = sha256_base64(&body);
        let output = self
            .client(&request.region)
            .put_object()
            .bucket(&request.bucket)
            .key(&request.key)
            .set_content_type(request.content_type.clone())
            .tagging(tagging_header(&request.tags))
            .set_storage_class(request.storage_class.as_deref().map(StorageClass::from))
            .set_object_lock_mode(request.lock_until.map(|_| ObjectLockMode::Governance))
            .set_object_lock_retain_until_date(request.lock_until.map(smithy_time))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .body(body.into())
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(UploadResult {
            version_id: version(output.version_id()),
            etag: output.e_tag().map(str::to_owned),
            encryption: output.server_side_encryption().map(|e| e.as_str().to_owned()),
        })
    }

    async fn get_stream(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectStream, AwsError> {
        let output = self
            .client(region)
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error("GetObject", e))?;
        Ok(Box::pin(output.body.into_async_read()))
    }

    async fn list_versions(&self, region: &str, bucket: &str, prefix: &str) -> Result<Vec<ObjectVersion>, AwsError> {
        let client = self.client(region);
        let mut all = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let output = client
                .list_object_versions()
                .bucket(bucket)
                .set_prefix(Some(prefix.to_owned()).filter(|p| !p.is_empty()))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .encoding_type(EncodingType::Url)
                .send()
                .await
                .map_err(|e| s3_error("ListObjectVersions", e))?;
            // Decode only when the response says it is encoded (moto ignores the parameter here).
            let decode = |key: &str| {
                if output.encoding_type() == Some(&EncodingType::Url) {
                    decode_key(key)
                } else {
                    key.to_owned()
                }
            };
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            all.extend(output.versions().iter().filter_map(|v| {
                Some(ObjectVersion {
                    key: decode(v.key()?),
                    version_id: v.version_id().unwrap_or("null").to_owned(),
                    size: v.size().unwrap_or_default().max(0) as u64,
                    etag: v.e_tag().map(str::to_owned),
                    last_modified: v.last_modified().and_then(to_chrono).unwrap_or(epoch),
                    is_latest: v.is_latest().unwrap_or(false),
                    delete_marker: false,
                })
            }));
            all.extend(output.delete_markers().iter().filter_map(|m| {
                Some(ObjectVersion {
                    key: decode(m.key()?),
                    version_id: m.version_id().unwrap_or("null").to_owned(),
                    size: 0,
                    etag: None,
                    last_modified: m.last_modified().and_then(to_chrono).unwrap_or(epoch),
                    is_latest: m.is_latest().unwrap_or(false),
                    delete_marker: true,
                })
            }));
            if output.is_truncated() != Some(true) {
                break;
            }
            key_marker = output.next_key_marker().map(decode);
            version_marker = output.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        // S3 lists versions and delete markers separately: merge them per key, newest first.
        all.sort_by(|a, b| a.key.cmp(&b.key).then(b.last_modified.cmp(&a.last_modified)));
        Ok(all)
    }

    async fn get_bytes(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<u8>, AwsError> {
        let mut body = Vec::new();
        let mut stream = self.get_stream(region, bucket, key, version_id).await?;
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut body).await.map_err(|e| AwsError {
            service: "s3",
            operation: "GetObject",
            code: "BodyReadError".into(),
            message: e.to_string(),
            class: ErrorClass::Retry(RetryClass::Transient),
        })?;
        Ok(body)
    }

    async fn delete_version(&self, region: &str, bucket: &str, key: &str, version_id: &str) -> Result<(), AwsError> {
        match self.client(region).delete_object().bucket(bucket).key(key).version_id(version_id).send().await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.code(), Some("NoSuchKey" | "NoSuchVersion")) => Ok(()),
            Err(err) => Err(s3_error("DeleteObject", err)),
        }
    }

    async fn hide_latest(&self, region: &str, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.client(region)
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", e))?;
        Ok(())
    }

    async fn restore_archived(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        days: i32,
    ) -> Result<(), AwsError> {
        // The Standard retrieval tier: hours for GLACIER (3-5) and DEEP_ARCHIVE (up to 12).
        let job = GlacierJobParameters::builder().tier(S3Tier::Standard).build().map_err(|e| AwsError {
            service: "s3",
            operation: "RestoreObject",
            code: "InvalidRequest".into(),
            message: format!("building the restore request: {e}"),
            class: ErrorClass::Permanent,
        })?;
        let request = RestoreRequest::builder().days(days).glacier_job_parameters(job).build();
        match self
            .client(region)
            .restore_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("RestoreAlreadyInProgress") => Ok(()),
            Err(err) => Err(s3_error("RestoreObject", err)),
        }
    }

    async fn list_buckets(&self, region: &str) -> Result<Vec<BucketInfo>, AwsError> {
        let client = self.client(region);
        let mut buckets = Vec::new();
        let mut token = None;
        loop {
            let output = client
                .list_buckets()
                .bucket_region(region)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("ListBuckets", e))?;
            for bucket in output.buckets() {
                let Some(name) = bucket.name() else { continue };
                // The filter above narrows the listing where S3 supports it; the region each bucket
                // reports (or GetBucketLocation, where the listing omits it) is what counts.
                let location = match bucket.bucket_region() {
                    Some(location) => Some(location.to_owned()),
                    None => self.bucket_region(region, name).await?,
                };
                if location.as_deref() == Some(region) {
                    buckets.push(BucketInfo { name: name.to_owned(), region: region.to_owned(), tags: Tags::new() });
                }
            }
            match output.continuation_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        let mut tagged = Vec::with_capacity(buckets.len());
        for mut bucket in buckets {
            match self.bucket_tags(region, &bucket.name).await {
                Ok(tags) => bucket.tags = tags,
                Err(err) if err.is_code("NoSuchBucket") => continue,
                Err(err) => return Err(err),
            }
            tagged.push(bucket);
        }
        Ok(tagged)
    }

    async fn bucket_tags(&self, region: &str, bucket: &str) -> Result<Tags, AwsError> {
        match self.client(region).get_bucket_tagging().bucket(bucket).send().await {
            Ok(output) => Ok(output.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()),
            Err(err) if err.code() == Some("NoSuchTagSet") => Ok(Tags::new()),
            Err(err) => Err(s3_error("GetBucketTagging", err)),
        }
    }

    async fn inventory_config(
        &self,
        region: &str,
        bucket: &str,
        id: &str,
    ) -> Result<Option<InventoryConfig>, AwsError> {
        let output = match self.client(region).get_bucket_inventory_configuration().bucket(bucket).id(id).send().await {
            Ok(output) => output,
            Err(err) if err.code() == Some("NoSuchConfiguration") || err.code() == Some("NoSuchInventoryConfig") => {
                return Ok(None)
            }
            Err(err) => return Err(s3_error("GetBucketInventoryConfiguration", err)),
        };
        let Some(config) = output.inventory_configuration() else { return Ok(None) };
        let destination = config.destination().and_then(|d| d.s3_bucket_destination());
        Ok(Some(InventoryConfig {
            id: config.id().to_owned(),
            enabled: config.is_enabled(),
            bucket: destination
                .map(|d| d.bucket().strip_prefix("arn:aws:s3:::").unwrap_or(d.bucket()).to_owned())
                .unwrap_or_default(),
            prefix: destination.and_then(|d| d.prefix()).map(str::to_owned),
            format: destination.map(|d| d.format().as_str().to_owned()).unwrap_or_default(),
            filter_prefix: config.filter().map(|f| f.prefix().to_owned()),
            fields: config.optional_fields().iter().map(|f| f.as_str().to_owned()).collect(),
        }))
    }

    async fn list_folders(&self, region: &str, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut folders = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client(region)
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", e))?;
            folders.extend(output.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_owned));
            match output.next_continuation_token().filter(|t| !t.is_empty() && output.is_truncated() == Some(true)) {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(folders),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_every_reserved_character_but_slashes() {
        assert_eq!(copy_source("b", "a b.txt", None), "b/a%20b.txt");
        assert_eq!(copy_source("b", "plus+sign", None), "b/plus%2Bsign");
        assert_eq!(copy_source("b", "percent%20encoded", None), "b/percent%2520encoded");
        assert_eq!(copy_source("b", "dir/ü.txt", Some("v+1")), "b/dir/%C3%BC.txt?versionId=v%2B1");
        assert_eq!(copy_source("b", "q?x#y&z=1", None), "b/q%3Fx%23y%26z%3D1");
        assert_eq!(copy_source("b", "emoji 😀.bin", None), "b/emoji%20%F0%9F%98%80.bin");
    }

    #[test]
    fn tagging_header_is_a_query_string() {
        let tags =
            Tags::from([("backup-fleet:plan".to_owned(), "a b/c+d".to_owned()), ("k".to_owned(), "v".to_owned())]);
        assert_eq!(tagging_header(&tags), "backup-fleet%3Aplan=a%20b%2Fc%2Bd&k=v");
    }

    #[test]
    fn listed_keys_are_decoded() {
        assert_eq!(decode_key("a+b.txt"), "a b.txt");
        assert_eq!(decode_key("plus%2Bsign"), "plus+sign");
        assert_eq!(decode_key("percent%2520encoded"), "percent%20encoded");
        assert_eq!(decode_key("%C3%BC%20x"), "ü x");
    }

    #[test]
    fn part_size_grows_to_stay_under_ten_thousand_parts() {
        let objects = S3Objects::from_client(aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build(),
        ));
        assert_eq!(objects.part_size_for(6 * GIB), DEFAULT_PART_SIZE);
        let five_tib = 5 * 1024 * GIB;
        let size = objects.part_size_for(five_tib);
        assert!(five_tib.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % MIB, 0);
    }

    #[test]
    fn null_versions_are_none() {
        assert_eq!(version(Some("null")), None);
        assert_eq!(version(Some("")), None);
        assert_eq!(version(Some("abc")), Some("abc".to_owned()));
    }
}
