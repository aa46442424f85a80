//! `backup_schemas::events` against real AWS samples (`fixtures/aws-events/`, see its
//! SOURCES.md), inline samples for shapes no fixture covers, and hostile input.

use std::fs;
use std::path::{Path, PathBuf};

use backup_schemas::events::{
    decode_s3_key, parse_body, AwsEvent, CloudTrailCall, EbsResult, EbsSnapshotEvent, EbsSnapshotNotification,
    Ec2InstanceState, EventError, ParsedEvent, RdsEvent, RdsSourceType, S3Action, S3ObjectEvent, MAX_BODY_BYTES,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/aws-events")
}

fn fixture(rel: &str) -> String {
    let path = fixtures_dir().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The SQS message bodies a queue consumer would see for a fixture. Lambda envelopes
/// (`Records[].body`, `Records[].Sns`) and ReceiveMessage output (`Messages[].Body`, or a single
/// message's `Body`) are unwrapped; for `Records[].Sns` the notification object itself is the
/// body, which is what an SQS queue subscribed without raw delivery receives. Anything else is
/// already a body.
fn sqs_bodies(text: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(text).expect("fixture is JSON");
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        let lambda: Vec<String> = records
            .iter()
            .filter_map(|r| match (r.get("body"), r.get("Sns")) {
                (Some(Value::String(body)), _) => Some(body.clone()),
                (_, Some(sns)) => Some(sns.to_string()),
                _ => None,
            })
            .collect();
        if !lambda.is_empty() {
            return lambda;
        }
    }
    if let Some(messages) = v.get("Messages").and_then(Value::as_array) {
        return messages.iter().filter_map(|m| m.get("Body").and_then(Value::as_str).map(str::to_owned)).collect();
    }
    if let Some(body) = v.get("Body").and_then(Value::as_str) {
        return vec![body.to_owned()];
    }
    vec![text.to_owned()]
}

/// Parse every body of a fixture; all must succeed.
fn parse_fixture(rel: &str) -> Vec<ParsedEvent> {
    sqs_bodies(&fixture(rel))
        .iter()
        .flat_map(|body| parse_body(body).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

/// Parse a fixture that holds exactly one event.
fn one(rel: &str) -> ParsedEvent {
    let mut events = parse_fixture(rel);
    assert_eq!(events.len(), 1, "{rel}: expected one event, got {events:#?}");
    events.remove(0)
}

fn one_json(v: &Value) -> ParsedEvent {
    let mut events = parse_body(&v.to_string()).unwrap_or_else(|e| panic!("{e}\n{v:#}"));
    assert_eq!(events.len(), 1);
    events.remove(0)
}

fn t(s: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc))
}

fn scheduled(e: &ParsedEvent) -> (Option<&str>, bool) {
    match &e.event {
        AwsEvent::Scheduled { rule_name, scheduler } => (rule_name.as_deref(), *scheduler),
        other => panic!("expected Scheduled, got {other:?}"),
    }
}

fn ec2_state(e: &ParsedEvent) -> (&str, &Ec2InstanceState) {
    match &e.event {
        AwsEvent::Ec2InstanceStateChange { instance_id, state } => (instance_id, state),
        other => panic!("expected Ec2InstanceStateChange, got {other:?}"),
    }
}

fn ebs_snapshot(e: &ParsedEvent) -> &EbsSnapshotNotification {
    match &e.event {
        AwsEvent::EbsSnapshot(n) => n,
        other => panic!("expected EbsSnapshot, got {other:?}"),
    }
}

fn ebs_volume(e: &ParsedEvent) -> (&str, &str, &str, Option<&str>) {
    match &e.event {
        AwsEvent::EbsVolume { event, result, volume_id, cause } => (event, result, volume_id, cause.as_deref()),
        other => panic!("expected EbsVolume, got {other:?}"),
    }
}

fn rds(e: &ParsedEvent) -> &RdsEvent {
    match &e.event {
        AwsEvent::Rds(r) => r,
        other => panic!("expected Rds, got {other:?}"),
    }
}

fn s3(e: &ParsedEvent) -> &S3ObjectEvent {
    match &e.event {
        AwsEvent::S3Object(o) => o,
        other => panic!("expected S3Object, got {other:?}"),
    }
}

fn cloudtrail(e: &ParsedEvent) -> &CloudTrailCall {
    match &e.event {
        AwsEvent::CloudTrailApiCall(c) => c,
        other => panic!("expected CloudTrailApiCall, got {other:?}"),
    }
}

fn other(e: &ParsedEvent) -> (&str, &str) {
    match &e.event {
        AwsEvent::Other { source, detail_type } => (source, detail_type),
        other => panic!("expected Other, got {other:?}"),
    }
}

fn is_not_json(r: &Result<Vec<ParsedEvent>, EventError>) -> bool {
    matches!(r, Err(EventError::NotJson { .. }))
}

fn is_unrecognised(r: &Result<Vec<ParsedEvent>, EventError>) -> bool {
    matches!(r, Err(EventError::Unrecognised { .. }))
}

// ---------------------------------------------------------------------------------------------
// Every fixture: parses, or is a commented non-event
// ---------------------------------------------------------------------------------------------

/// Fixtures whose SQS bodies are not AWS events: each body must be refused with a clear error.
/// They document the envelopes a consumer unwraps before calling `parse_body`.
const NON_EVENT_FIXTURES: &[&str] = &[
    // SNS→Lambda envelope; the SNS Message is the plain text "Hello from SNS!".
    "08-sqs-sns-envelopes/docs-lambda-guide-sns-event.json",
    "08-sqs-sns-envelopes/powertools-py-snsEvent.json",
    // Lambda SQS envelopes whose bodies are plain text ("Test message.", "Message Body").
    "08-sqs-sns-envelopes/docs-lambda-guide-sqs-event-fifo.json",
    "08-sqs-sns-envelopes/docs-lambda-guide-sqs-event-standard.json",
    "08-sqs-sns-envelopes/go-sqs-event.json",
    // SNS raw delivery of a plain-text message ("this is a raw message").
    "08-sqs-sns-envelopes/powertools-pr4069-sqs-rawsns-plain-message.json",
    // SNS notification (non-raw) whose Message is the plain text "from sns".
    "08-sqs-sns-envelopes/powertools-pr4069-sqs-sns-plain-message.json",
    // SNS notifications whose Message is application JSON ({"message": "hello world", …}).
    "08-sqs-sns-envelopes/powertools-py-snsSqsEvent.json",
    "08-sqs-sns-envelopes/powertools-py-snsSqsFifoEvent.json",
    // Lambda SQS envelope: "Test message." and application JSON {"message": "foo1"}.
    "08-sqs-sns-envelopes/powertools-py-sqsEvent.json",
    // ReceiveMessage response whose Body is application JSON ({"country": "usa", …}).
    "08-sqs-sns-envelopes/rust-sqs-api-ReceiveMessage-response.json",
];

