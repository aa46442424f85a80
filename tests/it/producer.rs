//! The producer against the emulator: expansion selects exactly the tagged resources of the
//! plan's regions, a re-run enqueues the same ids (nothing new in effect), dry-run sends nothing,
//! sample events map to tasks or a counted "not selected", malformed events reach the events DLQ,
//! and one trace runs from `backup-producer run` through the worker.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_core::ports::{OutgoingMessage, TaskQueue, ATTR_REASON, ATTR_REASON_CODE};
use backup_tests::{drain_messages, policy_file, run_binary, Fleet, DR_REGION, REGION};
use std::collections::BTreeSet;
use std::time::Duration;

async fn volume(fleet: &Fleet, region: &str, tags: &[(&str, &str)]) -> String {
    let clients = fleet.aws.clients_in(region);
    let spec = (!tags.is_empty()).then(|| {
        TagSpecification::builder()
            .resource_type(Ec2ResourceType::Volume)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .build()
    });
    clients
        .ec2
        .create_volume()
        .availability_zone(format!("{region}a"))
        .size(8)
        .set_tag_specifications(spec.map(|s| vec![s]))
        .send()
        .await
        .unwrap()
        .volume_id
        .unwrap()
}

fn policy(fleet: &Fleet, selector_value: &str) -> std::path::PathBuf {
    policy_file(
        &fleet.prefix,
        &format!(
            r#"
[[plan]]
name = "nightly"
schedule = "cron(0 3 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "{selector_value}" }}
select.exclude_tags = {{ backup-skip = "true" }}
retain = {{ days = 7, min_keep = 1 }}
"#
        ),
    )
}

fn env_with_policy(fleet: &Fleet, policy: &std::path::Path) -> Vec<(String, String)> {
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    env
}

#[tokio::test]
async fn expansion_selects_exactly_the_tagged_resources_and_dry_run_sends_nothing() {
    let fleet = Fleet::new("expand").await;
    // A selector value unique to this test: other tests share the emulator.
    let value = fleet.prefix.clone();
    let selected = volume(&fleet, REGION, &[("backup", &value)]).await;
    let _excluded = volume(&fleet, REGION, &[("backup", &value), ("backup-skip", "true")]).await;
    let _untagged = volume(&fleet, REGION, &[]).await;
    let _other_value = volume(&fleet, REGION, &[("backup", "weekly")]).await;
    let _other_region = volume(&fleet, DR_REGION, &[("backup", &value)]).await;
    let env = env_with_policy(&fleet, &policy(&fleet, &value));

    let dry = run_binary(
        "backup-producer",
        &env,
        &["run", "--plan", "nightly", "--at", "2026-11-21T05:00:00Z", "--dry-run", "--json"],
    )
    .await;
    assert!(dry.status.success(), "{}", dry.stderr);
    let output = dry.json();
    let tasks = output["tasks"].as_array().unwrap();
    let resources: BTreeSet<&str> = tasks.iter().map(|t| t["resource"].as_str().unwrap()).collect();
    assert_eq!(
        resources,
        BTreeSet::from([selected.as_str()]),
        "only the tagged, not excluded volume of the plan's region: {output}"
    );
    assert_eq!(tasks[0]["kind"], "ebs.snapshot_volume");
    assert_eq!(output["window"]["start"], "2026-11-21T03:00:00Z", "the window containing --at");
    assert_eq!(output["dry_run"], true);
    let depth = fleet.queue().depth().await.unwrap();
    assert_eq!(depth.visible + depth.in_flight + depth.delayed, 0, "a dry run sends nothing");

    // Two real runs of the same window enqueue the same ids.
    let first =
        run_binary("backup-producer", &env, &["run", "--plan", "nightly", "--at", "2026-11-21T05:00:00Z", "--json"])
            .await
            .json();
    let second =
        run_binary("backup-producer", &env, &["run", "--plan", "nightly", "--at", "2026-11-21T23:59:00Z", "--json"])
            .await
            .json();
    assert_eq!(first["tasks"], second["tasks"], "the same window, the same task ids");
    assert_eq!(first["sent"]["sent"], 1);
    // A worker runs it once; the second message is a duplicate.
    let mut worker = fleet.worker(
        "w",
        &[
            "--exit-when-idle=6",
            "--receive-wait-secs=1",
            "--visibility-timeout-secs=4",
            "--lease-secs=4",
            "--heartbeat-secs=1",
        ],
    );
    let status = worker.wait_async(Duration::from_secs(120)).await;
    assert!(status.success(), "{}", worker.log_tail(30));
    assert_eq!(worker.count("ebs.snapshot_volume", "succeeded"), 1);
    assert_eq!(worker.count("ebs.snapshot_volume", "duplicate"), 1);
    let snapshots = fleet
        .aws
        .clients()
        .ec2
        .describe_snapshots()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:backup-fleet:source").values(&selected).build())
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.snapshots().len(), 1, "one snapshot for the window");
}

