//! The canary: exercises claim, heartbeat, fan-out, parking and every failure disposition without
//! touching any backup, for operators' health probes, tests and the benchmark.

use async_trait::async_trait;
use backup_core::{RetryClass, TaskError};
use backup_schemas::{Canary, CanaryMode, Task};
use serde_json::json;
use std::time::Duration;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};

/// How long a parked canary waits before its re-check.
pub const CANARY_RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, Default)]
pub struct CanaryHandler;

#[async_trait]
impl Handler<Canary> for CanaryHandler {
    async fn run(&self, params: &Canary, ctx: &TaskContext) -> HandlerResult {
        if params.sleep_ms > 0 {
            ctx.sleep(Duration::from_millis(params.sleep_ms)).await?;
        }
        match params.mode {
            CanaryMode::Succeed => {}
            CanaryMode::Retry => {
                return Err(TaskError::retry(RetryClass::Transient, "canary: asked to fail (retryable)"))
            }
            CanaryMode::RetryUntil(n) if ctx.attempt < n => {
                return Err(TaskError::retry(
                    RetryClass::Transient,
                    format!("canary: attempt {} of {n} fails (retryable)", ctx.attempt),
                ))
            }
            CanaryMode::RetryUntil(_) => {}
            CanaryMode::Fail => return Err(TaskError::permanent("canary: asked to fail (permanent)")),
            CanaryMode::PendingTimes(n) => {
                let rechecks =
                    ctx.checkpoint.as_ref().and_then(|c| c.get("rechecks")).and_then(|v| v.as_u64()).unwrap_or(0);
                if rechecks < u64::from(n) {
                    return Ok(Outcome::Pending {
                        checkpoint: json!({ "rechecks": rechecks + 1 }),
                        recheck_after: CANARY_RECHECK,
                    });
                }
            }
        }
        let children = (0..params.spawn).map(|i| {
            Task::Canary(Canary {
                nonce: format!("{}/{i}", params.nonce),
                sleep_ms: 0,
                mode: CanaryMode::Succeed,
                spawn: 0,
            })
        });
        Ok(Outcome::done(json!({ "canary": params.nonce, "attempt": ctx.attempt })).with_children(children))
    }
}
