//! Traces as exported (OTLP/HTTP, decoded here): one trace runs from `backup-producer run`
//! through the queue to the worker's task spans and the AWS calls they made, with X-Ray-format
//! ids, and a fan-out child continues it with a link to its parent.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_tests::{policy_file, run_binary, Fleet, FleetProcess, REGION};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value as Number};
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Request bodies received, by path.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP collector: records every request body by path, answers 200.
async fn collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let store = store.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // Read one request: head, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buffer.len() < head_end + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buffer[head_end..head_end + length].to_vec();
                    buffer.drain(..head_end + length);
                    store.lock().unwrap().push((path, body));
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, received)
}

#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    links: Vec<String>,
}

fn spans(received: &[(String, Vec<u8>)]) -> Vec<Span> {
    let mut spans = Vec::new();
    for (path, body) in received.iter().filter(|(p, _)| p.ends_with("/v1/traces")) {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap_or_else(|e| panic!("{path}: {e}"));
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Span {
                        trace: hex(&span.trace_id),
                        id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        name: span.name,
                        links: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                    });
                }
            }
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn exported_spans_form_one_xray_trace_from_the_producer_to_the_worker_and_its_aws_calls() {
    let fleet = Fleet::new("otlp").await;
    let (endpoint, received) = collector().await;
    let value = fleet.prefix.clone();
    let spec = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Volume)
        .tags(Tag::builder().key("backup").value(&value).build())
        .build();
    fleet
        .aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(8)
        .tag_specifications(spec)
        .send()
        .await
        .unwrap();
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            "[[plan]]\nname = \"traced\"\nschedule = \"rate(1 day)\"\nresources = [\"ec2-volume\"]\nregions = [\"{REGION}\"]\nselect.tags = {{ backup = \"{value}\" }}\nretain = {{ days = 7 }}\n"
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()));

    let run = run_binary("backup-producer", &env, &["run", "--plan", "traced", "--json"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let mut worker = FleetProcess::spawn(
        "backup-worker",
        "w",
        &fleet.prefix,
        &env,
        &[
            "--exit-when-idle=5",
            "--receive-wait-secs=1",
            "--visibility-timeout-secs=4",
            "--lease-secs=4",
            "--heartbeat-secs=1",
        ],
    );
    assert!(worker.wait_async(Duration::from_secs(120)).await.success(), "{}", worker.log_tail(20));

    let spans = spans(&received.lock().unwrap());
    let expand =
        spans.iter().find(|s| s.name == "expand").unwrap_or_else(|| panic!("no expansion span exported: {spans:#?}"));
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace == expand.trace).collect();
    // X-Ray trace ids start with the epoch seconds of their creation.
    let epoch = i64::from_str_radix(&expand.trace[..8], 16).unwrap();
    assert!((chrono::Utc::now().timestamp() - epoch).abs() < 3600, "X-Ray-format trace id: {}", expand.trace);

    let tasks: Vec<&&Span> = trace.iter().filter(|s| s.name == "task").collect();
    assert!(tasks.len() >= 2, "the snapshot task and its verification continue the producer's trace: {trace:#?}");
    for task in &tasks {
        assert!(
            trace.iter().any(|s| s.id == task.parent) || task.parent == expand.id,
            "every task span hangs off the producer's trace: {task:?}"
        );
    }
    assert!(trace.iter().any(|s| s.name == "task" && !s.links.is_empty()), "the fan-out child links to its parent");
    // The AWS calls a task made are spans of the same trace, under the task.
    let task_ids: std::collections::BTreeSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let snapshot_call = trace
        .iter()
        .find(|s| s.name == "EC2.CreateSnapshot")
        .unwrap_or_else(|| panic!("the CreateSnapshot call is a span of the trace: {trace:#?}"));
    assert!(task_ids.contains(snapshot_call.parent.as_str()), "under the task span: {snapshot_call:?}");
}

/// `coverage_resources` data points as exported: (status, resource_type) -> value.
fn coverage_points(received: &[(String, Vec<u8>)]) -> std::collections::BTreeMap<(String, String), i64> {
    let mut points = std::collections::BTreeMap::new();
    for (path, body) in received.iter().filter(|(p, _)| p.ends_with("/v1/metrics")) {
        let request = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap_or_else(|e| panic!("{path}: {e}"));
        for metric in request.resource_metrics.into_iter().flat_map(|r| r.scope_metrics).flat_map(|s| s.metrics) {
            let Some(Data::Gauge(gauge)) = metric.data.filter(|_| metric.name == "coverage_resources") else {
                continue;
            };
            for point in gauge.data_points {
                let attribute = |key: &str| {
                    point.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
                        match kv.value.as_ref()?.value.as_ref()? {
                            AnyValue::StringValue(s) => Some(s.clone()),
                            _ => None,
                        }
                    })
                };
                let value = match point.value {
                    Some(Number::AsInt(v)) => v,
                    Some(Number::AsDouble(v)) => v as i64,
                    None => continue,
                };
                points.insert(
                    (attribute("status").unwrap_or_default(), attribute("resource_type").unwrap_or_default()),
                    value,
                );
            }
        }
    }
    points
}

#[tokio::test]
async fn the_producer_publishes_coverage_for_every_status_and_type() {
    let fleet = Fleet::new("covgauge").await;
    let (endpoint, received) = collector().await;
    let spec = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Volume)
        .tags(Tag::builder().key("backup").value(&fleet.prefix).build())
        .build();
    let ec2 = fleet.aws.clients().ec2;
    ec2.create_volume().availability_zone("us-east-1a").size(8).tag_specifications(spec).send().await.unwrap();
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            "[[plan]]\nname = \"gauged\"\nschedule = \"rate(1 day)\"\nresources = [\"ec2-volume\"]\nregions = [\"{REGION}\"]\nselect.tags = {{ backup = \"{}\" }}\nretain = {{ days = 7 }}\n",
            fleet.prefix
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()));
    // One pass at start; the idle exit lets it finish, and the exporter flushes on the way out.
    let serve = run_binary("backup-producer", &env, &["serve", "--exit-when-idle", "2", "--wait-secs", "1"]).await;
    assert!(serve.status.success(), "{}", serve.stderr);
    assert!(serve.stderr.contains("coverage published"), "{}", serve.stderr);
    let points = coverage_points(&received.lock().unwrap());
    // Every status of every type, zeros included, so an alarm on any of them can clear.
    assert_eq!(points.len(), 6 * backup_schemas::ResourceType::ALL.len(), "{points:?}");
    assert!(points[&("never-backed-up".to_owned(), "ec2-volume".to_owned())] >= 1, "{points:?}");
    assert_eq!(points[&("protected".to_owned(), "ec2-volume".to_owned())], 0, "nothing was backed up: {points:?}");
}
