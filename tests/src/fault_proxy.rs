//! A fault-injecting HTTP proxy for chaos tests. It sits between the fleet and the emulator (point
//! `AWS_ENDPOINT_URL` at [`FaultProxy::endpoint`]), forwards every request (method, path, query,
//! headers, body) and streams the response back; at configured rates it answers instead with the
//! error a real AWS service returns when it throttles or fails, in that service's protocol (AWS
//! JSON for SQS and DynamoDB, the EC2 query dialect, the query protocol for RDS, REST-XML for S3),
//! aborts the connection (before the upstream sees the request, or after it executed it so that
//! only the reply is lost), or adds latency. Every injected fault is counted by kind and service.
//!
//! The service is read from the SigV4 credential scope of the `authorization` header
//! (`Credential=AKID/20260101/us-east-1/sqs/aws4_request`), which every protocol carries.
//!
//! The HTTP/1.1 server side is small and hand-written (on `httparse`) on purpose: turning on
//! hyper's `server` feature would rebuild hyper and with it every AWS SDK crate. Upstream calls use
//! the hyper-util client the SDK already builds.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What to inject, as probabilities per request. `throttle + server_error + reset +
/// reset_after_forward` must not exceed 1; latency is rolled independently.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Answer with the service's throttling error (`ThrottlingException`, `RequestLimitExceeded`...).
    pub throttle: f64,
    /// Answer with a 500 or 503 server error in the service's protocol.
    pub server_error: f64,
    /// Abort the client connection (TCP RST) before the request reaches the upstream.
    pub reset: f64,
    /// Forward the request (the upstream executes it), then abort the client connection instead of
    /// answering: the side effect happened, the reply is lost.
    pub reset_after_forward: f64,
    /// Delay a request by this much, with this probability, before anything else happens to it.
    pub latency: Option<(Duration, f64)>,
    /// Seed of the dice. Requests race, so this fixes the sequence of decisions, not which
    /// request receives which.
    pub seed: u64,
    /// Only requests to these services (credential-scope names: `sqs`, `dynamodb`, `ec2`, `rds`,
    /// `s3`, `events`...) are faulted; empty means every service.
    pub services: Vec<String>,
    /// Only requests for these operations (the `x-amz-target` suffix of AWS JSON, the `Action` of
    /// the query protocols: `ReceiveMessage`, `CreateSnapshot`...) are faulted; empty means every
    /// operation. REST requests (S3) have no operation name here and are never matched.
    pub operations: Vec<String>,
    /// Stop injecting errors and resets after this many (latency is not counted; counted since
    /// the start or the last [`FaultProxy::reset_counts`]); `None`: no limit.
    pub max_faults: Option<u64>,
}

impl FaultConfig {
    /// Forward everything untouched.
    pub fn none() -> Self {
        Self::default()
    }

    fn validate(&self) -> Result<(), String> {
        let rates = [self.throttle, self.server_error, self.reset, self.reset_after_forward];
        let latency = self.latency.map_or(0.0, |(_, p)| p);
        if rates.iter().chain([&latency]).any(|p| !(0.0..=1.0).contains(p)) {
            return Err(format!("every probability must be within [0, 1]: {self:?}"));
        }
        if rates.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(format!("throttle + server_error + reset + reset_after_forward exceed 1: {self:?}"));
        }
        Ok(())
    }

    fn applies_to(&self, service: &str, operation: Option<&str>) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && (self.operations.is_empty() || operation.is_some_and(|op| self.operations.iter().any(|o| o == op)))
    }
}

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Throttle,
    ServerError,
    Reset,
    ResetAfterForward,
    Latency,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::Reset,
        FaultKind::ResetAfterForward,
        FaultKind::Latency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "server_error",
            FaultKind::Reset => "reset",
            FaultKind::ResetAfterForward => "reset_after_forward",
            FaultKind::Latency => "latency",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the proxy saw and did, by service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultCounts {
    /// Requests received, by service.
    pub requests: BTreeMap<String, u64>,
    /// Faults injected, by kind and service.
    pub faults: BTreeMap<(FaultKind, String), u64>,
    /// Faults injected, by kind and `service:Operation` (`ec2:CreateSnapshot`; REST requests,
    /// which carry no operation name, as `s3:GET` etc.).
    pub by_operation: BTreeMap<(FaultKind, String), u64>,
    /// Requests the upstream failed to answer (not injected); the client connection was dropped.
    pub upstream_errors: u64,
}

impl FaultCounts {
    /// Faults of `kind` injected into requests to `service`.
    pub fn get(&self, kind: FaultKind, service: &str) -> u64 {
        self.faults.get(&(kind, service.to_owned())).copied().unwrap_or(0)
    }

    /// Faults of `kind` injected into requests to any service.
    pub fn total(&self, kind: FaultKind) -> u64 {
        self.faults.iter().filter(|((k, _), _)| *k == kind).map(|(_, n)| n).sum()
    }

