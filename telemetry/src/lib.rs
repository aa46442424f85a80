//! Telemetry shared by the binaries: logs, traces and metrics.
//!
//! - **Logs**: JSON lines for the services (one object per line, with the current span's fields
//!   and the X-Ray `trace_id` when inside a span), readable text for interactive use, on stderr.
//!   `RUST_LOG` filters as usual.
//! - **Traces**: `tracing` spans become OpenTelemetry spans with X-Ray trace ids, exported over
//!   OTLP/HTTP (protobuf) to an ADOT collector, which forwards them to X-Ray. Trace context moves
//!   between processes as X-Ray headers ([`current_xray_header`], [`set_parent_from_xray`]).
//! - **Metrics**: the fleet's few instruments ([`Metrics`]), exported over OTLP/HTTP too.
//!
//! Export is configured by the standard `OTEL_*` variables (see [`ExportConfig::from_env`]).
//! With no endpoint it is off and silent: no exporter, no thread, no warnings; spans still get
//! (X-Ray) ids, so trace ids still reach the logs and task messages.
//!
//! ```no_run
//! let telemetry = backup_telemetry::init("backup-worker", backup_telemetry::LogFormat::Json, "info");
//! let metrics = telemetry.metrics();
//! // … run; dropping `telemetry` (or `telemetry.shutdown()`) flushes what is still buffered.
//! # drop(metrics);
//! ```
//!
//! Modules: `config` (env resolution and resource attributes), `export` (the OTLP/HTTP
//! transport), `logs` (JSON with trace ids), `xray` (trace context and links), `aws` (AWS call
//! spans), `metrics` (instruments).

mod aws;
mod config;
mod export;
mod logs;
mod metrics;
mod xray;

pub use aws::{aws_call_span, record_aws_result};
pub use config::{aws_resource_attributes, env_resource_attributes, ExportConfig};
pub use metrics::{Metrics, METER_NAME};
pub use xray::{
    add_event_link, add_link_from_xray, add_links, current_xray_header, current_xray_trace_id, event_span_context,
    format_xray_header, parse_xray_header, set_parent_from_xray, xray_trace_id,
};

use export::{SpanSink, Stoppable};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{MeterProviderBuilder, SdkMeterProvider};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracerProvider, SimpleSpanProcessor, SpanExporter, TracerProviderBuilder,
};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" | "pretty" => Ok(LogFormat::Text),
            other => Err(format!("unknown log format {other:?} (json or text)")),
        }
    }
}

/// Installs the global subscriber (logs + OpenTelemetry) configured from the environment, and
/// returns the guard that flushes and stops the exporters when dropped: keep it alive for the
/// whole of `main` (`let _telemetry = init(…)`). Safe to call more than once: later calls change
/// nothing and return an inert guard.
pub fn init(service: &str, format: LogFormat, default_level: &str) -> TelemetryGuard {
    TelemetryBuilder::from_env(service).format(format).default_level(default_level).install()
}

