//! S3 behaviours the emulator cannot produce, on an SDK client answered by `aws-smithy-mocks`:
//! throttling and access errors are classified, a copy whose checksum differs from the source's
//! fails retryably (and is hidden so the re-run copies again), and a failed multipart copy is
//! aborted while a good one sends encoded, contiguous part ranges.

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::types::{CopyObjectResult, CopyPartResult};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use backup_aws::s3::S3Objects;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::artifacts::{ArchiveRecord, CatalogQuery, CatalogRecord, Verification};
use backup_core::ports::Catalog;
use backup_core::ratelimit::RateLimiter;
use backup_core::services::objects::{CopyRequest, ObjectStore};
use backup_core::{AwsError, ErrorClass, RetryClass};
use backup_schemas::{ArtifactRef, BackupContext, CopyObject, ObjectRef, RunId, S3Destination, Task, Tier};
use backup_worker::handlers::services::{Services, Timing};
use backup_worker::{Handler, TaskContext};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

const MIB: i64 = 1024 * 1024;
const GOOD: &str = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
const BAD: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn client(mode: RuleMode, rules: &[&Rule]) -> Client {
    let interceptor = rules.iter().fold(MockResponseInterceptor::new().rule_mode(mode), |i, rule| i.with_rule(rule));
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "mocks"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        // The adapter classifies the first failure; SDK retries would only consume the mocks.
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn s3_error_body(code: &str, message: &str) -> Option<String> {
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>r</RequestId></Error>"#
    ))
}

fn copy_request(size: u64) -> CopyRequest {
    CopyRequest {
        source_region: "us-east-1".into(),
        source_bucket: "src".into(),
        source_key: "dir/a b+ü.bin".into(),
        source_version_id: Some("v+1".into()),
        dest_region: "us-east-1".into(),
        dest_bucket: "backup".into(),
        dest_key: "src/dir/a b+ü.bin".into(),
        size,
        ..CopyRequest::default()
    }
}

fn assert_class(err: &AwsError, class: ErrorClass, code: &str) {
    assert_eq!(err.class, class, "{err}");
    assert_eq!(err.code, code, "{err}");
}

