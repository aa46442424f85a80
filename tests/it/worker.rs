//! The worker runtime's invariants, each proven against the emulator with real worker processes:
//! duplicates run once, crashes are taken over, fencing holds, heartbeats keep long tasks, drain
//! hands work back, retries end in the DLQ, poison is contained, parked tasks complete.

use backup_core::ports::{ClaimOutcome, ClaimRequest, TaskQueue, TaskStore, Transition, ATTR_REASON, ATTR_REASON_CODE};
use backup_schemas::{CanaryMode, Envelope, LeaseOwner, TaskKind, TaskState};
use backup_tests::{canary, drain_messages, Fleet, FleetProcess};
use chrono::Utc;
use serde_json::json;
use std::time::Duration;

const CANARY: &str = "fleet.canary";

/// Short timings so crash and lease tests take seconds, not minutes.
fn fast(idle_secs: u64) -> Vec<String> {
    vec![
        "--visibility-timeout-secs=4".into(),
        "--lease-secs=4".into(),
        "--heartbeat-secs=1".into(),
        "--receive-wait-secs=1".into(),
        "--ack-flush-ms=50".into(),
        format!("--exit-when-idle={idle_secs}"),
    ]
}

fn start(fleet: &Fleet, name: &str, args: Vec<String>) -> FleetProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fleet.worker(name, &args)
}

async fn fast_fleet(name: &str) -> Fleet {
    Fleet::with(name, |s| s.task_visibility_timeout_secs = 4).await
}

async fn finish(worker: &mut FleetProcess) {
    let status = worker.wait_async(Duration::from_secs(120)).await;
    assert!(status.success(), "{} exited with {status}; log:\n{}", worker.name, worker.log_tail(30));
}

async fn assert_queue_empty(fleet: &Fleet) {
    let depth = fleet.queue().depth().await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 0), "task queue should be empty");
}

#[tokio::test]
async fn duplicate_deliveries_execute_once() {
    let fleet = fast_fleet("dup").await;
    let task = canary("dup", CanaryMode::Succeed, 500);
    for _ in 0..3 {
        fleet.send(&task).await;
    }
    let mut worker = start(&fleet, "w", fast(8));
    finish(&mut worker).await;

    let record = fleet.task(&task.task_id).await.expect("task recorded");
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 1, "claimed exactly once");
    assert_eq!(worker.count(CANARY, "succeeded"), 1);
    assert_eq!(worker.count(CANARY, "duplicate"), 2, "the other two deliveries were deleted as duplicates");
    assert_queue_empty(&fleet).await;
}

#[tokio::test]
async fn two_workers_racing_for_one_task_run_it_once() {
    let fleet = fast_fleet("race").await;
    let task = canary("race", CanaryMode::Succeed, 1500);
    fleet.send(&task).await;
    fleet.send(&task).await;
    let mut a = start(&fleet, "a", fast(8));
    let mut b = start(&fleet, "b", fast(8));
    finish(&mut a).await;
    finish(&mut b).await;

    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 1);
    assert_eq!(a.count(CANARY, "succeeded") + b.count(CANARY, "succeeded"), 1);
    assert_queue_empty(&fleet).await;
}

#[tokio::test]
async fn worker_killed_mid_task_is_taken_over_and_the_task_completes_once() {
    let fleet = fast_fleet("kill").await;
    let task = canary("kill", CanaryMode::Succeed, 3000);
    fleet.send(&task).await;
    let mut victim = start(&fleet, "victim", fast(30));
    let running = fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    victim.sigkill();

    let mut successor = start(&fleet, "successor", fast(8));
    finish(&mut successor).await;
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 2, "one claim by the victim, one takeover");
    assert_eq!(record.fence, running.fence + 1, "the takeover bumped the fencing token");
    assert_ne!(record.owner, running.owner, "completed by the successor");
    assert_eq!(successor.count(CANARY, "succeeded"), 1);
    assert_eq!(successor.summary()["counts"]["takeovers"], json!(1));
    assert_queue_empty(&fleet).await;
}

