//! Counts AWS calls by service and operation with an SDK interceptor, so the fleet can report its
//! coordination cost (calls per task) without trusting its own bookkeeping.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared counter of HTTP attempts per (service, operation); every attempt is a billed request.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.counts.lock().expect("call counter poisoned").clone()
    }

    pub fn total_for(&self, service: &str) -> u64 {
        self.snapshot().iter().filter(|((s, _), _)| s.eq_ignore_ascii_case(service)).map(|(_, n)| n).sum()
    }

    pub fn record(&self, service: &str, operation: &str) {
        let mut counts = self.counts.lock().expect("call counter poisoned");
        *counts.entry((service.to_owned(), operation.to_owned())).or_default() += 1;
    }
}

/// The span of one AWS operation, kept in the request's config bag between hooks.
#[derive(Debug, Clone)]
struct CallSpan {
    span: tracing::Span,
    attempts: u32,
}

impl aws_smithy_types::config_bag::Storable for CallSpan {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "backup-fleet-call-counter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.load::<CallSpan>().cloned() else { return Ok(()) };
        let response = context.response();
        let request_id = response.and_then(|r| {
            r.headers().get("x-amzn-requestid").or_else(|| r.headers().get("x-amz-request-id")).map(str::to_owned)
        });
        let status = response.map(|r| r.status().as_u16());
        let error = match (context.output_or_error(), status) {
            (Some(Err(_)), Some(status)) => Some(format!("HTTP {status}")),
            (Some(Err(_)), None) => Some("transport error".to_owned()),
            _ => None,
        };
        // 429 and 503 are how AWS throttles over HTTP (SlowDown, RequestLimitExceeded on EC2 are
        // 503; the JSON protocols' ThrottlingException is a 400 classified by the adapter).
        let throttled = matches!(status, Some(429) | Some(503));
        if let Some(metadata) = cfg.load::<Metadata>() {
            backup_telemetry::metrics().aws_call(metadata.service(), metadata.name(), throttled);
        }
        backup_telemetry::record_aws_result(&call.span, request_id.as_deref(), call.attempts.max(1), error.as_deref());
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>().cloned() else { return Ok(()) };
        self.record(metadata.service(), metadata.name());
        // The span opens at the first attempt: a client-level interceptor's
        // `read_before_execution` runs before the operation's configuration (and its Metadata)
        // is in the bag.
        let call = match cfg.load::<CallSpan>().cloned() {
            Some(mut call) => {
                call.attempts += 1;
                call
            }
            None => {
                CallSpan { span: backup_telemetry::aws_call_span(metadata.service(), metadata.name()), attempts: 1 }
            }
        };
        cfg.interceptor_state().store_put(call);
        Ok(())
    }
}