/// The metrics of the installed telemetry (no-op before [`init`], or when metrics export is off).
pub fn metrics() -> Metrics {
    GLOBAL_METRICS.get().cloned().unwrap_or_else(Metrics::noop)
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
static GLOBAL_METRICS: OnceLock<Metrics> = OnceLock::new();

type TracerHook = Box<dyn FnOnce(TracerProviderBuilder) -> (TracerProviderBuilder, Box<dyn SpanSink>) + Send>;
type MeterHook = Box<dyn FnOnce(MeterProviderBuilder) -> SdkMeterProvider + Send>;

/// Telemetry configuration. [`init`] covers the binaries; tests use the builder to capture logs,
/// point export at a local receiver, or plug in the SDK's in-memory exporters, and [`build`]
/// (scoped, `tracing::dispatcher::with_default`) instead of [`install`] (global).
///
/// [`build`]: TelemetryBuilder::build
/// [`install`]: TelemetryBuilder::install
pub struct TelemetryBuilder {
    service: String,
    version: String,
    format: LogFormat,
    default_level: String,
    export: ExportConfig,
    resource: Vec<KeyValue>,
    writer: BoxMakeWriter,
    span_exporter: Option<TracerHook>,
    metric_exporter: Option<MeterHook>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("service", &self.service)
            .field("format", &self.format)
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// Defaults that read no environment: JSON, `info`, export off, stderr.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            format: LogFormat::Json,
            default_level: "info".to_owned(),
            export: ExportConfig::off(),
            resource: aws_resource_attributes(|_| None),
            writer: BoxMakeWriter::new(std::io::stderr),
            span_exporter: None,
            metric_exporter: None,
        }
    }

    /// [`new`](Self::new) plus export settings and resource attributes from the environment.
    pub fn from_env(service: &str) -> Self {
        let mut builder = Self::new(service);
        builder.export = ExportConfig::from_env();
        builder.resource = env_resource_attributes();
        builder
    }

    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Level used when `RUST_LOG` is unset.
    pub fn default_level(mut self, level: &str) -> Self {
        self.default_level = level.to_owned();
        self
    }

    /// `service.version` (default: the workspace version).
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    pub fn export(mut self, export: ExportConfig) -> Self {
        self.export = export;
        self
    }

    /// Extra resource attributes (they override earlier ones with the same key).
    pub fn resource_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.resource.extend(attributes);
        self
    }

    /// Where log lines go (default stderr).
    pub fn writer<W>(mut self, writer: W) -> Self
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        self.writer = BoxMakeWriter::new(writer);
        self
    }

    /// Also sends every finished span to `exporter`, synchronously (tests: the SDK's
    /// `InMemorySpanExporter`).
    pub fn span_exporter<E: SpanExporter + 'static>(mut self, exporter: E) -> Self {
        self.span_exporter = Some(Box::new(move |builder| {
            let processor = Stoppable::new(SimpleSpanProcessor::new(exporter));
            (builder.with_span_processor(processor.clone()), Box::new(processor) as Box<dyn SpanSink>)
        }));
        self
    }

    /// Sends metrics to `exporter` (periodically, and on shutdown) instead of OTLP (tests: the
    /// SDK's `InMemoryMetricExporter`).
    pub fn metric_exporter<E: PushMetricExporter>(mut self, exporter: E) -> Self {
        self.metric_exporter = Some(Box::new(move |builder| builder.with_periodic_exporter(exporter).build()));
        self
    }

    /// Builds the subscriber without installing it (tests: `tracing::dispatcher::with_default`).
    pub fn build(self) -> (tracing::Dispatch, TelemetryGuard) {
        let resource = Resource::builder_empty()
            .with_detector(Box::new(TelemetryResourceDetector))
            .with_attributes([
                KeyValue::new("service.name", self.service.clone()),
                KeyValue::new("service.version", self.version.clone()),
            ])
            .with_attributes(self.resource)
            .build();
        let mut warnings = self.export.warnings.clone();
        let timeout = self.export.timeout();

        let client = if self.export.is_on() {
            let tls = [&self.export.traces_endpoint, &self.export.metrics_endpoint]
                .into_iter()
                .flatten()
                .any(|url| url.starts_with("https:"));
            export::ExportClient::new(timeout, tls)
                .map_err(|err| warnings.push(format!("telemetry export is off: {err}")))
                .ok()
        } else {
            None
        };

        // Traces. The provider always exists and is never shut down, because spans need ids for
        // the logs and for propagation even when nothing is exported (or no longer is); it gets
        // processors only when something consumes spans, and those are what the guard stops.
        let mut tracer_builder = SdkTracerProvider::builder()
            .with_id_generator(opentelemetry_aws::trace::XrayIdGenerator::default())
            .with_resource(resource.clone());
        let mut span_sinks: Vec<Box<dyn SpanSink>> = Vec::new();
        let mut exporting = false;
        if let (Some(client), Some(endpoint)) = (&client, &self.export.traces_endpoint) {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_endpoint(endpoint.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(timeout)
                .build();
            match exporter {
                Ok(exporter) => {
                    let processor = Stoppable::new(BatchSpanProcessor::builder(exporter).build());
                    tracer_builder = tracer_builder.with_span_processor(processor.clone());
                    span_sinks.push(Box::new(processor));
                    exporting = true;
                }
                Err(err) => warnings.push(format!("trace export is off: {err}")),
            }
        }
        if let Some(hook) = self.span_exporter {
            let sink;
            (tracer_builder, sink) = hook(tracer_builder);
            span_sinks.push(sink);
        }
        if !span_sinks.is_empty() {
            aws::SPANS_CONSUMED.store(true, Ordering::Relaxed);
        }
        let tracer_provider = tracer_builder.build();
        let tracer = tracer_provider.tracer("backup-telemetry");

        // Metrics: an SDK provider only when something consumes them, else no-op instruments.
        let meter_builder = || SdkMeterProvider::builder().with_resource(resource.clone());
        let mut meter_provider = None;
        if let Some(hook) = self.metric_exporter {
            meter_provider = Some(hook(meter_builder()));
        } else if let (Some(client), Some(endpoint)) = (&client, &self.export.metrics_endpoint) {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_endpoint(endpoint.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(timeout)
                .build();
            match exporter {
                Ok(exporter) => {
                    meter_provider = Some(meter_builder().with_periodic_exporter(exporter).build());
                    exporting = true;
                }
                Err(err) => warnings.push(format!("metrics export is off: {err}")),
            }
        }
        let metrics = meter_provider.as_ref().map_or_else(Metrics::noop, |p| Metrics::new(&p.meter(METER_NAME)));

        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{},aws_config=warn,aws_smithy_runtime=warn,hyper=warn,opentelemetry=warn",
                self.default_level
            ))
        });
        let dispatch_cell = logs::DispatchCell::default();
        let otel = tracing_opentelemetry::layer().with_tracer(tracer).with_threads(false);
        let subscriber = tracing_subscriber::registry().with(filter).with(otel).with(fmt_layer(
            self.format,
            self.writer,
            dispatch_cell.clone(),
        ));
        let guard = TelemetryGuard { span_sinks, meter_provider, metrics, exporting, warnings };
        let dispatch = tracing::Dispatch::new(subscriber);
        let _ = dispatch_cell.set(dispatch.downgrade());
        (dispatch, guard)
    }

    /// Builds and installs the global subscriber. If one is already installed (a second call,
    /// or another library got there first), nothing is built and the guard is inert.
    pub fn install(self) -> TelemetryGuard {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return TelemetryGuard::inert();
        }
        let (dispatch, guard) = self.build();
        if dispatch.try_init().is_err() {
            guard.shutdown();
            return TelemetryGuard::inert();
        }
        let _ = GLOBAL_METRICS.set(guard.metrics.clone());
        guard.report_warnings();
        tracing::debug!(exporting = guard.exporting, "telemetry initialised");
        guard
    }
}