#[tokio::test]
async fn a_stale_worker_cannot_complete_after_its_lease_was_taken() {
    let fleet = fast_fleet("fence").await;
    let store = fleet.store();
    let task = canary("fence", CanaryMode::Succeed, 0);
    let request = |owner: &str| ClaimRequest {
        task_id: task.task_id.clone(),
        run_id: task.run_id.clone(),
        kind: TaskKind::Canary,
        resource: "canary".into(),
        owner: LeaseOwner::new(owner),
        now: Utc::now(),
        lease: Duration::from_millis(800),
        receive_count: 1,
        message_id: format!("message-of-{owner}"),
        enqueued_at: Utc::now(),
        retain: Duration::from_secs(3600),
    };
    let ClaimOutcome::Claimed(stale) = store.claim(&request("stale")).await.unwrap() else { panic!("first claim") };
    assert!(
        matches!(store.claim(&request("other")).await.unwrap(), ClaimOutcome::LeasedElsewhere { .. }),
        "live lease blocks a second claim"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let ClaimOutcome::Claimed(current) = store.claim(&request("current")).await.unwrap() else {
        panic!("takeover after expiry")
    };
    assert_eq!(current.fence, stale.fence + 1);
    assert_eq!(current.previous_state, Some(TaskState::Running));

    let done = Transition::Succeeded { result: json!({"by": "stale"}) };
    assert!(!store.transition(&stale, &done, Utc::now()).await.unwrap(), "stale owner is fenced out");
    assert!(!store.extend(&stale, Utc::now()).await.unwrap(), "stale owner cannot extend either");
    assert!(store
        .transition(&current, &Transition::Succeeded { result: json!({"by": "current"}) }, Utc::now())
        .await
        .unwrap());
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.result, Some(json!({"by": "current"})));
    assert!(matches!(store.claim(&request("late")).await.unwrap(), ClaimOutcome::Finished(TaskState::Succeeded)));
}

#[tokio::test]
async fn a_task_longer_than_the_visibility_timeout_is_not_redelivered_while_it_heartbeats() {
    let fleet = fast_fleet("long").await;
    // Three visibility timeouts long.
    let task = canary("long", CanaryMode::Succeed, 12_000);
    fleet.send(&task).await;
    let mut a = start(&fleet, "a", fast(6));
    let mut b = start(&fleet, "b", fast(6));
    finish(&mut a).await;
    finish(&mut b).await;
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 1, "never claimed twice");
    let received =
        a.summary()["counts"]["received"].as_u64().unwrap() + b.summary()["counts"]["received"].as_u64().unwrap();
    assert_eq!(received, 1, "the message was delivered once");
}

#[tokio::test]
async fn sigterm_hands_back_unfinished_work_at_the_drain_deadline() {
    let fleet = fast_fleet("drain").await;
    let task = canary("drain", CanaryMode::Succeed, 600_000);
    fleet.send(&task).await;
    let mut args = fast(600);
    args.push("--drain-deadline-secs=1".into());
    let mut worker = start(&fleet, "w", args);
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    worker.sigterm();
    let status = worker.wait_async(Duration::from_secs(20)).await;
    assert!(status.success(), "drained worker exits 0");
    assert_eq!(worker.count(CANARY, "handed_back"), 1);
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Pending, "lease released");
    // Visibility was reset to 0: the message is available at once, not after a timeout.
    let again = drain_messages(&fleet.queue(), 1, Duration::from_secs(3)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(Envelope::decode(&again[0].body).unwrap().task_id, task.task_id);
}

