//! Helpers shared by the telemetry tests: a log sink and an X-Ray trace id check.
#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// A remote caller's X-Ray header, as SQS would put it in `AWSTraceHeader`.
pub const REMOTE_HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
pub const REMOTE_TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";
pub const REMOTE_PARENT: &str = "53995c3f42cd8ad8";

/// Collects log output in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }

    /// The log lines parsed as JSON (panics on a line that is not JSON).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines().iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    /// The first JSON line whose message is `message`.
    pub fn find(&self, message: &str) -> serde_json::Value {
        self.json()
            .into_iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no log line {message:?} in {:#?}", self.lines()))
    }
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.0.clone())
    }
}

/// Asserts `id` is an X-Ray trace id (`1-` + 8 hex digits of a recent epoch time + 24 hex) and
/// that its time is within a minute of now.
pub fn assert_fresh_xray_trace_id(id: &str) {
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.len(), 3, "{id}");
    assert_eq!(parts[0], "1", "{id}");
    assert_eq!(parts[1].len(), 8, "{id}");
    assert_eq!(parts[2].len(), 24, "{id}");
    assert!(parts[1..].iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())), "{id}");
    let seconds = u64::from_str_radix(parts[1], 16).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(seconds.abs_diff(now) < 60, "trace id time {seconds} is not now ({now}): {id}");
}