    /// Errors and resets injected (everything but latency).
    pub fn injected(&self) -> u64 {
        self.faults.iter().filter(|((k, _), _)| *k != FaultKind::Latency).map(|(_, n)| n).sum()
    }

    /// Requests received for `service`.
    pub fn requests(&self, service: &str) -> u64 {
        self.requests.get(service).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_service =
            |pairs: Vec<(&str, u64)>| pairs.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
        write!(
            f,
            "requests {} ({})",
            self.total_requests(),
            by_service(self.requests.iter().map(|(s, n)| (s.as_str(), *n)).collect())
        )?;
        for kind in FaultKind::ALL {
            let pairs: Vec<(&str, u64)> =
                self.faults.iter().filter(|((k, _), _)| *k == kind).map(|((_, s), n)| (s.as_str(), *n)).collect();
            if !pairs.is_empty() {
                write!(f, "; {kind} {} ({})", self.total(kind), by_service(pairs))?;
            }
        }
        write!(f, "; upstream errors {}", self.upstream_errors)?;
        let errors: Vec<String> = self
            .by_operation
            .iter()
            .filter(|((kind, _), _)| *kind != FaultKind::Latency)
            .map(|((kind, op), n)| format!("{op} {kind} {n}"))
            .collect();
        if !errors.is_empty() {
            write!(f, "; by operation: {}", errors.join(", "))?;
        }
        Ok(())
    }
}