#[tokio::test]
async fn sigterm_parks_a_task_waiting_in_place_at_once_with_its_checkpoint() {
    let fleet = fast_fleet("drainhold").await;
    // Pending for a long while, re-checked every second: it waits in place (hold 60 s).
    let task = canary("drainhold", CanaryMode::PendingTimes(1_000), 0);
    fleet.send(&task).await;
    let args: Vec<String> = [
        "--visibility-timeout-secs=10",
        "--lease-secs=10",
        "--heartbeat-secs=2",
        "--receive-wait-secs=1",
        "--ack-flush-ms=50",
        "--exit-when-idle=600",
        "--hold-pending-secs=60",
        "--drain-deadline-secs=60",
    ]
    .map(String::from)
    .into();
    let mut worker = start(&fleet, "w", args);
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    worker.sigterm();
    // It parks at once, with the checkpoint of the re-checks it made in place, instead of
    // re-checking on for the rest of its 60 s hold (one a second) before the drain ends.
    let status = worker.wait_async(Duration::from_secs(120)).await;
    assert!(status.success(), "drained worker exits 0");
    assert_eq!(worker.count(CANARY, "parked"), 1);
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Waiting);
    let rechecks = record.checkpoint.as_ref().and_then(|c| c["rechecks"].as_u64()).unwrap_or(0);
    assert!((2..30).contains(&rechecks), "re-checked in place, then parked on SIGTERM: {record:#?}");
}

#[tokio::test]
async fn sigterm_stops_receiving_and_lets_short_tasks_finish() {
    let fleet = fast_fleet("drainok").await;
    let task = canary("drainok", CanaryMode::Succeed, 3000);
    fleet.send(&task).await;
    let mut args = fast(600);
    args.push("--drain-deadline-secs=20".into());
    let mut worker = start(&fleet, "w", args);
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    worker.sigterm();
    // The signal is handled asynchronously: once the worker says it stopped receiving (not
    // before: a loaded machine may run its signal task late), nothing new may be taken.
    let stopped = std::time::Instant::now() + Duration::from_secs(15);
    while !worker.log_tail(200).contains("stopped receiving") {
        assert!(std::time::Instant::now() < stopped, "the worker never stopped receiving:\n{}", worker.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let late = canary("late", CanaryMode::Succeed, 0);
    fleet.send(&late).await;
    let status = worker.wait_async(Duration::from_secs(30)).await;
    assert!(status.success());
    assert_eq!(
        fleet.task(&task.task_id).await.unwrap().state,
        TaskState::Succeeded,
        "in-flight task finished within the drain"
    );
    assert!(fleet.task(&late.task_id).await.is_none(), "nothing was received after SIGTERM");
}

#[tokio::test]
async fn retryable_failures_back_off_then_reach_the_dlq_and_are_recorded_dead() {
    let fleet = Fleet::with("retry", |s| {
        s.task_visibility_timeout_secs = 4;
        s.task_max_receive_count = 3;
    })
    .await;
    let task = canary("retry", CanaryMode::Retry, 0);
    let body = task.encode().unwrap();
    fleet.send_body(&body).await;
    let mut worker = start(&fleet, "w", fast(12));
    finish(&mut worker).await;

    assert_eq!(worker.count(CANARY, "retried"), 2);
    assert_eq!(worker.count(CANARY, "dead"), 1);
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Dead);
    assert!(record.last_error.unwrap().contains("retries exhausted"));
    let dead = fleet.dlq_messages(1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "redrive moved the message to the DLQ");
    assert_eq!(dead[0].body, body, "body intact");
}

#[tokio::test]
async fn retryable_failure_then_success() {
    let fleet = fast_fleet("retryok").await;
    let task = canary("retryok", CanaryMode::RetryUntil(2), 0);
    fleet.send(&task).await;
    let mut worker = start(&fleet, "w", fast(8));
    finish(&mut worker).await;
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 2);
    assert_eq!(worker.count(CANARY, "retried"), 1);
}

#[tokio::test]
async fn permanent_failure_is_recorded_and_the_message_deleted() {
    let fleet = fast_fleet("perm").await;
    let task = canary("perm", CanaryMode::Fail, 0);
    fleet.send(&task).await;
    let mut worker = start(&fleet, "w", fast(4));
    finish(&mut worker).await;
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Failed);
    assert!(record.last_error.unwrap().contains("asked to fail"));
    assert_queue_empty(&fleet).await;
    assert!(fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty(), "failed is not dead: nothing in the DLQ");
}

#[tokio::test]
async fn a_parked_task_is_rechecked_and_completes() {
    let fleet = fast_fleet("park").await;
    let task = canary("park", CanaryMode::PendingTimes(2), 0);
    fleet.send(&task).await;
    let mut args = fast(6);
    args.push("--hold-pending-secs=0".into());
    let mut worker = start(&fleet, "w", args);
    finish(&mut worker).await;
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.attempts, 3, "two re-checks after the first run");
    assert_eq!(worker.count(CANARY, "parked"), 2);
    assert_eq!(record.checkpoint, Some(json!({"rechecks": 2})));
}

