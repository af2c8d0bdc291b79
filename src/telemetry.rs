//! Logging: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Logs go to stderr so that stdout stays clean for command output (`certs` prints the
//! caBundle, `serve --self-signed` the CA PEM). The JSON format includes the current span's
//! fields, so every event logged during a review carries its uid, kind, namespace and name.

use std::io::IsTerminal as _;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable single lines.
    #[default]
    Plain,
    /// One JSON object per line, with the current span's fields (for log collectors).
    Json,
}

/// Filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` is set but is not a valid filter.
    #[error("invalid RUST_LOG: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("logging already initialised: {0}")]
    Init(String),
}

/// Installs the global subscriber.
pub fn init(format: LogFormat) -> Result<(), TelemetryError> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(value)?,
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| TelemetryError::Init(e.to_string()))
}
