//! AWS call spans are built only once something consumes spans. Its own test binary: whether a
//! span consumer was built is per process, and every other telemetry test builds one.

mod common;

use backup_telemetry::{aws_call_span, record_aws_result, LogFormat, TelemetryBuilder};
use common::LogBuffer;
use opentelemetry_sdk::trace::InMemorySpanExporter;

#[test]
fn an_aws_calls_span_is_built_only_once_spans_are_consumed() {
    // Logs only, no exporter (a worker without OTEL_EXPORTER_OTLP_ENDPOINT): nothing would see the
    // span, so none is built.
    let logs = LogBuffer::default();
    let (logs_only, _guard) =
        TelemetryBuilder::new("telemetry-test").format(LogFormat::Json).writer(logs.clone()).build();
    tracing::dispatcher::with_default(&logs_only, || {
        let span = aws_call_span("SQS", "ReceiveMessage");
        assert!(span.is_disabled());
        record_aws_result(&span, Some("req-1"), 1, None);
    });

    // With a span consumer, every call has its span again.
    let spans = InMemorySpanExporter::default();
    let (traced, _guard) = TelemetryBuilder::new("telemetry-test")
        .format(LogFormat::Json)
        .writer(logs)
        .span_exporter(spans.clone())
        .build();
    tracing::dispatcher::with_default(&traced, || drop(aws_call_span("SQS", "ReceiveMessage")));
    let names: Vec<String> = spans.get_finished_spans().unwrap().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["SQS.ReceiveMessage"]);
}