#[tokio::test]
async fn slow_down_and_503_are_retryable_throttling() {
    let list = mock!(Client::list_objects_v2)
        .sequence()
        .http_status(503, s3_error_body("SlowDown", "Please reduce your request rate."))
        .build();
    let head = mock!(Client::head_object).sequence().http_status(503, None).build();
    let copy = mock!(Client::copy_object)
        .sequence()
        .http_status(503, s3_error_body("SlowDown", "Please reduce your request rate."))
        .build();
    let objects = S3Objects::from_client(client(RuleMode::MatchAny, &[&list, &head, &copy]));

    let err = objects.list_page("us-east-1", "src", None, None, None, 1000).await.unwrap_err();
    assert_class(&err, ErrorClass::Retry(RetryClass::Throttled), "SlowDown");
    // A HEAD's error has no body: the 503 alone says "slow down".
    let err = objects.head("us-east-1", "src", "k", None).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Retry(RetryClass::Throttled), "{err}");
    let err = objects.copy(&copy_request(10)).await.unwrap_err();
    assert_class(&err, ErrorClass::Retry(RetryClass::Throttled), "SlowDown");
    assert_eq!((list.num_calls(), head.num_calls(), copy.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn access_denied_is_permanent() {
    let list = mock!(Client::list_objects_v2)
        .sequence()
        .http_status(403, s3_error_body("AccessDenied", "Access Denied"))
        .build();
    let copy =
        mock!(Client::copy_object).sequence().http_status(403, s3_error_body("AccessDenied", "Access Denied")).build();
    let objects = S3Objects::from_client(client(RuleMode::MatchAny, &[&list, &copy]));
    assert_class(
        &objects.list_page("us-east-1", "src", None, None, None, 1000).await.unwrap_err(),
        ErrorClass::Permanent,
        "AccessDenied",
    );
    assert_class(&objects.copy(&copy_request(10)).await.unwrap_err(), ErrorClass::Permanent, "AccessDenied");
}

#[tokio::test]
async fn a_single_copy_sends_an_encoded_source_replaced_tags_and_a_sha256_request() {
    let copy = mock!(Client::copy_object)
        .match_requests(|r| {
            r.copy_source() == Some("src/dir/a%20b%2B%C3%BC.bin?versionId=v%2B1")
                && r.key() == Some("src/dir/a b+ü.bin")
                && r.tagging() == Some("backup-fleet%3Amanaged=true&team=a%20b")
                && r.metadata_directive().map(|d| d.as_str()) == Some("COPY")
                && r.tagging_directive().map(|d| d.as_str()) == Some("REPLACE")
                && r.checksum_algorithm().map(|a| a.as_str()) == Some("SHA256")
                && r.storage_class().map(|c| c.as_str()) == Some("STANDARD_IA")
                && r.object_lock_mode().map(|m| m.as_str()) == Some("GOVERNANCE")
                && r.object_lock_retain_until_date().is_some()
        })
        .then_output(|| {
            CopyObjectOutput::builder()
                .version_id("v9")
                .copy_object_result(CopyObjectResult::builder().e_tag("\"e\"").checksum_sha256(GOOD).build())
                .build()
        });
    let objects = S3Objects::from_client(client(RuleMode::MatchAny, &[&copy]));
    let mut request = copy_request(10);
    request.tags = [("backup-fleet:managed", "true"), ("team", "a b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    request.storage_class = Some("STANDARD_IA".into());
    request.lock_until = Some(Utc::now() + chrono::Duration::days(7));
    let result = objects.copy(&request).await.expect("the request matched");
    assert_eq!(
        (result.version_id.as_deref(), result.checksum_sha256.as_deref(), result.multipart),
        (Some("v9"), Some(GOOD), false)
    );
}

#[tokio::test]
async fn a_failed_multipart_copy_is_aborted() {
    let head = mock!(Client::head_object).then_output(|| HeadObjectOutput::builder().content_length(12 * MIB).build());
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| r.checksum_algorithm().map(|a| a.as_str()) == Some("SHA256"))
        .then_output(|| CreateMultipartUploadOutput::builder().upload_id("up-1").build());
    let part = mock!(Client::upload_part_copy)
        .sequence()
        .http_status(403, s3_error_body("AccessDenied", "Access Denied"))
        .repeatedly()
        .build();
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("up-1") && r.key() == Some("src/dir/a b+ü.bin"))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let complete =
        mock!(Client::complete_multipart_upload).then_output(|| CompleteMultipartUploadOutput::builder().build());
    let objects = S3Objects::from_client(client(RuleMode::MatchAny, &[&head, &create, &part, &abort, &complete]))
        .multipart(5 * MIB as u64, 5 * MIB as u64);

    let err = objects.copy(&copy_request(12 * MIB as u64)).await.unwrap_err();
    assert_class(&err, ErrorClass::Permanent, "AccessDenied");
    assert_eq!(create.num_calls(), 1);
    assert!(part.num_calls() >= 1);
    assert_eq!(abort.num_calls(), 1, "the upload is aborted");
    assert_eq!(complete.num_calls(), 0);
}

#[tokio::test]
async fn a_multipart_copy_sends_contiguous_encoded_ranges_and_completes_in_order() {
    let ranges: Arc<Mutex<Vec<(i32, String, String)>>> = Arc::default();
    let seen = ranges.clone();
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .content_length(12 * MIB)
            .content_type("application/x-big")
            .metadata("owner", "alice")
            .build()
    });
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| {
            r.content_type() == Some("application/x-big")
                && r.metadata().and_then(|m| m.get("owner")).map(String::as_str) == Some("alice")
        })
        .then_output(|| CreateMultipartUploadOutput::builder().upload_id("up-2").build());
    let part = mock!(Client::upload_part_copy).then_compute_output(move |r| {
        let number = r.part_number().unwrap();
        seen.lock().unwrap().push((
            number,
            r.copy_source().unwrap().to_owned(),
            r.copy_source_range().unwrap().to_owned(),
        ));
        UploadPartCopyOutput::builder()
            .copy_part_result(CopyPartResult::builder().e_tag(format!("\"p{number}\"")).build())
            .build()
    });
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            let parts = r.multipart_upload().map(|u| u.parts()).unwrap_or_default();
            parts.iter().map(|p| (p.part_number(), p.e_tag())).collect::<Vec<_>>()
                == vec![(Some(1), Some("\"p1\"")), (Some(2), Some("\"p2\"")), (Some(3), Some("\"p3\""))]
        })
        .then_output(|| CompleteMultipartUploadOutput::builder().e_tag("\"m-3\"").version_id("v2").build());
    let objects = S3Objects::from_client(client(RuleMode::MatchAny, &[&head, &create, &part, &complete]))
        .multipart(5 * MIB as u64, 5 * MIB as u64);

    let result = objects.copy(&copy_request(12 * MIB as u64)).await.expect("multipart copy");
    assert!(result.multipart);
    assert_eq!(result.version_id.as_deref(), Some("v2"));
    let mut ranges = ranges.lock().unwrap().clone();
    ranges.sort();
    let five = 5 * MIB;
    assert_eq!(
        ranges,
        vec![
            (1, "src/dir/a%20b%2B%C3%BC.bin?versionId=v%2B1".to_owned(), format!("bytes=0-{}", five - 1)),
            (2, "src/dir/a%20b%2B%C3%BC.bin?versionId=v%2B1".to_owned(), format!("bytes={five}-{}", 2 * five - 1)),
            (
                3,
                "src/dir/a%20b%2B%C3%BC.bin?versionId=v%2B1".to_owned(),
                format!("bytes={}-{}", 2 * five, 12 * MIB - 1)
            ),
        ]
    );
}

