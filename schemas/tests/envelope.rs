//! Envelope encoding and decoding: distinct errors for each way a body can be wrong, the size
//! limit at send time, and deterministic ids.

use backup_schemas::samples::{sample, sample_envelope};
use backup_schemas::*;

#[test]
fn every_kind_round_trips() {
    for kind in TaskKind::ALL {
        let envelope = sample_envelope(*kind);
        let body = envelope.encode().unwrap();
        assert_eq!(Envelope::decode(&body).unwrap(), envelope, "{kind}");
        assert_eq!(kind.as_str().parse::<TaskKind>().unwrap(), *kind);
    }
}

#[test]
fn decode_errors_are_distinct_and_explicit() {
    let good: serde_json::Value = serde_json::from_str(&sample_envelope(TaskKind::Canary).encode().unwrap()).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("nope".into(), "not_json"),
        ("42".into(), "not_an_object"),
        (with(&|v| v.as_object_mut().unwrap().remove("v").map(drop).unwrap_or(())), "missing_version"),
        (with(&|v| v["v"] = 2.into()), "unsupported_version"),
        (with(&|v| v.as_object_mut().unwrap().remove("kind").map(drop).unwrap_or(())), "missing_kind"),
        (with(&|v| v["kind"] = "ebs.format_disk".into()), "unknown_kind"),
        (with(&|v| v["params"] = serde_json::json!({"sleep_ms": 1})), "invalid_params"),
        (with(&|v| v["created_at"] = "yesterday".into()), "invalid_envelope"),
        (with(&|v| v["task_id"] = "t-forged".into()), "id_mismatch"),
        ("x".repeat(MAX_MESSAGE_BYTES + 1), "too_large"),
        (format!("{}{}", "[".repeat(1000), "]".repeat(1000)), "not_json"),
    ];
    for (body, code) in cases {
        let err = Envelope::decode(&body).expect_err(code);
        assert_eq!(err.code(), code, "{err}");
        assert!(!err.to_string().is_empty());
    }
    let err = Envelope::decode(&with(&|v| v["v"] = 2.into())).unwrap_err();
    assert_eq!(err.to_string(), "unsupported schema version 2 (this worker reads version 1)");
}

#[test]
fn oversized_envelopes_are_refused_at_send_time() {
    let mut envelope = sample_envelope(TaskKind::CopyObjects);
    if let Task::CopyObjects(params) = &mut envelope.task {
        let object = params.objects[0].clone();
        params.objects = vec![object; 3000];
    }
    let err = envelope.encode().expect_err("too large for SQS");
    assert!(err.to_string().contains("over the"), "{err}");
    assert!(err.to_string().contains("s3.copy_batch"), "{err}");
}

#[test]
fn ids_are_deterministic_and_depend_on_identity_only() {
    let a = sample(TaskKind::SnapshotVolume);
    let b = sample(TaskKind::SnapshotVolume);
    assert_eq!(a.id(), b.id());
    assert!(a.id().as_str().starts_with("t-") && a.id().as_str().len() == 34);
    // Expiry is not identity: a later expansion with other retention still maps to the same task.
    let Task::SnapshotVolume(mut params) = sample(TaskKind::SnapshotVolume) else { unreachable!() };
    params.ctx.expires_at = None;
    assert_eq!(Task::SnapshotVolume(params.clone()).id(), a.id());
    // Another window is another task.
    params.ctx.window += chrono::Duration::days(1);
    assert_ne!(Task::SnapshotVolume(params).id(), a.id());
    // Every kind has its own id space.
    let ids: std::collections::BTreeSet<_> = TaskKind::ALL.iter().map(|k| sample(*k).id()).collect();
    assert_eq!(ids.len(), TaskKind::ALL.len());
}

#[test]
fn each_prunes_deletion_is_its_own_task_so_a_refused_one_is_decided_again() {
    let Task::DeleteArtifact(today) = sample(TaskKind::DeleteArtifact) else { unreachable!() };
    let mut tomorrow = today.clone();
    tomorrow.prune.as_mut().expect("sample has its prune").as_of += chrono::Duration::days(1);
    tomorrow.reason = "another wording".into();
    assert_ne!(
        Task::DeleteArtifact(today.clone()).id(),
        Task::DeleteArtifact(tomorrow.clone()).id(),
        "a deletion of the same artifact by a later prune is a new task"
    );
    // The same prune (a re-run, a duplicate) maps to the same deletion.
    let mut again = today.clone();
    again.reason = "reworded".into();
    assert_eq!(Task::DeleteArtifact(today.clone()).id(), Task::DeleteArtifact(again).id());
    // A deletion message from before deletions carried their prune keeps its old id.
    let legacy = DeleteArtifact { prune: None, ..today };
    assert_eq!(
        Task::DeleteArtifact(legacy.clone()).id(),
        TaskId::derive("retention.delete", &serde_json::json!([legacy.artifact]))
    );
}

