//! The operator contract of every binary: exit codes (README, "Exit codes"), one-line errors that
//! name the flag or variable, no guessed region, and quiet ends on a closed pipe.

use backup_tests::{binary, policy_file, Fleet};
use std::process::{Command, Stdio};

const BINARIES: [&str; 3] = ["backup-worker", "backup-producer", "backupctl"];

/// Runs a binary with exactly `env` (nothing inherited that could supply a region or a profile).
fn run(name: &str, env: &[(String, String)], args: &[&str]) -> (Option<i32>, String, String) {
    let home = std::env::temp_dir().join("backup-fleet-tests").join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    for file in ["no-config", "no-credentials"] {
        std::fs::write(home.join(file), "").unwrap();
    }
    let output = Command::new(binary(name))
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of error, got:\n{stderr}");
    lines[0]
}

#[test]
fn an_unknown_flag_exits_2_with_one_line_naming_it() {
    for name in BINARIES {
        let (code, _, stderr) = run(name, &[], &["--no-such-flag"]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        let line = one_line(&stderr);
        assert!(line.contains("--no-such-flag") && line.starts_with(name), "{name}: {line}");
    }
    // Help is not an error.
    for name in BINARIES {
        assert_eq!(run(name, &[], &["--help"]).0, Some(0), "{name} --help");
    }
}

#[tokio::test]
async fn invalid_settings_and_a_missing_region_exit_2_with_one_line_saying_how_to_fix_it() {
    let fleet = Fleet::new("cli").await;
    let mut env = fleet.env();
    // An impossible combination: named, on one line.
    let (code, _, stderr) = run("backup-worker", &env, &["--concurrency=0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(one_line(&stderr).contains("concurrency"), "{stderr}");
    let (code, _, stderr) = run("backup-worker", &env, &["--visibility-timeout-secs=10", "--heartbeat-secs=20"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(one_line(&stderr).contains("heartbeat"), "{stderr}");

    // No region anywhere: refused, never guessed.
    env.retain(|(k, _)| k != "AWS_REGION");
    for (name, args) in [
        ("backup-worker", vec!["--exit-when-idle=1"]),
        ("backup-producer", vec!["rules", "--json"]),
        ("backupctl", vec!["status", "--json"]),
    ] {
        let (code, _, stderr) = run(name, &env, &args);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        let line = one_line(&stderr);
        assert!(line.contains("AWS_REGION") && line.contains("--region"), "{name}: {line}");
    }
    // backupctl's --region supplies it.
    let (code, stdout, stderr) = run("backupctl", &env, &["--region", "us-east-1", "status", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("queues"), "{stdout}");
}

#[tokio::test]
async fn usage_and_policy_errors_exit_2_and_aws_failures_exit_1() {
    let fleet = Fleet::new("cliusage").await;
    let env = fleet.env();
    let (code, _, stderr) = run("backupctl", &env, &["bootstrap", "--prefix", "not a prefix!"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(one_line(&stderr).contains("--prefix"), "{stderr}");
    // `--json` like every other command (and `--format json` still works).
    let (code, stdout, stderr) = run("backupctl", &env, &["bootstrap", "--prefix", &fleet.prefix, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_ok(), "{stdout}");

    let bad = policy_file(&fleet.prefix, "[[plan]]\nname = \"daily\"\nschedul = \"cron(0 2 * * ? *)\"\n");
    let mut with_policy = env.clone();
    with_policy.push(("BACKUP_POLICY_FILE".into(), bad.display().to_string()));
    let (code, _, stderr) = run("backup-producer", &with_policy, &["run", "--plan", "daily", "--dry-run"]);
    assert_eq!(code, Some(2), "an invalid policy: {stderr}");
    assert!(stderr.contains("schedul"), "the error names the key: {stderr}");
    let (code, _, stderr) = run("backupctl", &with_policy, &["report", "rpo", "--json"]);
    assert_eq!(code, Some(2), "{stderr}");

    let good = policy_file(&fleet.prefix, include_str!("../../examples/policy.toml"));
    let mut with_policy = env.clone();
    with_policy.push(("BACKUP_POLICY_FILE".into(), good.display().to_string()));
    let (code, _, stderr) = run("backup-producer", &with_policy, &["run", "--plan", "no-such-plan", "--dry-run"]);
    assert_eq!(code, Some(2), "an unknown plan is a usage error: {stderr}");

    // An AWS failure (the queue does not exist) is 1.
    let mut wrong = env.clone();
    for (key, value) in wrong.iter_mut() {
        if key == "BACKUP_TASK_DLQ_URL" {
            *value = format!("{value}-gone");
        }
    }
    let (code, _, stderr) = run("backupctl", &wrong, &["dlq", "list", "--json"]);
    assert_eq!(code, Some(1), "{stderr}");
}

#[tokio::test]
async fn output_into_a_closed_pipe_ends_quietly_with_141() {
    let fleet = Fleet::new("clipipe").await;
    for args in [&["dlq", "list", "--json"][..], &["status", "--json"][..], &["catalog", "list", "--json"][..]] {
        // `backupctl ... | head -0`: the reader is gone before the first line is written.
        let mut child = Command::new(binary("backupctl"))
            .args(args)
            .envs(fleet.env())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && stderr.trim().is_empty(), "{args:?}: quiet, got {stderr}");
    }
}