#[tokio::test]
async fn one_trace_runs_from_the_producer_through_the_queue_to_the_worker() {
    let fleet = Fleet::new("trace").await;
    let value = fleet.prefix.clone();
    volume(&fleet, REGION, &[("backup", &value)]).await;
    let env = env_with_policy(&fleet, &policy(&fleet, &value));
    let run = run_binary("backup-producer", &env, &["run", "--plan", "nightly", "--json"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let trace_of = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v["trace_id"].as_str().map(str::to_owned))
    };
    let producer_trace = run
        .stderr
        .lines()
        .filter(|l| l.contains("window expanded"))
        .find_map(trace_of)
        .unwrap_or_else(|| panic!("the expansion logs its X-Ray trace id: {}", run.stderr));
    let xray = |id: &str| {
        let parts: Vec<&str> = id.split('-').collect();
        parts.len() == 3
            && parts[0] == "1"
            && parts[1].len() == 8
            && parts[2].len() == 24
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    };
    assert!(xray(&producer_trace), "X-Ray format: {producer_trace}");

    let mut worker = fleet.worker(
        "w",
        &[
            "--exit-when-idle=6",
            "--receive-wait-secs=1",
            "--visibility-timeout-secs=4",
            "--lease-secs=4",
            "--heartbeat-secs=1",
        ],
    );
    assert!(worker.wait_async(Duration::from_secs(120)).await.success());
    let log = std::fs::read_to_string(&worker.log_path).unwrap();
    let task_traces: BTreeSet<String> =
        log.lines().filter(|l| l.contains("task succeeded")).filter_map(trace_of).collect();
    assert!(!task_traces.is_empty(), "worker logged its tasks: {}", worker.log_tail(20));
    // The snapshot task and the verification it spawned all continue the producer's trace.
    assert_eq!(task_traces, BTreeSet::from([producer_trace.clone()]), "every task carries the producer's trace");
    assert!(worker.count("verify.artifact", "succeeded") >= 1, "the fan-out child ran in the same trace");
}

#[tokio::test]
async fn events_map_to_tasks_or_are_counted_and_malformed_ones_reach_the_events_dlq() {
    let fleet = Fleet::new("events").await;
    let value = fleet.prefix.clone();
    let env = env_with_policy(&fleet, &policy(&fleet, &value));
    let fixtures = backup_tests::repo_root().join("schemas/fixtures/aws-events");

    // A scheduled event for a rule no plan owns, an S3 test event, a console sign-in: counted,
    // not dead-lettered, nothing enqueued.
    for file in [
        "01-scheduled/docs-eb-run-lambda-schedule-scheduled-event.json",
        "06-s3/docs-s3-TestEvent.json",
        "09-cloudtrail-api-call/docs-cwe-eventtypes-ConsoleLogin.json",
    ] {
        let path = fixtures.join(file);
        let out = run_binary("backup-producer", &env, &["ingest", path.to_str().unwrap(), "--dry-run", "--json"]).await;
        assert!(out.status.success(), "{file}: {}", out.stderr);
        let json = out.json();
        assert_eq!(json["tasks"].as_array().unwrap().len(), 0, "{file}: {json}");
        assert!(
            !json["stats"]["not_selected"].as_object().unwrap().is_empty(),
            "{file} is counted as not selected: {json}"
        );
    }

    // The same scheduled event, with the rule named after the plan, expands the plan.
    let volume_id = volume(&fleet, REGION, &[("backup", &value)]).await;
    let body = std::fs::read_to_string(fixtures.join("01-scheduled/docs-eb-run-lambda-schedule-scheduled-event.json"))
        .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&body).unwrap();
    event["resources"] = serde_json::json!(["arn:aws:events:us-east-1:123456789012:rule/backup-fleet-plan-nightly"]);
    let events_queue = backup_aws::sqs::SqsQueue::new(fleet.aws.clients().sqs, &fleet.resources.event_queue_url);
    for body in [event.to_string(), "this is not an event".to_owned(), "{\"unrelated\": true}".to_owned()] {
        events_queue.send(&OutgoingMessage { id: "0".into(), body, ..Default::default() }).await.unwrap();
    }
    let mut serve = backup_tests::FleetProcess::spawn(
        "backup-producer",
        "serve",
        &fleet.prefix,
        &env,
        &["serve", "--exit-when-idle", "4", "--wait-secs", "1"],
    );
    assert!(serve.wait_async(Duration::from_secs(60)).await.success(), "{}", serve.log_tail(20));
    let tasks = drain_messages(&fleet.queue(), 1, Duration::from_secs(5)).await;
    assert_eq!(tasks.len(), 1, "the scheduled event expanded the plan into one task");
    assert!(tasks[0].body.contains(&volume_id));
    let dlq = backup_aws::sqs::SqsQueue::new(fleet.aws.clients().sqs, &fleet.resources.event_dlq_url);
    let dead = drain_messages(&dlq, 2, Duration::from_secs(5)).await;
    let bodies: BTreeSet<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        BTreeSet::from(["this is not an event", "{\"unrelated\": true}"]),
        "malformed bodies, intact, in the events DLQ"
    );
    for message in &dead {
        assert_eq!(message.attributes.get(ATTR_REASON_CODE).map(String::as_str), Some("malformed_event"));
        assert!(message.attributes.get(ATTR_REASON).is_some_and(|r| !r.is_empty()));
    }
    assert_eq!(events_queue.depth().await.unwrap().visible, 0, "every event was acknowledged");
}

