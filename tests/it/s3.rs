//! S3 backups against the emulator, through the worker's handlers with the real adapters: every
//! object lands at `<source-bucket>/<key>` byte-identical with its metadata, tags, storage class
//! and Object Lock retention; odd keys survive; the big object goes multipart; re-runs copy
//! nothing, a changed object is copied alone; scans page and fan out; catalog records exist; a
//! missing bucket fails permanently and a vanished object is a normal skip.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ObjectLockConfiguration, ObjectLockEnabled, Tag, Tagging,
    VersioningConfiguration,
};
use backup_aws::s3::sha256_base64;
use backup_core::artifacts::CatalogRecord;
use backup_core::services::objects::{BucketInfo, SOURCE_ETAG};
use backup_core::ErrorClass;
use backup_schemas::*;
use backup_tests::{run_task, run_tree, services, Fleet, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// Keys that break naive encodings: spaces, `+`, a literal `%20`, unicode, emoji, nesting.
const ODD_KEYS: &[&str] = &[
    "a b.txt",
    "plus+sign",
    "percent%20encoded",
    "ünïcødé/ファイル.txt",
    "emoji 😀.bin",
    "nested/deep/er/file.txt",
    "nested/other.txt",
    "q?x#y&z=1.txt",
];

fn ctx() -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap();
    BackupContext {
        plan: "s3-daily".into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + chrono::Duration::days(30)),
        copy_to: vec![],
        verify: false,
        retain: None,
        export: None,
    }
}

fn dest(bucket: &str) -> S3Destination {
    S3Destination {
        bucket: bucket.into(),
        region: REGION.into(),
        storage_class: Some("STANDARD_IA".into()),
        lock_days: Some(7),
    }
}

fn scan(source: &str, backup: &str) -> Task {
    Task::ScanBucket(ScanBucket {
        region: REGION.into(),
        bucket: source.into(),
        prefix: None,
        continuation: None,
        page: 0,
        listed_after: None,
        inventory: None,
        dest: dest(backup),
        ctx: ctx(),
    })
}

/// A plain source bucket and a versioned, Object Lock enabled backup bucket.
async fn buckets(fleet: &Fleet) -> (String, String) {
    let s3 = fleet.aws.clients().s3;
    let source = format!("{}-src", fleet.prefix).to_lowercase();
    let backup = format!("{}-bak", fleet.prefix).to_lowercase();
    s3.create_bucket().bucket(&source).send().await.expect("create source bucket");
    s3.create_bucket().bucket(&backup).object_lock_enabled_for_bucket(true).send().await.expect("create backup bucket");
    s3.put_bucket_versioning()
        .bucket(&backup)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .expect("versioning");
    let lock = s3.get_object_lock_configuration().bucket(&backup).send().await.expect("lock configuration");
    assert_eq!(
        lock.object_lock_configuration().and_then(ObjectLockConfiguration::object_lock_enabled),
        Some(&ObjectLockEnabled::Enabled)
    );
    (source, backup)
}

#[derive(Default)]
struct Seed<'a> {
    metadata: &'a [(&'a str, &'a str)],
    content_type: Option<&'a str>,
    tagging: Option<&'a str>,
    sha256: bool,
}

async fn put(fleet: &Fleet, bucket: &str, key: &str, body: Vec<u8>, seed: Seed<'_>) {
    let mut request = fleet.aws.clients().s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body));
    for (k, v) in seed.metadata {
        request = request.metadata(*k, *v);
    }
    if seed.sha256 {
        request = request.checksum_algorithm(ChecksumAlgorithm::Sha256);
    }
    request
        .set_content_type(seed.content_type.map(str::to_owned))
        .set_tagging(seed.tagging.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

fn body_of(key: &str) -> Vec<u8> {
    format!("content of {key}\n").into_bytes()
}

/// 12 MiB of varied bytes (identical parts would hide a part-order mistake).
fn big_body() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..12 * MIB)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    Arc::new(Handlers::with_services(services(fleet)))
}

/// Runs a scan and everything it spawns; every task must succeed. Returns the results by kind.
async fn run_scan(handlers: &Arc<Handlers>, task: Task) -> Vec<(Task, Value)> {
    run_tree(handlers, task)
        .await
        .into_iter()
        .map(|(task, outcome)| match outcome {
            Ok(Outcome::Done { result, .. }) => (task, result),
            other => panic!("{} {} did not finish: {other:?}", task.kind(), task.resource()),
        })
        .collect()
}

/// Objects a scan found already backed up: dropped by the listing comparison, or skipped by a
/// copy batch's own check.
fn skipped(results: &[(Task, Value)]) -> u64 {
    let listed: u64 = results
        .iter()
        .filter(|(t, _)| t.kind() == TaskKind::ScanBucket)
        .map(|(_, r)| r["unchanged"].as_u64().unwrap())
        .sum();
    listed + total(results, "skipped")
}