fn all_fixture_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.file_name().is_some_and(|n| n != "SOURCES.md") {
                let rel = path.strip_prefix(root).expect("under root");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = fixtures_dir();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

#[test]
fn every_fixture_parses_or_is_a_listed_non_event() {
    let files = all_fixture_files();
    assert!(files.len() >= 80, "fixtures missing? found {}", files.len());
    let sources = fixture("SOURCES.md");
    for rel in &files {
        assert!(sources.contains(&format!("### `{rel}`")), "{rel} has no attribution entry in SOURCES.md");
        assert!(rel.ends_with(".json"), "{rel}: unexpected fixture type");
        let bodies = sqs_bodies(&fixture(rel));
        assert!(!bodies.is_empty(), "{rel}: no SQS body extracted");
        let results: Vec<_> = bodies.iter().map(|b| parse_body(b)).collect();
        if NON_EVENT_FIXTURES.contains(&rel.as_str()) {
            for r in &results {
                assert!(is_not_json(r) || is_unrecognised(r), "{rel}: listed as a non-event but got {r:?}");
            }
        } else {
            for r in &results {
                let events = r.as_ref().unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert!(!events.is_empty(), "{rel}: no events");
                for e in events {
                    assert!(!e.id.is_empty(), "{rel}: empty id");
                }
            }
        }
    }
    for listed in NON_EVENT_FIXTURES {
        assert!(files.iter().any(|f| f == listed), "stale allow-list entry {listed}");
    }
}

/// Damage every fixture (truncate it, replace each value with another JSON type): the parser
/// may refuse, but must never panic.
#[test]
fn damaged_fixtures_never_panic() {
    fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(prefix.clone());
        match v {
            Value::Object(o) => o.iter().for_each(|(k, c)| {
                prefix.push(Value::String(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
                prefix.push(json!(i));
                paths(c, prefix, out);
                prefix.pop();
            }),
            _ => {}
        }
    }
    fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
        path.iter().fold(v, |cur, step| match step {
            Value::String(k) => &mut cur[k.as_str()],
            Value::Number(n) => &mut cur[n.as_u64().expect("index") as usize],
            _ => unreachable!(),
        })
    }
    for rel in all_fixture_files() {
        for body in sqs_bodies(&fixture(&rel)) {
            for cut in (0..body.len()).step_by(37).filter(|&i| body.is_char_boundary(i)) {
                let _ = parse_body(&body[..cut]);
            }
            let Ok(original) = serde_json::from_str::<Value>(&body) else {
                continue;
            };
            let mut all = Vec::new();
            paths(&original, &mut Vec::new(), &mut all);
            for path in all {
                for replacement in [json!(null), json!([]), json!(7), json!(""), json!("{}")] {
                    let mut damaged = original.clone();
                    *at(&mut damaged, &path) = replacement;
                    let _ = parse_body(&damaged.to_string());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 01 Scheduled events
// ---------------------------------------------------------------------------------------------

#[test]
fn scheduled_rule_events() {
    let cases = [
        // No `version` field.
        (
            "01-scheduled/docs-cwe-eventtypes-scheduled-event.json",
            "MyScheduledRule",
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        ),
        (
            "01-scheduled/docs-eb-run-lambda-schedule-scheduled-event.json",
            "my-scheduled-rule",
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        ),
        ("01-scheduled/docs-lambda-guide-scheduled-event.json", "my-schedule", "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c"),
        ("01-scheduled/dotnet-scheduled-event.json", "my-schedule", "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c"),
    ];
    for (rel, rule, id) in cases {
        let e = one(rel);
        assert_eq!(scheduled(&e), (Some(rule), false), "{rel}");
        assert_eq!(e.id, id, "{rel}");
        assert_eq!(e.account.as_deref(), Some("123456789012"), "{rel}");
    }
    let e = one("01-scheduled/docs-cwe-eventtypes-scheduled-event.json");
    assert_eq!(e.time, t("2015-10-08T16:53:06Z"));
    assert_eq!(e.region.as_deref(), Some("us-east-1"));
    let e = one("01-scheduled/dotnet-scheduled-event.json");
    assert_eq!(e.time, t("1970-01-01T00:00:00Z"));
}

#[test]
fn scheduled_event_with_empty_account_and_no_version() {
    let e = one("01-scheduled/sam-app-templates-cw-event-scheduled-empty-account.json");
    assert_eq!(scheduled(&e), (Some("ExampleRule"), false));
    assert_eq!(e.account, None, "empty account reads as absent");
    assert_eq!(e.region.as_deref(), Some("us-west-2"));
}

#[test]
fn scheduled_event_template_with_placeholders() {
    let e = one("01-scheduled/sam-cli-generate-event-ScheduledEvent-TEMPLATE.json");
    assert_eq!(scheduled(&e), (Some("{{{rule}}}"), false));
    assert_eq!(e.account.as_deref(), Some("{{{account_id}}}"));
}

/// EventBridge Scheduler's default payload: `source` aws.scheduler and `detail` a JSON *string*.
#[test]
fn eventbridge_scheduler_string_detail() {
    let body = r#"{"version":"0","id":"8f5b2d3c-6a71-4e0b-9f2a-3c1d5e7a9b01","detail-type":"Scheduled Event","source":"aws.scheduler","account":"123456789012","time":"2024-05-01T03:00:00Z","region":"eu-west-1","resources":["arn:aws:scheduler:eu-west-1:123456789012:schedule/default/nightly-backup"],"detail":"{}"}"#;
    let events = parse_body(body).expect("scheduler event");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(scheduled(e), (Some("nightly-backup"), true));
    assert_eq!(e.id, "8f5b2d3c-6a71-4e0b-9f2a-3c1d5e7a9b01");
    assert_eq!(e.time, t("2024-05-01T03:00:00Z"));
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));

    // A scheduled event without resources has no rule name, but is still a schedule.
    let e = one_json(&json!({"id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}));
    assert_eq!(scheduled(&e), (None, false));
    assert_eq!((e.region, e.account, e.time), (None, None, None));

    // Rules on a custom bus: rule/BUS/NAME.
    let e = one_json(&json!({"id": "y", "detail-type": "Scheduled Event", "source": "aws.events",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ops-bus/hourly"], "detail": {}}));
    assert_eq!(scheduled(&e), (Some("hourly"), false));
}

// ---------------------------------------------------------------------------------------------
// 02 EC2 instance state changes
// ---------------------------------------------------------------------------------------------

#[test]
fn ec2_instance_state_changes() {
    use Ec2InstanceState::*;
    let cases = [
        ("02-ec2-instance-state/docs-cwe-eventtypes-pending.json", "i-abcd1111", Pending),
        // The docs put a space before the id: " i-1234567890abcdef0".
        ("02-ec2-instance-state/docs-cwe-input-transformer-stopped.json", "i-1234567890abcdef0", Stopped),
        ("02-ec2-instance-state/docs-cwe-patterns-terminated.json", "i-1234567890abcdef0", Terminated),
        ("02-ec2-instance-state/docs-eb-content-filtering-pending.json", "i-abcd1111", Pending),
        ("02-ec2-instance-state/docs-eb-events-terminated.json", "i-1234567890abcdef0", Terminated),
        ("02-ec2-instance-state/docs-ec2guide-pending-no-version-field.json", "i-abcd1111", Pending),
        ("02-ec2-instance-state/docs-lambda-guide-running.json", "i-0c314xmplcd5b8173", Running),
    ];
    for (rel, id, state) in cases {
        let e = one(rel);
        assert_eq!(ec2_state(&e), (id, &state), "{rel}");
    }
    let e = one("02-ec2-instance-state/docs-ec2guide-pending-no-version-field.json");
    assert_eq!(e.id, "7bf73129-1428-4cd3-a780-95db273d1602");
    assert_eq!(e.time, t("2021-11-11T21:29:54Z"));
    let e = one("02-ec2-instance-state/docs-lambda-guide-running.json");
    assert_eq!(e.account.as_deref(), Some("111122223333"));
    assert_eq!(e.region.as_deref(), Some("us-east-2"));
}

#[test]
fn ec2_states_are_case_insensitive() {
    for (raw, want) in [
        ("Stopping", Ec2InstanceState::Stopping),
        ("stopping", Ec2InstanceState::Stopping),
        ("STOPPED", Ec2InstanceState::Stopped),
        ("shutting-down", Ec2InstanceState::ShuttingDown),
        ("Shutting-Down", Ec2InstanceState::ShuttingDown),
        ("hibernating", Ec2InstanceState::Other("hibernating".into())),
    ] {
        let e = one_json(&json!({"id": "1", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "detail": {"instance-id": "i-0abc", "state": raw}}));
        assert_eq!(ec2_state(&e), ("i-0abc", &want), "{raw}");
    }
    assert_eq!(Ec2InstanceState::ShuttingDown.as_str(), "shutting-down");
}

#[test]
fn ec2_state_change_without_instance_id_is_malformed() {
    let r = parse_body(
        r#"{"id":"1","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"state":"running"}}"#,
    );
    let Err(EventError::Malformed { event, reason }) = r else {
        panic!("expected Malformed, got {r:?}");
    };
    assert_eq!(event, "EC2 Instance State-change Notification");
    assert!(reason.contains("instance-id"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// 03 EBS snapshots
// ---------------------------------------------------------------------------------------------

#[test]
fn ebs_create_snapshot_succeeded() {
    let e = one("03-ebs-snapshot/docs-createSnapshot-succeeded.json");
    let n = ebs_snapshot(&e);
    assert_eq!(n.event, EbsSnapshotEvent::CreateSnapshot);
    assert_eq!(n.result, EbsResult::Succeeded);
    // `arn:aws:ec2::us-west-2:snapshot/snap-01234567`: region in the account slot.
    assert_eq!(n.snapshot_id, "snap-01234567");
    assert_eq!(n.snapshot_region.as_deref(), Some("us-west-2"));
    assert_eq!(n.source_volume_id().as_deref(), Some("vol-01234567"));
    assert_eq!(n.source_snapshot_id(), None);
    assert_eq!(n.cause, None, "empty cause reads as absent");
    assert_eq!(n.incremental, None);
    assert_eq!(e.time, None, "placeholder time yyyy-mm-ddThh:mm:ssZ");
    assert_eq!(e.region.as_deref(), Some("us-east-1"));
    assert_eq!(e.account.as_deref(), Some("012345678901"));
}

#[test]
fn ebs_copy_snapshot_succeeded_and_failed() {
    for rel in [
        "03-ebs-snapshot/docs-copySnapshot-succeeded.json",
        // Older revision: region in the region slot, `arn:aws:ec2:us-west-2::snapshot/…`.
        "03-ebs-snapshot/docs-2022-12-copySnapshot-succeeded-region-in-region-slot.json",
    ] {
        let n = ebs_snapshot(&one(rel)).clone();
        assert_eq!(n.event, EbsSnapshotEvent::CopySnapshot, "{rel}");
        assert_eq!(n.result, EbsResult::Succeeded, "{rel}");
        assert_eq!(n.snapshot_id, "snap-01234567", "{rel}");
        assert_eq!(n.snapshot_region.as_deref(), Some("us-west-2"), "{rel}");
        assert_eq!(n.source_snapshot_id().as_deref(), Some("snap-76543210"), "{rel}");
        assert_eq!(n.source_region().as_deref(), Some("eu-west-1"), "{rel}");
        assert_eq!(n.incremental, Some(true), "{rel}: \"Incremental\": \"true\"");
    }
    let n = ebs_snapshot(&one("03-ebs-snapshot/docs-copySnapshot-failed.json")).clone();
    assert_eq!(n.event, EbsSnapshotEvent::CopySnapshot);
    assert_eq!(n.result, EbsResult::Failed);
    assert_eq!(n.snapshot_id, "snap-01234567");
    assert_eq!(n.cause.as_deref(), Some("Source snapshot ID is not valid"));
    assert_eq!(n.request_id, None);
}

#[test]
fn ebs_create_snapshots_multi_volume() {
    let e = one("03-ebs-snapshot/docs-createSnapshots-multivolume-succeeded.json");
    let AwsEvent::EbsMultiVolumeSnapshots { event, result, cause, snapshots } = &e.event else {
        panic!("expected EbsMultiVolumeSnapshots, got {:?}", e.event);
    };
    assert_eq!(event, &EbsSnapshotEvent::CreateSnapshots);
    assert_eq!(result, &EbsResult::Succeeded);
    assert_eq!(cause, &None);
    let got: Vec<_> =
        snapshots.iter().map(|s| (s.snapshot_id.as_deref(), s.volume_id.as_deref(), s.status.as_deref())).collect();
    assert_eq!(
        got,
        [
            (Some("snap-01234567"), Some("vol-01234567"), Some("completed")),
            (Some("snap-012345678"), Some("vol-012345678"), Some("completed")),
        ]
    );

    // A failed createSnapshots, in upper case, with one snapshot failed.
    let e = one_json(
        &json!({"version": "0", "id": "m2", "detail-type": "EBS Multi-Volume Snapshots Completion Status",
        "source": "aws.ec2", "account": "012345678901", "region": "us-east-1", "resources": [],
        "detail": {"event": "createSnapshots", "result": "Failed", "cause": "Snapshot creation failed",
            "snapshots": [
                {"snapshot_id": "arn:aws:ec2::us-east-1:snapshot/snap-0aaa", "source": "arn:aws:ec2::us-east-1:volume/vol-0aaa", "status": "completed"},
                {"snapshot_id": "arn:aws:ec2::us-east-1:snapshot/snap-0bbb", "source": "arn:aws:ec2::us-east-1:volume/vol-0bbb", "status": "failed"}]}}),
    );
    let AwsEvent::EbsMultiVolumeSnapshots { result, cause, snapshots, .. } = &e.event else {
        panic!("expected EbsMultiVolumeSnapshots, got {:?}", e.event);
    };
    assert_eq!(result, &EbsResult::Failed);
    assert_eq!(cause.as_deref(), Some("Snapshot creation failed"));
    assert_eq!(snapshots[1].status.as_deref(), Some("failed"));
    assert_eq!(snapshots[1].volume_id.as_deref(), Some("vol-0bbb"));
}

#[test]
fn ebs_archive_and_restore_events() {
    let cases = [
        ("03-ebs-snapshot/docs-archiveSnapshot-failed.json", EbsSnapshotEvent::ArchiveSnapshot, EbsResult::Failed),
        (
            "03-ebs-snapshot/docs-permanentRestoreSnapshot-succeeded.json",
            EbsSnapshotEvent::PermanentRestoreSnapshot,
            EbsResult::Succeeded,
        ),
        // "restoryExpiry" (sic) is what the EC2 docs show.
        ("03-ebs-snapshot/docs-restoryExpiry-succeeded.json", EbsSnapshotEvent::RestoreExpiry, EbsResult::Succeeded),
        (
            "03-ebs-snapshot/docs-temporaryRestoreSnapshot-failed.json",
            EbsSnapshotEvent::TemporaryRestoreSnapshot,
            EbsResult::Failed,
        ),
    ];
    for (rel, event, result) in cases {
        let e = one(rel);
        let n = ebs_snapshot(&e);
        assert_eq!((&n.event, &n.result), (&event, &result), "{rel}");
        assert_eq!(n.snapshot_id, "snap-01234567890abcdef", "{rel}");
        assert_eq!(n.snapshot_region.as_deref(), Some("us-east-1"), "{rel}");
        assert_eq!(n.request_id.as_deref(), Some("1234567890"), "{rel}");
        assert_eq!(e.time, t("2021-05-25T13:12:22Z"), "{rel}");
    }
    let e = one("03-ebs-snapshot/docs-archiveSnapshot-failed.json");
    assert_eq!(ebs_snapshot(&e).cause.as_deref(), Some("Source snapshot ID is not valid"));
}

#[test]
fn ebs_result_and_event_are_case_insensitive_and_open() {
    let e = one_json(&json!({"id": "1", "detail-type": "EBS Snapshot Notification", "source": "aws.ec2",
        "detail": {"event": "CreateSnapshot", "result": "SUCCEEDED", "snapshotId": "snap-0f00", "incremental": true}}));
    let n = ebs_snapshot(&e);
    assert_eq!((&n.event, &n.result), (&EbsSnapshotEvent::CreateSnapshot, &EbsResult::Succeeded));
    assert_eq!(n.snapshot_id, "snap-0f00");
    assert_eq!(n.incremental, Some(true));

    let e = one_json(&json!({"id": "2", "detail-type": "EBS Snapshot Notification", "source": "aws.ec2",
        "resources": ["arn:aws:ec2:us-east-1::snapshot/snap-0e00"],
        "detail": {"event": "lockSnapshot", "result": "pending"}}));
    let n = ebs_snapshot(&e);
    assert_eq!(n.event, EbsSnapshotEvent::Other("lockSnapshot".into()));
    assert_eq!(n.result, EbsResult::Other("pending".into()));
    assert_eq!(n.snapshot_id, "snap-0e00", "falls back to `resources`");
}

// ---------------------------------------------------------------------------------------------
// 04 EBS volumes
// ---------------------------------------------------------------------------------------------

#[test]
fn ebs_volume_notifications() {
    let cases = [
        ("04-ebs-volume/docs-attachVolume-failed.json", "attachVolume", "failed", "vol-01234567"),
        ("04-ebs-volume/docs-createVolume-available.json", "createVolume", "available", "vol-01234567"),
        ("04-ebs-volume/docs-deleteVolume-deleted.json", "deleteVolume", "deleted", "vol-01234567"),
        ("04-ebs-volume/docs-modifyVolume-optimizing-2.json", "modifyVolume", "optimizing", "vol-03a55cf56513fa1b6"),
        ("04-ebs-volume/docs-modifyVolume-optimizing.json", "modifyVolume", "optimizing", "vol-03a55cf56513fa1b6"),
        ("04-ebs-volume/docs-reattachVolume-failed.json", "reattachVolume", "failed", "vol-01234567"),
    ];
    for (rel, event, result, volume) in cases {
        let e = one(rel);
        let (ev, res, vol, _) = ebs_volume(&e);
        assert_eq!((ev, res, vol), (event, result, volume), "{rel}");
    }
    let e = one("04-ebs-volume/docs-attachVolume-failed.json");
    assert!(ebs_volume(&e).3.is_some_and(|c| c.ends_with("is pending deletion.")));
    let e = one("04-ebs-volume/docs-modifyVolume-optimizing-2.json");
    assert_eq!(e.time, t("2017-01-12T21:09:07Z"));
    assert_eq!(ebs_volume(&e).3, None);
}

// ---------------------------------------------------------------------------------------------
// 05 RDS
// ---------------------------------------------------------------------------------------------

#[test]
fn rds_db_instance_events_with_and_without_event_id() {
    let r = rds(&one("05-rds/docs-2021-02-rds-db-instance-event-no-EventID.json")).clone();
    assert_eq!(r.source_type, RdsSourceType::DbInstance);
    assert_eq!(r.source_identifier, "rds:my-db-instance");
    assert_eq!(r.source_arn.as_deref(), Some("arn:aws:rds:us-east-1:123456789012:db:my-db-instance"));
    assert_eq!(r.event_id, None);
    assert_eq!(r.event_categories, ["failover"]);
    assert_eq!(r.message.as_deref(), Some("A Multi-AZ failover has completed."));
    assert_eq!(r.date, t("2018-09-27T22:36:43.292Z"));

    let e = one("05-rds/docs-rds-db-instance-event-RDS-EVENT-0049.json");
    let r = rds(&e);
    assert_eq!(r.source_type, RdsSourceType::DbInstance);
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0049"));
    assert_eq!(e.id, "68f6e973-1a0c-d37b-f2f2-94a7f62ffd4e");

    let e = one("05-rds/docs-rds-db-instance-event-RDS-EVENT-0087.json");
    let r = rds(&e);
    assert_eq!(r.source_identifier, "testdb");
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0087"));
    assert_eq!(r.message.as_deref(), Some("DB instance stopped"));
    assert_eq!(e.account.as_deref(), Some("111111111111"));
}

#[test]
fn rds_snapshot_cluster_and_parameter_group_events() {
    let r = rds(&one("05-rds/docs-rds-db-snapshot-event-RDS-EVENT-0041-deleted.json")).clone();
    assert_eq!(r.source_type, RdsSourceType::DbSnapshot);
    assert_eq!(r.source_identifier, "rds:my-db-snapshot");
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0041"));
    assert_eq!(r.event_categories, ["deletion"]);

    let r = rds(&one("05-rds/docs-aurora-db-cluster-event-RDS-EVENT-0173.json")).clone();
    assert_eq!(r.source_type, RdsSourceType::DbCluster);
    assert_eq!(r.source_identifier, "rds:my-db-cluster");
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0173"));

    // Not backup-relevant, but still an RDS event with its source type kept.
    let r = rds(&one("05-rds/docs-rds-db-parameter-group-event-RDS-EVENT-0037.json")).clone();
    assert_eq!(r.source_type, RdsSourceType::Other("DB_PARAM".into()));
    assert_eq!(r.source_identifier, "rds:my-db-param-group");
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0037"));
}

/// No fixture has a cluster-snapshot event: one with EventID, and an older-style one with neither
/// `EventID` nor `SourceType` nor `SourceIdentifier` (derived from the detail-type and ARN).
#[test]
fn rds_cluster_snapshot_events() {
    let e = one_json(&json!({
        "version": "0", "id": "c0ffee00-1234-5678-9abc-def012345678",
        "detail-type": "RDS DB Cluster Snapshot Event", "source": "aws.rds",
        "account": "123456789012", "time": "2024-02-01T04:10:11Z", "region": "eu-west-1",
        "resources": ["arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:rds:orders-2024-02-01-04-05"],
        "detail": {
            "EventCategories": ["backup"], "SourceType": "CLUSTER_SNAPSHOT",
            "SourceArn": "arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:rds:orders-2024-02-01-04-05",
            "Date": "2024-02-01T04:10:11.123Z", "Message": "Automated cluster snapshot created",
            "SourceIdentifier": "rds:orders-2024-02-01-04-05", "EventID": "RDS-EVENT-0169"
        }
    }));
    let r = rds(&e);
    assert_eq!(r.source_type, RdsSourceType::DbClusterSnapshot);
    assert_eq!(r.source_identifier, "rds:orders-2024-02-01-04-05");
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0169"));
    assert_eq!(r.event_categories, ["backup"]);

    let e = one_json(&json!({
        "id": "c0ffee01", "detail-type": "RDS DB Cluster Snapshot Event", "source": "aws.rds",
        "resources": ["arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:manual-orders"],
        "detail": {"Message": "Manual cluster snapshot created", "EventCategories": "backup"}
    }));
    let r = rds(&e);
    assert_eq!(r.source_type, RdsSourceType::DbClusterSnapshot);
    assert_eq!(r.source_identifier, "manual-orders");
    assert_eq!(r.source_arn.as_deref(), Some("arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:manual-orders"));
    assert_eq!(r.event_id, None);
    assert_eq!(r.event_categories, ["backup"]);
    assert_eq!(e.account, None);
}

/// The RDS event-subscription format, delivered by SNS (not EventBridge).
#[test]
fn rds_event_via_sns_classic_format() {
    let rel = "05-rds/docs-lambda-guide-rds-event-via-sns-classic-format.json";
    let e = one(rel);
    let r = rds(&e);
    assert_eq!(r.source_type, RdsSourceType::DbInstance);
    assert_eq!(r.source_identifier, "dbinstanceid");
    // "Event ID" is a documentation URL ending in #RDS-EVENT-0002.
    assert_eq!(r.event_id.as_deref(), Some("RDS-EVENT-0002"));
    assert_eq!(r.message.as_deref(), Some("Finished DB Instance backup"));
    assert_eq!(e.time, t("2019-01-02T12:45:06Z"));
    // The console link says eu-west-1 (the topic is in us-east-2: the sample is inconsistent).
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));
    assert_eq!(e.account.as_deref(), Some("123456789012"), "from the topic ARN");
    assert!(e.id.starts_with("rds-"), "{}", e.id);

    // Raw delivery: the body is the message itself. Same event, same id; only the topic-derived
    // account is unknown.
    let v: Value = serde_json::from_str(&fixture(rel)).expect("json");
    let raw = v["Records"][0]["Sns"]["Message"].as_str().expect("Message");
    let events = parse_body(raw).expect("raw RDS message");
    assert_eq!(events[0].id, e.id);
    assert_eq!(events[0].event, e.event);
    assert_eq!(events[0].account, None);
}

// ---------------------------------------------------------------------------------------------
// 06 S3
// ---------------------------------------------------------------------------------------------

#[test]
fn s3_eventbridge_object_created_and_deleted() {
    let e = one("06-s3/docs-s3-eventbridge-object-created.json");
    assert_eq!(e.id, "17793124-05d4-b198-2fde-7ededc63b103");
    assert_eq!(e.region.as_deref(), Some("ca-central-1"));
    assert_eq!(e.account.as_deref(), Some("111122223333"));
    let o = s3(&e);
    assert_eq!(o.action, S3Action::Created);
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("DOC-EXAMPLE-BUCKET1", "example-key"));
    assert_eq!(o.size, Some(5));
    assert_eq!(o.etag.as_deref(), Some("b1946ac92492d2347c6235b4d2611184"));
    assert_eq!(o.version_id.as_deref(), Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"));
    assert_eq!(o.sequencer.as_deref(), Some("617f08299329d189"));
    assert_eq!(o.reason.as_deref(), Some("PutObject"));

    let o = s3(&one("06-s3/docs-s3-eventbridge-object-deleted-delete-marker.json")).clone();
    assert_eq!(o.action, S3Action::Deleted);
    assert_eq!(o.deletion_type.as_deref(), Some("Delete Marker Created"));
    assert_eq!(o.size, None);
    assert_eq!(o.version_id.as_deref(), Some("1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF"));

    let o = s3(&one("06-s3/docs-s3-eventbridge-object-deleted-lifecycle-expiration.json")).clone();
    assert_eq!(o.action, S3Action::Deleted);
    assert_eq!(o.reason.as_deref(), Some("Lifecycle Expiration"));

    let o = s3(&one("06-s3/powertools-py-s3-eventbridge-object-deleted.json")).clone();
    assert_eq!((o.action, o.bucket.as_str(), o.key.as_str()), (S3Action::Deleted, "example-bucket", "IMG_m7fzo3.jpg"));
    assert_eq!(o.etag, None);

    let o = s3(&one("06-s3/powertools-py-s3-eventbridge-object-expired.json")).clone();
    assert_eq!((o.action, o.size), (S3Action::Deleted, Some(184662)));

    for rel in [
        "06-s3/docs-s3-eventbridge-object-restore-completed.json",
        "06-s3/powertools-py-s3-eventbridge-object-restore-completed.json",
    ] {
        let o = s3(&one(rel)).clone();
        assert_eq!(o.action, S3Action::Other("Object Restore Completed".into()), "{rel}");
        assert_eq!(o.event_name, "Object Restore Completed");
    }
}

#[test]
fn s3_classic_notifications() {
    let e = one("06-s3/docs-s3-notification-ObjectCreated-Put.json");
    let o = s3(&e);
    assert_eq!(o.action, S3Action::Created);
    assert_eq!(o.event_name, "ObjectCreated:Put");
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("mybucket", "HappyFace.jpg"));
    assert_eq!(o.size, Some(1024));
    assert_eq!(o.version_id.as_deref(), Some("096fKKXTRTtl3on89fVO.nfljtsv6qko"));
    assert_eq!(o.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    assert_eq!(e.region.as_deref(), Some("us-west-2"));
    assert_eq!(e.time, t("1970-01-01T00:00:00Z"));
    assert!(e.id.starts_with("s3-"));

    for rel in ["06-s3/docs-lambda-guide-s3-notification-put.json", "06-s3/powertools-py-s3Event.json"] {
        let e = one(rel);
        let o = s3(&e);
        assert_eq!(o.action, S3Action::Created, "{rel}");
        assert_eq!(o.key, "b21b84d653bb07b05b1e6b33684dc11b", "{rel}");
        assert_eq!(o.size, Some(1305107), "{rel}");
        assert_eq!(e.time, t("2019-09-03T19:37:27.192Z"), "{rel}");
    }
    // The Lambda guide names the bucket differently from its ARN; the name is what counts.
    assert_eq!(s3(&one("06-s3/docs-lambda-guide-s3-notification-put.json")).bucket, "DOC-EXAMPLE-BUCKET");

    let o = s3(&one("06-s3/powertools-py-s3EventDeleteObject.json")).clone();
    assert_eq!((o.action, o.size, o.etag), (S3Action::Deleted, None, None));
    assert_eq!(o.event_name, "ObjectRemoved:Delete");
}

#[test]
fn s3_classic_keys_are_url_decoded() {
    let cases = [
        ("06-s3/go-s3-event-put.json", "sourcebucket", "Happy Face.jpg", S3Action::Created),
        (
            "06-s3/go-s3-lifecycle-event.json",
            "example-bucket",
            "lifecycle-test.dat",
            S3Action::Other("s3:LifecycleTransition".into()),
        ),
        (
            "06-s3/go-s3-replication-event.json",
            "amzn-s3-demo-bucket1",
            "replication-test.png",
            S3Action::Other("s3:Replication:OperationFailedReplication".into()),
        ),
        (
            "06-s3/go-s3-restore-event.json",
            "example-bucket",
            "glacier-test.txt",
            S3Action::Other("s3:ObjectRestore:Completed".into()),
        ),
    ];
    for (rel, bucket, key, action) in cases {
        let o = s3(&one(rel)).clone();
        assert_eq!((o.bucket.as_str(), o.key.as_str(), o.action), (bucket, key, action), "{rel}");
    }

    // Spaces as '+', a literal '+' as %2B, unicode as UTF-8 percent escapes, '/' kept.
    let record = |key: &str, seq: &str| {
        json!({"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
            "eventTime": "2024-06-01T12:00:00.000Z", "eventName": "ObjectCreated:CompleteMultipartUpload",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "media", "arn": "arn:aws:s3:::media"},
                "object": {"key": key, "size": 10, "eTag": "abc", "sequencer": seq}}})
    };
    let body = json!({"Records": [
        record("photos/2024/caf%C3%A9+menu+%28final%29.pdf", "0066A"),
        record("r%C3%A9sum%C3%A9s/%E2%82%AC+1%2B1%3D2+%F0%9F%93%A6.txt", "0066B"),
        record("broken%FF+key", "0066C"),
    ]});
    let events = parse_body(&body.to_string()).expect("multi-record notification");
    let keys: Vec<_> = events.iter().map(|e| s3(e).key.clone()).collect();
    assert_eq!(
        keys,
        [
            "photos/2024/café menu (final).pdf",
            "résumés/€ 1+1=2 📦.txt",
            // Not UTF-8 once decoded: kept as sent rather than guessed at.
            "broken%FF+key",
        ]
    );
    assert_eq!(decode_s3_key("a%2Bb+c"), "a+b c");
    assert_eq!(decode_s3_key("100%"), "100%");

    // EventBridge keys are used as sent.
    let e = one_json(&json!({"id": "k", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "media"}, "object": {"key": "a b+c.txt", "size": "12"}}}));
    assert_eq!(s3(&e).key, "a b+c.txt");
    assert_eq!(s3(&e).size, Some(12), "numeric string size");
}

#[test]
fn s3_classic_ids_are_stable_and_distinct() {
    let body = fixture("06-s3/docs-s3-notification-ObjectCreated-Put.json");
    let a = parse_body(&body).expect("a");
    let b = parse_body(&body).expect("b");
    assert_eq!(a[0].id, b[0].id, "same record twice, same id");

    let mut v: Value = serde_json::from_str(&body).expect("json");
    v["Records"][0]["s3"]["object"]["sequencer"] = json!("0055AED6DCD90281E6");
    let c = parse_body(&v.to_string()).expect("c");
    assert_ne!(a[0].id, c[0].id, "a later write to the same key is a new event");

    // Without a sequencer the eTag identifies the write.
    v["Records"][0]["s3"]["object"].as_object_mut().expect("object").remove("sequencer");
    let d1 = parse_body(&v.to_string()).expect("d1");
    let d2 = parse_body(&v.to_string()).expect("d2");
    assert_eq!(d1[0].id, d2[0].id);
    assert_ne!(d1[0].id, c[0].id);
}

#[test]
fn s3_single_record_without_records_array() {
    let v: Value = serde_json::from_str(&fixture("06-s3/docs-s3-notification-ObjectCreated-Put.json")).expect("json");
    let wrapped = parse_body(&v.to_string()).expect("wrapped");
    let single = parse_body(&v["Records"][0].to_string()).expect("single record");
    assert_eq!(single, wrapped);
}

#[test]
fn s3_structure_template_is_tolerated() {
    // The docs' structure template: placeholder strings everywhere, `size` a string.
    let e = one("06-s3/docs-s3-notification-structure-template-v2.2.json");
    let o = s3(&e);
    assert_eq!(o.action, S3Action::Other("event-type".into()));
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("bucket-name", "object-key"));
    assert_eq!(o.size, None);
    assert_eq!(e.time, None);
}

#[test]
fn s3_test_event() {
    let e = one("06-s3/docs-s3-TestEvent.json");
    assert_eq!(e.event, AwsEvent::S3TestEvent { bucket: "bucketname".into() });
    assert_eq!(e.time, t("2014-10-13T15:57:02.089Z"));
    assert!(e.id.starts_with("s3test-"));
}

// ---------------------------------------------------------------------------------------------
// 07 AWS Backup, 10 other
// ---------------------------------------------------------------------------------------------

#[test]
fn events_we_do_not_act_on_are_other() {
    let e = one("07-aws-backup/aws-samples-backup-alarms-copy-job-FAILED.json");
    assert_eq!(other(&e), ("aws.backup", "Copy Job State Change"));
    // 13-digit account in this sample: kept as sent.
    assert_eq!(e.account.as_deref(), Some("1112233445566"));
    assert_eq!(e.id, "4660bc92-a44d-c939-4542-cda503f14855");

    let e = one("10-related-other/docs-cwe-eventtypes-tag-change-on-resource.json");
    assert_eq!(other(&e), ("aws.tag", "Tag Change on Resource"));

    let e = one("09-cloudtrail-api-call/docs-cwe-eventtypes-ConsoleLogin.json");
    assert_eq!(other(&e), ("aws.signin", "AWS Console Sign In via CloudTrail"));
    assert_eq!(e.id, "6f87d04b-9f74-4f04-a780-7acf4b0a9b38");
}

// ---------------------------------------------------------------------------------------------
// 08 SQS / SNS envelopes
// ---------------------------------------------------------------------------------------------

#[test]
fn s3_notification_through_sqs_and_sns() {
    // S3 → SQS directly: the body is the Records[] JSON.
    let o = s3(&one("08-sqs-sns-envelopes/powertools-pr4069-sqs-s3-notification.json")).clone();
    assert_eq!(
        (o.bucket.as_str(), o.key.as_str(), o.size),
        ("sqs-s3-unwrap-bucket-683517028648", "samconfig.toml", Some(221))
    );
    let o = s3(&one("08-sqs-sns-envelopes/powertools-py-s3SqsEvent-s3-notification-in-sqs-body.json")).clone();
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("xxx", "test.pdf"));
    assert_eq!(o.version_id.as_deref(), Some("yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV"));

    // S3 → SNS with raw delivery → SQS: the body is the S3 JSON itself.
    let e = one("08-sqs-sns-envelopes/powertools-pr4069-sqs-rawsns-s3-notification.json");
    let o = s3(&e);
    assert_eq!(
        (o.bucket.as_str(), o.key.as_str(), o.action.clone()),
        ("unwraptestevents-bucket-683517028648", "samconfig.toml", S3Action::Created)
    );
    assert_eq!(e.region.as_deref(), Some("us-west-2"));

    // S3 → SNS (not raw) → queue: the body is the SNS notification, Message the S3 JSON.
    let rel = "08-sqs-sns-envelopes/powertools-pr4069-sns-s3-notification.json";
    let wrapped = one(rel);
    let o = s3(&wrapped);
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("s3-sns-unwrap-bucket-683517028648", "samconfig.toml"));
    assert_eq!(o.etag.as_deref(), Some("551277913a5ad93e0db069e673f23376"));
    // The same message with raw delivery parses to the same event and id.
    let v: Value = serde_json::from_str(&fixture(rel)).expect("json");
    let raw = parse_body(v["Records"][0]["Sns"]["Message"].as_str().expect("Message")).expect("raw");
    assert_eq!(raw, vec![wrapped]);
}

#[test]
fn eventbridge_through_sqs_and_sns() {
    // EventBridge → SNS (not raw): custom application event, not ours to act on.
    let e = one("08-sqs-sns-envelopes/serverless-patterns-eventbridge-to-sns-notification.json");
    assert_eq!(other(&e), ("demo.cli", "transaction"));
    assert_eq!(e.id, "12345678-3eb5-3993-7eee-12345678012");
    assert_eq!(e.account.as_deref(), Some("12345678012"));

    // EventBridge → SQS, as ReceiveMessage shows it.
    let e = one("08-sqs-sns-envelopes/serverless-patterns-eventbridge-sqs-cdk-ReceiveMessage.json");
    assert_eq!(other(&e), ("my-cdk-application", "message-for-queue"));
    assert_eq!(e.time, t("2021-10-08T18:43:15Z"));

    let e = one("08-sqs-sns-envelopes/serverless-patterns-s3-eventbridge-sqs-ReceiveMessage-object-created.json");
    assert_eq!(e.id, "a2b89aa3-d845-e241-e0ed-f5a14b646d4f");
    let o = s3(&e);
    assert_eq!(o.action, S3Action::Created);
    assert_eq!((o.bucket.as_str(), o.key.as_str()), ("{your-bucket-name}", "2024-01-17/1705474885/XYZ/xyz-data.csv"));
    assert_eq!(o.size, Some(7));

    // An EC2 state change through SNS, wrapped and raw.
    let inner = fixture("02-ec2-instance-state/docs-lambda-guide-running.json");
    let wrapped = json!({"Type": "Notification", "MessageId": "11111111-2222-3333-4444-555555555555",
        "TopicArn": "arn:aws:sns:us-east-2:111122223333:backup-events", "Message": inner,
        "Timestamp": "2019-10-02T17:59:31.000Z", "SignatureVersion": "1", "Signature": "x",
        "SigningCertURL": "https://sns.us-east-2.amazonaws.com/x.pem", "UnsubscribeURL": "https://x"});
    let a = one_json(&wrapped);
    let b = parse_body(&inner).expect("raw");
    assert_eq!(vec![a.clone()], b);
    assert_eq!(ec2_state(&a), ("i-0c314xmplcd5b8173", &Ec2InstanceState::Running));
}

#[test]
fn non_event_bodies_are_clear_errors() {
    // Plain text SNS Message.
    let r = parse_body(&sqs_bodies(&fixture("08-sqs-sns-envelopes/powertools-pr4069-sqs-sns-plain-message.json"))[0]);
    let Err(EventError::NotJson { what, .. }) = &r else {
        panic!("expected NotJson, got {r:?}");
    };
    assert_eq!(*what, "SNS notification `Message`");

    // Plain text body (raw SNS delivery of text, or any text message).
    let r =
        parse_body(&sqs_bodies(&fixture("08-sqs-sns-envelopes/powertools-pr4069-sqs-rawsns-plain-message.json"))[0]);
    assert!(matches!(&r, Err(EventError::NotJson { what: "message body", .. })), "{r:?}");

    // Application JSON inside SNS: says what it found.
    let r = parse_body(&sqs_bodies(&fixture("08-sqs-sns-envelopes/powertools-py-snsSqsEvent.json"))[0]);
    let Err(e @ EventError::Unrecognised { reason }) = &r else {
        panic!("expected Unrecognised, got {r:?}");
    };
    assert!(reason.contains("`message`") && reason.contains("`username`"), "{reason}");
    assert!(e.to_string().starts_with("not a recognisable AWS event"), "{e}");

    // Envelopes passed whole instead of their bodies get a hint.
    for rel in ["08-sqs-sns-envelopes/powertools-py-sqsEvent.json", "08-sqs-sns-envelopes/powertools-py-snsEvent.json"]
    {
        let r = parse_body(&fixture(rel));
        let Err(EventError::Unrecognised { reason }) = &r else {
            panic!("{rel}: expected Unrecognised, got {r:?}");
        };
        assert!(reason.contains("Lambda event envelope"), "{rel}: {reason}");
    }
    for rel in [
        "08-sqs-sns-envelopes/rust-sqs-api-ReceiveMessage-response.json",
        "08-sqs-sns-envelopes/serverless-patterns-s3-eventbridge-sqs-ReceiveMessage-object-created.json",
    ] {
        let r = parse_body(&fixture(rel));
        let Err(EventError::Unrecognised { reason }) = &r else {
            panic!("{rel}: expected Unrecognised, got {r:?}");
        };
        assert!(reason.contains("ReceiveMessage"), "{rel}: {reason}");
    }
}

#[test]
fn sns_subscription_confirmation_is_other() {
    let e = one_json(&json!({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37", "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription", "Timestamp": "2012-04-26T20:45:04.751Z"}));
    assert_eq!(other(&e), ("aws.sns", "SubscriptionConfirmation"));
    assert_eq!(e.id, "165545c9-2a5c-472c-8df2-7ff2be2b3b1b");
    assert_eq!(e.region.as_deref(), Some("us-west-2"));

    // Application JSON that merely has `type` and `message` keys is not SNS.
    let r = parse_body(r#"{"type": "order", "message": "shipped", "topicArn": "x"}"#);
    assert!(is_unrecognised(&r), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 09 CloudTrail
// ---------------------------------------------------------------------------------------------

#[test]
fn cloudtrail_run_instances_bare_records() {
    for rel in [
        "09-cloudtrail-api-call/custodian-cloudtrail-record-RunInstances-assumedrole-DETAIL-ONLY.json",
        "09-cloudtrail-api-call/custodian-cloudtrail-record-RunInstances-iamuser-DETAIL-ONLY.json",
    ] {
        let e = one(rel);
        let c = cloudtrail(&e);
        assert_eq!((c.event_source.as_str(), c.event_name.as_str()), ("ec2.amazonaws.com", "RunInstances"), "{rel}");
        assert_eq!(c.created_resources(), ["i-0f7c711dc84bedda0"], "{rel}");
        assert_eq!(e.id, "6589a9eb-59b7-4895-b7ab-962ed3cc257c", "{rel}");
        assert_eq!(e.account.as_deref(), Some("644160558196"), "{rel}");
        assert_eq!(e.region.as_deref(), Some("us-east-1"), "{rel}");
        assert_eq!(e.time, t("2016-07-24T10:57:13Z"), "{rel}");
    }
}

#[test]
fn cloudtrail_create_volume_bare_record() {
    let e = one("09-cloudtrail-api-call/custodian-cloudtrail-record-ec2-CreateVolume-DETAIL-ONLY.json");
    let c = cloudtrail(&e);
    assert_eq!(c.event_name, "CreateVolume");
    assert_eq!(c.created_resources(), ["vol-97c02b3e"]);
    assert_eq!(c.request_parameters["snapshotId"], "snap-37beda4c");
    assert_eq!(e.account.as_deref(), Some("101010101111"));
}

#[test]
fn cloudtrail_create_bucket_eventbridge_wrapped() {
    let cases = [
        // No `version` field.
        (
            "09-cloudtrail-api-call/custodian-cwe-s3-CreateBucket-assumedrole-no-version.json",
            "cwe-test",
            "3603e3ef-985e-487a-a85b-f4144102544b",
        ),
        (
            "09-cloudtrail-api-call/custodian-cwe-s3-CreateBucket-root.json",
            "custodian-create-bucket-v4",
            "075efcc5-cc27-4041-accc-5fe2f65ef80d",
        ),
        (
            "09-cloudtrail-api-call/docs-cwe-eventtypes-s3-CreateBucket.json",
            "bucket-test-iad",
            "36eb8523-97d0-4518-b33d-ee3579ff19f0",
        ),
    ];
    for (rel, bucket, id) in cases {
        let e = one(rel);
        let c = cloudtrail(&e);
        assert_eq!((c.event_source.as_str(), c.event_name.as_str()), ("s3.amazonaws.com", "CreateBucket"), "{rel}");
        assert_eq!(c.created_resources(), [bucket], "{rel}");
        assert_eq!(c.response_elements, Value::Null, "{rel}");
        assert_eq!(e.id, id, "{rel}");
    }
    let e = one("09-cloudtrail-api-call/custodian-cwe-s3-CreateBucket-root.json");
    assert_eq!(e.region.as_deref(), Some("us-west-2"));
    assert_eq!(cloudtrail(&e).user_identity_arn.as_deref(), Some("arn:aws:iam::619193117841:root"));
}

/// The same RunInstances record, wrapped by EventBridge, reads the same.
#[test]
fn cloudtrail_bare_and_wrapped_agree() {
    let record: Value = serde_json::from_str(&fixture(
        "09-cloudtrail-api-call/custodian-cloudtrail-record-RunInstances-iamuser-DETAIL-ONLY.json",
    ))
    .expect("json");
    let wrapped = json!({"version": "0", "id": "e1f2a3b4-0000-1111-2222-333344445555",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "account": "644160558196",
        "time": "2016-07-24T10:57:13Z", "region": "us-east-1", "resources": [], "detail": record});
    let e = one_json(&wrapped);
    assert_eq!(e.id, "e1f2a3b4-0000-1111-2222-333344445555");
    assert_eq!(cloudtrail(&e).created_resources(), ["i-0f7c711dc84bedda0"]);
    let bare = parse_body(&record.to_string()).expect("bare");
    assert_eq!(cloudtrail(&bare[0]), cloudtrail(&e));
}

/// No fixture has an RDS CreateDBInstance call; this mirrors CloudTrail's RDS records.
#[test]
fn cloudtrail_create_db_instance() {
    let e = one_json(&json!({
        "version": "0", "id": "2c5b8a8e-8f0a-4f9d-9a6e-1b2c3d4e5f60",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.rds",
        "account": "123456789012", "time": "2024-03-05T10:15:30Z", "region": "eu-west-1", "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:ops",
                "arn": "arn:aws:sts::123456789012:assumed-role/Ops/ops", "accountId": "123456789012",
                "accessKeyId": "ASIAEXAMPLEKEY"},
            "eventTime": "2024-03-05T10:15:28Z", "eventSource": "rds.amazonaws.com",
            "eventName": "CreateDBInstance", "awsRegion": "eu-west-1",
            "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0",
            "requestParameters": {"dBInstanceIdentifier": "Orders-DB", "allocatedStorage": 20,
                "dBInstanceClass": "db.t3.micro", "engine": "postgres", "masterUsername": "postgres",
                "masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS", "backupRetentionPeriod": 7,
                "storageEncrypted": true, "tags": [{"key": "backup", "value": "daily"}]},
            "responseElements": {"dBInstanceIdentifier": "orders-db", "dBInstanceClass": "db.t3.micro",
                "engine": "postgres", "dBInstanceStatus": "creating", "masterUsername": "postgres",
                "allocatedStorage": 20, "backupRetentionPeriod": 7, "multiAZ": false,
                "engineVersion": "16.1", "storageType": "gp2", "storageEncrypted": true,
                "dbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY",
                "dBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:orders-db",
                "tagList": [{"key": "backup", "value": "daily"}]},
            "requestID": "8d4b3c2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", "eventID": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": "123456789012", "eventCategory": "Management"
        }
    }));
    let c = cloudtrail(&e);
    assert_eq!((c.event_source.as_str(), c.event_name.as_str()), ("rds.amazonaws.com", "CreateDBInstance"));
    // RDS lower-cases the identifier; the response has the real one.
    assert_eq!(c.created_resources(), ["orders-db"]);
    assert_eq!(c.event_id.as_deref(), Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789"));
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));

    let v = serde_json::to_value(&e).expect("serialise");
    assert_eq!(v["event"]["type"], "cloud_trail_api_call");
    assert_eq!(v["event"]["request_parameters"]["engine"], "postgres");
    // A failed call created nothing.
    let mut failed = c.clone();
    failed.error_code = Some("DBInstanceAlreadyExists".into());
    assert!(failed.created_resources().is_empty());
}

#[test]
fn cloudtrail_other_records() {
    let e = one("09-cloudtrail-api-call/aws-samples-backup-alarms-organizations-UpdatePolicy-backup-policy.json");
    let c = cloudtrail(&e);
    assert_eq!((c.event_source.as_str(), c.event_name.as_str()), ("organizations.amazonaws.com", "UpdatePolicy"));
    assert!(c.created_resources().is_empty());
    assert_eq!(c.request_parameters["policyId"], "p-89nw1aav4i");

    let e = one("09-cloudtrail-api-call/rust-cloudtrail-record-assumed-role-CreateManagedAccount.json");
    let c = cloudtrail(&e);
    assert_eq!(
        (c.event_source.as_str(), c.event_name.as_str()),
        ("controltower.amazonaws.com", "CreateManagedAccount")
    );
    assert!(c.created_resources().is_empty());
    assert_eq!(e.account.as_deref(), Some("123456789000"));
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));

    // Bare records that are not API calls become Other with EventBridge's naming.
    let e = one("09-cloudtrail-api-call/rust-cloudtrail-record-unknown-federate.json");
    assert_eq!(other(&e), ("aws.sso", "AWS Service Event via CloudTrail"));
    let e = one("09-cloudtrail-api-call/rust-cloudtrail-record-unknown-user-auth.json");
    assert_eq!(other(&e), ("aws.signin", "AWS Service Event via CloudTrail"));
    assert_eq!(e.time, t("2024-07-10T16:05:11Z"));
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_bodies_are_errors() {
    for (body, kind) in [
        ("", "json"),
        ("   \n", "json"),
        ("{", "json"),
        ("not json", "json"),
        ("{\"a\":1}trailing", "json"),
        ("null", "unrecognised"),
        ("[]", "unrecognised"),
        ("[{\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\"}]", "unrecognised"),
        ("{}", "unrecognised"),
        ("42", "unrecognised"),
        ("\"a string\"", "unrecognised"),
        ("{\"Records\": []}", "unrecognised"),
        ("{\"Records\": {}}", "unrecognised"),
        ("{\"Records\": [1]}", "unrecognised"),
    ] {
        let r = parse_body(body);
        let ok = match kind {
            "json" => is_not_json(&r),
            _ => is_unrecognised(&r),
        };
        assert!(ok, "{body:?}: {r:?}");
        let msg = r.expect_err("error").to_string();
        assert!(!msg.is_empty());
    }
}

#[test]
fn deep_nesting_is_refused() {
    for body in [
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        // Unbalanced: never closes.
        "[".repeat(200_000),
        format!("{{\"detail-type\":\"X\",\"source\":\"y\",\"detail\":{}1{}}}", "{\"a\":".repeat(100), "}".repeat(100)),
    ] {
        let r = parse_body(&body);
        assert!(matches!(r, Err(EventError::TooDeep { .. })), "{:?}", r.map(|_| ()));
    }
    // Depth hidden inside a string layer (SNS Message, string detail) is caught too.
    let inner = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let sns = json!({"Type": "Notification", "MessageId": "m", "Message": inner}).to_string();
    let r = parse_body(&sns);
    assert!(matches!(&r, Err(EventError::TooDeep { what, .. }) if what.contains("SNS")), "{r:?}");
    let detail =
        json!({"id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2", "detail": inner}).to_string();
    assert!(matches!(parse_body(&detail), Err(EventError::TooDeep { .. })));
    // Reasonable nesting is fine.
    let ok = json!({"id": "1", "detail-type": "Custom", "source": "app", "detail": {"a": {"b": {"c": [[[[1]]]]}}}});
    assert!(parse_body(&ok.to_string()).is_ok());
}

#[test]
fn oversized_body_is_refused_before_parsing() {
    let padding = "x".repeat(300 * 1024);
    let body = json!({"id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {"pad": padding}})
        .to_string();
    let r = parse_body(&body);
    assert_eq!(r, Err(EventError::TooLarge { len: body.len(), max: MAX_BODY_BYTES }));
    assert!(r.expect_err("err").to_string().contains("262144"));
    // Garbage of the same size is refused the same way, not as "not JSON".
    assert!(matches!(parse_body(&"{".repeat(300 * 1024)), Err(EventError::TooLarge { .. })));
    // Just under the limit is parsed.
    let small = json!({"id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
        "detail": {"pad": "x".repeat(200 * 1024)}});
    assert!(parse_body(&small.to_string()).is_ok());
}

#[test]
fn bad_escapes_and_odd_strings() {
    for body in [
        // Lone surrogates and invalid escapes.
        r#"{"detail-type":"\udc00","source":"aws.ec2"}"#,
        r#"{"detail-type":"Scheduled Event","source":"aws.events","id":"\ud800"}"#,
        r#"{"detail-type":"Scheduled Event","source":"aws.events","id":"\ud800\u0041"}"#,
        r#"{"detail-type":"\x41","source":"aws.events"}"#,
        r#"{"detail-type":"\u12","source":"aws.events"}"#,
        "{\"detail-type\":\"raw\u{1}control\",\"source\":\"aws.events\"}",
    ] {
        let r = parse_body(body);
        assert!(is_not_json(&r), "{body}: {r:?}");
    }
    // Escaped NULs, valid surrogate pairs and non-ASCII are data, not errors.
    let e =
        one_json(&json!({"id": "n\u{0}1", "detail-type": "Custom \u{1F4E6}", "source": "app.\u{e9}", "detail": {}}));
    assert_eq!(other(&e), ("app.\u{e9}", "Custom \u{1F4E6}"));
    let r = parse_body(r#"{"id":"1","detail-type":"\ud83d\udce6","source":"x"}"#).expect("surrogate pair");
    assert_eq!(other(&r[0]).1, "\u{1F4E6}");
}

#[test]
fn malformed_known_events_say_what_is_missing() {
    let cases = [
        (
            json!({"id": "1", "detail-type": "EBS Snapshot Notification", "source": "aws.ec2", "detail": {"event": "createSnapshot", "result": "succeeded"}}),
            "snap-",
        ),
        (
            json!({"id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2", "detail": {"event": "createVolume", "result": "available"}}),
            "vol-",
        ),
        (
            json!({"id": "1", "detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "b"}}}),
            "detail.object",
        ),
        (
            json!({"id": "1", "detail-type": "RDS DB Instance Event", "source": "aws.rds", "detail": {"Message": "m"}}),
            "SourceIdentifier",
        ),
        (
            json!({"id": "1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": {"eventName": "RunInstances"}}),
            "eventSource",
        ),
        (json!({"id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2", "detail": [1, 2]}), "array"),
        (json!({"id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2", "detail": "[1]"}), "array"),
        (json!({"detail-type": "Scheduled Event"}), "source"),
        (json!({"Type": "Notification", "MessageId": "m", "Message": 12}), "Message"),
        (
            json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {}}}]}),
            "key",
        ),
        (json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}), "Bucket"),
    ];
    for (v, needle) in cases {
        let r = parse_body(&v.to_string());
        let Err(EventError::Malformed { reason, .. }) = &r else {
            panic!("{v}: expected Malformed, got {r:?}");
        };
        assert!(reason.contains(needle), "{v}: {reason}");
    }
    // A string detail that is not JSON.
    let r = parse_body(
        &json!({"id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2", "detail": "{oops"})
            .to_string(),
    );
    assert!(matches!(&r, Err(EventError::NotJson { what, .. }) if what.contains("detail")), "{r:?}");
}

#[test]
fn nested_sns_is_bounded() {
    let mut body = fixture("02-ec2-instance-state/docs-lambda-guide-running.json");
    for depth in 1..=6 {
        body = json!({"Type": "Notification", "MessageId": format!("m{depth}"), "Message": body}).to_string();
        let r = parse_body(&body);
        if depth <= 3 {
            assert!(r.is_ok(), "depth {depth}: {r:?}");
        } else {
            assert!(is_unrecognised(&r), "depth {depth}: {r:?}");
        }
    }
}

#[test]
fn parsed_events_serialise() {
    let e = one("03-ebs-snapshot/docs-copySnapshot-succeeded.json");
    let v = serde_json::to_value(&e).expect("serialise");
    assert_eq!(v["event"]["type"], "ebs_snapshot");
    assert_eq!(v["event"]["event"], "copySnapshot");
    assert_eq!(v["event"]["result"], "succeeded");
    assert_eq!(v["event"]["snapshot_id"], "snap-01234567");
    let e = one("02-ec2-instance-state/docs-cwe-patterns-terminated.json");
    let v = serde_json::to_value(&e).expect("serialise");
    assert_eq!(
        v["event"],
        json!({"type": "ec2_instance_state_change", "instance_id": "i-1234567890abcdef0", "state": "terminated"})
    );
    assert_eq!(v["time"], "2017-12-22T18:43:48Z");
}
