//! Counts AWS calls by service and operation with an SDK interceptor, so the fleet can report its
//! coordination cost (calls per task) without trusting its own bookkeeping.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
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

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "backup-fleet-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            self.record(metadata.service(), metadata.name());
        }
        Ok(())
    }
}