/// The catalog in memory: the handler's writes are what the test inspects.
#[derive(Default)]
struct MemoryCatalog {
    records: Mutex<Vec<CatalogRecord>>,
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError> {
        let mut records = self.records.lock().unwrap();
        records.retain(|r| r.artifact != record.artifact);
        records.push(record.clone());
        Ok(())
    }
    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().iter().find(|r| &r.artifact == artifact).cloned())
    }
    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().iter().filter(|r| r.resource == resource).cloned().collect())
    }
    async fn expiring_before(&self, _before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(Vec::new())
    }
    async fn list(&self, _query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().clone())
    }
    async fn add_copy(&self, _source: &ArtifactRef, _copy: &ArtifactRef) -> Result<(), AwsError> {
        Ok(())
    }
    async fn set_verification(&self, _artifact: &ArtifactRef, _verification: &Verification) -> Result<(), AwsError> {
        Ok(())
    }
    async fn mark_deleted(&self, _artifact: &ArtifactRef, _at: DateTime<Utc>) -> Result<(), AwsError> {
        Ok(())
    }
    async fn set_archive(&self, _artifact: &ArtifactRef, _archive: &ArchiveRecord) -> Result<(), AwsError> {
        Ok(())
    }
}

/// Services whose S3 is the mock client; EC2 and RDS point at an address nothing listens on
/// (these tests never call them).
async fn services(s3: Client, catalog: Arc<MemoryCatalog>) -> Services {
    let unused = AwsContext::load(&AwsSettings::emulator("http://127.0.0.1:9", "us-east-1")).await.expect("a region");
    Services {
        block: Arc::new(backup_aws::ec2::Ec2BlockStorage::new(unused.clone(), RateLimiter::default())),
        databases: Arc::new(backup_aws::rds::RdsDatabases::new(unused, RateLimiter::default())),
        objects: Arc::new(S3Objects::from_client(s3)),
        catalog: catalog.clone(),
        fleet_catalog: catalog,
        accounts: Arc::new(backup_core::accounts::OwnAccountOnly),
        slots: Arc::new(backup_core::ports::LocalSlots::default()),
        secrets: Arc::new(backup_core::services::secrets::NoSecrets),
        logical: backup_worker::handlers::logical::LogicalSettings::default(),
        timing: Timing::default(),
    }
}