#[tokio::test]
async fn a_task_whose_recheck_is_due_soon_waits_in_place_and_one_that_would_wait_too_long_parks() {
    let fleet = fast_fleet("hold").await;
    let quick = canary("hold-quick", CanaryMode::PendingTimes(2), 0);
    fleet.send(&quick).await;
    // Re-checks after 1 s: two fit in 3 s, so the task finishes within its first attempt, with no
    // Waiting write, no parking and no second claim. (Heartbeats every 5 s: none falls in the
    // wait, so the lease is written exactly twice.)
    let args: Vec<String> = [
        "--visibility-timeout-secs=10",
        "--lease-secs=10",
        "--heartbeat-secs=5",
        "--receive-wait-secs=1",
        "--ack-flush-ms=50",
        "--exit-when-idle=6",
        "--hold-pending-secs=3",
    ]
    .map(String::from)
    .into();
    let mut worker = start(&fleet, "w", args);
    finish(&mut worker).await;
    let record = fleet.task(&quick.task_id).await.unwrap();
    assert_eq!((record.state, record.attempts), (TaskState::Succeeded, 1));
    assert_eq!(worker.count(CANARY, "parked"), 0);
    let calls = &worker.summary()["aws_calls"];
    assert_eq!(calls["DynamoDB.UpdateItem"], json!(2), "one claim and one completion: {calls}");
    // Both are counted for the task's kind too; the receives serve every kind and are not.
    let for_canaries = &worker.summary()["aws_calls_by_kind"][CANARY];
    assert_eq!(for_canaries["DynamoDB.UpdateItem"], json!(2), "{for_canaries}");
    assert!(for_canaries.get("SQS.ReceiveMessage").is_none(), "{for_canaries}");

    // With 2 s, an attempt waits in place for one re-check (due 1 s after the start), not for a
    // second (due after 2 s and a little): five re-checks take three attempts, parking twice with
    // the checkpoint.
    let slow = canary("hold-slow", CanaryMode::PendingTimes(5), 0);
    fleet.send(&slow).await;
    let mut args = fast(8);
    args.push("--hold-pending-secs=2".into());
    let mut worker = start(&fleet, "w2", args);
    finish(&mut worker).await;
    let record = fleet.task(&slow.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.checkpoint, Some(json!({"rechecks": 4})), "the last one parked with");
    assert_eq!((record.attempts, worker.count(CANARY, "parked")), (3, 2));
}

#[tokio::test]
async fn fan_out_children_are_sent_before_the_parent_completes() {
    let fleet = fast_fleet("fanout").await;
    let mut task = canary("fanout", CanaryMode::Succeed, 0);
    if let backup_schemas::Task::Canary(params) = &mut task.task {
        params.spawn = 12;
    }
    task.task_id = task.task.id();
    fleet.send(&task).await;
    let mut worker = start(&fleet, "w", fast(6));
    finish(&mut worker).await;
    assert_eq!(worker.count(CANARY, "succeeded"), 13);
    assert_eq!(worker.summary()["counts"]["children_sent"], json!(12));
}

