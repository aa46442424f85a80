//! Export configuration, resolved once from the standard `OTEL_*` variables: whether traces and
//! metrics are exported and where to, and the resource attributes that describe this process.
//! Nothing here talks to the network (the ECS attributes come from the environment only).

use opentelemetry::KeyValue;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector};
use std::time::Duration;

/// Default OTLP request timeout (the OTel default is also 10 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where OTLP/HTTP data goes. Both endpoints `None` means telemetry export is off: no exporter,
/// no background thread, no network traffic (spans still get ids, so logs still carry trace ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportConfig {
    /// Full URL spans are POSTed to (`…/v1/traces`).
    pub traces_endpoint: Option<String>,
    /// Full URL metrics are POSTed to (`…/v1/metrics`).
    pub metrics_endpoint: Option<String>,
    /// Per-request timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, milliseconds).
    pub timeout: Option<Duration>,
    /// Configuration problems to report once logging is up (e.g. an unsupported protocol); they
    /// are not printed at resolution time because no subscriber exists yet.
    pub warnings: Vec<String>,
}

impl ExportConfig {
    /// Export off.
    pub fn off() -> Self {
        Self::default()
    }

    /// Both signals to an OTLP/HTTP collector at `base` (e.g. `http://127.0.0.1:4318`), with the
    /// standard per-signal paths appended.
    pub fn otlp(base: &str) -> Self {
        Self {
            traces_endpoint: Some(signal_url(base, "v1/traces")),
            metrics_endpoint: Some(signal_url(base, "v1/metrics")),
            timeout: None,
            warnings: Vec::new(),
        }
    }

    /// Resolves from the process environment:
    ///
    /// - `OTEL_SDK_DISABLED=true` turns everything off;
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is)
    ///   or else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` / `/v1/metrics`; no endpoint at all
    ///   means that signal is off (deliberately not the OTel default `localhost:4318`, so a
    ///   laptop or CI run without a collector stays quiet);
    /// - `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` turn one signal off;
    /// - `OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_PROTOCOL`: only `http/protobuf` is built in; any
    ///   other value turns that signal off with a warning;
    /// - `OTEL_EXPORTER_OTLP_TIMEOUT` (ms). Headers (`OTEL_EXPORTER_OTLP_HEADERS`), batch and
    ///   export-interval settings are read by the OTel SDK itself.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self::default();
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return config;
        }
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let mut signal = |signal: &str, path: &str| -> Option<String> {
            let upper = signal.to_ascii_uppercase();
            if get(&format!("OTEL_{upper}_EXPORTER")).is_some_and(|v| v.eq_ignore_ascii_case("none")) {
                return None;
            }
            let endpoint = get(&format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"))
                .or_else(|| base.as_deref().map(|base| signal_url(base, path)))?;
            let protocol = get(&format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL"))
                .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .unwrap_or_else(|| "http/protobuf".to_owned());
            if protocol != "http/protobuf" {
                config.warnings.push(format!(
                    "OTLP protocol {protocol:?} is not supported for {signal} (only http/protobuf); {signal} export is off"
                ));
                return None;
            }
            Some(endpoint)
        };
        let traces_endpoint = signal("traces", "v1/traces");
        let metrics_endpoint = signal("metrics", "v1/metrics");
        config.traces_endpoint = traces_endpoint;
        config.metrics_endpoint = metrics_endpoint;
        config.timeout = get("OTEL_EXPORTER_OTLP_TIMEOUT").and_then(|v| v.parse().ok()).map(Duration::from_millis);
        config
    }

    /// Whether anything is exported.
    pub fn is_on(&self) -> bool {
        self.traces_endpoint.is_some() || self.metrics_endpoint.is_some()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

fn signal_url(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// Resource attributes known from the environment, lowest precedence first (later entries win
/// when the SDK builds the resource): `cloud.provider=aws`, `cloud.region` (`AWS_REGION`, else
/// `AWS_DEFAULT_REGION`), `cloud.platform=aws_ecs` and `aws.ecs.launchtype` when running on ECS
/// (`ECS_CONTAINER_METADATA_URI_V4` / `AWS_EXECUTION_ENV`; the metadata endpoint is not called),
/// then `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME` as `service.name`.
pub fn env_resource_attributes() -> Vec<KeyValue> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut attributes = aws_resource_attributes(get);
    attributes.extend(EnvResourceDetector::new().detect().iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
    if let Some(name) = get("OTEL_SERVICE_NAME") {
        attributes.push(KeyValue::new("service.name", name));
    }
    attributes
}

/// The AWS part of [`env_resource_attributes`], over any lookup.
pub fn aws_resource_attributes(get: impl Fn(&str) -> Option<String>) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("cloud.provider", "aws")];
    if let Some(region) = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")) {
        attributes.push(KeyValue::new("cloud.region", region));
    }
    let execution_env = get("AWS_EXECUTION_ENV").unwrap_or_default();
    let on_ecs = get("ECS_CONTAINER_METADATA_URI_V4").is_some()
        || get("ECS_CONTAINER_METADATA_URI").is_some()
        || execution_env.starts_with("AWS_ECS_");
    if on_ecs {
        attributes.push(KeyValue::new("cloud.platform", "aws_ecs"));
        match execution_env.as_str() {
            "AWS_ECS_FARGATE" => attributes.push(KeyValue::new("aws.ecs.launchtype", "fargate")),
            "AWS_ECS_EC2" => attributes.push(KeyValue::new("aws.ecs.launchtype", "ec2")),
            _ => {}
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> ExportConfig {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ExportConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_endpoint_means_off_without_warnings() {
        let config = resolve(&[("OTEL_SERVICE_NAME", "x")]);
        assert!(!config.is_on());
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn base_endpoint_gets_signal_paths() {
        let config = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://adot:4318/")]);
        assert_eq!(config.traces_endpoint.as_deref(), Some("http://adot:4318/v1/traces"));
        assert_eq!(config.metrics_endpoint.as_deref(), Some("http://adot:4318/v1/metrics"));
    }

    #[test]
    fn signal_endpoint_is_used_as_is_and_wins() {
        let config = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://adot:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/custom"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        assert_eq!(config.traces_endpoint.as_deref(), Some("http://other:4318/custom"));
        assert_eq!(config.metrics_endpoint, None);
        assert_eq!(config.timeout(), Duration::from_millis(2500));
    }

    #[test]
    fn disabled_and_unsupported_protocols_turn_export_off() {
        let disabled = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://adot:4318"), ("OTEL_SDK_DISABLED", "TRUE")]);
        assert!(!disabled.is_on());
        let grpc =
            resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://adot:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert!(!grpc.is_on());
        assert_eq!(grpc.warnings.len(), 2, "{:?}", grpc.warnings);
    }

    #[test]
    fn ecs_attributes_come_from_the_environment() {
        let vars: HashMap<&str, &str> = [
            ("AWS_REGION", "eu-west-1"),
            ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc"),
            ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE"),
        ]
        .into();
        let attributes = aws_resource_attributes(|name| vars.get(name).map(|v| v.to_string()));
        let find = |key: &str| attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
        assert_eq!(find("cloud.provider").as_deref(), Some("aws"));
        assert_eq!(find("cloud.region").as_deref(), Some("eu-west-1"));
        assert_eq!(find("cloud.platform").as_deref(), Some("aws_ecs"));
        assert_eq!(find("aws.ecs.launchtype").as_deref(), Some("fargate"));
        let local = aws_resource_attributes(|_| None);
        assert_eq!(local.len(), 1);
    }
}
