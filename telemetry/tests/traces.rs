//! Trace context through `tracing` with the SDK's in-memory exporters (no network, no global
//! state: each test builds its own scoped subscriber).

mod common;

use backup_telemetry::{
    add_event_link, add_link_from_xray, add_links, aws_call_span, current_xray_header, current_xray_trace_id,
    event_span_context, parse_xray_header, record_aws_result, set_parent_from_xray, xray_trace_id, LogFormat,
    TelemetryBuilder, TelemetryGuard,
};
use common::{assert_fresh_xray_trace_id, LogBuffer, REMOTE_HEADER, REMOTE_PARENT, REMOTE_TRACE_ID};
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::time::Duration;

struct Harness {
    dispatch: tracing::Dispatch,
    _guard: TelemetryGuard,
    spans: InMemorySpanExporter,
    logs: LogBuffer,
}

impl Harness {
    fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        let logs = LogBuffer::default();
        let (dispatch, guard) = TelemetryBuilder::new("telemetry-test")
            .format(LogFormat::Json)
            .default_level("info")
            .writer(logs.clone())
            .span_exporter(spans.clone())
            .build();
        Self { dispatch, _guard: guard, spans, logs }
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    fn span(&self, name: &str) -> SpanData {
        let spans = self.spans.get_finished_spans().unwrap();
        spans
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no span {name:?} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

#[test]
fn spans_get_fresh_xray_trace_ids_and_nest() {
    let h = Harness::new();
    h.run(|| {
        let root = tracing::info_span!("root");
        root.in_scope(|| tracing::info_span!("child").in_scope(|| {}));
    });
    let (root, child) = (h.span("root"), h.span("child"));
    assert_fresh_xray_trace_id(&xray_trace_id(root.span_context.trace_id()));
    assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
    assert_eq!(child.parent_span_id, root.span_context.span_id());
    assert_eq!(root.parent_span_id, SpanId::INVALID);

    h.run(|| tracing::info_span!("another").in_scope(|| {}));
    assert_ne!(h.span("another").span_context.trace_id(), root.span_context.trace_id());
}

#[test]
fn a_parent_from_an_xray_header_is_honoured() {
    let h = Harness::new();
    let (inside_trace, inside_header) = h.run(|| {
        let task = tracing::info_span!("task", kind = "ebs_snapshot");
        assert!(set_parent_from_xray(&task, REMOTE_HEADER));
        task.in_scope(|| (current_xray_trace_id(), current_xray_header()))
    });
    let task = h.span("task");
    assert_eq!(xray_trace_id(task.span_context.trace_id()), REMOTE_TRACE_ID);
    assert_eq!(task.parent_span_id, SpanId::from_hex(REMOTE_PARENT).unwrap());
    assert!(task.parent_span_is_remote);
    assert_eq!(inside_trace.as_deref(), Some(REMOTE_TRACE_ID));
    assert_eq!(
        inside_header.as_deref(),
        Some(format!("Root={REMOTE_TRACE_ID};Parent={};Sampled=1", task.span_context.span_id()).as_str()),
        "the header names the task span itself as the parent of whatever receives it"
    );
}

#[test]
fn a_parent_cannot_be_set_once_the_span_has_started_and_bad_headers_are_ignored() {
    let h = Harness::new();
    h.run(|| {
        let late = tracing::info_span!("late");
        late.in_scope(|| {});
        assert!(!set_parent_from_xray(&late, REMOTE_HEADER), "entered spans keep their parent");
        let garbled = tracing::info_span!("garbled");
        assert!(!set_parent_from_xray(&garbled, "Root=nonsense"));
        garbled.in_scope(|| {});
    });
    assert_ne!(xray_trace_id(h.span("late").span_context.trace_id()), REMOTE_TRACE_ID);
    assert_fresh_xray_trace_id(&xray_trace_id(h.span("garbled").span_context.trace_id()));
}

#[test]
fn the_current_header_round_trips_from_producer_to_worker() {
    let h = Harness::new();
    // Producer: the header of its current span goes into the message.
    let header = h.run(|| tracing::info_span!("enqueue").in_scope(current_xray_header)).expect("header inside a span");
    assert!(parse_xray_header(&header).is_some(), "{header}");
    // Worker: the task span is parented on it.
    h.run(|| {
        let task = tracing::info_span!("task");
        assert!(set_parent_from_xray(&task, &header));
        task.in_scope(|| {});
    });
    let (enqueue, task) = (h.span("enqueue"), h.span("task"));
    assert_eq!(task.span_context.trace_id(), enqueue.span_context.trace_id());
    assert_eq!(task.parent_span_id, enqueue.span_context.span_id());
    // Outside any span there is nothing to propagate.
    assert_eq!(h.run(current_xray_header), None);
    assert_eq!(h.run(current_xray_trace_id), None);
}

#[test]
fn links_are_recorded_for_fan_out_and_events() {
    let h = Harness::new();
    let other = "Root=1-66000000-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1";
    h.run(|| {
        let child = tracing::info_span!("child_task");
        assert!(add_link_from_xray(&child, REMOTE_HEADER));
        add_event_link(&child, "event-42");
        child.in_scope(|| {});
        let mixed = tracing::info_span!("mixed");
        add_links(&mixed, &[other.to_owned(), "event-7".to_owned(), String::new()]);
        mixed.in_scope(|| {});
    });

    let child = h.span("child_task");
    let links = &child.links.links;
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(xray_trace_id(links[0].span_context.trace_id()), REMOTE_TRACE_ID);
    assert_eq!(links[0].span_context.span_id(), SpanId::from_hex(REMOTE_PARENT).unwrap());
    assert_eq!(links[1].span_context, event_span_context("event-42"));
    assert!(links[1].attributes.iter().any(|kv| kv.key.as_str() == "event.id" && kv.value.as_str() == "event-42"));
    assert_ne!(child.span_context.trace_id(), links[0].span_context.trace_id(), "a link is not a parent");

    let mixed = h.span("mixed");
    let targets: Vec<_> = mixed.links.links.iter().map(|l| l.span_context.trace_id()).collect();
    assert_eq!(targets, vec![parse_xray_header(other).unwrap().trace_id(), event_span_context("event-7").trace_id()]);
}

#[test]
fn json_logs_carry_the_remote_trace_id_inside_a_span() {
    let h = Harness::new();
    h.run(|| {
        tracing::info!("outside");
        let task = tracing::info_span!("task", task_id = "t-1");
        set_parent_from_xray(&task, REMOTE_HEADER);
        task.in_scope(|| {
            tracing::info!(attempt = 2, "inside");
            tracing::info_span!("step").in_scope(|| tracing::warn!("nested"));
        });
    });
    let inside = h.logs.find("inside");
    assert_eq!(inside["trace_id"], REMOTE_TRACE_ID, "{inside}");
    assert_eq!(inside["attempt"], 2);
    assert_eq!(inside["span"]["task_id"], "t-1");
    assert_eq!(inside["level"], "INFO");
    assert_eq!(h.logs.find("nested")["trace_id"], REMOTE_TRACE_ID);
    assert!(h.logs.find("outside").get("trace_id").is_none());
    // Every line is one JSON object with the trace id first, as the stock formatter's output.
    assert!(h.logs.lines().iter().find(|l| l.contains("\"inside\"")).unwrap().starts_with("{\"trace_id\":\"1-"));
}

#[test]
fn json_logs_carry_trace_ids_with_export_off() {
    let logs = LogBuffer::default();
    let (dispatch, guard) = TelemetryBuilder::new("telemetry-test").writer(logs.clone()).build();
    assert!(!guard.exporting());
    tracing::dispatcher::with_default(&dispatch, || {
        let task = tracing::info_span!("task");
        set_parent_from_xray(&task, REMOTE_HEADER);
        task.in_scope(|| tracing::info!("from the message's trace"));
        tracing::info_span!("local").in_scope(|| tracing::info!("own trace"));
    });
    assert_eq!(logs.find("from the message's trace")["trace_id"], REMOTE_TRACE_ID);
    assert_fresh_xray_trace_id(logs.find("own trace")["trace_id"].as_str().unwrap());
}

#[test]
fn text_logs_still_work() {
    let logs = LogBuffer::default();
    let (dispatch, _guard) =
        TelemetryBuilder::new("telemetry-test").format(LogFormat::Text).writer(logs.clone()).build();
    tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("s").in_scope(|| tracing::info!("plain")));
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("plain") && !lines[0].starts_with('{'), "{lines:?}");
}

