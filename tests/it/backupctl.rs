//! `backupctl` against the emulator: DLQ replay moves exactly the filtered messages, a dry run
//! changes nothing, a replay killed midway loses nothing, and `status --check` fails on a
//! non-empty DLQ.

use backup_core::ports::{OutgoingMessage, TaskQueue, TaskStore, ATTR_REASON, ATTR_REASON_CODE};
use backup_schemas::{CanaryMode, Envelope, TaskState};
use backup_tests::{canary, drain_messages, run_binary, Fleet};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Puts `count` dead letters of each kind in the task DLQ: canaries whose retries ran out
/// (recorded DEAD, as the worker leaves them) and unparseable bodies with a reason.
async fn fill_dlq(fleet: &Fleet, canaries: usize, poison: usize) -> (Vec<Envelope>, Vec<String>) {
    let dlq = fleet.dlq();
    let store = fleet.store();
    let mut envelopes = Vec::new();
    for i in 0..canaries {
        let envelope = canary(&format!("dead{i}"), CanaryMode::Succeed, 0);
        // The task item as a worker leaves it after its last retry.
        let lease = match store
            .claim(&backup_core::ports::ClaimRequest {
                task_id: envelope.task_id.clone(),
                run_id: envelope.run_id.clone(),
                kind: envelope.kind(),
                resource: envelope.task.resource(),
                owner: backup_schemas::LeaseOwner::new("test"),
                now: chrono::Utc::now(),
                lease: Duration::from_secs(60),
                receive_count: 10,
                message_id: format!("m{i}"),
                enqueued_at: envelope.created_at,
                retain: Duration::from_secs(3600),
            })
            .await
            .unwrap()
        {
            backup_core::ports::ClaimOutcome::Claimed(lease) => lease,
            other => panic!("claim: {other:?}"),
        };
        let dead = backup_core::ports::Transition::Dead { reason: "retries exhausted: s3 SlowDown".into() };
        assert!(store.transition(&lease, &dead, chrono::Utc::now()).await.unwrap());
        dlq.send(&OutgoingMessage { id: "0".into(), body: envelope.encode().unwrap(), ..Default::default() })
            .await
            .unwrap();
        envelopes.push(envelope);
    }
    let mut bodies = Vec::new();
    for i in 0..poison {
        let body = format!("not json {i}");
        let attributes = BTreeMap::from([
            (ATTR_REASON.to_owned(), "message body is not valid JSON".to_owned()),
            (ATTR_REASON_CODE.to_owned(), "not_json".to_owned()),
            (backup_core::ports::ATTR_SOURCE_QUEUE.to_owned(), fleet.resources.task_queue_url.clone()),
        ]);
        dlq.send(&OutgoingMessage { id: "0".into(), body: body.clone(), attributes, ..Default::default() })
            .await
            .unwrap();
        bodies.push(body);
    }
    (envelopes, bodies)
}

async fn depth(queue: &backup_aws::sqs::SqsQueue) -> u64 {
    let d = queue.depth().await.unwrap();
    d.visible + d.in_flight + d.delayed
}

