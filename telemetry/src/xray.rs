//! X-Ray trace context on `tracing` spans: reading the current span's X-Ray header and trace id,
//! parenting a span on a remote header (the task message's `AWSTraceHeader` / `trace.xray`), and
//! span links for fan-out children and event-caused tasks.
//!
//! Parent and links must be set right after the span is created, before it is entered or
//! anything logs inside it: the OpenTelemetry span starts at that point, and its parent is then
//! fixed (links can still be added later).

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use sha2::{Digest, Sha256};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Parses an X-Ray trace header (`Root=1-…;Parent=…;Sampled=1`, extra keys allowed). `None` if
/// the root is missing or malformed, or there is no parent segment id (a span context needs one).
///
/// `Sampled=?` (caller deferred the decision) and a missing `Sampled` are taken as sampled: our
/// sampler would say yes to a root span anyway, and dropping a deferred trace loses data.
pub fn parse_xray_header(header: &str) -> Option<SpanContext> {
    let parsed = opentelemetry_aws::trace::xray_propagator::span_context_from_str(header.trim())?;
    if !parsed.is_valid() {
        return None;
    }
    let flags = if parsed.trace_flags().is_sampled() || parsed.trace_flags() == TraceFlags::new(0x02) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Some(SpanContext::new(parsed.trace_id(), parsed.span_id(), flags, true, parsed.trace_state().clone()))
}

/// The X-Ray header for a span context (`Root=1-…;Parent=<span id>;Sampled=0|1`).
pub fn format_xray_header(span_context: &SpanContext) -> Option<String> {
    opentelemetry_aws::trace::xray_propagator::span_context_to_string(span_context)
}

/// `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`: the X-Ray spelling of a trace id (version, 8 hex digits
/// of epoch seconds — meaningful when the id came from the X-Ray id generator — and 24 more).
pub fn xray_trace_id(trace_id: TraceId) -> String {
    let hex = format!("{trace_id:032x}");
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

/// The X-Ray header of the current span, for writing into a task message (producer) or a child
/// task (worker). `None` outside any span, or without the telemetry subscriber.
pub fn current_xray_header() -> Option<String> {
    format_xray_header(tracing::Span::current().context().span().span_context())
}

/// The X-Ray trace id of the current span (`1-…-…`), e.g. for an error report or a DLQ attribute.
pub fn current_xray_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| xray_trace_id(span_context.trace_id()))
}

/// Makes `span` a child of the remote span in `header` (same trace id, parent = the header's
/// `Parent`). Call it right after creating the span (see the module docs). Returns whether the
/// parent was set: `false` for an unparseable header, a span already started, a disabled span, or
/// no telemetry subscriber. In all those cases the span keeps its own (local) parent.
pub fn set_parent_from_xray(span: &tracing::Span, header: &str) -> bool {
    let Some(remote) = parse_xray_header(header) else {
        return false;
    };
    span.set_parent(Context::new().with_remote_span_context(remote)).is_ok()
}

/// Links `span` to the span in an X-Ray header: a fan-out child task to the task that created it
/// (the child runs in its own trace). Returns `false` if the header does not parse.
pub fn add_link_from_xray(span: &tracing::Span, header: &str) -> bool {
    let Some(linked) = parse_xray_header(header) else {
        return false;
    };
    span.add_link_with_attributes(linked, vec![KeyValue::new("link.kind", "parent_task")]);
    true
}

/// Links `span` to an event (e.g. the EventBridge event id that caused the task). The link
/// target is [`event_span_context`]: a trace id derived from the event id alone, so every task
/// caused by one event links to the same place, and the link carries `event.id` for search.
pub fn add_event_link(span: &tracing::Span, event_id: &str) {
    span.add_link_with_attributes(
        event_span_context(event_id),
        vec![KeyValue::new("link.kind", "event"), KeyValue::new("event.id", event_id.to_owned())],
    );
}

/// Adds the links stored in a task message's `trace.links`: entries that parse as X-Ray headers
/// are task links ([`add_link_from_xray`]), anything else is taken as an event id
/// ([`add_event_link`]).
pub fn add_links<S: AsRef<str>>(span: &tracing::Span, links: &[S]) {
    for link in links {
        let link = link.as_ref();
        if !add_link_from_xray(span, link) && !link.trim().is_empty() {
            add_event_link(span, link);
        }
    }
}

/// The deterministic span context standing for an event: trace id = the first 16 bytes of
/// SHA-256(`"backup-fleet/event\0" + event_id`), span id = the next 8. Its "time" digits are hash
/// bits, not a timestamp: it is a key for links (and for finding the event's tasks), not a trace
/// X-Ray holds segments for.
pub fn event_span_context(event_id: &str) -> SpanContext {
    let digest = Sha256::new().chain_update(b"backup-fleet/event\0").chain_update(event_id.as_bytes()).finalize();
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&digest[..16]);
    let mut span = [0u8; 8];
    span.copy_from_slice(&digest[16..24]);
    // All-zero ids are invalid; astronomically unlikely, but keep the context valid regardless.
    let trace_id = if trace == [0; 16] { TraceId::from(1u128) } else { TraceId::from_bytes(trace) };
    let span_id = if span == [0; 8] { SpanId::from(1u64) } else { SpanId::from_bytes(span) };
    SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let context = parse_xray_header(header).expect("parses");
        assert!(context.is_remote() && context.is_sampled());
        assert_eq!(xray_trace_id(context.trace_id()), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(format_xray_header(&context).as_deref(), Some(header));
    }

    #[test]
    fn deferred_and_missing_sampling_are_sampled_and_zero_is_not() {
        let base = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";
        assert!(parse_xray_header(&format!("{base};Sampled=?")).unwrap().is_sampled());
        assert!(parse_xray_header(base).unwrap().is_sampled());
        assert!(!parse_xray_header(&format!("{base};Sampled=0")).unwrap().is_sampled());
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for header in ["", "garbage", "Root=1-xyz;Parent=53995c3f42cd8ad8", "Root=1-5759e988-bd862e3fe1be46a994272793"]
        {
            assert!(parse_xray_header(header).is_none(), "{header}");
        }
    }

    #[test]
    fn event_contexts_are_deterministic_and_distinct() {
        assert_eq!(event_span_context("e-1"), event_span_context("e-1"));
        assert_ne!(event_span_context("e-1").trace_id(), event_span_context("e-2").trace_id());
        assert!(event_span_context("").is_valid());
    }
}