/// The keys a scan handed to copy batches, sorted.
fn batched_keys(results: &[(Task, Value)]) -> Vec<String> {
    let mut keys: Vec<String> = results
        .iter()
        .filter_map(|(t, _)| match t {
            Task::CopyObjects(b) => Some(b.objects.iter().map(|o| o.key.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    keys.sort();
    keys
}

/// Sums a counter over the copy batches of a scan.
fn total(results: &[(Task, Value)], field: &str) -> u64 {
    results.iter().filter(|(t, _)| t.kind() == TaskKind::CopyObjects).map(|(_, r)| r[field].as_u64().unwrap()).sum()
}

fn records_of<'a>(records: &'a [CatalogRecord], backup: &str, key: &str) -> Vec<&'a CatalogRecord> {
    records
        .iter()
        .filter(|r| r.details.get("bucket").map(String::as_str) == Some(backup) && r.details["key"] == key)
        .collect()
}

#[tokio::test]
async fn bucket_backup_is_byte_identical_keeps_metadata_tags_class_and_lock_and_a_rerun_copies_nothing() {
    let fleet = Fleet::realistic("s3full").await;
    let (source, backup) = buckets(&fleet).await;
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for key in ODD_KEYS {
        put(&fleet, &source, key, body_of(key), Seed::default()).await;
        expected.insert((*key).to_owned(), body_of(key));
    }
    let metadata = [("owner", "alice"), ("note", "hello world")];
    put(
        &fleet,
        &source,
        "meta.txt",
        body_of("meta.txt"),
        Seed {
            metadata: &metadata,
            content_type: Some("text/plain; charset=utf-8"),
            tagging: Some("team=data&cost%20center=42%2Fx%2By"),
            ..Seed::default()
        },
    )
    .await;
    expected.insert("meta.txt".into(), body_of("meta.txt"));
    put(&fleet, &source, "sha.txt", body_of("sha.txt"), Seed { sha256: true, ..Seed::default() }).await;
    expected.insert("sha.txt".into(), body_of("sha.txt"));
    put(&fleet, &source, "big.bin", big_body(), Seed { content_type: Some("application/x-big"), ..Seed::default() })
        .await;
    expected.insert("big.bin".into(), big_body());

    let handlers = handlers(&fleet);
    let results = run_scan(&handlers, scan(&source, &backup)).await;
    let kinds: Vec<TaskKind> = results.iter().map(|(t, _)| t.kind()).collect();
    assert_eq!(kinds, vec![TaskKind::ScanBucket, TaskKind::CopyObjects], "one page, one batch, no continuation");
    assert_eq!(total(&results, "copied"), expected.len() as u64);
    assert_eq!(total(&results, "skipped"), 0);
    assert_eq!(total(&results, "multipart"), 1);
    let calls = fleet.aws.calls().snapshot();
    let part_copies: u64 = calls.iter().filter(|((_, op), _)| op == "UploadPartCopy").map(|(_, n)| n).sum();
    assert_eq!(part_copies, 3, "12 MiB in 5 MiB parts: {calls:?}");

    let objects = services(&fleet).objects;
    let now = Utc::now();
    for (key, body) in &expected {
        let backup_key = format!("{source}/{key}");
        let copy = objects
            .head(REGION, &backup, &backup_key, None)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{backup_key} missing"));
        let bytes = objects.get_bytes(REGION, &backup, &backup_key, None).await.unwrap();
        assert!(&bytes == body, "{backup_key}: bytes differ");
        assert_eq!(copy.size, body.len() as u64);
        let digest = sha256_base64(body);
        match copy.checksum_sha256.as_deref() {
            // Composite (a digest of the part digests); moto's HEAD leaves out S3's `-3` suffix.
            Some(composite) if key == "big.bin" => assert_ne!(composite, digest, "multipart: composite checksum"),
            checksum => assert_eq!(checksum, Some(digest.as_str()), "{backup_key}: SHA-256 of the copy"),
        }
        assert_eq!(copy.storage_class.as_deref(), Some("STANDARD_IA"), "{backup_key}");
        assert_eq!(copy.lock_mode.as_deref(), Some("GOVERNANCE"), "{backup_key}");
        let until = copy.lock_until.unwrap_or_else(|| panic!("{backup_key}: no retention"));
        assert!(
            (until - (now + chrono::Duration::days(7))).num_minutes().abs() < 10,
            "{backup_key}: retain until {until}"
        );
        let tags = objects.object_tags(REGION, &backup, &backup_key, None).await.unwrap();
        assert_eq!(tags.get(tags::MANAGED).map(String::as_str), Some("true"));
        assert_eq!(tags.get(tags::PLAN).map(String::as_str), Some("s3-daily"));
        assert_eq!(tags.get(tags::SOURCE), Some(&source));
        let source_head = objects.head(REGION, &source, key, None).await.unwrap().unwrap();
        assert_eq!(tags.get(SOURCE_ETAG).map(String::as_str), source_head.etag.as_deref().map(|e| e.trim_matches('"')));
        assert!(tags.len() <= 10);
        if key == "big.bin" {
            assert!(copy.etag.as_deref().is_some_and(|e| e.contains('-')), "multipart ETag: {:?}", copy.etag);
            assert_eq!(
                copy.content_type.as_deref(),
                Some("application/x-big"),
                "content type carried to the multipart copy"
            );
        }
    }

    // Metadata, content type and the source's own tags are preserved.
    let meta = objects.head(REGION, &backup, &format!("{source}/meta.txt"), None).await.unwrap().unwrap();
    assert_eq!(
        meta.metadata,
        metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()
    );
    assert_eq!(meta.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let meta_tags = objects.object_tags(REGION, &backup, &format!("{source}/meta.txt"), None).await.unwrap();
    assert_eq!(meta_tags.get("team").map(String::as_str), Some("data"));
    assert_eq!(meta_tags.get("cost center").map(String::as_str), Some("42/x+y"));

    // One catalog record per copied object, with version, checksum and how it was verified.
    let records = services(&fleet).catalog.by_resource(&source).await.unwrap();
    assert_eq!(records.len(), expected.len(), "{records:#?}");
    for (key, body) in &expected {
        let backup_key = format!("{source}/{key}");
        let found = records_of(&records, &backup, &backup_key);
        assert_eq!(found.len(), 1, "{backup_key}");
        let record = found[0];
        let version = record.details["version_id"].clone();
        assert_eq!(record.artifact.kind, ArtifactKind::S3Object);
        assert_eq!(record.artifact.id, format!("{backup}/{backup_key}#{version}"));
        assert_eq!(record.size_bytes, Some(body.len() as u64));
        assert_eq!(record.plan, "s3-daily");
        assert_eq!(record.details["source_key"], *key);
        let verified_by = match key.as_str() {
            "sha.txt" => "sha256",
            _ => "sha256-read",
        };
        assert_eq!(record.details["verified_by"], verified_by, "{backup_key}");
        assert_eq!(record.details["multipart"], (key == "big.bin").to_string());
    }

    // A re-run copies nothing.
    let again = run_scan(&handlers, scan(&source, &backup)).await;
    assert_eq!(total(&again, "copied"), 0);
    assert_eq!(skipped(&again), expected.len() as u64);
    // The listing settles every object whose copy kept its ETag; the multipart copy (new ETag)
    // is left to the batch, which finds the source ETag in its tag.
    assert_eq!(batched_keys(&again), ["big.bin"]);
    assert_eq!(services(&fleet).catalog.by_resource(&source).await.unwrap().len(), expected.len());
}

#[tokio::test]
async fn changing_one_source_object_copies_exactly_that_one() {
    let fleet = Fleet::realistic("s3incr").await;
    let (source, backup) = buckets(&fleet).await;
    for key in ["one", "two", "dir/three", "plus+sign"] {
        put(&fleet, &source, key, body_of(key), Seed::default()).await;
    }
    let handlers = handlers(&fleet);
    assert_eq!(total(&run_scan(&handlers, scan(&source, &backup)).await, "copied"), 4);

    put(&fleet, &source, "plus+sign", b"changed content".to_vec(), Seed::default()).await;
    let rerun = run_scan(&handlers, scan(&source, &backup)).await;
    assert_eq!((total(&rerun, "copied"), skipped(&rerun)), (1, 3));

    let objects = services(&fleet).objects;
    let key = format!("{source}/plus+sign");
    assert_eq!(objects.get_bytes(REGION, &backup, &key, None).await.unwrap(), b"changed content");
    let versions = objects.list_versions(REGION, &backup, &key).await.unwrap();
    assert_eq!(versions.len(), 2, "both versions are kept: {versions:#?}");
    assert!(versions[0].is_latest && !versions[1].is_latest, "newest first");
    assert_eq!(versions[0].size, b"changed content".len() as u64);
    let old = objects.get_bytes(REGION, &backup, &key, Some(&versions[1].version_id)).await.unwrap();
    assert_eq!(old, body_of("plus+sign"), "the previous backup stays readable by version");
    let records = services(&fleet).catalog.by_resource(&source).await.unwrap();
    assert_eq!(records_of(&records, &backup, &key).len(), 2, "one record per copied version");
}

/// Seeds `count` one-line objects under `prefix`, 32 puts at a time.
async fn seed_many(fleet: &Fleet, bucket: &str, prefix: &str, count: usize) -> Vec<String> {
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}{i:04} ä+%.txt")).collect();
    for chunk in keys.chunks(32) {
        let mut puts = tokio::task::JoinSet::new();
        for key in chunk {
            let s3 = fleet.aws.clients().s3;
            let (bucket, key) = (bucket.to_owned(), key.clone());
            puts.spawn(async move {
                s3.put_object().bucket(bucket).key(&key).body(ByteStream::from(body_of(&key))).send().await
            });
        }
        while let Some(put) = puts.join_next().await {
            put.expect("join").expect("put");
        }
    }
    keys
}

fn children(outcome: Outcome) -> (Value, Vec<Task>) {
    match outcome {
        Outcome::Done { result, children, .. } => (result, children),
        pending => panic!("unexpected {pending:?}"),
    }
}

#[tokio::test]
async fn scan_pages_fan_out_into_continuations_and_batches() {
    let fleet = Fleet::realistic("s3pages").await;
    let (source, backup) = buckets(&fleet).await;
    let keys = seed_many(&fleet, &source, "p/", 1003).await;
    put(&fleet, &source, "outside-the-prefix", b"x".to_vec(), Seed::default()).await;
    let objects = services(&fleet).objects;

    // The adapter pages with continuation tokens, keys decoded.
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = objects.list_page(REGION, &source, Some("p/"), None, token.as_deref(), 400).await.unwrap();
        pages += 1;
        assert!(page.objects.len() <= 400);
        listed.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    listed.sort();
    assert_eq!(listed, keys);

    // The scan lists one page of 1000 and fans out: a copy batch numbered page * 1000 and its
    // own continuation with the next token and page + 1.
    let handlers = handlers(&fleet);
    let mut first = scan(&source, &backup);
    if let Task::ScanBucket(p) = &mut first {
        p.prefix = Some("p/".into());
    }
    let (result, spawned) = children(run_task(&handlers, &first).await.unwrap());
    assert_eq!(
        (result["objects"].as_u64(), result["batches"].as_u64(), result["more"].as_bool()),
        (Some(1000), Some(1), Some(true))
    );
    let [Task::CopyObjects(batch), Task::ScanBucket(next)] = spawned.as_slice() else { panic!("{spawned:#?}") };
    assert_eq!((batch.page, batch.objects.len()), (0, 1000));
    assert_eq!(next.page, 1);
    assert!(next.continuation.is_some());
    assert_eq!(next.listed_after.as_deref(), Some(keys[999].as_str()), "the backup listing resumes after page 0");
    assert_eq!(next.prefix.as_deref(), Some("p/"), "the prefix rides along");
    assert_ne!(Task::ScanBucket(next.clone()).id(), first.id(), "each page is its own task");

    let (result, spawned) = children(run_task(&handlers, &Task::ScanBucket(next.clone())).await.unwrap());
    assert_eq!((result["objects"].as_u64(), result["more"].as_bool()), (Some(3), Some(false)));
    let [Task::CopyObjects(last)] = spawned.as_slice() else {
        panic!("the last page has no continuation: {spawned:#?}")
    };
    assert_eq!((last.page, last.objects.len()), (1000, 3));
    let mut all: Vec<String> = batch.objects.iter().chain(&last.objects).map(|o| o.key.clone()).collect();
    all.sort();
    assert_eq!(all, keys, "every key in exactly one batch");

    // The last batch copies its three objects.
    let (result, _) = children(run_task(&handlers, &spawned[0]).await.unwrap());
    assert_eq!(result["copied"], 3);
    for object in &last.objects {
        let bytes = objects.get_bytes(REGION, &backup, &format!("{source}/{}", object.key), None).await.unwrap();
        assert_eq!(bytes, body_of(&object.key));
    }
    assert!(objects.head(REGION, &backup, &format!("{source}/outside-the-prefix"), None).await.unwrap().is_none());
}

#[tokio::test]
async fn a_batch_rerun_after_partial_progress_copies_only_the_rest() {
    let fleet = Fleet::realistic("s3partial").await;
    let (source, backup) = buckets(&fleet).await;
    for key in ODD_KEYS {
        put(&fleet, &source, key, body_of(key), Seed::default()).await;
    }
    let listed = services(&fleet).objects.list_page(REGION, &source, None, None, None, 1000).await.unwrap();
    assert_eq!(listed.objects.len(), ODD_KEYS.len());
    let mut listed_keys: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    listed_keys.sort();
    let mut odd: Vec<&str> = ODD_KEYS.to_vec();
    odd.sort();
    assert_eq!(listed_keys, odd, "listing decodes every key");
    let batch = |objects: Vec<ObjectRef>| {
        Task::CopyObjects(CopyObjects {
            region: REGION.into(),
            bucket: source.clone(),
            page: 0,
            objects,
            dest: dest(&backup),
            ctx: ctx(),
        })
    };
    let handlers = handlers(&fleet);
    // The "first attempt" got through half the batch before failing.
    let half = batch(listed.objects[..4].to_vec());
    let Outcome::Done { result, .. } = run_task(&handlers, &half).await.unwrap() else { panic!() };
    assert_eq!(result["copied"], 4);
    let Outcome::Done { result, .. } = run_task(&handlers, &batch(listed.objects.clone())).await.unwrap() else {
        panic!()
    };
    assert_eq!((result["copied"].as_u64(), result["skipped"].as_u64()), (Some(4), Some(4)));
    for key in ODD_KEYS {
        let versions =
            services(&fleet).objects.list_versions(REGION, &backup, &format!("{source}/{key}")).await.unwrap();
        assert_eq!(versions.iter().filter(|v| v.key == format!("{source}/{key}")).count(), 1, "{key} copied once");
    }
}

#[tokio::test]
async fn an_object_event_copies_once_and_a_vanished_source_is_a_normal_skip() {
    let fleet = Fleet::realistic("s3event").await;
    let (source, backup) = buckets(&fleet).await;
    put(&fleet, &source, "new file 😀.txt", body_of("new"), Seed::default()).await;
    let head = services(&fleet).objects.head(REGION, &source, "new file 😀.txt", None).await.unwrap().unwrap();
    let event = |key: &str, etag: Option<String>| {
        Task::CopyObject(CopyObject {
            region: REGION.into(),
            bucket: source.clone(),
            object: ObjectRef { key: key.into(), size: head.size, etag, version_id: None },
            dest: dest(&backup),
            ctx: ctx(),
        })
    };
    let handlers = handlers(&fleet);
    let Outcome::Done { result, .. } = run_task(&handlers, &event("new file 😀.txt", head.etag.clone())).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(result["copied"], true, "{result}");
    let Outcome::Done { result, .. } = run_task(&handlers, &event("new file 😀.txt", head.etag.clone())).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(result["skipped"], "unchanged");
    // An event without an ETag still finds the backup current.
    let Outcome::Done { result, .. } = run_task(&handlers, &event("new file 😀.txt", None)).await.unwrap() else {
        panic!()
    };
    assert_eq!(result["skipped"], "unchanged");

    // Deleted before the event was handled: success, nothing copied.
    let Outcome::Done { result, .. } =
        run_task(&handlers, &event("deleted since", Some("\"abc\"".into()))).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(result["skipped"], "source gone");
    assert!(services(&fleet)
        .objects
        .head(REGION, &backup, &format!("{source}/deleted since"), None)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_missing_source_bucket_fails_permanently() {
    let fleet = Fleet::realistic("s3missing").await;
    let (_, backup) = buckets(&fleet).await;
    let gone = format!("{}-nope", fleet.prefix).to_lowercase();
    let err = run_task(&handlers(&fleet), &scan(&gone, &backup)).await.expect_err("no such bucket");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains(&gone) && err.reason.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn buckets_are_discovered_in_their_region_with_their_tags() {
    let fleet = Fleet::realistic("s3buckets").await;
    let (source, backup) = buckets(&fleet).await;
    let s3 = fleet.aws.clients().s3;
    s3.put_bucket_tagging()
        .bucket(&source)
        .tagging(
            Tagging::builder().tag_set(Tag::builder().key("backup").value("daily").build().unwrap()).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let objects = services(&fleet).objects;
    let found = objects.list_buckets(REGION).await.unwrap();
    let ours: BTreeMap<&str, &BucketInfo> = found
        .iter()
        .filter(|b| b.name.starts_with(&fleet.prefix.to_lowercase()))
        .map(|b| (b.name.as_str(), b))
        .collect();
    assert_eq!(ours.len(), 2, "{found:#?}");
    assert_eq!(ours[source.as_str()].tags.get("backup").map(String::as_str), Some("daily"));
    assert!(ours[backup.as_str()].tags.is_empty(), "NoSuchTagSet is no tags");
    assert!(found.iter().all(|b| b.region == REGION));
    assert_eq!(objects.bucket_tags(REGION, &source).await.unwrap().len(), 1);
    assert!(objects
        .list_buckets(backup_tests::DR_REGION)
        .await
        .unwrap()
        .iter()
        .all(|b| !b.name.starts_with(&fleet.prefix.to_lowercase())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_long_keys_fans_out_within_sqs_batch_limits_and_backs_up_completely() {
    let fleet = Fleet::realistic_with("s3longkeys", |s| s.task_visibility_timeout_secs = 20).await;
    let (source, backup) = buckets(&fleet).await;
    // 1,050 keys of 230+ bytes: one listing page splits into copy batches that are each under
    // SQS's per-message limit but together over its 256 KiB per SendMessageBatch call (where AWS
    // answers BatchRequestTooLong for the whole call), plus a second page.
    let s3 = fleet.aws.clients().s3;
    let keys: Vec<String> =
        (0..1050).map(|i| format!("deep/{}/object-{i:05}.json", "long-directory-name/".repeat(11))).collect();
    assert!(keys.iter().all(|k| k.len() >= 230));
    let puts = keys.iter().map(|key| {
        let s3 = s3.clone();
        let source = source.clone();
        async move { s3.put_object().bucket(&source).key(key).body(ByteStream::from_static(b"x")).send().await }
    });
    for chunk in futures::stream::iter(puts).buffer_unordered(16).collect::<Vec<_>>().await {
        chunk.expect("put");
    }
    let task = Envelope::new(
        scan(&source, &backup),
        RunId::new("longkeys"),
        Origin::Operator { command: "test".into() },
        Utc::now(),
    );
    fleet.send(&task).await;
    let mut args = vec![
        "--visibility-timeout-secs=20",
        "--lease-secs=20",
        "--heartbeat-secs=2",
        "--receive-wait-secs=1",
        "--concurrency=8",
        "--exit-when-idle=5",
    ];
    args.extend_from_slice(backup_tests::REALISTIC_WORKER_ARGS);
    let mut worker = fleet.worker("w", &args);
    let record = fleet.wait_task(&task.task_id, Duration::from_secs(120), |r| r.state.is_terminal()).await;
    assert_eq!(record.state, TaskState::Succeeded, "the scan fans out: {record:#?}");
    let status = worker.wait_async(Duration::from_secs(300)).await;
    assert!(status.success(), "worker exited with {status}; log:\n{}", worker.log_tail(30));
    let summary = worker.summary();
    let copies = &summary["counts"]["tasks"]["s3.copy_batch"];
    assert_eq!(copies.get("failed").and_then(Value::as_u64).unwrap_or(0), 0, "{summary}");
    let mut backed_up = 0;
    let mut token = None;
    loop {
        let page = s3.list_objects_v2().bucket(&backup).set_continuation_token(token.take()).send().await.unwrap();
        backed_up += page.contents().len();
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(backed_up, keys.len(), "every object is backed up");
    assert!(fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty());
}

/// Puts the same body at the backup key, as an earlier backup would have left it (same ETag).
async fn seed_backed_up(fleet: &Fleet, source: &str, backup: &str, keys: &[String]) {
    let s3 = fleet.aws.clients().s3;
    futures::stream::iter(keys)
        .map(|key| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket(backup)
                    .key(format!("{source}/{key}"))
                    .body(ByteStream::from(body_of(key)))
                    .send()
                    .await
                    .expect("seed backup copy");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

fn s3_calls(fleet: &Fleet) -> BTreeMap<String, u64> {
    fleet
        .aws
        .calls()
        .snapshot()
        .into_iter()
        .filter(|((service, _), _)| service.eq_ignore_ascii_case("s3"))
        .map(|((_, op), n)| (op, n))
        .collect()
}

fn calls_since(before: &BTreeMap<String, u64>, after: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .map(|(op, n)| (op.clone(), n - before.get(&op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn an_unchanged_bucket_is_rechecked_by_listing_alone_and_only_what_changed_is_copied() {
    let fleet = Fleet::realistic("s3list").await;
    let (source, backup) = buckets(&fleet).await;
    // Two and a bit pages, every object already backed up.
    let keys = seed_many(&fleet, &source, "k/", 2_050).await;
    seed_backed_up(&fleet, &source, &backup, &keys).await;
    let handlers = handlers(&fleet);

    // The nightly re-run: one scan task walks the three pages, lists the backup prefix beside
    // them, and copies nothing. No HEAD, no copy task.
    let before = s3_calls(&fleet);
    let rerun = run_scan(&handlers, scan(&source, &backup)).await;
    let calls = calls_since(&before, s3_calls(&fleet));
    assert_eq!(rerun.len(), 1, "one scan task, no continuation, no batch: {rerun:#?}");
    let result = &rerun[0].1;
    assert_eq!((result["pages"].as_u64(), result["objects"].as_u64()), (Some(3), Some(2_050)));
    assert_eq!((result["unchanged"].as_u64(), result["batches"].as_u64()), (Some(2_050), Some(0)));
    assert_eq!(calls, BTreeMap::from([("ListObjectsV2".to_owned(), 6)]), "three pages of each listing");

    // What changed since: a rewrite of the same size (only the ETag tells), a new key, a copy
    // hidden behind a delete marker (as a failed verification leaves it), a deleted source.
    let same_size = keys[10].clone();
    let mut rewritten = body_of(&same_size);
    rewritten[0] ^= 0x20;
    put(&fleet, &source, &same_size, rewritten.clone(), Seed::default()).await;
    put(&fleet, &source, "k/1500 new", b"new".to_vec(), Seed::default()).await;
    let hidden = keys[2_040].clone();
    services(&fleet).objects.hide_latest(REGION, &backup, &format!("{source}/{hidden}")).await.unwrap();
    fleet.aws.clients().s3.delete_object().bucket(&source).key(&keys[1_200]).send().await.unwrap();

    let rerun = run_scan(&handlers, scan(&source, &backup)).await;
    assert_eq!(total(&rerun, "copied"), 3, "{rerun:#?}");
    assert_eq!(skipped(&rerun), 2_050 - 3, "all but the deleted, the rewritten and the hidden");
    assert_eq!(batched_keys(&rerun), [same_size.clone(), "k/1500 new".to_owned(), hidden.clone()]);
    let objects = services(&fleet).objects;
    assert_eq!(objects.get_bytes(REGION, &backup, &format!("{source}/{same_size}"), None).await.unwrap(), rewritten);
    assert_eq!(
        objects.get_bytes(REGION, &backup, &format!("{source}/{hidden}"), None).await.unwrap(),
        body_of(&hidden)
    );
    let deleted = format!("{source}/{}", keys[1_200]);
    assert!(
        objects.head(REGION, &backup, &deleted, None).await.unwrap().is_some(),
        "a deleted source keeps its backup"
    );
}

fn inventory_scan(source: &str, backup: &str, id: &str) -> Task {
    let Task::ScanBucket(mut p) = scan(source, backup) else { unreachable!() };
    p.inventory = Some(InventoryScan { id: id.into(), max_age_hours: 48, report: None });
    Task::ScanBucket(p)
}

fn report<'a>(source: &'a str, bucket: &'a str, created: chrono::DateTime<Utc>) -> backup_tests::inventory::Report<'a> {
    backup_tests::inventory::Report {
        source,
        id: "nightly",
        bucket,
        prefix: "inventory",
        format: aws_sdk_s3::types::InventoryFormat::Csv,
        created,
        files: 3,
        complete: true,
        ordered: false,
    }
}

/// A realistic fleet with the source and backup buckets and a bucket for inventory reports.
async fn inventory_fleet(name: &str) -> (Fleet, String, String, String) {
    let fleet = Fleet::realistic(name).await;
    let (source, backup) = buckets(&fleet).await;
    let reports = format!("{}-inv", fleet.prefix).to_lowercase();
    fleet.aws.clients().s3.create_bucket().bucket(&reports).send().await.unwrap();
    (fleet, source, backup, reports)
}

#[tokio::test]
async fn a_bucket_with_an_inventory_report_is_scanned_from_it_without_listing_the_source() {
    use backup_tests::inventory;
    let (fleet, source, backup, reports) = inventory_fleet("s3inv").await;
    let s3 = fleet.aws.clients().s3;
    let keys = seed_many(&fleet, &source, "k/", 2_050).await;
    seed_backed_up(&fleet, &source, &backup, &keys).await;

    // Since the last backup: a rewrite of the same size, a new key, a copy hidden behind a
    // delete marker. Then the report is delivered; after it, one more object is deleted.
    let same_size = keys[10].clone();
    let mut rewritten = body_of(&same_size);
    rewritten[0] ^= 0x20;
    put(&fleet, &source, &same_size, rewritten.clone(), Seed::default()).await;
    put(&fleet, &source, "k/1500 new", b"new".to_vec(), Seed::default()).await;
    let hidden = keys[2_040].clone();
    services(&fleet).objects.hide_latest(REGION, &backup, &format!("{source}/{hidden}")).await.unwrap();
    let now = Utc::now();
    let latest = report(&source, &reports, now - chrono::Duration::hours(5));
    inventory::configure(&s3, &latest).await;
    let rows = inventory::rows_of(&s3, &source).await;
    let manifest = inventory::write(&s3, &latest, &rows).await;
    // An older report, and a newer one still being delivered (no checksum yet, unreadable): the
    // scan reads the newest complete one.
    inventory::write(&s3, &report(&source, &reports, now - chrono::Duration::hours(29)), &rows[..10]).await;
    let delivering = report(&source, &reports, now - chrono::Duration::hours(1));
    let partial = inventory::write(&s3, &backup_tests::inventory::Report { complete: false, ..delivering }, &[]).await;
    s3.put_object().bucket(&reports).key(&partial).body(ByteStream::from_static(b"{")).send().await.unwrap();
    let gone_since = keys[1_200].clone();
    s3.delete_object().bucket(&source).key(&gone_since).send().await.unwrap();

    // The scan task alone: the configuration, the report folders, a HEAD for the checksum of
    // the report being delivered and of the one read, the manifest and three data files, and
    // three pages of the backup listing. No listing of the source, no HEAD per object.
    let handlers = handlers(&fleet);
    let before = s3_calls(&fleet);
    let Outcome::Done { result, children, .. } =
        run_task(&handlers, &inventory_scan(&source, &backup, "nightly")).await.unwrap_or_else(|e| panic!("{e}"))
    else {
        panic!("the scan finishes at once")
    };
    let calls = calls_since(&before, s3_calls(&fleet));
    assert_eq!(result["source"], "inventory", "{result}");
    assert_eq!(result["report"], format!("s3://{reports}/{manifest}"), "{result}");
    assert_eq!((result["rows"].as_u64(), result["objects"].as_u64()), (Some(2_051), Some(2_051)), "{result}");
    assert_eq!(result["unchanged"].as_u64(), Some(2_048), "{result}");
    assert_eq!(
        calls,
        BTreeMap::from([
            ("GetBucketInventoryConfiguration".to_owned(), 1),
            ("GetObject".to_owned(), 4),
            ("HeadObject".to_owned(), 2),
            ("ListObjectsV2".to_owned(), 1 + 3),
        ]),
        "{result}"
    );
    assert!(children.iter().all(|t| t.kind() == TaskKind::CopyObjects), "one report task is enough: {children:?}");

    // The whole tree: exactly what changed is copied; the object deleted since the report is
    // found gone by its batch, not copied.
    let results = run_scan(&handlers, inventory_scan(&source, &backup, "nightly")).await;
    assert_eq!(batched_keys(&results), [same_size.clone(), "k/1500 new".to_owned(), hidden.clone()]);
    assert_eq!(total(&results, "copied"), 3, "{results:#?}");
    let objects = services(&fleet).objects;
    assert_eq!(objects.get_bytes(REGION, &backup, &format!("{source}/{same_size}"), None).await.unwrap(), rewritten);
    assert_eq!(objects.get_bytes(REGION, &backup, &format!("{source}/k/1500 new"), None).await.unwrap(), b"new");

    // Rows far apart (here the first and the last key): each backup listing starts at the next
    // row, so two requests settle them, not a walk over the three pages between.
    let sparse = backup_tests::inventory::Report { id: "sparse", ..report(&source, &reports, now) };
    inventory::configure(&s3, &sparse).await;
    let ends: Vec<_> = rows.iter().filter(|r| r.key == keys[0] || r.key == keys[2_049]).cloned().collect();
    inventory::write(&s3, &sparse, &ends).await;
    let before = s3_calls(&fleet);
    let Ok(Outcome::Done { result, .. }) = run_task(&handlers, &inventory_scan(&source, &backup, "sparse")).await
    else {
        panic!("the sparse scan finishes")
    };
    let calls = calls_since(&before, s3_calls(&fleet));
    assert_eq!((result["objects"].as_u64(), result["unchanged"].as_u64()), (Some(2), Some(2)), "{result}");
    assert_eq!(calls.get("ListObjectsV2"), Some(&(1 + 2)), "the report folders, then one listing per row: {calls:?}");
}

#[tokio::test]
async fn a_missing_stale_or_unusable_inventory_report_is_refused_with_its_reason_and_the_bucket_listed() {
    use backup_tests::inventory;
    let (fleet, source, backup, reports) = inventory_fleet("s3invno").await;
    let s3 = fleet.aws.clients().s3;
    seed_many(&fleet, &source, "k/", 5).await;
    let handlers = handlers(&fleet);
    let scanned = |why: &'static str| {
        let (handlers, source, backup) = (handlers.clone(), source.clone(), backup.clone());
        async move {
            let results = run_scan(&handlers, inventory_scan(&source, &backup, "nightly")).await;
            let scan = &results.iter().find(|(t, _)| t.kind() == TaskKind::ScanBucket).unwrap().1;
            let reason = scan["inventory_unused"].as_str().unwrap_or_else(|| panic!("{why}: no reason in {scan}"));
            assert_eq!(scan["objects"].as_u64(), Some(5), "{why}: the bucket is listed instead: {scan}");
            reason.to_owned()
        }
    };
    // No configuration by that id.
    assert!(scanned("no configuration").await.contains("has no inventory configuration \"nightly\""));
    // A configuration whose only report is older than the plan accepts.
    let old = report(&source, &reports, Utc::now() - chrono::Duration::hours(50));
    inventory::configure(&s3, &old).await;
    inventory::write(&s3, &old, &inventory::rows_of(&s3, &source).await).await;
    let reason = scanned("stale").await;
    assert!(reason.contains("older than 48 hours"), "{reason}");
    // A configuration that writes Parquet, which the scan does not read.
    let parquet = backup_tests::inventory::Report { format: aws_sdk_s3::types::InventoryFormat::Parquet, ..old };
    inventory::configure(&s3, &parquet).await;
    let reason = scanned("parquet").await;
    assert!(reason.contains("only CSV reports are read"), "{reason}");
}