/// The log layer: JSON (with the X-Ray trace id) or text.
fn fmt_layer<S>(
    format: LogFormat,
    writer: BoxMakeWriter,
    dispatch: logs::DispatchCell,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    match format {
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false);
            tracing_subscriber::fmt::layer()
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(logs::TraceIdJson::new(json, dispatch))
                .with_writer(writer)
                .boxed()
        }
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(false).with_writer(writer).boxed(),
    }
}

/// Keeps the exporters running; dropping it (or [`shutdown`](Self::shutdown)) flushes buffered
/// spans and metrics and stops them, so a short CLI run or a draining worker loses nothing.
/// After that, spans still get ids (logs keep trace ids, headers still propagate) but nothing is
/// exported and metrics are no-ops. With export off, dropping it changes nothing.
#[derive(Debug)]
pub struct TelemetryGuard {
    span_sinks: Vec<Box<dyn SpanSink>>,
    meter_provider: Option<SdkMeterProvider>,
    metrics: Metrics,
    exporting: bool,
    warnings: Vec<String>,
}

impl TelemetryGuard {
    fn inert() -> Self {
        Self {
            span_sinks: Vec::new(),
            meter_provider: None,
            metrics: metrics(),
            exporting: false,
            warnings: Vec::new(),
        }
    }

    /// The fleet's metric instruments (no-op when metrics are not exported).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Whether an OTLP exporter is running (an endpoint was configured and the exporter built).
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Configuration problems found while building (unsupported protocol, exporter errors).
    /// [`TelemetryBuilder::install`] logs them as warnings.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Exports what is buffered now, without stopping (e.g. before a long idle period).
    pub fn flush(&self) {
        for sink in &self.span_sinks {
            sink.flush();
        }
        if let Some(provider) = &self.meter_provider {
            let _ = provider.force_flush();
        }
    }

    /// Flushes and stops the exporters (blocking, bounded by the export timeout).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Errors are deliberately not logged: this runs at exit, often after the log writer
        // is gone, and a collector that is down has already been reported by the exporter.
        for sink in self.span_sinks.drain(..) {
            sink.stop();
        }
        if let Some(provider) = self.meter_provider.take() {
            let _ = provider.shutdown();
        }
    }

    fn report_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