#[tokio::test]
async fn replay_moves_exactly_the_filtered_messages_and_a_dry_run_changes_nothing() {
    let fleet = Fleet::realistic("replay").await;
    let (dead, poison) = fill_dlq(&fleet, 3, 2).await;
    let env = fleet.env();

    let listed = run_binary("backupctl", &env, &["dlq", "list", "--json"]).await;
    assert!(listed.status.success(), "{}", listed.stderr);
    let letters = listed.json();
    assert_eq!(letters.as_array().unwrap().len(), 5, "all dead letters listed: {letters}");
    assert!(
        letters.as_array().unwrap().iter().any(|l| l["reason"].as_str().unwrap().contains("SlowDown")),
        "reason from the task item"
    );
    assert_eq!(depth(&fleet.dlq()).await, 5, "listing consumes nothing");

    let dry = run_binary("backupctl", &env, &["dlq", "replay", "--kind", "fleet.canary", "--dry-run", "--json"]).await;
    assert!(dry.status.success(), "{}", dry.stderr);
    assert_eq!(dry.json()["would_replay"].as_array().unwrap().len(), 3);
    assert_eq!(depth(&fleet.dlq()).await, 5, "a dry run moves nothing");
    assert_eq!(depth(&fleet.queue()).await, 0);

    let replay =
        run_binary("backupctl", &env, &["dlq", "replay", "--kind", "fleet.canary", "--rate", "100", "--json"]).await;
    assert!(replay.status.success(), "{}", replay.stderr);
    assert_eq!(replay.json()["replayed"].as_array().unwrap().len(), 3);
    let moved = drain_messages(&fleet.queue(), 3, Duration::from_secs(5)).await;
    let moved_bodies: BTreeSet<String> = moved.iter().map(|m| m.body.clone()).collect();
    let expected: BTreeSet<String> = dead.iter().map(|e| e.encode().unwrap()).collect();
    assert_eq!(moved_bodies, expected, "exactly the filtered messages, bodies intact");
    for envelope in &dead {
        let record = fleet.task(&envelope.task_id).await.unwrap();
        assert_eq!(record.state, TaskState::Pending, "re-opened");
        assert_eq!(record.attempts, 0, "fresh attempt budget");
        assert_eq!(record.replays, 1, "replay mark");
    }
    let left = drain_messages(&fleet.dlq(), 2, Duration::from_secs(5)).await;
    let left_bodies: BTreeSet<String> = left.iter().map(|m| m.body.clone()).collect();
    assert_eq!(left_bodies, poison.into_iter().collect(), "the unfiltered ones stay");
}