#[tokio::test]
async fn poison_messages_go_to_the_dlq_with_their_reason_while_good_ones_succeed() {
    let fleet = fast_fleet("poison").await;
    let valid = canary("valid", CanaryMode::Succeed, 0);
    let mut value: serde_json::Value = serde_json::from_str(&valid.encode().unwrap()).unwrap();
    let with = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = value.clone();
        patch(&mut v);
        v.to_string()
    };
    let poison: Vec<(String, &str)> = vec![
        ("this is not json".into(), "not_json"),
        ("[1, 2, 3]".into(), "not_an_object"),
        (with(&|v| v["v"] = json!(99)), "unsupported_version"),
        (with(&|v| v["kind"] = json!("ebs.format_disk")), "unknown_kind"),
        (with(&|v| v["params"] = json!({"nonce": 5})), "invalid_params"),
        (with(&|v| v["task_id"] = json!("t-00000000000000000000000000000000")), "id_mismatch"),
        (format!("{}{}", "[".repeat(300), "]".repeat(300)), "not_json"),
        (format!("{{\"v\": 1, \"kind\": \"fleet.canary\", \"junk\": \"{}\"}}", "ü".repeat(100_000)), "invalid_params"),
        ("{\"v\": \"1\", \"kind\": \"fleet.canary\"}".into(), "missing_version"),
        ("{\"v\": 1}".into(), "missing_kind"),
    ];
    value["v"] = json!(1);
    let good: Vec<Envelope> = (0..3).map(|i| canary(&format!("good{i}"), CanaryMode::Succeed, 0)).collect();
    fleet.send(&good[0]).await;
    for (body, _) in &poison {
        fleet.send_body(body).await;
    }
    fleet.send(&good[1]).await;
    fleet.send(&good[2]).await;

    let mut worker = start(&fleet, "w", fast(6));
    finish(&mut worker).await;
    assert_eq!(worker.count("unknown", "poison"), poison.len() as u64);
    assert_eq!(worker.count(CANARY, "succeeded"), 3, "good messages around the poison succeed");
    for envelope in &good {
        assert_eq!(fleet.task(&envelope.task_id).await.unwrap().state, TaskState::Succeeded);
    }
    let dead = fleet.dlq_messages(poison.len(), Duration::from_secs(15)).await;
    assert_eq!(dead.len(), poison.len(), "every poison message is in the DLQ");
    for (body, code) in &poison {
        let message = dead.iter().find(|m| &m.body == body).unwrap_or_else(|| panic!("DLQ lacks body {:.60}", body));
        assert_eq!(
            message.attributes.get(ATTR_REASON_CODE).map(String::as_str),
            Some(*code),
            "reason code of {:.60}",
            body
        );
        assert!(!message.attributes.get(ATTR_REASON).map(String::is_empty).unwrap_or(true), "a readable reason");
    }
    assert_queue_empty(&fleet).await;
}

#[tokio::test]
async fn a_duplicate_of_a_long_running_task_is_deleted_not_dead_lettered() {
    // Few receives allowed: handing the duplicate back every lease period would exhaust them.
    let fleet = Fleet::with("longdup", |s| {
        s.task_visibility_timeout_secs = 4;
        s.task_max_receive_count = 3;
    })
    .await;
    let task = canary("longdup", CanaryMode::Succeed, 15_000);
    fleet.send(&task).await;
    let mut worker = start(&fleet, "w", fast(6));
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    fleet.send(&task).await;
    finish(&mut worker).await;
    assert_eq!(fleet.task(&task.task_id).await.unwrap().state, TaskState::Succeeded);
    assert_eq!(worker.count(CANARY, "succeeded"), 1);
    assert_eq!(worker.count(CANARY, "duplicate"), 1, "the second message was recognised as a duplicate");
    assert!(
        fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty(),
        "a healthy task's duplicate is never dead-lettered"
    );
    assert_queue_empty(&fleet).await;
}

#[tokio::test]
async fn copy_slots_cap_the_fleet_wide_copies_in_flight_and_a_vanished_holder_frees_its_slot() {
    use backup_core::ports::SlotPool;
    let fleet = fast_fleet("slots").await;
    let store = fleet.store();
    let pool = "ebs-copy:us-west-2";
    let hold = Duration::from_secs(60);
    let ids: Vec<backup_schemas::TaskId> =
        (0..22).map(|i| backup_schemas::TaskId::new(format!("t-slot-{i}"))).collect();
    for id in &ids[..20] {
        assert!(store.acquire(pool, id, 20, hold).await.unwrap(), "a slot for {id}");
    }
    assert!(!store.acquire(pool, &ids[20], 20, hold).await.unwrap(), "the 21st copy waits");
    assert!(store.acquire(pool, &ids[3], 20, hold).await.unwrap(), "a holder retaking its slot is not refused");
    store.release(pool, &ids[3]).await.unwrap();
    assert!(store.acquire(pool, &ids[20], 20, hold).await.unwrap(), "a released slot is taken");
    assert!(store.acquire("ebs-copy:eu-west-1", &ids[0], 20, hold).await.unwrap(), "regions have their own pools");

    // A holder that vanishes without releasing (killed, dead-lettered) holds its slot only until
    // its hold runs out: then the next copy takes it. Without expiry, 20 such leaks stop every
    // copy into the region for good.
    store.release(pool, &ids[5]).await.unwrap();
    assert!(store.acquire(pool, &ids[5], 20, Duration::from_secs(1)).await.unwrap(), "a short hold");
    assert!(!store.acquire(pool, &ids[21], 20, hold).await.unwrap(), "full while the short hold lives");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.acquire(pool, &ids[21], 20, hold).await.unwrap(), "the lapsed hold was cleared and taken");
    assert!(!store.acquire(pool, &ids[5], 20, hold).await.unwrap(), "the vanished holder lost its slot");
}

