//! Logging setup shared by the binaries: JSON lines for the services (one object per line, with
//! span fields), readable text for interactive use. `RUST_LOG` filters as usual.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" | "pretty" => Ok(LogFormat::Text),
            other => Err(format!("unknown log format {other:?} (json or text)")),
        }
    }
}

/// Installs the global subscriber, writing to stderr (stdout is for command output). Safe to
/// call more than once: later calls do nothing.
pub fn init(service: &str, format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{default_level},aws_config=warn,aws_smithy_runtime=warn,hyper=warn"))
    });
    let result = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
    };
    if result.is_ok() {
        tracing::debug!(service, "logging initialised");
    }
}
