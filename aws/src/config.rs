//! The one place that builds AWS SDK configuration for every binary: the default credential chain,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` (path-style S3 when set), a pinned behaviour version, explicit
//! timeouts and retry budget, call counting, and per-region clients created on demand.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::calls::CallCounter;

/// Connection and retry settings. Defaults suit real AWS; `for_emulator` shortens them.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Overrides `AWS_REGION` / the profile's region.
    pub region: Option<String>,
    /// A named profile of the shared config files instead of `AWS_PROFILE` / the default one.
    pub profile: Option<String>,
    pub connect_timeout: Duration,
    /// Per attempt; must exceed the 20 s SQS long poll.
    pub attempt_timeout: Duration,
    /// Whole operation including retries.
    pub operation_timeout: Duration,
    /// SDK-level attempts per call (1 = no SDK retries). The fleet's own retries (SQS visibility)
    /// sit on top of these.
    pub max_attempts: u32,
    /// Overrides `AWS_ENDPOINT_URL` (tests point each client at their emulator explicitly).
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the default chain (tests against the emulator only).
    pub static_credentials: Option<(String, String)>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            profile: None,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(90),
            max_attempts: 3,
            endpoint_url: None,
            static_credentials: None,
        }
    }
}

impl AwsSettings {
    /// Settings for the local emulator at `endpoint`: fixed test credentials, a fixed region.
    pub fn emulator(endpoint: &str, region: &str) -> Self {
        Self {
            region: Some(region.to_owned()),
            endpoint_url: Some(endpoint.to_owned()),
            static_credentials: Some(("testing".to_owned(), "testing".to_owned())),
            ..Self::default()
        }
    }
}

/// No AWS region was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no AWS region is configured: set AWS_REGION (or pass --region, or use a profile that has a region)")]
pub struct NoRegion;

/// Shared SDK configuration plus cached per-region clients.
#[derive(Clone)]
pub struct AwsContext {
    sdk: SdkConfig,
    region: String,
    counter: CallCounter,
    clients: Arc<Mutex<HashMap<String, RegionClients>>>,
}

impl std::fmt::Debug for AwsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsContext").field("region", &self.region()).field("endpoint", &self.endpoint_url()).finish()
    }
}

/// The clients of one region. Cloning an SDK client is cheap (it is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct RegionClients {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub s3: aws_sdk_s3::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsContext {
    /// Loads configuration from the environment (credential chain, region, endpoint). A region
    /// is required: guessing one would back up, copy or restore in the wrong place.
    pub async fn load(settings: &AwsSettings) -> Result<Self, NoRegion> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.connect_timeout)
            .operation_attempt_timeout(settings.attempt_timeout)
            .operation_timeout(settings.operation_timeout)
            .build();
        let retry = RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1));
        let mut loader =
            aws_config::defaults(BehaviorVersion::v2026_01_12()).timeout_config(timeouts).retry_config(retry.clone());
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((key, secret)) = &settings.static_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                key,
                secret,
                None,
                None,
                "backup-fleet-static",
            ));
        }
        let mut sdk = loader.load().await;
        if sdk.endpoint_url().is_some() {
            // An emulator: retry quickly so an unimplemented call fails fast instead of backing off.
            let quick =
                retry.with_initial_backoff(Duration::from_millis(50)).with_max_backoff(Duration::from_millis(500));
            sdk = sdk.to_builder().retry_config(quick).build();
        }
        let region = sdk.region().map(|r| r.to_string()).filter(|r| !r.is_empty()).ok_or(NoRegion)?;
        Ok(Self { sdk, region, counter: CallCounter::default(), clients: Arc::default() })
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// A context on other SDK configuration (other credentials), counting calls with this one.
    pub fn with_sdk_config(&self, sdk: SdkConfig) -> AwsContext {
        Self { sdk, region: self.region.clone(), counter: self.counter.clone(), clients: Arc::default() }
    }

    /// The default region (from the settings, `AWS_REGION`, or the profile).
    pub fn region(&self) -> String {
        self.region.clone()
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.sdk.endpoint_url()
    }

    /// Calls made through every client of this context, by service and operation.
    pub fn calls(&self) -> &CallCounter {
        &self.counter
    }

    /// Clients of the default region.
    pub fn clients(&self) -> RegionClients {
        self.clients_in(&self.region())
    }

    /// Clients of `region`, created on first use (copies and restores go to other regions).
    pub fn clients_in(&self, region: &str) -> RegionClients {
        let mut cache = self.clients.lock().expect("client cache poisoned");
        if let Some(clients) = cache.get(region) {
            return clients.clone();
        }
        let clients = self.build_clients(region);
        cache.insert(region.to_owned(), clients.clone());
        clients
    }

    fn build_clients(&self, region: &str) -> RegionClients {
        let region = Region::new(region.to_owned());
        let path_style = self.sdk.endpoint_url().is_some();
        let counter = self.counter.clone();
        macro_rules! client {
            ($sdk:ident) => {{
                let config =
                    $sdk::config::Builder::from(&self.sdk).region(region.clone()).interceptor(counter.clone()).build();
                $sdk::Client::from_conf(config)
            }};
        }
        let s3_config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(region.clone())
            .force_path_style(path_style)
            .interceptor(counter.clone())
            .build();
        RegionClients {
            sqs: client!(aws_sdk_sqs),
            dynamodb: client!(aws_sdk_dynamodb),
            ec2: client!(aws_sdk_ec2),
            rds: client!(aws_sdk_rds),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            eventbridge: client!(aws_sdk_eventbridge),
            secrets: client!(aws_sdk_secretsmanager),
        }
    }
}