// ---- Defects of the runtime that moto's kindness hid (issue "AWS as it really behaves").

/// Polls a process's log until it contains `text`, or fails after `timeout`.
async fn log_shows(process: &FleetProcess, text: &str, timeout: Duration) {
    let found = backup_tests::eventually(timeout, || async {
        std::fs::read_to_string(&process.log_path).unwrap_or_default().contains(text).then_some(())
    })
    .await;
    assert!(found.is_some(), "{} never logged {text:?}; log:\n{}", process.name, process.log_tail(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_lease_cannot_be_extended_is_stopped_before_the_lease_runs_out() {
    use backup_tests::fault_proxy::{FaultConfig, FaultProxy};
    let fleet = fast_fleet("leasefail").await;
    let proxy = FaultProxy::start(&fleet.endpoint, FaultConfig::none()).await.expect("proxy");
    let task = canary("leasefail", CanaryMode::Succeed, 60_000);
    fleet.send(&task).await;
    let mut args = fast(30);
    args.push("--drain-deadline-secs=1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut worker = FleetProcess::spawn("backup-worker", "a", &fleet.prefix, &fleet.env_at(&proxy.endpoint()), &args);
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    // From now on no lease extension succeeds (DynamoDB answers 500 to every write).
    proxy.set_config(FaultConfig {
        server_error: 1.0,
        services: vec!["dynamodb".into()],
        operations: vec!["UpdateItem".into()],
        ..FaultConfig::none()
    });
    // The handler is stopped about one heartbeat before the last extension runs out (4 s lease):
    // well within these 20 s, where the old worker went on for the whole 60 s task.
    log_shows(&worker, "no lease extension succeeded in time", Duration::from_secs(20)).await;
    worker.sigterm();
    finish(&mut worker).await;
    assert_eq!(worker.count(CANARY, "lost_lease"), 1, "{}", worker.summary());
    assert_eq!(worker.count(CANARY, "succeeded"), 0);
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Running, "left to expire for a takeover: {record:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tasks_message_is_not_dead_lettered_when_its_visibility_lapses() {
    use backup_tests::fault_proxy::{FaultConfig, FaultProxy};
    let fleet = Fleet::realistic_with("stalehandle", |s| {
        s.task_visibility_timeout_secs = 4;
        s.task_max_receive_count = 3;
    })
    .await;
    // Worker A's visibility extensions fail for a while: its message becomes visible while it
    // runs the task, and worker B receives it. From then on A's receipt handle is stale (AWS
    // honours only the newest), so no extension of A's can ever hide the message again.
    let failing = FaultConfig {
        server_error: 1.0,
        services: vec!["sqs".into()],
        operations: vec!["ChangeMessageVisibilityBatch".into()],
        ..FaultConfig::none()
    };
    let proxy = FaultProxy::start(&fleet.endpoint, failing).await.expect("proxy");
    let task = canary("stale", CanaryMode::Succeed, 20_000);
    fleet.send(&task).await;
    let args = fast(4);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = FleetProcess::spawn("backup-worker", "a", &fleet.prefix, &fleet.env_at(&proxy.endpoint()), &args);
    fleet.wait_task(&task.task_id, Duration::from_secs(30), |r| r.state == TaskState::Running).await;
    let b_args = fast(25);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut b = fleet.worker("b", &b_args);
    // Either worker (A polls too) receives the holder's own message back.
    let back = backup_tests::eventually(Duration::from_secs(20), || async {
        [&a, &b]
            .iter()
            .any(|w| std::fs::read_to_string(&w.log_path).unwrap_or_default().contains("leased"))
            .then_some(())
    })
    .await;
    assert!(back.is_some(), "the message never came back; a:\n{}", a.log_tail(20));
    proxy.set_config(FaultConfig::none());
    let record = fleet.wait_task(&task.task_id, Duration::from_secs(90), |r| r.state.is_terminal()).await;
    finish(&mut a).await;
    // B goes on receiving the message's copies until one shows the task finished.
    let queue = fleet.queue();
    let drained = backup_tests::eventually(Duration::from_secs(30), || async {
        let d = queue.depth().await.unwrap();
        (d.visible + d.in_flight + d.delayed == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the finished task's message copies are deleted; b:\n{}", b.log_tail(20));
    b.sigterm();
    finish(&mut b).await;
    assert_eq!(record.state, TaskState::Succeeded, "{record:#?}");
    assert_eq!(record.attempts, 1, "never taken over while its holder lived");
    assert!(
        fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty(),
        "the message of a live task was dead-lettered; a: {}\nb: {}",
        a.log_tail(20),
        b.log_tail(20)
    );
    assert!(a.log_tail(400).contains("receipt handle went stale"), "the holder noticed; log:\n{}", a.log_tail(30));
}

#[tokio::test]
async fn a_result_bigger_than_a_dynamodb_item_is_recorded_cut_down_instead_of_failing() {
    let fleet = fast_fleet("bigresult").await;
    let store = fleet.store();
    let task = canary("bigresult", CanaryMode::Succeed, 0);
    let request = ClaimRequest {
        task_id: task.task_id.clone(),
        run_id: task.run_id.clone(),
        kind: TaskKind::Canary,
        resource: "canary".into(),
        owner: LeaseOwner::new("w"),
        now: Utc::now(),
        lease: Duration::from_secs(30),
        receive_count: 1,
        message_id: "m".into(),
        enqueued_at: Utc::now(),
        retain: Duration::from_secs(3600),
    };
    let ClaimOutcome::Claimed(lease) = store.claim(&request).await.unwrap() else { panic!("claim") };
    // A prune of a resource with 30,000 artifacts once listed them all: ~800 KB, over
    // DynamoDB's 400 KB item limit, so the SUCCEEDED write failed and the task looped.
    let ids: Vec<String> = (0..30_000).map(|i| format!("snap-{i:017}")).collect();
    let result = json!({ "resource": "vol-1", "summary": "delete 30000", "delete": ids });
    assert!(store.transition(&lease, &Transition::Succeeded { result }, Utc::now()).await.expect("recorded"));
    let record = fleet.task(&task.task_id).await.unwrap();
    assert_eq!(record.state, TaskState::Succeeded);
    let result = record.result.unwrap();
    assert_eq!((result["truncated"].clone(), result["delete_total"].clone()), (json!(true), json!(30_000)));
    assert_eq!(result["summary"], "delete 30000");
}

#[tokio::test]
async fn a_max_receive_count_that_differs_from_the_queues_is_refused_at_start() {
    let fleet = fast_fleet("mrc").await;
    let queue = fleet.queue().settings().await.unwrap().max_receive_count.unwrap();
    // Below the queue's: tasks would be recorded DEAD whose messages never reach the DLQ.
    let mut worker = fleet.worker("w", &["--max-receive-count=2", "--exit-when-idle=1"]);
    let status = worker.wait_async(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "log:\n{}", worker.log_tail(10));
    let log = worker.log_tail(10);
    assert!(log.contains("--max-receive-count") && log.contains(&queue.to_string()), "{log}");
    // Equal to the queue's is fine, and so is leaving it out.
    let mut worker = fleet.worker("w2", &[&format!("--max-receive-count={queue}"), "--exit-when-idle=1"]);
    finish(&mut worker).await;
}