#[tokio::test]
async fn a_replay_killed_midway_loses_nothing_and_status_check_fails_on_a_non_empty_dlq() {
    let fleet = Fleet::realistic("replaykill").await;
    let (dead, _) = fill_dlq(&fleet, 12, 0).await;
    let env = fleet.env();

    let check = run_binary("backupctl", &env, &["status", "--check", "--json"]).await;
    assert_eq!(check.status.code(), Some(3), "non-empty DLQ: {}", check.stdout);
    assert!(check.json()["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("tasks-dlq")));

    // Two messages a second, kill it after a few have moved. The messages it held come back to
    // the DLQ when their hold (at least 4 s here) ends.
    let mut held = env.clone();
    held.push(("BACKUP_DLQ_HOLD_SECS".into(), "4".into()));
    let mut replay = backup_tests::FleetProcess::spawn(
        "backupctl",
        "replay",
        &fleet.prefix,
        &held,
        &["dlq", "replay", "--rate", "2"],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    replay.sigkill();
    // Every message is somewhere: in the DLQ, in the task queue, or (a send whose delete the
    // kill interrupted) in both.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let in_queue = drain_messages(&fleet.queue(), 12, Duration::from_secs(4)).await;
    let in_dlq = drain_messages(&fleet.dlq(), 12, Duration::from_secs(4)).await;
    let seen: BTreeSet<String> = in_queue.iter().chain(&in_dlq).map(|m| m.body.clone()).collect();
    for envelope in &dead {
        assert!(seen.contains(&envelope.encode().unwrap()), "task {} was lost", envelope.task_id);
    }
    assert!(
        !in_queue.is_empty() && !in_dlq.is_empty(),
        "the kill came midway ({} moved, {} left)",
        in_queue.len(),
        in_dlq.len()
    );

    // Once everything is handled, `status --check` is happy again.
    for message in in_dlq {
        fleet.dlq().delete_batch(&[message.receipt_handle]).await.unwrap();
    }
    for message in in_queue {
        fleet.queue().delete_batch(&[message.receipt_handle]).await.unwrap();
    }
    let ok = run_binary("backupctl", &env, &["status", "--runs", "0", "--check"]).await;
    assert_eq!(ok.status.code(), Some(0), "{}{}", ok.stdout, ok.stderr);
}

#[tokio::test]
async fn replay_never_reopens_a_task_that_holds_a_live_lease() {
    let fleet = Fleet::realistic("replaylive").await;
    let store = fleet.store();
    let envelope = canary("live", CanaryMode::Succeed, 0);
    // A worker runs the task (live lease); a stale copy of its message sits in the DLQ, as
    // when a lapsed visibility let it be received and redriven while the task ran.
    let claimed = store
        .claim(&backup_core::ports::ClaimRequest {
            task_id: envelope.task_id.clone(),
            run_id: envelope.run_id.clone(),
            kind: envelope.kind(),
            resource: envelope.task.resource(),
            owner: backup_schemas::LeaseOwner::new("holder"),
            now: chrono::Utc::now(),
            lease: Duration::from_secs(300),
            receive_count: 1,
            message_id: "m-holder".into(),
            enqueued_at: envelope.created_at,
            retain: Duration::from_secs(3600),
        })
        .await
        .unwrap();
    let backup_core::ports::ClaimOutcome::Claimed(lease) = claimed else { panic!("claim") };
    fleet
        .dlq()
        .send(&OutgoingMessage { id: "0".into(), body: envelope.encode().unwrap(), ..Default::default() })
        .await
        .unwrap();
    let out = run_binary("backupctl", &fleet.env(), &["dlq", "replay", "--yes", "--json"]).await;
    assert_eq!(out.status.code(), Some(3), "something selected stayed in the DLQ: {}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["replayed"].as_array().unwrap().len(), 0, "{report}");
    assert!(report["skipped"][0][1].as_str().unwrap().contains("live lease"), "{report}");
    let record = store.get(&envelope.task_id).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.owner.as_deref(), record.fence),
        (TaskState::Running, Some("holder"), lease.fence),
        "the running task was not reopened: {record:#?}"
    );
    assert_eq!(depth(&fleet.dlq()).await, 1, "the dead letter stays until the task's lease ends");
    assert_eq!(depth(&fleet.queue()).await, 0, "nothing was sent for the running task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_slower_than_its_hold_never_leaves_a_message_both_replayed_and_dead_lettered() {
    use backup_tests::fault_proxy::{FaultConfig, FaultProxy};
    let fleet = Fleet::realistic("replayslow").await;
    let (dead, _) = fill_dlq(&fleet, 6, 0).await;
    // Every send of the replay takes 1.5 s (a slow link, a throttled queue), so the replay lasts
    // longer than the hold on the messages it received (1 s minimum here).
    let proxy = FaultProxy::start(
        &fleet.endpoint,
        FaultConfig {
            latency: Some((Duration::from_millis(1500), 1.0)),
            services: vec!["sqs".into()],
            operations: vec!["SendMessage".into()],
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy");
    let mut env = fleet.env_at(&proxy.endpoint());
    env.push(("BACKUP_DLQ_HOLD_SECS".into(), "1".into()));
    // Meanwhile another reader polls the DLQ (a second operator's `dlq list`, a script): each of
    // its receives gives the message a new receipt handle, and only the newest one can delete.
    let stop = tokio_util::sync::CancellationToken::new();
    let reader = tokio::spawn({
        let (dlq, stop) = (fleet.dlq(), stop.clone());
        async move {
            while !stop.is_cancelled() {
                let _ = dlq.peek(10).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let out = run_binary("backupctl", &env, &["dlq", "replay", "--yes", "--json"]).await;
    stop.cancel();
    reader.await.unwrap();
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["replayed"].as_array().unwrap().len(), dead.len(), "{}", out.stdout);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(depth(&fleet.dlq()).await, 0, "a replayed message is no longer dead-lettered");
    assert_eq!(depth(&fleet.queue()).await, dead.len() as u64, "each replayed once");
}