#[test]
fn task_states_parse_case_insensitively() {
    for state in TaskState::ALL {
        assert_eq!(state.as_str().to_lowercase().parse::<TaskState>().unwrap(), state);
    }
    assert!(TaskState::Succeeded.is_terminal() && !TaskState::Waiting.is_terminal());
}

fn member() -> AccountRef {
    AccountRef {
        account_id: "111122223333".into(),
        role_arn: "arn:aws:iam::111122223333:role/backup-fleet-member".into(),
    }
}

#[test]
fn the_account_a_task_acts_in_is_part_of_its_id_and_own_account_ids_are_unchanged() {
    let task = sample(TaskKind::SnapshotDbInstance);
    let own = sample_envelope(TaskKind::SnapshotDbInstance);
    assert_eq!(own.task_id, task.id(), "tasks of the fleet's own account keep the ids they always had");
    assert!(!own.encode().unwrap().contains("\"account\""), "no account field for the own account");
    let elsewhere = own.clone().in_account(Some(member()));
    // The same DB identifier in another account is other work.
    assert_ne!(elsewhere.task_id, own.task_id);
    assert_eq!(elsewhere.task_id, task.id_in(Some(&member())));
    assert_eq!(elsewhere.account_label(), "111122223333");
    assert_eq!(own.account_label(), "self");
    let decoded = Envelope::decode(&elsewhere.encode().unwrap()).unwrap();
    assert_eq!(decoded, elsewhere);
    // Back to the own account: back to the own id.
    assert_eq!(elsewhere.in_account(None).task_id, own.task_id);
}

#[test]
fn a_copy_into_a_backup_account_is_other_work_than_the_copy_into_the_same_region() {
    let Task::CopySnapshot(mut copy) = sample(TaskKind::CopySnapshot) else { unreachable!() };
    let same_account = Task::CopySnapshot(copy.clone()).id();
    copy.target.account = Some(AccountRef {
        account_id: "444455556666".into(),
        role_arn: "arn:aws:iam::444455556666:role/backup-fleet-vault".into(),
    });
    assert_ne!(Task::CopySnapshot(copy).id(), same_account);
}

#[test]
fn a_message_naming_a_role_outside_its_account_is_refused_before_anything_assumes_it() {
    let envelope = sample_envelope(TaskKind::SnapshotVolume).in_account(Some(member()));
    let mut body: serde_json::Value = serde_json::from_str(&envelope.encode().unwrap()).unwrap();
    body["account"]["role_arn"] = "arn:aws:iam::999999999999:role/admin".into();
    let err = Envelope::decode(&body.to_string()).unwrap_err();
    assert_eq!(err.code(), "invalid_envelope");
    assert!(err.to_string().contains("the role is in account 999999999999"), "{err}");
    body["account"]["account_id"] = "12".into();
    let err = Envelope::decode(&body.to_string()).unwrap_err();
    assert!(err.to_string().contains("12-digit"), "{err}");
    // Moving a task into another account changes its id: a forged account cannot reuse an id.
    let mut moved: serde_json::Value = serde_json::from_str(&envelope.encode().unwrap()).unwrap();
    moved["account"] = serde_json::json!({
        "account_id": "444455556666",
        "role_arn": "arn:aws:iam::444455556666:role/backup-fleet-member",
    });
    assert_eq!(Envelope::decode(&moved.to_string()).unwrap_err().code(), "id_mismatch");
}

#[test]
fn a_copy_target_naming_a_role_outside_its_account_is_refused_at_decode() {
    let Task::CopySnapshot(mut copy) = sample(TaskKind::CopySnapshot) else { unreachable!() };
    copy.target.account = Some(AccountRef {
        account_id: "444455556666".into(),
        role_arn: "arn:aws:iam::777788889999:role/backup-fleet-vault".into(),
    });
    let envelope = Envelope::new(
        Task::CopySnapshot(copy),
        RunId::new("r"),
        Origin::Operator { command: "t".into() },
        chrono::Utc::now(),
    );
    let err = Envelope::decode(&envelope.encode().unwrap()).unwrap_err();
    assert_eq!(err.code(), "invalid_params");
    assert!(err.to_string().contains("the role is in account 777788889999"), "{err}");
}
