//! Log formatting: JSON lines for the services, readable text for interactive use. Every JSON line
//! emitted inside a span starts with `"trace_id":"1-…-…"`, the X-Ray trace id of that span, so
//! CloudWatch Logs lines can be joined with X-Ray traces. The id is read from the OpenTelemetry
//! span context that `tracing-opentelemetry` keeps for the span, so it is there whether or not
//! spans are exported, and it is the remote trace when the span's parent came from a message.

use std::sync::{Arc, OnceLock};
use tracing::dispatcher::WeakDispatch;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps tracing-subscriber's JSON event format and splices the trace id in as the first field.
/// Splicing (rather than re-implementing the JSON format) keeps every other field exactly as the
/// stock formatter writes it.
pub(crate) struct TraceIdJson<F> {
    inner: F,
    dispatch: DispatchCell,
}

/// The subscriber this formatter is part of, filled in once it is built. Needed because
/// `tracing::dispatcher::get_default` yields no dispatcher while a scoped one is dispatching
/// (re-entrancy guard), and the span context lives in that subscriber's registry. Weak, because
/// the subscriber owns the formatter.
pub(crate) type DispatchCell = Arc<OnceLock<WeakDispatch>>;

impl<F> TraceIdJson<F> {
    pub(crate) fn new(inner: F, dispatch: DispatchCell) -> Self {
        Self { inner, dispatch }
    }

    /// The X-Ray trace id of a span. Must not be called while holding the span's extensions
    /// (the OpenTelemetry layer locks them).
    fn trace_id_of(&self, id: &tracing::span::Id) -> Option<String> {
        use opentelemetry::trace::TraceContextExt;
        let dispatch = self.dispatch.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| crate::xray::xray_trace_id(span_context.trace_id()))
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIdJson<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let Some(trace_id) = ctx.parent_span().and_then(|span| self.trace_id_of(&span.id())) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                let separator = if rest.starts_with('}') { "" } else { "," };
                write!(writer, "{{\"trace_id\":\"{trace_id}\"{separator}{rest}")
            }
            None => writer.write_str(&line),
        }
    }
}