/// The SQS bodies a fixture stands for: the file itself, or for Lambda / ReceiveMessage envelopes
/// the bodies inside them (as an SQS consumer would see them).
fn bodies_of(text: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let records = value["Records"].as_array().or_else(|| value["Messages"].as_array());
    match records {
        Some(records)
            if records.iter().any(|r| r.get("body").is_some() || r.get("Sns").is_some() || r.get("Body").is_some()) =>
        {
            records
                .iter()
                .filter_map(|r| {
                    r["body"]
                        .as_str()
                        .or_else(|| r["Body"].as_str())
                        .or_else(|| r["Sns"]["Message"].as_str())
                        .map(str::to_owned)
                })
                .collect()
        }
        _ => vec![text.to_owned()],
    }
}

#[tokio::test]
async fn every_sample_event_maps_to_tasks_or_to_a_counted_not_selected() {
    let fleet = Fleet::new("fixtures").await;
    let policy = policy_file(
        &fleet.prefix,
        r#"
[[plan]]
name = "everything"
schedule = "cron(0 3 * * ? *)"
resources = ["ec2-volume", "ec2-instance", "rds-instance", "rds-cluster", "s3-bucket"]
regions = ["us-east-1", "us-west-2", "eu-west-1"]
select.tags = { backup = "fixtures" }
retain = { days = 7 }
final_snapshot_on_stop = true
s3 = { backup_bucket = "fixture-backups" }
"#,
    );
    let env = env_with_policy(&fleet, &policy);
    let root = backup_tests::repo_root().join("schemas/fixtures/aws-events");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for file in std::fs::read_dir(&dir).unwrap() {
                files.push(file.unwrap().path());
            }
        }
    }
    files.sort();
    assert!(files.len() >= 80, "fixtures found: {}", files.len());
    let scratch = std::env::temp_dir().join("backup-fleet-tests").join(&fleet.prefix);
    let (mut mapped, mut not_selected, mut not_events) = (0, 0, 0);
    for file in &files {
        for (i, body) in bodies_of(&std::fs::read_to_string(file).unwrap()).into_iter().enumerate() {
            let path = scratch.join(format!("body-{i}.json"));
            std::fs::write(&path, &body).unwrap();
            let out =
                run_binary("backup-producer", &env, &["ingest", path.to_str().unwrap(), "--dry-run", "--json"]).await;
            let name = file.strip_prefix(&root).unwrap().display();
            match out.status.code() {
                Some(0) => {
                    let json = out.json();
                    let tasks = json["tasks"].as_array().unwrap().len();
                    let counted = json["stats"]["not_selected"]
                        .as_object()
                        .unwrap()
                        .values()
                        .filter_map(|v| v.as_u64())
                        .sum::<u64>();
                    assert!(tasks > 0 || counted > 0, "{name}: neither tasks nor a counted not-selected: {json}");
                    if tasks > 0 {
                        mapped += 1;
                    } else {
                        not_selected += 1;
                    }
                }
                // Not an event at all (a plain SNS message, say): a clear error, exit 2.
                Some(2) => {
                    assert!(out.stderr.contains("error:"), "{name}: {}", out.stderr);
                    not_events += 1;
                }
                other => panic!("{name}: ingest exited {other:?}: {}", out.stderr),
            }
        }
    }
    // Nothing is selected in this estate except what the fixtures name themselves (the scheduled
    // events name rules no plan owns), so most map to a counted not-selected.
    assert!(not_selected > 50, "mapped {mapped}, not selected {not_selected}, not events {not_events}");
}
