//! The fleet's metrics as a small typed API over OpenTelemetry instruments. Label sets are bounded
//! by construction: task kinds, outcomes and DLQ reason codes are `&'static str` (they come from
//! the schema's `as_str()` / `code()` tables, never from data), and AWS service / operation names
//! come from the SDK's operation metadata (a closed set). Without an exporter every instrument is
//! a no-op.

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider};
use opentelemetry::KeyValue;
use std::sync::OnceLock;
use std::time::Duration;

/// Instrumentation scope name of the fleet's meter.
pub const METER_NAME: &str = "backup-fleet";

/// Task durations run from sub-second no-ops to multi-hour copies.
const DURATION_BUCKETS: &[f64] =
    &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0];
/// Queue lag: normally seconds; minutes to an hour when the fleet is behind or a task is parked.
const LAG_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The fleet's instruments. Cheap to clone; get it from [`crate::TelemetryGuard::metrics`] or
/// [`crate::metrics()`].
#[derive(Clone, Debug)]
pub struct Metrics {
    tasks: Counter<u64>,
    task_duration: Histogram<f64>,
    queue_lag: Histogram<f64>,
    takeovers: Counter<u64>,
    stale_handles: Counter<u64>,
    dlq_moves: Counter<u64>,
    aws_calls: Counter<u64>,
    aws_throttled: Counter<u64>,
    coverage: Gauge<u64>,
}

impl Metrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            tasks: meter.u64_counter("tasks_total").with_description("Tasks finished, by kind and outcome.").build(),
            task_duration: meter
                .f64_histogram("task_duration_seconds")
                .with_description("Wall time of one task execution, by kind.")
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            queue_lag: meter
                .f64_histogram("queue_lag_seconds")
                .with_description("Time from enqueue to the start of execution, by kind.")
                .with_unit("s")
                .with_boundaries(LAG_BUCKETS.to_vec())
                .build(),
            takeovers: meter
                .u64_counter("lease_takeovers_total")
                .with_description("Tasks claimed after another worker's lease expired.")
                .build(),
            stale_handles: meter
                .u64_counter("stale_receipt_handles_total")
                .with_description("Running tasks whose message was received again elsewhere (visibility lapsed).")
                .build(),
            dlq_moves: meter
                .u64_counter("dlq_moves_total")
                .with_description("Messages moved to the dead-letter queue, by reason code.")
                .build(),
            aws_calls: meter
                .u64_counter("aws_calls_total")
                .with_description("AWS API requests (attempts), by service and operation.")
                .build(),
            aws_throttled: meter
                .u64_counter("aws_throttled_total")
                .with_description("Throttled AWS API requests, by service and operation.")
                .build(),
            coverage: meter
                .u64_gauge("coverage_resources")
                .with_description("Resources by coverage status (protected, stale, never-backed-up, ...) and type.")
                .build(),
        }
    }

    /// Instruments that record nothing (export off, or before `init`).
    pub fn noop() -> Self {
        static NOOP: OnceLock<Metrics> = OnceLock::new();
        NOOP.get_or_init(|| Metrics::new(&opentelemetry::metrics::noop::NoopMeterProvider::new().meter(METER_NAME)))
            .clone()
    }

    /// `tasks_total{kind, outcome}` += 1 and `task_duration_seconds{kind}` ← `duration`.
    /// `outcome` is the worker's disposition (`Disposition::as_str()`: `succeeded`, `failed`,
    /// `dead`, ...), the values the CloudWatch alarms select on.
    pub fn task_finished(&self, kind: &'static str, outcome: &'static str, duration: Duration) {
        self.tasks.add(1, &[KeyValue::new("kind", kind), KeyValue::new("outcome", outcome)]);
        self.task_duration.record(duration.as_secs_f64(), &[KeyValue::new("kind", kind)]);
    }

    /// `queue_lag_seconds{kind}` ← now − enqueue time. Negative values (clock skew between
    /// hosts) are recorded as 0.
    pub fn queue_lag(&self, kind: &'static str, seconds: f64) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        self.queue_lag.record(seconds, &[KeyValue::new("kind", kind)]);
    }

    /// `lease_takeovers_total` += 1.
    pub fn takeover(&self) {
        self.takeovers.add(1, &[]);
    }

    /// `stale_receipt_handles_total` += 1.
    pub fn stale_receipt_handle(&self) {
        self.stale_handles.add(1, &[]);
    }

    /// `dlq_moves_total{reason_code}` += 1 (`DecodeError::code()` or a runtime reason).
    pub fn dlq_move(&self, reason_code: &'static str) {
        self.dlq_moves.add(1, &[KeyValue::new("reason_code", reason_code)]);
    }

    /// `coverage_resources{status, resource_type}` ← `count`. The producer records every status
    /// of every type (zeros included) on each coverage pass, so an alarm clears when its count
    /// drops back to 0.
    pub fn coverage(&self, status: &'static str, resource_type: &'static str, count: u64) {
        self.coverage.record(count, &[KeyValue::new("status", status), KeyValue::new("resource_type", resource_type)]);
    }

    /// `aws_calls_total{service, operation}` += 1, and `aws_throttled_total{…}` += 1 when the
    /// attempt was throttled. Call once per HTTP attempt (each is a billed request).
    pub fn aws_call(&self, service: &str, operation: &str, throttled: bool) {
        let labels = [KeyValue::new("service", service.to_owned()), KeyValue::new("operation", operation.to_owned())];
        self.aws_calls.add(1, &labels);
        if throttled {
            self.aws_throttled.add(1, &labels);
        }
    }
}
