//! `TaskStore` on DynamoDB: task items with leases and fencing tokens, run records.
//!
//! Items of the state table (hash `pk`, range `sk`):
//! - task: `pk = task#<id>`, `sk = task`; attributes `state`, `owner`, `fence`, `lease_until`
//!   (epoch ms), `attempts`, `run_id` (GSI `by_run`), `kind`, `resource`, `checkpoint`, `result`,
//!   `last_error`, timestamps, `ttl` (epoch s, garbage collection only).
//! - run: `pk = runs`, `sk = <run id>`; one partition, as runs are few (a handful per plan per day).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use backup_core::ports::{
    ClaimOutcome, ClaimRequest, Lease, Reopen, RunRecord, SlotPool, TaskRecord, TaskStore, Transition,
};
use backup_core::AwsError;
use backup_schemas::{RunId, TaskId, TaskState};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::classify::classify;

/// Name of the TTL attribute on every table (epoch seconds). Terraform and bootstrap agree on it.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// How long finished task items are kept before TTL may collect them.
pub const TASK_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
const RUNS_PK: &str = "runs";

pub type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoTaskStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(crate) fn get_time(item: &Item, key: &str) -> Option<DateTime<Utc>> {
    get_s(item, key).and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.with_timezone(&Utc))
}

fn get_json(item: &Item, key: &str) -> Option<serde_json::Value> {
    get_s(item, key).and_then(|v| serde_json::from_str(v).ok())
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn task_key(task_id: &TaskId) -> Item {
    HashMap::from([("pk".to_owned(), s(format!("task#{task_id}"))), ("sk".to_owned(), s("task"))])
}

fn ttl_after(now: DateTime<Utc>, retain: Duration) -> AttributeValue {
    n(now.timestamp() + retain.as_secs() as i64)
}

fn state_of(item: &Item) -> Option<TaskState> {
    get_s(item, "state").and_then(|s| s.parse().ok())
}

pub(crate) fn task_record(item: &Item) -> Option<TaskRecord> {
    let task_id = get_s(item, "task_id")?;
    Some(TaskRecord {
        task_id: TaskId::new(task_id),
        run_id: get_s(item, "run_id").map(RunId::new),
        kind: get_s(item, "kind").map(str::to_owned),
        resource: get_s(item, "resource").map(str::to_owned),
        state: state_of(item).unwrap_or(TaskState::Pending),
        owner: get_s(item, "owner").map(str::to_owned),
        fence: get_n(item, "fence").unwrap_or(0) as u64,
        lease_until: get_n(item, "lease_until")
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .filter(|t| t.timestamp() > 0),
        attempts: get_n(item, "attempts").unwrap_or(0) as u32,
        receive_count: get_n(item, "receive_count").map(|v| v as u32),
        last_error: get_s(item, "last_error").map(str::to_owned),
        result: get_json(item, "result"),
        checkpoint: get_json(item, "checkpoint"),
        created_at: get_time(item, "created_at"),
        enqueued_at: get_time(item, "enqueued_at"),
        updated_at: get_time(item, "updated_at"),
        first_failed_at: get_time(item, "first_failed_at"),
        replays: get_n(item, "replays").unwrap_or(0) as u32,
    })
}

impl DynamoTaskStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl TaskStore for DynamoTaskStore {
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, AwsError> {
        let lease_until = request.now + chrono::Duration::from_std(request.lease).unwrap_or_default();
        let now_text = request.now.to_rfc3339();
        // One conditional write: the task is not finished and nobody holds a live lease. The lease
        // expiry is compared with our clock here, in the condition; TTL is only garbage collection.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(&request.task_id)))
            .update_expression(
                "SET #state = :running, #owner = :owner, lease_until = :until, \
                 fence = if_not_exists(fence, :zero) + :one, attempts = if_not_exists(attempts, :zero) + :one, \
                 task_id = :task_id, run_id = :run_id, #kind = :kind, #resource = :resource, \
                 receive_count = :receive_count, message_id = :message_id, created_at = if_not_exists(created_at, :now), \
                 enqueued_at = if_not_exists(enqueued_at, :enqueued_at), \
                 updated_at = :now, #ttl = :ttl",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR ((#state = :pending OR #state = :running OR #state = :waiting) \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now_ms))",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#resource", "resource")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":running", s(TaskState::Running.as_str()))
            .expression_attribute_values(":pending", s(TaskState::Pending.as_str()))
            .expression_attribute_values(":waiting", s(TaskState::Waiting.as_str()))
            .expression_attribute_values(":owner", s(request.owner.as_str()))
            .expression_attribute_values(":until", n(millis(lease_until)))
            .expression_attribute_values(":now_ms", n(millis(request.now)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":task_id", s(request.task_id.as_str()))
            .expression_attribute_values(":run_id", s(request.run_id.as_str()))
            .expression_attribute_values(":kind", s(request.kind.as_str()))
            .expression_attribute_values(":resource", s(&request.resource))
            .expression_attribute_values(":receive_count", n(request.receive_count))
            .expression_attribute_values(":message_id", s(&request.message_id))
            .expression_attribute_values(":enqueued_at", s(request.enqueued_at.to_rfc3339()))
            .expression_attribute_values(":now", s(&now_text))
            .expression_attribute_values(":ttl", ttl_after(request.now, request.retain))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                Ok(ClaimOutcome::Claimed(Lease {
                    task_id: request.task_id.clone(),
                    owner: request.owner.clone(),
                    fence: get_n(&old, "fence").unwrap_or(0) as u64 + 1,
                    lease_until,
                    attempts: get_n(&old, "attempts").unwrap_or(0) as u32 + 1,
                    checkpoint: get_json(&old, "checkpoint"),
                    previous_state: state_of(&old),
                    previous_activity: get_time(&old, "updated_at"),
                    capacity_since: get_time(&old, "capacity_since"),
                }))
            }
            Err(err) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() {
                    // A failed condition is an outcome, not an error: find out who has the task.
                    let old = failed.item().cloned().unwrap_or_default();
                    let state = state_of(&old).unwrap_or(TaskState::Running);
                    if state.is_terminal() {
                        return Ok(ClaimOutcome::Finished(state));
                    }
                    let until = get_n(&old, "lease_until")
                        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                        .unwrap_or(lease_until);
                    return Ok(ClaimOutcome::LeasedElsewhere {
                        owner: get_s(&old, "owner").unwrap_or("unknown").to_owned(),
                        until,
                        message_id: get_s(&old, "message_id").map(str::to_owned),
                    });
                }
                Err(classify("dynamodb", "UpdateItem", err))
            }
        }
    }

    async fn extend(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(&lease.task_id)))
            .update_expression("SET lease_until = :until")
            .condition_expression("#owner = :owner AND fence = :fence AND #state = :running")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":until", n(millis(until)))
            .expression_attribute_values(":owner", s(lease.owner.as_str()))
            .expression_attribute_values(":fence", n(lease.fence))
            .expression_attribute_values(":running", s(TaskState::Running.as_str()))
            .send()
            .await;
        conditional(result, "UpdateItem")
    }

    async fn transition(&self, lease: &Lease, transition: &Transition, now: DateTime<Utc>) -> Result<bool, AwsError> {
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":owner".to_owned(), s(lease.owner.as_str())),
            (":fence".to_owned(), n(lease.fence)),
            (":now".to_owned(), s(now.to_rfc3339())),
            (":zero".to_owned(), n(0)),
        ]);
        let mut names: HashMap<String, String> =
            HashMap::from([("#owner".to_owned(), "owner".to_owned()), ("#state".to_owned(), "state".to_owned())]);
        let mut sets = vec!["#state = :state", "updated_at = :now", "lease_until = :zero"];
        let mut removes: Vec<&str> = Vec::new();
        let state = match transition {
            Transition::Succeeded { result } => {
                values.insert(":result".into(), s(bounded_result(result.clone(), MAX_RESULT_BYTES).to_string()));
                sets.push("#result = :result");
                names.insert("#result".into(), "result".into());
                sets.push("finished_at = :now");
                TaskState::Succeeded
            }
            Transition::Failed { reason } | Transition::Dead { reason } => {
                values.insert(":error".into(), s(bounded_text(reason)));
                sets.push("last_error = :error");
                sets.push("first_failed_at = if_not_exists(first_failed_at, :now)");
                sets.push("finished_at = :now");
                if matches!(transition, Transition::Failed { .. }) {
                    TaskState::Failed
                } else {
                    TaskState::Dead
                }
            }
            Transition::Waiting { checkpoint, recheck_at, capacity } => {
                match checkpoint {
                    Some(checkpoint) => {
                        values.insert(":checkpoint".into(), s(checkpoint.to_string()));
                        sets.push("checkpoint = :checkpoint");
                    }
                    None => removes.push("checkpoint"),
                }
                values.insert(":recheck".into(), s(recheck_at.to_rfc3339()));
                sets.push("recheck_at = :recheck");
                match capacity {
                    // The wait is bounded from its start: only the first capacity park sets it.
                    Some(reason) => {
                        values.insert(":error".into(), s(bounded_text(reason)));
                        sets.push("last_error = :error");
                        sets.push("capacity_since = if_not_exists(capacity_since, :now)");
                    }
                    None => removes.push("capacity_since"),
                }
                TaskState::Waiting
            }
            Transition::Released { error } => {
                if let Some(error) = error {
                    values.insert(":error".into(), s(bounded_text(error)));
                    sets.push("last_error = :error");
                    sets.push("first_failed_at = if_not_exists(first_failed_at, :now)");
                }
                TaskState::Pending
            }
        };
        if !matches!(transition, Transition::Waiting { .. }) {
            removes.push("capacity_since");
        }
        values.insert(":state".into(), s(state.as_str()));
        let remove = if removes.is_empty() { String::new() } else { format!(" REMOVE {}", removes.join(", ")) };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(&lease.task_id)))
            .update_expression(format!("SET {}{remove}", sets.join(", ")))
            .condition_expression("#owner = :owner AND fence = :fence")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        conditional(result, "UpdateItem")
    }

    async fn mark_dead(&self, task_id: &TaskId, reason: &str, now: DateTime<Utc>) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(task_id)))
            .update_expression(
                "SET #state = :dead, last_error = :error, updated_at = :now, lease_until = :zero, \
                 first_failed_at = if_not_exists(first_failed_at, :now)",
            )
            .condition_expression("attribute_exists(pk) AND #state <> :succeeded")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":dead", s(TaskState::Dead.as_str()))
            .expression_attribute_values(":succeeded", s(TaskState::Succeeded.as_str()))
            .expression_attribute_values(":error", s(reason))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        conditional(result, "UpdateItem").map(|_| ())
    }

    async fn get(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(task_key(task_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "GetItem", e))?;
        Ok(output.item.as_ref().and_then(task_record))
    }

    async fn reopen_for_replay(&self, task_id: &TaskId, now: DateTime<Utc>) -> Result<Reopen, AwsError> {
        // A replayed task keeps its id and gets a fresh attempt budget. Nothing re-opens a
        // SUCCEEDED task (its replayed message is then just a harmless duplicate), nor one under
        // a live lease: the dead letter may be a stale copy of a task some worker is running.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(task_id)))
            .update_expression(
                "SET #state = :pending, attempts = :zero, lease_until = :zero, replays = if_not_exists(replays, :zero) + :one, \
                 replayed_at = :now, updated_at = :now",
            )
            .condition_expression(
                "attribute_exists(pk) AND #state <> :succeeded \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now_ms)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(TaskState::Pending.as_str()))
            .expression_attribute_values(":succeeded", s(TaskState::Succeeded.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":now_ms", n(millis(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Reopen::Reopened),
            Err(err) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() {
                    let Some(old) = failed.item() else { return Ok(Reopen::Unknown) };
                    if state_of(old) == Some(TaskState::Succeeded) {
                        return Ok(Reopen::Succeeded);
                    }
                    let until = get_n(old, "lease_until").and_then(|ms| Utc.timestamp_millis_opt(ms).single());
                    return Ok(Reopen::Leased {
                        owner: get_s(old, "owner").unwrap_or("unknown").to_owned(),
                        until: until.unwrap_or(now),
                    });
                }
                Err(classify("dynamodb", "UpdateItem", err))
            }
        }
    }

    async fn replace_message(&self, task_id: &TaskId, from: &str, to: &str) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(task_key(task_id)))
            .update_expression("SET message_id = :to")
            .condition_expression("message_id = :from AND #state = :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":running", s(TaskState::Running.as_str()))
            .send()
            .await;
        conditional(result, "UpdateItem")
    }

    async fn put_run(&self, run: &RunRecord) -> Result<(), AwsError> {
        let expected = serde_json::to_string(&run.expected).expect("map serialises");
        let mut item: Item = HashMap::from([
            ("pk".to_owned(), s(RUNS_PK)),
            ("sk".to_owned(), s(run.run_id.as_str())),
            ("run_id".to_owned(), s(run.run_id.as_str())),
            ("origin".to_owned(), s(&run.origin)),
            ("created_at".to_owned(), s(run.created_at.to_rfc3339())),
            ("expected".to_owned(), s(expected)),
            (TTL_ATTRIBUTE.to_owned(), ttl_after(run.created_at, TASK_RETENTION)),
        ]);
        if let Some(plan) = &run.plan {
            item.insert("plan".into(), s(plan));
        }
        if let Some(window) = run.window {
            item.insert("window".into(), s(window.to_rfc3339()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("dynamodb", "PutItem", e))?;
        Ok(())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunRecord>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(RUNS_PK))
            .key("sk", s(run_id.as_str()))
            .send()
            .await
            .map_err(|e| classify("dynamodb", "GetItem", e))?;
        Ok(output.item.as_ref().and_then(run_record))
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, AwsError> {
        let mut runs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(RUNS_PK))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb", "Query", e))?;
            runs.extend(output.items.unwrap_or_default().iter().filter_map(run_record));
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn tasks_of_run(&self, run_id: &RunId) -> Result<Vec<TaskRecord>, AwsError> {
        let mut tasks = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("by_run")
                .key_condition_expression("run_id = :run")
                .expression_attribute_values(":run", s(run_id.as_str()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb", "Query", e))?;
            tasks.extend(
                output
                    .items
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| get_s(i, "sk") == Some("task"))
                    .filter_map(task_record),
            );
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(tasks)
    }
}

fn run_record(item: &Item) -> Option<RunRecord> {
    Some(RunRecord {
        run_id: RunId::new(get_s(item, "run_id")?),
        plan: get_s(item, "plan").map(str::to_owned),
        window: get_time(item, "window"),
        origin: get_s(item, "origin").unwrap_or_default().to_owned(),
        created_at: get_time(item, "created_at")?,
        expected: get_s(item, "expected")
            .and_then(|v| serde_json::from_str::<BTreeMap<String, u64>>(v).ok())
            .unwrap_or_default(),
    })
}

/// DynamoDB items are at most 400 KB. A task result is for operators, so a bigger one is cut
/// down (lists shortened, totals kept) rather than make the SUCCEEDED write fail and the task loop
/// until it is dead-lettered.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Longest error reason kept on a task item.
const MAX_REASON_BYTES: usize = 8 * 1024;

fn bounded_text(text: &str) -> String {
    if text.len() <= MAX_REASON_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_REASON_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// Cuts a task result down to `limit` bytes of JSON: the longest lists are shortened first (each
/// shortened list `x` gets an `x_total` with its full length), and if that is not enough only the
/// scalar fields are kept.
pub fn bounded_result(result: serde_json::Value, limit: usize) -> serde_json::Value {
    let size = |v: &serde_json::Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size(&result) <= limit {
        return result;
    }
    let serde_json::Value::Object(mut fields) = result else {
        return serde_json::json!({ "truncated": true, "bytes": size(&result) });
    };
    let original = size(&serde_json::Value::Object(fields.clone()));
    let mut keep = 64usize;
    while keep > 0 {
        let mut cut = fields.clone();
        for (name, value) in fields.iter() {
            if let serde_json::Value::Array(items) = value {
                if items.len() > keep {
                    cut.insert(name.clone(), serde_json::Value::Array(items[..keep].to_vec()));
                    cut.insert(format!("{name}_total"), serde_json::json!(items.len()));
                }
            }
        }
        cut.insert("truncated".into(), serde_json::json!(true));
        cut.insert("bytes".into(), serde_json::json!(original));
        let candidate = serde_json::Value::Object(cut);
        if size(&candidate) <= limit {
            return candidate;
        }
        keep /= 4;
    }
    fields.retain(|_, v| !v.is_array() && !v.is_object() && v.as_str().is_none_or(|s| s.len() <= 1024));
    fields.insert("truncated".into(), serde_json::json!(true));
    fields.insert("bytes".into(), serde_json::json!(original));
    serde_json::Value::Object(fields)
}

/// A conditional update: `Ok(true)` when applied, `Ok(false)` when the condition did not hold.
fn conditional<O>(
    result: Result<
        O,
        aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
    operation: &'static str,
) -> Result<bool, AwsError> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
            Ok(false)
        }
        Err(err) => Err(classify("dynamodb", operation, err)),
    }
}

/// Slot pools live in the state table: `pk = slots#<pool>`, `sk = slots`, and a map `leases` of
/// holder → hold expiry (epoch ms). Taking a slot is one conditional write in the common case;
/// only a full pool reads the holders back to clear the expired ones (each removal conditional
/// on the expiry it saw, so a holder renewing meanwhile keeps its slot).
#[async_trait]
impl SlotPool for DynamoTaskStore {
    async fn acquire(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(hold).unwrap_or_default();
        // Two rounds at most: the second follows a clean-up of expired holds, or the creation
        // of the pool item.
        for _ in 0..2 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("slots#{pool}")))
                .key("sk", s("slots"))
                .update_expression("SET leases.#holder = :until")
                .condition_expression(
                    "attribute_exists(leases) AND (size(leases) < :limit OR attribute_exists(leases.#holder))",
                )
                .expression_attribute_names("#holder", holder.as_str())
                .expression_attribute_values(":until", n(millis(until)))
                .expression_attribute_values(":limit", n(limit))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let old = match result {
                Ok(_) => return Ok(true),
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        failed.item().cloned().unwrap_or_default()
                    }
                    _ => return Err(classify("dynamodb", "UpdateItem", err)),
                },
            };
            let Some(AttributeValue::M(leases)) = old.get("leases") else {
                self.create_pool(pool).await?;
                continue;
            };
            let expired: Vec<(&String, &AttributeValue)> = leases
                .iter()
                .filter(|(_, v)| {
                    v.as_n().ok().and_then(|ms| ms.parse::<i64>().ok()).is_some_and(|ms| ms <= millis(now))
                })
                .collect();
            if expired.is_empty() {
                return Ok(false);
            }
            tracing::info!(pool, expired = expired.len(), "clearing expired slot holds");
            for (expired_holder, expiry) in expired {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(format!("slots#{pool}")))
                    .key("sk", s("slots"))
                    .update_expression("REMOVE leases.#holder")
                    .condition_expression("leases.#holder = :seen")
                    .expression_attribute_names("#holder", expired_holder)
                    .expression_attribute_values(":seen", expiry.clone())
                    .send()
                    .await;
                conditional(result, "UpdateItem")?;
            }
        }
        Ok(false)
    }

    async fn release(&self, pool: &str, holder: &TaskId) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("slots#{pool}")))
            .key("sk", s("slots"))
            .update_expression("REMOVE leases.#holder")
            .condition_expression("attribute_exists(leases)")
            .expression_attribute_names("#holder", holder.as_str())
            .send()
            .await;
        conditional(result, "UpdateItem").map(|_| ())
    }
}

