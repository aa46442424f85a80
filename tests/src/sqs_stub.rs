//! A local SQS endpoint that accepts SendMessageBatch at wire speed, so that `make bench` can
//! measure the producer's own send rate: the emulator takes a few hundred tasks a second, real
//! SQS far more. It speaks the AWS JSON protocol the SDK uses, accepts every entry (its message
//! id is a counter; the MD5 field is a placeholder, which the Rust SDK does not check), keeps
//! nothing but counts, and answers any other operation with an empty object.

use crate::fault_proxy::{read_body, read_head};
use bytes::BytesMut;
use serde_json::{json, Value};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the stub received.
#[derive(Debug, Default)]
pub struct StubCounts {
    pub requests: AtomicU64,
    pub batches: AtomicU64,
    pub messages: AtomicU64,
    pub body_bytes: AtomicU64,
}

pub struct SqsStub {
    addr: SocketAddr,
    counts: Arc<StubCounts>,
    accept: JoinHandle<()>,
}

impl SqsStub {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(StubCounts::default());
        let accept = tokio::spawn(accept_loop(listener, counts.clone()));
        Ok(Self { addr, counts, accept })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A queue URL on this endpoint (any name is accepted).
    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/000000000000/{name}", self.endpoint())
    }

    pub fn counts(&self) -> &StubCounts {
        &self.counts
    }
}

impl Drop for SqsStub {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, counts: Arc<StubCounts>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                connections.spawn(serve(stream, counts.clone()));
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(mut stream: TcpStream, counts: Arc<StubCounts>) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut next_id: u64 = 0;
    loop {
        let Ok(Some(head)) = read_head(&mut stream, &mut buf).await else { return };
        let Ok(body) = read_body(&mut stream, &mut buf, &head).await else { return };
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let operation = head.header("x-amz-target").unwrap_or_default().rsplit('.').next().unwrap_or_default();
        let answer = match operation {
            "SendMessageBatch" => {
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let entries = request["Entries"].as_array().cloned().unwrap_or_default();
                counts.batches.fetch_add(1, Ordering::Relaxed);
                counts.messages.fetch_add(entries.len() as u64, Ordering::Relaxed);
                let bytes: usize = entries.iter().filter_map(|e| e["MessageBody"].as_str()).map(str::len).sum();
                counts.body_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                let successful: Vec<Value> = entries
                    .iter()
                    .map(|entry| {
                        next_id += 1;
                        json!({
                            "Id": entry["Id"],
                            "MessageId": format!("stub-{:?}-{next_id}", stream.local_addr().map(|a| a.port()).ok()),
                            "MD5OfMessageBody": "00000000000000000000000000000000",
                        })
                    })
                    .collect();
                json!({ "Successful": successful, "Failed": [] })
            }
            _ => json!({}),
        };
        let answer = answer.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: stub\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() || !head.keep_alive() {
            return;
        }
    }
}