fn event() -> CopyObject {
    CopyObject {
        region: "us-east-1".into(),
        bucket: "src".into(),
        object: ObjectRef { key: "k.txt".into(), size: 5, etag: Some("\"e\"".into()), version_id: None },
        dest: S3Destination {
            bucket: "backup".into(),
            region: "us-east-1".into(),
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

fn context(task: &CopyObject) -> TaskContext {
    TaskContext {
        task_id: Task::CopyObject(task.clone()).id(),
        run_id: RunId::new("r"),
        attempt: 1,
        checkpoint: None,
        cancel: tokio_util::sync::CancellationToken::new(),
        deadline: None,
        previous_activity: None,
        account: None,
    }
}

/// Rules for one copy of `src/k.txt` whose copy reports `copy_checksum`: the backup key is absent
/// at first, then HEADs as the new version.
fn copy_rules(copy_checksum: &'static str) -> (Vec<Rule>, Rule) {
    let backup_head = mock!(Client::head_object)
        .match_requests(|r| r.bucket() == Some("backup"))
        .sequence()
        .http_status(404, None)
        .output(move || {
            HeadObjectOutput::builder()
                .content_length(5)
                .e_tag("\"e\"")
                .checksum_sha256(copy_checksum)
                .version_id("v1")
                .build()
        })
        .build();
    let source_head = mock!(Client::head_object)
        .match_requests(|r| r.bucket() == Some("src") && r.checksum_mode().map(|m| m.as_str()) == Some("ENABLED"))
        .then_output(|| HeadObjectOutput::builder().content_length(5).e_tag("\"e\"").checksum_sha256(GOOD).build());
    let tags = mock!(Client::get_object_tagging)
        .then_output(|| GetObjectTaggingOutput::builder().set_tag_set(Some(vec![])).build().unwrap());
    let copy = mock!(Client::copy_object).then_output(move || {
        CopyObjectOutput::builder()
            .version_id("v1")
            .copy_object_result(CopyObjectResult::builder().e_tag("\"e\"").checksum_sha256(copy_checksum).build())
            .build()
    });
    let hide = mock!(Client::delete_object)
        .match_requests(|r| r.bucket() == Some("backup") && r.key() == Some("src/k.txt") && r.version_id().is_none())
        .then_output(|| DeleteObjectOutput::builder().delete_marker(true).build());
    (vec![backup_head, source_head, tags, copy], hide)
}

#[tokio::test]
async fn a_copy_whose_checksum_differs_from_the_source_fails_retryably_and_is_hidden() {
    let (rules, hide) = copy_rules(BAD);
    let all: Vec<&Rule> = rules.iter().chain([&hide]).collect();
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(RuleMode::MatchAny, &all), catalog.clone()).await;
    let task = event();

    let err = services.run(&task, &context(&task)).await.expect_err("checksum mismatch");
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason.contains("SHA-256") && err.reason.contains(GOOD), "{err}");
    assert_eq!(hide.num_calls(), 1, "the bad copy is hidden behind a delete marker so the retry copies again");
    assert!(catalog.records.lock().unwrap().is_empty(), "nothing catalogued");
}

#[tokio::test]
async fn a_copy_with_the_source_checksum_is_catalogued() {
    let (rules, hide) = copy_rules(GOOD);
    let all: Vec<&Rule> = rules.iter().chain([&hide]).collect();
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(RuleMode::MatchAny, &all), catalog.clone()).await;
    let task = event();

    services.run(&task, &context(&task)).await.expect("verified copy");
    assert_eq!(hide.num_calls(), 0);
    let records = catalog.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].artifact.id, "backup/src/k.txt#v1");
    assert_eq!(records[0].details["checksum_sha256"], GOOD);
    assert_eq!(records[0].details["verified_by"], "sha256");
}