#[test]
fn aws_call_spans_carry_rpc_attributes_and_errors() {
    let h = Harness::new();
    h.run(|| {
        let task = tracing::info_span!("task");
        task.in_scope(|| {
            let ok = aws_call_span("SQS", "ReceiveMessage");
            record_aws_result(&ok, Some("req-1"), 1, None);
            drop(ok);
            let failed = aws_call_span("EC2", "CreateSnapshot");
            record_aws_result(&failed, Some("req-2"), 3, Some("RequestLimitExceeded"));
        });
    });
    let spans = h.spans.get_finished_spans().unwrap();
    let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}")).clone();
    let ok = by_name("SQS.ReceiveMessage");
    assert_eq!(ok.span_kind, SpanKind::Client);
    assert_eq!(ok.parent_span_id, h.span("task").span_context.span_id());
    assert_eq!(attribute(&ok, "rpc.system"), Some(Value::from("aws-api")));
    assert_eq!(attribute(&ok, "rpc.service"), Some(Value::from("SQS")));
    assert_eq!(attribute(&ok, "rpc.method"), Some(Value::from("ReceiveMessage")));
    assert_eq!(attribute(&ok, "aws.request_id"), Some(Value::from("req-1")));
    assert_eq!(attribute(&ok, "aws.attempts"), Some(Value::I64(1)));
    assert_eq!(ok.status, Status::Unset);

    let failed = by_name("EC2.CreateSnapshot");
    assert_eq!(attribute(&failed, "aws.retries"), Some(Value::I64(2)));
    assert_eq!(attribute(&failed, "error.type"), Some(Value::from("RequestLimitExceeded")));
    assert!(matches!(failed.status, Status::Error { .. }), "{:?}", failed.status);
}

