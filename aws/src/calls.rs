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

tokio::task_local! {
    /// What the calls of the current tokio task are made for (a task kind): see [`attributed`].
    static CALLS_FOR: &'static str;
}

/// Runs `future` with its AWS calls also counted under `purpose` (the worker passes the task
/// kind, so that the benchmark can say where each kind's calls go). Spawned tasks do not inherit
/// it: wrap them too.
pub async fn attributed<F: std::future::Future>(purpose: &'static str, future: F) -> F::Output {
    CALLS_FOR.scope(purpose, future).await
}

/// Per (service, operation) counts of one purpose.
pub type CallCounts = BTreeMap<(String, String), u64>;

/// Shared counter of HTTP attempts per (service, operation); every attempt is a billed request.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<CallCounts>>,
    by_purpose: Arc<Mutex<BTreeMap<&'static str, CallCounts>>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> CallCounts {
        self.counts.lock().expect("call counter poisoned").clone()
    }

    /// The calls made under [`attributed`], by purpose; calls made outside any (receives and
    /// batched acknowledgements, shared by the tasks of a process) are not in it.
    pub fn snapshot_by_purpose(&self) -> BTreeMap<&'static str, CallCounts> {
        self.by_purpose.lock().expect("call counter poisoned").clone()
    }

    pub fn total_for(&self, service: &str) -> u64 {
        self.snapshot().iter().filter(|((s, _), _)| s.eq_ignore_ascii_case(service)).map(|(_, n)| n).sum()
    }

    pub fn record(&self, service: &str, operation: &str) {
        let key = (service.to_owned(), operation.to_owned());
        if let Ok(purpose) = CALLS_FOR.try_with(|purpose| *purpose) {
            let mut by_purpose = self.by_purpose.lock().expect("call counter poisoned");
            *by_purpose.entry(purpose).or_default().entry(key.clone()).or_default() += 1;
        }
        let mut counts = self.counts.lock().expect("call counter poisoned");
        *counts.entry(key).or_default() += 1;
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
