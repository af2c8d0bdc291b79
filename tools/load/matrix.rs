//! `--matrix`: the table of docs/performance.md in one command. Each cell is a timed run
//! against a fresh in-process server, so no run inherits another's connections or warm caches.

use std::sync::Arc;

use bytes::Bytes;
use isvc_ingress_testkit::client::HttpVersion;

use super::{
    Args, InProcess, InProcessServer, Latency, LoadError, RunSettings, read_file, timed_run,
};

/// What a row measures: the echo baseline, or one of the webhook's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measured {
    Echo,
    Mutate,
    Validate,
    Status,
}

impl Measured {
    pub(crate) const ALL: [Self; 4] = [Self::Echo, Self::Mutate, Self::Validate, Self::Status];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Mutate => "mutate",
            Self::Validate => "validate",
            Self::Status => "status",
        }
    }

    fn handler(self) -> InProcess {
        match self {
            Self::Echo => InProcess::Echo,
            Self::Mutate | Self::Validate | Self::Status => InProcess::Webhook,
        }
    }

    /// The status mutator is served on `/mutate`, as the webhook configuration registers it.
    fn path(self) -> &'static str {
        match self {
            Self::Validate => "/validate",
            Self::Echo | Self::Mutate | Self::Status => "/mutate",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, serde::Serialize)]
pub(crate) struct MatrixRow {
    pub(crate) endpoint: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) concurrency: usize,
    pub(crate) body_bytes: usize,
    pub(crate) requests_per_second: f64,
    pub(crate) errors: u64,
    pub(crate) latency: Latency,
}

pub(crate) async fn run(args: &Args, body: Bytes) -> Result<(), LoadError> {
    let status_body = read_file(args.status_body.as_ref().expect("required by clap"))?;
    if !args.json {
        println!(
            "| endpoint | protocol | concurrency | req/s | p50 | p99 | p99.9 | errors |\n|---|---|---|---|---|---|---|---|"
        );
    }
    let mut rows = Vec::new();
    for http2 in [false, true] {
        let version = if http2 {
            HttpVersion::Http2
        } else {
            HttpVersion::Http1
        };
        for &concurrency in &args.levels {
            for measured in Measured::ALL {
                let body = match measured {
                    Measured::Status => status_body.clone(),
                    _ => body.clone(),
                };
                let server = InProcessServer::start(args, measured.handler()).await?;
                let target = Arc::new(server.target(measured.handler(), version)?);
                let settings = RunSettings {
                    path: measured.path().to_owned(),
                    http2,
                    concurrency,
                    connections: 1,
                    duration: args.duration,
                    rate: None,
                    interval: None,
                    handler_execution: None,
                };
                let report = timed_run(&settings, target, body).await?;
                server.stop().await?;
                let row = MatrixRow {
                    endpoint: measured.name(),
                    protocol: report.protocol,
                    concurrency,
                    body_bytes: report.body_bytes,
                    requests_per_second: report.requests_per_second,
                    errors: report.errors,
                    latency: report.latency,
                };
                print_row(args.json, &row);
                rows.push(row);
            }
        }
    }
    if let Some(path) = &args.plot {
        super::plot::latency_against_concurrency(&rows, path).map_err(|message| {
            LoadError::Write {
                path: path.clone(),
                message,
            }
        })?;
    }
    Ok(())
}

fn print_row(json: bool, row: &MatrixRow) {
    if json {
        println!("{}", serde_json::to_string(row).expect("serialisable"));
        return;
    }
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        row.endpoint,
        row.protocol,
        row.concurrency,
        thousands(row.requests_per_second),
        micros(row.latency.p50_us),
        micros(row.latency.p99_us),
        micros(row.latency.p999_us),
        row.errors
    );
}

fn micros(value: f64) -> String {
    format!("{} µs", thousands(value))
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        for (value, text) in [
            (0.0, "0"),
            (999.4, "999"),
            (1000.0, "1,000"),
            (1234567.8, "1,234,568"),
        ] {
            assert_eq!(thousands(value), text);
        }
    }
}
