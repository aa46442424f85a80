//! The OTLP/HTTP exporter really sends: a minimal collector (a tokio TCP listener on 127.0.0.1
//! answering `POST /v1/traces` and `/v1/metrics` with 200) receives spans and metrics when the
//! export config points at it. The config is passed explicitly, so no process env is touched.

mod common;

use backup_telemetry::{aws_call_span, ExportConfig, TelemetryBuilder};
use common::LogBuffer;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// A fake collector on its own runtime (so the code under test can block freely).
struct Collector {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, sink.clone()));
            }
        });
        Self { addr, received, _runtime: runtime }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn posts_to(&self, path: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| r.method == "POST" && r.path == path).cloned().collect()
    }
}

/// HTTP/1.1 with keep-alive: requests are read one after another until the client closes.
async fn serve(stream: TcpStream, sink: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let known = matches!(path.as_str(), "/v1/traces" | "/v1/metrics");
        sink.lock().unwrap().push(Received { method, path, content_type, body });
        let status = if known { "200 OK" } else { "404 Not Found" };
        let response =
            format!("HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn spans_and_metrics_reach_an_otlp_http_collector() {
    let collector = Collector::start();
    let (dispatch, guard) = TelemetryBuilder::new("otlp-export-test")
        .export(ExportConfig::otlp(&collector.endpoint()))
        .writer(LogBuffer::default())
        .build();
    assert!(guard.exporting());
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..3 {
            tracing::info_span!("task", i).in_scope(|| drop(aws_call_span("SQS", "SendMessageBatch")));
        }
    });
    guard.metrics().task_finished("ebs_snapshot", "SUCCEEDED", Duration::from_secs(2));
    guard.shutdown(); // flushes the batch processor and the periodic reader

    let traces = collector.posts_to("/v1/traces");
    assert!(!traces.is_empty(), "no spans received: {:?}", collector.received.lock().unwrap());
    let body: Vec<u8> = traces.iter().flat_map(|r| r.body.clone()).collect();
    assert!(traces.iter().all(|r| r.content_type == "application/x-protobuf"), "{traces:?}");
    for expected in ["otlp-export-test", "task", "SQS.SendMessageBatch", "aws-api", "cloud.provider"] {
        assert!(contains(&body, expected), "{expected:?} not in the exported spans ({} bytes)", body.len());
    }

    // After the guard: nothing is exported any more, but spans still carry ids.
    let before = collector.posts_to("/v1/traces").len();
    let header = tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!("after_shutdown").in_scope(backup_telemetry::current_xray_header)
    });
    assert!(header.is_some_and(|h| h.starts_with("Root=1-")));
    assert_eq!(collector.posts_to("/v1/traces").len(), before);

    let metrics = collector.posts_to("/v1/metrics");
    assert!(!metrics.is_empty(), "no metrics received");
    let body: Vec<u8> = metrics.iter().flat_map(|r| r.body.clone()).collect();
    assert!(contains(&body, "tasks_total") && contains(&body, "task_duration_seconds"), "{} bytes", body.len());
}

#[test]
fn dropping_the_guard_inside_a_current_thread_runtime_flushes() {
    // A CLI: single-threaded runtime, guard dropped at the end of async main. Export runs on the
    // telemetry's own runtime, so blocking here neither deadlocks nor panics.
    let collector = Collector::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (dispatch, guard) = TelemetryBuilder::new("otlp-cli-test")
            .export(ExportConfig::otlp(&collector.endpoint()))
            .writer(LogBuffer::default())
            .build();
        let _default = tracing::dispatcher::set_default(&dispatch);
        async { tokio::time::sleep(Duration::from_millis(5)).await }
            .instrument(tracing::info_span!("cli_command"))
            .await;
        drop(guard);
    });
    let body: Vec<u8> = collector.posts_to("/v1/traces").iter().flat_map(|r| r.body.clone()).collect();
    assert!(contains(&body, "cli_command"), "span not exported ({} bytes)", body.len());
}

#[test]
fn an_unreachable_collector_does_not_hang_shutdown() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut export = ExportConfig::otlp(&format!("http://127.0.0.1:{port}"));
    export.timeout = Some(Duration::from_secs(2));
    let (dispatch, guard) = TelemetryBuilder::new("otlp-down-test").export(export).writer(LogBuffer::default()).build();
    tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("lost").in_scope(|| {}));
    let started = Instant::now();
    guard.shutdown();
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown took {:?}", started.elapsed());
}
