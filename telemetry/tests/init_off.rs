//! Global installation with no endpoint configured: `init` succeeds, starts no exporter, logs
//! work (with trace ids), and calling it again is harmless. Its own test binary, because it
//! installs the process-wide subscriber and clears `OTEL_*` variables.

mod common;

use backup_telemetry::{current_xray_header, set_parent_from_xray, LogFormat, TelemetryBuilder};
use common::{LogBuffer, REMOTE_HEADER, REMOTE_TRACE_ID};

#[test]
fn init_without_an_endpoint_installs_logging_only() {
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            std::env::remove_var(name);
        }
    }
    std::env::remove_var("RUST_LOG");

    let logs = LogBuffer::default();
    let guard = TelemetryBuilder::from_env("backup-test").format(LogFormat::Json).writer(logs.clone()).install();
    assert!(!guard.exporting(), "no endpoint, no exporter");
    assert!(guard.warnings().is_empty(), "{:?}", guard.warnings());
    let threads = thread_names();
    assert!(
        !threads.iter().any(|n| n.starts_with("otel") || n.starts_with("OpenTelemetry")),
        "no export threads: {threads:?}"
    );

    let task = tracing::info_span!("task", task_id = "t-1");
    assert!(set_parent_from_xray(&task, REMOTE_HEADER));
    task.in_scope(|| {
        tracing::info!("working");
        assert!(current_xray_header().unwrap().starts_with(&format!("Root={REMOTE_TRACE_ID};")));
    });
    tracing::debug!("below the default level");
    assert_eq!(logs.find("working")["trace_id"], REMOTE_TRACE_ID);
    assert!(logs.json().iter().all(|l| l["message"] != "below the default level"));
    assert!(logs.json().iter().all(|l| l["level"] != "WARN"), "nothing complains: {:?}", logs.lines());

    // Later calls change nothing and do not panic.
    let again = backup_telemetry::init("backup-test", LogFormat::Text, "debug");
    assert!(!again.exporting());
    tracing::info!("still json");
    assert_eq!(logs.find("still json")["level"], "INFO");
    backup_telemetry::metrics().takeover();
    drop(again);
    drop(guard);
    tracing::info!("after the guard");
    assert_eq!(logs.find("after the guard")["level"], "INFO");
}

/// Names of this process's threads (Linux; empty elsewhere).
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}