impl DynamoTaskStore {
    /// Creates a slot pool's item with no holders (a concurrent creation wins harmlessly).
    async fn create_pool(&self, pool: &str) -> Result<(), AwsError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("slots#{pool}")))
            .item("sk", s("slots"))
            .item("leases", AttributeValue::M(HashMap::new()))
            .condition_expression("attribute_not_exists(leases)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify("dynamodb", "PutItem", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_results_are_kept_as_they_are() {
        let result = json!({ "snapshot_id": "snap-1", "ids": [1, 2, 3] });
        assert_eq!(bounded_result(result.clone(), MAX_RESULT_BYTES), result);
    }

    #[test]
    fn big_results_are_cut_down_with_their_totals() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("snap-{i:017}")).collect();
        let result = json!({ "resource": "vol-1", "summary": "delete 20000", "delete": ids });
        let bounded = bounded_result(result, MAX_RESULT_BYTES);
        assert!(serde_json::to_vec(&bounded).unwrap().len() <= MAX_RESULT_BYTES);
        assert_eq!(bounded["resource"], "vol-1");
        assert_eq!(bounded["summary"], "delete 20000");
        assert_eq!(bounded["delete_total"], 20_000);
        assert_eq!(bounded["truncated"], true);
        assert_eq!(bounded["delete"][0], "snap-00000000000000000");
        // Not an object at all: only its size is kept.
        let bounded = bounded_result(json!("x".repeat(MAX_RESULT_BYTES * 2)), MAX_RESULT_BYTES);
        assert_eq!(bounded["truncated"], true);
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let bounded = bounded_text(&reason);
        assert!(bounded.len() < MAX_REASON_BYTES + 64);
        assert!(bounded.ends_with(&format!("({} bytes in all)", reason.len())));
    }
}
