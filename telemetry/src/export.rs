//! The OTLP/HTTP transport: a hyper client (with rustls on the aws-lc provider, the stack the AWS
//! SDK already builds) running on a small runtime of its own.
//!
//! Why a runtime of its own: the SDK's batch span processor and periodic metric reader export
//! from plain OS threads (`futures_executor::block_on`), where hyper finds no tokio reactor; and
//! borrowing the application's runtime would deadlock a current-thread CLI that flushes from
//! `main`. One worker thread exists only while export is on.
//!
//! Also the [`Stoppable`] span processor, which lets the guard stop exporting without shutting
//! the tracer provider down.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::Context;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Collector responses are tiny; anything larger is a misconfigured endpoint.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Owns the export runtime; shuts it down without blocking, because the last exporter may be
/// dropped from inside the application's async context, where a blocking drop panics.
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// [`HttpClient`] for the OTLP exporters. Cheap to clone (traces and metrics share one).
#[derive(Clone)]
pub(crate) struct ExportClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: Arc<ExportRuntime>,
    timeout: Duration,
}

impl fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl ExportClient {
    /// `tls`: load the platform's root certificates (only needed for `https://` endpoints; a
    /// sidecar collector is plain HTTP on localhost, and a container may have no CA bundle).
    pub(crate) fn new(timeout: Duration, tls: bool) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("otel-export")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the telemetry export runtime: {e}"))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = HttpsConnectorBuilder::new();
        let builder = if tls {
            builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| format!("no usable root certificates for an https OTLP endpoint: {e}"))?
        } else {
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.with_tls_config(config)
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client, runtime: Arc::new(ExportRuntime(Some(runtime))), timeout })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let send = async move {
            let exchange = async {
                let response = client.request(request.map(Full::new)).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?.to_bytes();
                Ok::<_, HttpError>(Response::from_parts(parts, body))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("OTLP request timed out after {timeout:?}").into()),
            }
        };
        let runtime = self.runtime.0.as_ref().ok_or("telemetry export runtime is shut down")?;
        runtime.spawn(send).await?
    }
}

/// Span processor the guard can stop while the tracer provider lives on. The provider cannot be
/// shut down instead: it stays inside the global subscriber, and a shut-down provider hands out
/// invalid span contexts, so logs would lose their trace ids and task messages their headers.
/// Stopped, spans keep their ids but are no longer exported.
#[derive(Debug)]
pub(crate) struct Stoppable<P>(Arc<RwLock<Option<P>>>);

impl<P> Stoppable<P> {
    pub(crate) fn new(processor: P) -> Self {
        Self(Arc::new(RwLock::new(Some(processor))))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<P>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<P>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P> Clone for Stoppable<P> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<P: SpanProcessor> SpanProcessor for Stoppable<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(processor) = &*self.read() {
            processor.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Some(processor) = &*self.read() {
            processor.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.read().as_ref().map_or(Ok(()), |processor| processor.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // Taken out first so that spans ending meanwhile skip it instead of waiting on the lock.
        let processor = self.write().take();
        processor.map_or(Ok(()), |processor| processor.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(processor) = self.write().as_mut() {
            processor.set_resource(resource);
        }
    }
}

/// What the guard keeps of a [`Stoppable`] processor (type-erased).
pub(crate) trait SpanSink: Send + Sync + fmt::Debug {
    fn flush(&self);
    fn stop(&self);
}

impl<P: SpanProcessor> SpanSink for Stoppable<P> {
    fn flush(&self) {
        let _ = self.force_flush();
    }

    fn stop(&self) {
        let _ = self.shutdown();
    }
}
