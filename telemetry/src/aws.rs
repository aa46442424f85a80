//! Spans for AWS API calls, with the attributes the ADOT collector's X-Ray exporter turns into an
//! AWS subsegment (`rpc.system=aws-api`, `rpc.service`, `rpc.method`, `aws.request_id`). Meant to
//! be opened by the SDK interceptor when an operation starts and completed when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use tracing::field::Empty;

/// Whether a subscriber with a span consumer (an exporter, a test sink) was built in this
/// process. Without one, an AWS call's span would be built, given its attributes and dropped
/// unseen on every call: the commonest span there is.
pub(crate) static SPANS_CONSUMED: AtomicBool = AtomicBool::new(false);

/// Opens a client span `"{service}.{operation}"` (e.g. `SQS.ReceiveMessage`) under the current
/// span, when spans are consumed (otherwise a disabled span). Complete it with
/// [`record_aws_result`]; it ends when dropped.
pub fn aws_call_span(service: &str, operation: &str) -> tracing::Span {
    if !SPANS_CONSUMED.load(Ordering::Relaxed) {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "aws_call",
        otel.name = %format_args!("{service}.{operation}"),
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        rpc.system = "aws-api",
        rpc.service = service,
        rpc.method = operation,
        aws.request_id = Empty,
        aws.attempts = Empty,
        aws.retries = Empty,
        error.type = Empty,
    )
}

/// Records the outcome of the call on a span from [`aws_call_span`]: the request id of the last
/// attempt, the number of attempts (retries = attempts − 1), and the error code if it failed
/// (which also marks the span as an error).
pub fn record_aws_result(span: &tracing::Span, request_id: Option<&str>, attempts: u32, error: Option<&str>) {
    if let Some(request_id) = request_id {
        span.record("aws.request_id", request_id);
    }
    // As i64: the OTel layer keeps i64 as a number attribute but would stringify a u64.
    span.record("aws.attempts", i64::from(attempts));
    span.record("aws.retries", i64::from(attempts.saturating_sub(1)));
    if let Some(error) = error {
        span.record("error.type", error);
        span.record("otel.status_code", "error");
        span.record("otel.status_description", error);
    }
}