/// A running proxy; stops (dropping every open connection) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).field("upstream", &self.shared.upstream).finish()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:4566`) on 127.0.0.1 with a free port.
    pub async fn start(upstream: &str, config: FaultConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream, config).await
    }

    /// Starts a proxy to `upstream` listening on `listen`.
    pub async fn start_on(listen: SocketAddr, upstream: &str, config: FaultConfig) -> io::Result<Self> {
        config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .retry_canceled_requests(false)
            .build(connector);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config: Mutex::new(config),
            counts: Mutex::new(FaultCounts::default()),
            client,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL to use as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    pub fn config(&self) -> FaultConfig {
        self.shared.config.lock().expect("config").clone()
    }

    /// Replaces the configuration (and reseeds the dice) for requests from now on.
    pub fn set_config(&self, config: FaultConfig) {
        config.validate().expect("valid fault configuration");
        *self.shared.rng.lock().expect("rng") = StdRng::seed_from_u64(config.seed);
        *self.shared.config.lock().expect("config") = config;
    }

    /// A snapshot of the counters.
    pub fn counts(&self) -> FaultCounts {
        self.shared.counts.lock().expect("counts").clone()
    }

    /// Zeroes the counters.
    pub fn reset_counts(&self) {
        *self.shared.counts.lock().expect("counts") = FaultCounts::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Shared {
    upstream: String,
    config: Mutex<FaultConfig>,
    rng: Mutex<StdRng>,
    counts: Mutex<FaultCounts>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Forward,
    Throttle,
    ServerError,
    Reset,
    ResetAfterForward,
}

/// What happens to the client connection after one exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
    /// Drop it with a TCP RST, answer or no answer.
    Abort,
}

impl Shared {
    /// Rolls the dice for one request: an optional delay, then what to do.
    fn decide(&self, service: &str, operation: Option<&str>, method: &str) -> (Option<Duration>, Action, u32) {
        let config = self.config.lock().expect("config").clone();
        let mut counts = self.counts.lock().expect("counts");
        *counts.requests.entry(service.to_owned()).or_default() += 1;
        if !config.applies_to(service, operation) {
            return (None, Action::Forward, 0);
        }
        let exhausted = config.max_faults.is_some_and(|max| counts.injected() >= max);
        let mut rng = self.rng.lock().expect("rng");
        let delay = config.latency.filter(|(_, p)| rng.random::<f64>() < *p).map(|(d, _)| d);
        let roll: f64 = rng.random();
        let variant: u32 = rng.random();
        let choices = [
            (config.reset, Action::Reset),
            (config.throttle, Action::Throttle),
            (config.server_error, Action::ServerError),
            (config.reset_after_forward, Action::ResetAfterForward),
        ];
        let mut action = Action::Forward;
        if !exhausted {
            let mut edge = 0.0;
            for (p, candidate) in choices {
                edge += p;
                if roll < edge {
                    action = candidate;
                    break;
                }
            }
        }
        let label = format!("{service}:{}", operation.unwrap_or(method));
        let mut count = |kind: FaultKind| {
            *counts.faults.entry((kind, service.to_owned())).or_default() += 1;
            *counts.by_operation.entry((kind, label.clone())).or_default() += 1;
        };
        if delay.is_some() {
            count(FaultKind::Latency);
        }
        match action {
            Action::Forward => {}
            Action::Throttle => count(FaultKind::Throttle),
            Action::ServerError => count(FaultKind::ServerError),
            Action::Reset => count(FaultKind::Reset),
            Action::ResetAfterForward => count(FaultKind::ResetAfterForward),
        }
        (delay, action, variant)
    }

    /// Handles one complete request on `stream`.
    async fn exchange(&self, stream: &mut TcpStream, head: RequestHead, body: Bytes) -> io::Result<Next> {
        let service = service_of(&head);
        let operation = operation_of(&head, &body);
        let (delay, action, variant) = self.decide(&service, operation.as_deref(), &head.method);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let keep_alive = head.keep_alive();
        match action {
            Action::Reset => return Ok(Next::Abort),
            Action::Throttle | Action::ServerError => {
                let kind = if action == Action::Throttle { ErrorKind::Throttle } else { ErrorKind::Server };
                let protocol = protocol_of(&service, &head);
                let mut canned = error_response(&service, &protocol, kind, variant);
                if head.method.eq_ignore_ascii_case("HEAD") {
                    canned.body.clear();
                }
                write_canned(stream, &canned, keep_alive).await?;
                return Ok(if keep_alive { Next::KeepAlive } else { Next::Close });
            }
            Action::Forward | Action::ResetAfterForward => {}
        }

        let mut request = http::Request::builder().method(head.method.as_bytes()).uri(format!(
            "{}{}",
            self.upstream,
            if head.target.starts_with('/') { head.target.clone() } else { format!("/{}", head.target) }
        ));
        for (name, value) in &head.headers {
            if !is_hop_by_hop(name) && !name.eq_ignore_ascii_case("content-length") {
                request = request.header(name.as_str(), value.as_slice());
            }
        }
        let request = request.body(Full::new(body)).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(_) => {
                self.counts.lock().expect("counts").upstream_errors += 1;
                return Ok(Next::Abort);
            }
        };
        let (parts, mut body) = response.into_parts();
        if action == Action::ResetAfterForward {
            // Read the reply to the end so the upstream connection stays reusable, then lose it.
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            return Ok(Next::Abort);
        }

        let status = parts.status.as_u16();
        let bodiless = head.method.eq_ignore_ascii_case("HEAD") || status < 200 || status == 204 || status == 304;
        let has_length = parts.headers.contains_key(http::header::CONTENT_LENGTH);
        let chunked = !bodiless && !has_length;
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(
            format!("HTTP/1.1 {status} {}\r\n", parts.status.canonical_reason().unwrap_or("Unknown")).as_bytes(),
        );
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str()) {
                push_header(&mut out, name.as_str(), value.as_bytes());
            }
        }
        if chunked {
            push_header(&mut out, "transfer-encoding", b"chunked");
        }
        if !keep_alive {
            push_header(&mut out, "connection", b"close");
        }
        out.extend_from_slice(b"\r\n");
        stream.write_all(&out).await?;
        if !bodiless {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    // The upstream broke off mid-body: so does the client connection.
                    self.counts.lock().expect("counts").upstream_errors += 1;
                    return Ok(Next::Abort);
                };
                let Ok(data) = frame.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                if chunked {
                    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
                    stream.write_all(&data).await?;
                    stream.write_all(b"\r\n").await?;
                } else {
                    stream.write_all(&data).await?;
                }
            }
            if chunked {
                stream.write_all(b"0\r\n\r\n").await?;
            }
        }
        stream.flush().await?;
        Ok(if keep_alive { Next::KeepAlive } else { Next::Close })
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in this set, so aborting the accept loop closes every one of them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, shared.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one client connection: requests one after the other (HTTP/1.1 keep-alive).
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(_) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                return;
            }
        };
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
        {
            return;
        }
        let Ok(body) = read_body(&mut stream, &mut buf, &head).await else { return };
        match shared.exchange(&mut stream, head, body).await {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Abort) => {
                // SO_LINGER 0: closing sends a RST, the client sees "connection reset".
                let _ = stream.set_zero_linger();
                return;
            }
            Ok(Next::Close) | Err(_) => {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// The request line and headers of one request.
#[derive(Clone, Debug)]
pub(crate) struct RequestHead {
    method: String,
    /// Path and query, as sent.
    target: String,
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub(crate) fn keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase).unwrap_or_default();
        if self.minor_version == 0 {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

const MAX_HEAD: usize = 256 * 1024;
const MAX_HEADERS: usize = 128;

/// Reads one request head; `None` when the client closed the connection between requests.
pub(crate) async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<Option<RequestHead>> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            let parsed = request.parse(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let httparse::Status::Complete(length) = parsed {
                let head = RequestHead {
                    method: request.method.unwrap_or("GET").to_owned(),
                    target: request.path.unwrap_or("/").to_owned(),
                    minor_version: request.version.unwrap_or(1),
                    headers: request.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect(),
                };
                buf.advance(length);
                return Ok(Some(head));
            }
            if buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
    }
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, n: usize) -> io::Result<()> {
    while buf.len() < n {
        buf.reserve(n - buf.len());
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Reads the body (by `content-length` or chunked), decoded from the HTTP framing.
pub(crate) async fn read_body(stream: &mut TcpStream, buf: &mut BytesMut, head: &RequestHead) -> io::Result<Bytes> {
    if head.chunked() {
        return read_chunked(stream, buf).await;
    }
    let length = match head.header("content-length") {
        Some(value) => value.trim().parse::<usize>().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        None => 0,
    };
    fill(stream, buf, length).await?;
    Ok(buf.split_to(length).freeze())
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<Bytes> {
    let mut body = BytesMut::new();
    loop {
        let (offset, size) = loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((offset, size))) => break (offset, size as usize),
                Ok(httparse::Status::Partial) => {
                    if stream.read_buf(buf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")),
            }
        };
        buf.advance(offset);
        if size == 0 {
            // Trailers (ignored) up to an empty line.
            loop {
                match buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        buf.advance(2);
                        return Ok(body.freeze());
                    }
                    Some(end) => buf.advance(end + 2),
                    None => {
                        if stream.read_buf(buf).await? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                    }
                }
            }
        }
        fill(stream, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        buf.advance(size + 2);
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The AWS service a request is for: the SigV4 credential scope (header, or query string of a
/// presigned URL), else the `x-amz-target` prefix, else `unknown`.
fn service_of(head: &RequestHead) -> String {
    let from_scope = |scope: &str| -> Option<String> {
        // AKID/DATE/REGION/SERVICE/aws4_request
        let parts: Vec<&str> = scope.split('/').collect();
        (parts.len() >= 5 && parts[4].starts_with("aws4_request")).then(|| parts[3].to_owned())
    };
    if let Some(auth) = head.header("authorization") {
        if let Some(start) = auth.find("Credential=") {
            let scope = auth[start + "Credential=".len()..].split([',', ' ']).next().unwrap_or_default();
            if let Some(service) = from_scope(scope) {
                return service;
            }
        }
    }
    if let Some(query) = head.target.split_once('?').map(|(_, q)| q) {
        if let Some(value) = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential=")) {
            let decoded = value.replace("%2F", "/").replace("%2f", "/");
            if let Some(service) = from_scope(&decoded) {
                return service;
            }
        }
    }
    match head.header("x-amz-target").map(|t| t.split('.').next().unwrap_or_default()) {
        Some(prefix) if prefix.starts_with("DynamoDB") => "dynamodb".into(),
        Some("AmazonSQS") => "sqs".into(),
        Some("AWSEvents") => "events".into(),
        _ => "unknown".into(),
    }
}

/// The operation of an AWS JSON (`x-amz-target: AmazonSQS.ReceiveMessage`) or query
/// (`Action=CreateSnapshot&...`) request; REST requests have none.
fn operation_of(head: &RequestHead, body: &[u8]) -> Option<String> {
    if let Some(target) = head.header("x-amz-target") {
        return target.rsplit('.').next().map(str::to_owned);
    }
    let query = head.target.split_once('?').map(|(_, q)| q.as_bytes());
    let form =
        head.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")).then_some(body);
    [form, query].into_iter().flatten().find_map(|params| {
        params
            .split(|b| *b == b'&')
            .find_map(|pair| pair.strip_prefix(b"Action="))
            .and_then(|v| std::str::from_utf8(v).ok().map(str::to_owned))
    })
}

/// The wire protocol of a request, which decides the shape of an error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Protocol {
    /// AWS JSON 1.0 / 1.1 (`x-amz-target`), answered with the request's content type.
    Json { content_type: String },
    /// EC2's query dialect: `<Response><Errors><Error>`.
    Ec2Query,
    /// The query protocol (RDS, STS, SNS, IAM...): `<ErrorResponse><Error>`.
    Query,
    /// REST-XML (S3): `<Error>`.
    RestXml,
    /// REST-JSON: `x-amzn-errortype` header and a JSON body.
    RestJson,
}

fn protocol_of(service: &str, head: &RequestHead) -> Protocol {
    if head.header("x-amz-target").is_some() {
        let content_type =
            head.header("content-type").filter(|c| c.contains("json")).unwrap_or("application/x-amz-json-1.0");
        return Protocol::Json { content_type: content_type.to_owned() };
    }
    let form = head.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    match service {
        "ec2" => Protocol::Ec2Query,
        "s3" => Protocol::RestXml,
        _ if form => Protocol::Query,
        _ => Protocol::RestJson,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    Throttle,
    Server,
}

/// An error reply made up by the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// The reply a real AWS service gives when it throttles (`Throttle`) or fails (`Server`: 500 or
/// 503 by `variant`), in the protocol of the request.
fn error_response(service: &str, protocol: &Protocol, kind: ErrorKind, variant: u32) -> Canned {
    let request_id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        variant,
        variant >> 16,
        variant & 0xfff,
        (variant >> 8) & 0xfff,
        u64::from(variant).wrapping_mul(0x9e37_79b9) & 0xffff_ffff_ffff
    );
    let unavailable = variant % 2 == 1;
    match protocol {
        Protocol::Json { content_type } => {
            // (status, __type, message, x-amzn-query-error for SQS's query compatibility)
            let (status, error_type, message, query_error): (u16, String, &str, Option<String>) =
                match (service, kind) {
                    ("dynamodb", ErrorKind::Throttle) => (
                        400,
                        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException".into(),
                        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
                        None,
                    ),
                    ("dynamodb", ErrorKind::Server) if unavailable => (
                        503,
                        "com.amazonaws.dynamodb.v20120810#ServiceUnavailable".into(),
                        "The service is currently unavailable or busy.",
                        None,
                    ),
                    ("dynamodb", ErrorKind::Server) => (
                        500,
                        "com.amazonaws.dynamodb.v20120810#InternalServerError".into(),
                        "Internal server error",
                        None,
                    ),
                    ("sqs", ErrorKind::Throttle) => {
                        // Mostly the generic rate limit, sometimes SQS's own RequestThrottled.
                        let code = if variant % 4 == 3 { "RequestThrottled" } else { "ThrottlingException" };
                        (400, format!("com.amazonaws.sqs#{code}"), "Rate exceeded", Some(format!("{code};Sender")))
                    }
                    ("sqs", ErrorKind::Server) if unavailable => (
                        503,
                        "com.amazonaws.sqs#ServiceUnavailable".into(),
                        "The request has failed due to a temporary failure of the server.",
                        Some("ServiceUnavailable;Receiver".into()),
                    ),
                    ("sqs", ErrorKind::Server) => (
                        500,
                        "com.amazonaws.sqs#InternalFailure".into(),
                        "The request processing has failed because of an unknown error, exception or failure.",
                        Some("InternalFailure;Receiver".into()),
                    ),
                    (_, ErrorKind::Throttle) => (400, "ThrottlingException".into(), "Rate exceeded", None),
                    (_, ErrorKind::Server) if unavailable => {
                        (503, "ServiceUnavailableException".into(), "Service is unavailable", None)
                    }
                    (_, ErrorKind::Server) => (500, "InternalFailure".into(), "Internal failure", None),
                };
            let mut headers = vec![("content-type", content_type.clone()), ("x-amzn-requestid", request_id)];
            if let Some(query_error) = query_error {
                headers.push(("x-amzn-query-error", query_error));
            }
            let body = serde_json::json!({ "__type": error_type, "message": message }).to_string();
            Canned { status, headers, body }
        }
        Protocol::Ec2Query => {
            let (status, code, message) = match kind {
                ErrorKind::Throttle => (503, "RequestLimitExceeded", "Request limit exceeded."),
                ErrorKind::Server if unavailable => {
                    (503, "Unavailable", "The server is overloaded and can't handle the request.")
                }
                ErrorKind::Server => (500, "InternalError", "An internal error has occurred."),
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            );
            Canned { status, headers: vec![("content-type", "text/xml;charset=UTF-8".into())], body }
        }
        Protocol::Query => {
            let (status, error_type, code, message) = match kind {
                ErrorKind::Throttle => (400, "Sender", "Throttling", "Rate exceeded"),
                ErrorKind::Server if unavailable => (503, "Receiver", "ServiceUnavailable", "Service unavailable"),
                ErrorKind::Server => (500, "Receiver", "InternalFailure", "An internal error has occurred"),
            };
            let namespace = match service {
                "rds" => " xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"",
                _ => "",
            };
            let body = format!(
                "<ErrorResponse{namespace}>\n  <Error>\n    <Type>{error_type}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
            );
            Canned {
                status,
                headers: vec![("content-type", "text/xml".into()), ("x-amzn-requestid", request_id)],
                body,
            }
        }
        Protocol::RestXml => {
            let (status, code, message) = match kind {
                ErrorKind::Throttle => (503, "SlowDown", "Please reduce your request rate."),
                ErrorKind::Server if unavailable => (503, "ServiceUnavailable", "Please reduce your request rate."),
                ErrorKind::Server => (500, "InternalError", "We encountered an internal error. Please try again."),
            };
            let host_id = format!("{request_id}/proxy");
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
            );
            Canned {
                status,
                headers: vec![
                    ("content-type", "application/xml".into()),
                    ("x-amz-request-id", request_id),
                    ("x-amz-id-2", host_id),
                ],
                body,
            }
        }
        Protocol::RestJson => {
            let (status, code, message) = match kind {
                ErrorKind::Throttle => (429, "ThrottlingException", "Rate exceeded"),
                ErrorKind::Server if unavailable => (503, "ServiceUnavailableException", "Service is unavailable"),
                ErrorKind::Server => (500, "InternalFailure", "Internal failure"),
            };
            let body = serde_json::json!({ "message": message }).to_string();
            Canned {
                status,
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("x-amzn-errortype", code.into()),
                    ("x-amzn-requestid", request_id),
                ],
                body,
            }
        }
    }
}

async fn write_canned(stream: &mut TcpStream, canned: &Canned, keep_alive: bool) -> io::Result<()> {
    let reason = http::StatusCode::from_u16(canned.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let mut out = Vec::with_capacity(canned.body.len() + 512);
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", canned.status).as_bytes());
    for (name, value) in &canned.headers {
        push_header(&mut out, name, value.as_bytes());
    }
    push_header(&mut out, "content-length", canned.body.len().to_string().as_bytes());
    if !keep_alive {
        push_header(&mut out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(canned.body.as_bytes());
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{emulator_endpoint, unique_prefix, REGION};
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use backup_aws::classify::{classify, classify_code};
    use backup_aws::{AwsContext, AwsSettings};
    use backup_core::{ErrorClass, RetryClass};

    /// SDK clients pointed at the proxy, without SDK retries (every fault surfaces).
    async fn clients_via(proxy: &FaultProxy) -> backup_aws::RegionClients {
        let mut settings = AwsSettings::emulator(&proxy.endpoint(), REGION);
        settings.max_attempts = 1;
        settings.attempt_timeout = Duration::from_secs(10);
        AwsContext::load(&settings).await.expect("a region").clients()
    }

    async fn emulator_clients() -> backup_aws::RegionClients {
        let mut settings = AwsSettings::emulator(emulator_endpoint(), REGION);
        settings.max_attempts = 1;
        AwsContext::load(&settings).await.expect("a region").clients()
    }

    fn throttled() -> ErrorClass {
        ErrorClass::Retry(RetryClass::Throttled)
    }

    #[test]
    fn the_service_comes_from_the_credential_scope() {
        let head = |headers: Vec<(&str, &str)>, target: &str| RequestHead {
            method: "POST".into(),
            target: target.into(),
            minor_version: 1,
            headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec())).collect(),
        };
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20261121/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(service_of(&head(vec![("Authorization", auth)], "/")), "dynamodb");
        let presigned = "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=testing%2F20261121%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=x";
        assert_eq!(service_of(&head(vec![], presigned)), "s3");
        assert_eq!(service_of(&head(vec![("X-Amz-Target", "AmazonSQS.ReceiveMessage")], "/")), "sqs");
        assert_eq!(service_of(&head(vec![], "/")), "unknown");
    }

    #[test]
    fn configurations_are_validated() {
        assert!(FaultConfig { throttle: 0.6, reset: 0.5, ..FaultConfig::none() }.validate().is_err());
        assert!(FaultConfig { throttle: -0.1, ..FaultConfig::none() }.validate().is_err());
        assert!(FaultConfig { latency: Some((Duration::from_millis(1), 1.5)), ..FaultConfig::none() }
            .validate()
            .is_err());
        assert!(FaultConfig {
            throttle: 0.5,
            server_error: 0.3,
            reset: 0.1,
            reset_after_forward: 0.1,
            ..FaultConfig::none()
        }
        .validate()
        .is_ok());
    }

    #[tokio::test]
    async fn sdk_clients_see_each_services_real_throttling_error() {
        let proxy =
            FaultProxy::start(emulator_endpoint(), FaultConfig { throttle: 1.0, ..FaultConfig::none() }).await.unwrap();
        let clients = clients_via(&proxy).await;

        // SQS (AWS JSON 1.0, query-compatible): the code comes from x-amzn-query-error.
        let mut sqs_codes = Vec::new();
        for _ in 0..12 {
            let err = clients.sqs.list_queues().send().await.expect_err("throttled");
            let code = err.code().expect("an error code").to_owned();
            assert!(code == "ThrottlingException" || code == "RequestThrottled", "sqs code {code}: {err:?}");
            assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
            assert_eq!(classify("sqs", "ListQueues", err).class, throttled());
            sqs_codes.push(code);
        }
        assert!(sqs_codes.iter().any(|c| c == "ThrottlingException"), "{sqs_codes:?}");

        let err = clients.dynamodb.list_tables().send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"), "{err:?}");
        assert_eq!(classify("dynamodb", "ListTables", err).class, throttled());
        let err = clients
            .dynamodb
            .get_item()
            .table_name("whatever")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
            .send()
            .await
            .expect_err("throttled");
        assert!(err.as_service_error().is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()), "{err:?}");

        let err = clients.ec2.describe_volumes().send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("RequestLimitExceeded"), "{err:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
        assert_eq!(classify("ec2", "DescribeVolumes", err).class, throttled());

        let err = clients.rds.describe_db_instances().send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("Throttling"), "{err:?}");
        assert_eq!(classify("rds", "DescribeDBInstances", err).class, throttled());

        let err = clients.s3.list_buckets().send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("SlowDown"), "{err:?}");
        assert_eq!(classify("s3", "ListBuckets", err).class, throttled());
        let err = clients.s3.get_object().bucket("some-bucket").key("a/b.txt").send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("SlowDown"), "{err:?}");
        assert_eq!(classify_code(err.code().unwrap(), Some(503)), throttled());

        let counts = proxy.counts();
        assert_eq!(counts.get(FaultKind::Throttle, "sqs"), 12);
        assert_eq!(counts.get(FaultKind::Throttle, "dynamodb"), 2);
        assert_eq!(counts.get(FaultKind::Throttle, "ec2"), 1);
        assert_eq!(counts.get(FaultKind::Throttle, "rds"), 1);
        assert_eq!(counts.get(FaultKind::Throttle, "s3"), 2);
        assert_eq!(counts.total(FaultKind::Throttle), counts.total_requests());
        assert_eq!(counts.total(FaultKind::ServerError), 0);
    }

    #[tokio::test]
    async fn server_errors_are_5xx_in_each_protocol_and_classified_transient() {
        let proxy = FaultProxy::start(emulator_endpoint(), FaultConfig { server_error: 1.0, ..FaultConfig::none() })
            .await
            .unwrap();
        let clients = clients_via(&proxy).await;
        let transient = ErrorClass::Retry(RetryClass::Transient);
        for _ in 0..4 {
            let err = clients.sqs.list_queues().send().await.expect_err("5xx");
            let status = err.raw_response().map(|r| r.status().as_u16());
            let expected = if status == Some(503) { "ServiceUnavailable" } else { "InternalFailure" };
            assert_eq!(err.code(), Some(expected), "{err:?}");
            assert_eq!(classify("sqs", "ListQueues", err).class, transient);

            let err = clients.dynamodb.list_tables().send().await.expect_err("5xx");
            let status = err.raw_response().map(|r| r.status().as_u16());
            let expected = if status == Some(503) { "ServiceUnavailable" } else { "InternalServerError" };
            assert_eq!(err.code(), Some(expected), "{err:?}");
            assert_eq!(classify("dynamodb", "ListTables", err).class, transient);

            let err = clients.ec2.describe_snapshots().send().await.expect_err("5xx");
            let status = err.raw_response().map(|r| r.status().as_u16());
            let expected = if status == Some(503) { "Unavailable" } else { "InternalError" };
            assert_eq!(err.code(), Some(expected), "{err:?}");
            assert_eq!(classify("ec2", "DescribeSnapshots", err).class, transient);

            let err = clients.rds.describe_db_snapshots().send().await.expect_err("5xx");
            assert!(matches!(err.code(), Some("ServiceUnavailable" | "InternalFailure")), "{err:?}");
            assert_eq!(classify("rds", "DescribeDBSnapshots", err).class, transient);

            let err = clients.s3.list_buckets().send().await.expect_err("5xx");
            assert!(matches!(err.code(), Some("ServiceUnavailable" | "InternalError")), "{err:?}");
            // S3's 503 ServiceUnavailable is "slow down" too; either way it is retried.
            assert!(matches!(classify("s3", "ListBuckets", err).class, ErrorClass::Retry(_)));
        }
        let counts = proxy.counts();
        assert_eq!(counts.total(FaultKind::ServerError), 20);
        assert_eq!(counts.get(FaultKind::ServerError, "ec2"), 4);
    }

    #[tokio::test]
    async fn resets_drop_the_connection_before_or_after_the_upstream_acted() {
        let proxy =
            FaultProxy::start(emulator_endpoint(), FaultConfig { reset: 1.0, ..FaultConfig::none() }).await.unwrap();
        let clients = clients_via(&proxy).await;
        let direct = emulator_clients().await;
        let name = unique_prefix("reset");

        let err = clients.sqs.create_queue().queue_name(format!("{name}-before")).send().await.expect_err("reset");
        assert!(matches!(err, aws_sdk_sqs::error::SdkError::DispatchFailure(_)), "{err:?}");
        let classified = classify("sqs", "CreateQueue", err);
        assert_eq!(classified.code, "DispatchFailure");
        assert_eq!(classified.class, ErrorClass::Retry(RetryClass::Transient));
        let before = direct.sqs.get_queue_url().queue_name(format!("{name}-before")).send().await;
        assert!(before.is_err(), "the upstream never saw the request");

        proxy.set_config(FaultConfig { reset_after_forward: 1.0, ..FaultConfig::none() });
        let err = clients.sqs.create_queue().queue_name(format!("{name}-after")).send().await.expect_err("reset");
        assert!(matches!(err, aws_sdk_sqs::error::SdkError::DispatchFailure(_)), "{err:?}");
        let after = direct.sqs.get_queue_url().queue_name(format!("{name}-after")).send().await.expect("created");
        assert!(after.queue_url().is_some(), "the upstream executed the request; only the reply was lost");
        let counts = proxy.counts();
        assert_eq!(counts.get(FaultKind::Reset, "sqs"), 1);
        assert_eq!(counts.get(FaultKind::ResetAfterForward, "sqs"), 1);
        direct.sqs.delete_queue().queue_url(after.queue_url().unwrap()).send().await.unwrap();
    }

    #[tokio::test]
    async fn without_faults_requests_and_bodies_pass_through_unchanged() {
        let proxy = FaultProxy::start(
            emulator_endpoint(),
            FaultConfig { throttle: 1.0, services: vec!["ec2".into()], ..FaultConfig::none() },
        )
        .await
        .unwrap();
        let clients = clients_via(&proxy).await;
        let name = unique_prefix("pass");

        // SQS through the proxy.
        let url = clients.sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
        let body = format!("héllo {}", "x".repeat(100_000));
        clients.sqs.send_message().queue_url(&url).message_body(&body).send().await.unwrap();
        let received = clients.sqs.receive_message().queue_url(&url).wait_time_seconds(2).send().await.unwrap();
        assert_eq!(received.messages()[0].body(), Some(body.as_str()));
        clients.sqs.delete_queue().queue_url(&url).send().await.unwrap();

        // S3: a multi-megabyte object up and down (streamed back), HEAD, a 404 with its real code.
        let bucket = name.to_lowercase();
        clients.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        clients
            .s3
            .put_object()
            .bucket(&bucket)
            .key("dir/obj ü.bin")
            .body(aws_sdk_s3::primitives::ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let head = clients.s3.head_object().bucket(&bucket).key("dir/obj ü.bin").send().await.unwrap();
        assert_eq!(head.content_length(), Some(data.len() as i64));
        let object = clients.s3.get_object().bucket(&bucket).key("dir/obj ü.bin").send().await.unwrap();
        assert_eq!(object.body.collect().await.unwrap().into_bytes().as_ref(), data.as_slice());
        let missing = clients.s3.get_object().bucket(&bucket).key("nope").send().await.expect_err("404");
        assert_eq!(missing.code(), Some("NoSuchKey"));

        // EC2 is faulted (services filter), everything else was not.
        let err = clients.ec2.describe_volumes().send().await.expect_err("throttled");
        assert_eq!(err.code(), Some("RequestLimitExceeded"));
        let counts = proxy.counts();
        assert_eq!(counts.total(FaultKind::Throttle), 1, "{counts}");
        assert_eq!(counts.get(FaultKind::Throttle, "ec2"), 1);
        assert_eq!(counts.requests("sqs"), 4);
        assert!(counts.requests("s3") >= 5, "{counts}");
        assert_eq!(counts.upstream_errors, 0);
    }

    #[tokio::test]
    async fn faults_can_target_operations_and_stop_after_a_budget() {
        let proxy = FaultProxy::start(
            emulator_endpoint(),
            FaultConfig {
                throttle: 1.0,
                operations: vec!["ListQueues".into(), "DescribeVolumes".into()],
                max_faults: Some(3),
                ..FaultConfig::none()
            },
        )
        .await
        .unwrap();
        let clients = clients_via(&proxy).await;
        clients.ec2.describe_snapshots().owner_ids("self").send().await.expect("not a targeted operation");
        clients.dynamodb.list_tables().send().await.expect("not a targeted operation");
        assert!(clients.ec2.describe_volumes().send().await.is_err(), "EC2 query Action matched");
        assert!(clients.sqs.list_queues().send().await.is_err(), "x-amz-target matched");
        assert!(clients.sqs.list_queues().send().await.is_err());
        clients.sqs.list_queues().send().await.expect("the budget of 3 faults is spent");
        clients.ec2.describe_volumes().send().await.expect("the budget of 3 faults is spent");
        let counts = proxy.counts();
        assert_eq!(counts.injected(), 3, "{counts}");
        assert_eq!(counts.get(FaultKind::Throttle, "sqs"), 2);
        assert_eq!(counts.by_operation.get(&(FaultKind::Throttle, "sqs:ListQueues".into())), Some(&2));
        assert_eq!(counts.by_operation.get(&(FaultKind::Throttle, "ec2:DescribeVolumes".into())), Some(&1));
    }

    #[tokio::test]
    async fn latency_is_added() {
        let proxy = FaultProxy::start(
            emulator_endpoint(),
            FaultConfig { latency: Some((Duration::from_millis(400), 1.0)), ..FaultConfig::none() },
        )
        .await
        .unwrap();
        let clients = clients_via(&proxy).await;
        let started = std::time::Instant::now();
        clients.sqs.list_queues().send().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(proxy.counts().get(FaultKind::Latency, "sqs"), 1);
    }
}