#[test]
fn metrics_record_bounded_labels() {
    let exporter = InMemoryMetricExporter::default();
    let (dispatch, guard) = TelemetryBuilder::new("telemetry-test").metric_exporter(exporter.clone()).build();
    drop(dispatch);
    let metrics = guard.metrics();
    metrics.task_finished("ebs_snapshot", "succeeded", Duration::from_millis(1500));
    metrics.task_finished("ebs_snapshot", "succeeded", Duration::from_secs(3));
    metrics.task_finished("rds_snapshot", "failed", Duration::from_secs(1));
    metrics.queue_lag("ebs_snapshot", 2.5);
    metrics.queue_lag("ebs_snapshot", -1.0);
    metrics.takeover();
    metrics.dlq_move("bad_json");
    metrics.aws_call("EC2", "CreateSnapshot", false);
    metrics.aws_call("EC2", "CreateSnapshot", true);
    metrics.stale_receipt_handle();
    guard.shutdown();

    let exported = exporter.get_finished_metrics().unwrap();
    let all: Vec<_> = exported.iter().flat_map(|rm| rm.scope_metrics()).flat_map(|sm| sm.metrics()).collect();
    let find = |name: &str| *all.iter().find(|m| m.name() == name).unwrap_or_else(|| panic!("no metric {name}"));
    let labels = |attrs: Vec<&opentelemetry::KeyValue>| {
        let mut l: Vec<String> = attrs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
        l.sort();
        l.join(",")
    };

    let AggregatedMetrics::U64(MetricData::Sum(tasks)) = find("tasks_total").data() else { panic!("tasks_total") };
    let mut points: Vec<(String, u64)> =
        tasks.data_points().map(|p| (labels(p.attributes().collect()), p.value())).collect();
    points.sort();
    assert_eq!(
        points,
        vec![("kind=ebs_snapshot,outcome=succeeded".to_owned(), 2), ("kind=rds_snapshot,outcome=failed".to_owned(), 1)]
    );

    let AggregatedMetrics::F64(MetricData::Histogram(durations)) = find("task_duration_seconds").data() else {
        panic!("task_duration_seconds")
    };
    let ebs = durations.data_points().find(|p| labels(p.attributes().collect()) == "kind=ebs_snapshot").unwrap();
    assert_eq!((ebs.count(), ebs.sum()), (2, 4.5));

    let AggregatedMetrics::F64(MetricData::Histogram(lag)) = find("queue_lag_seconds").data() else { panic!("lag") };
    let lag = lag.data_points().next().unwrap();
    assert_eq!((lag.count(), lag.sum(), lag.min()), (2, 2.5, Some(0.0)), "negative lag is clamped");

    let AggregatedMetrics::U64(MetricData::Sum(throttled)) = find("aws_throttled_total").data() else { panic!() };
    let throttled: Vec<_> = throttled.data_points().map(|p| (labels(p.attributes().collect()), p.value())).collect();
    assert_eq!(throttled, vec![("operation=CreateSnapshot,service=EC2".to_owned(), 1)]);
    let AggregatedMetrics::U64(MetricData::Sum(calls)) = find("aws_calls_total").data() else { panic!() };
    assert_eq!(calls.data_points().map(|p| p.value()).sum::<u64>(), 2);
    let AggregatedMetrics::U64(MetricData::Sum(dlq)) = find("dlq_moves_total").data() else { panic!() };
    assert_eq!(labels(dlq.data_points().next().unwrap().attributes().collect()), "reason_code=bad_json");
    let AggregatedMetrics::U64(MetricData::Sum(takeovers)) = find("lease_takeovers_total").data() else { panic!() };
    assert_eq!(takeovers.data_points().next().unwrap().value(), 1);
    let AggregatedMetrics::U64(MetricData::Sum(stale)) = find("stale_receipt_handles_total").data() else { panic!() };
    assert_eq!(stale.data_points().next().unwrap().value(), 1);

    let resource = exported[0].resource();
    assert_eq!(resource.get(&"service.name".into()), Some(Value::from("telemetry-test")));
    assert_eq!(resource.get(&"cloud.provider".into()), Some(Value::from("aws")));
}

#[test]
fn metrics_without_an_exporter_are_noops() {
    let (_dispatch, guard) = TelemetryBuilder::new("telemetry-test").build();
    let metrics = guard.metrics();
    metrics.task_finished("ebs_snapshot", "succeeded", Duration::from_secs(1));
    metrics.aws_call("SQS", "SendMessageBatch", true);
    backup_telemetry::metrics().takeover();
}
