//! `isvc-ingress-load`: a closed-loop load generator for the webhook, loopback only.
//!
//! Each worker sends one request, waits for the answer, and sends the next, for a fixed
//! duration; latency is measured per request after all connections are established. With
//! `--http2`, workers share `--connections` HTTP/2 connections (default 1, as kube-apiserver
//! multiplexes its webhook calls); otherwise each worker owns an HTTP/1.1 keep-alive
//! connection. `--burst N` instead opens N connections at once, each sending one request, and
//! reports how many were answered, refused or left hanging.
//!
//! `--in-process-echo` starts the same server stack (TLS, router, handler execution) in this
//! process with a constant allowed-review handler on 127.0.0.1:0, so a baseline for the server
//! overhead comes from the same binary and run; `--in-process-webhook` starts it with the real
//! admission handler (`--config`, or KServe's shipped config), and `--compare` runs the echo
//! baseline and then the webhook with the same body and settings and prints their ratio, which
//! does not depend on the machine. The server then shares the CPU with the load
//! generator, which is what a loopback measurement on one machine means anyway.
//!
//! The target must be loopback (127.0.0.0/8, ::1 or `localhost`): this tool is for measuring
//! one's own server, not for loading anyone else's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use isvc_ingress::admission::{AdmissionState, Webhook};
use isvc_ingress::client::{self, ClientTls, Connection, HttpVersion};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::duration::{format_duration, parse_duration};
use isvc_ingress::metrics::Metrics;
use isvc_ingress::plan::Policy;
use isvc_ingress::server::echo::StaticAllowHandler;
use isvc_ingress::server::{
    AdmissionHandler, CancellationToken, HandlerExecution, Readiness, RunningServer, ServeArgs,
    start_server,
};

/// Longest accepted `--duration`.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most connections (or HTTP/2 streams, or burst connections) the tool will open.
const MAX_CONNECTIONS: usize = 4096;
/// A burst connection with no answer after this long counts as hung.
const BURST_HANG: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "isvc-ingress-load",
    about = "Loopback load generator for the isvc-ingress webhook"
)]
struct Args {
    /// Server address (loopback only: 127.0.0.0/8, [::1] or localhost).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: String,
    /// Name to verify the server certificate for (SNI).
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// PEM CA that signed the server certificate (not needed in the in-process modes).
    #[arg(long, required_unless_present_any = ["in_process_echo", "in_process_webhook", "compare"])]
    cacert: Option<PathBuf>,
    /// Request body file; default: a small InferenceService CREATE AdmissionReview.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Request path, with the query if any (e.g. `/mutate?timeout=10s`).
    #[arg(long, default_value = "/mutate")]
    path: String,
    /// Requests in flight at any time (one per worker).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 only: connections the workers share (default 1).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long to send (max 10m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Speak HTTP/2 instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Start the server stack in this process with a constant allowed-review handler.
    #[arg(long, conflicts_with_all = ["in_process_webhook", "compare"])]
    in_process_echo: bool,
    /// Start the server stack in this process with the real admission handler.
    #[arg(long, conflicts_with = "compare")]
    in_process_webhook: bool,
    /// Run the echo baseline, then the real handler, with the same body and settings.
    #[arg(long)]
    compare: bool,
    /// KServe config of the in-process webhook (ConfigMap YAML or ingress JSON); default: the
    /// configuration KServe ships.
    #[arg(long)]
    config: Option<PathBuf>,
    /// In the in-process modes: where the handler runs.
    #[arg(long, value_enum, default_value_t = HandlerExecution::Blocking)]
    handler_execution: HandlerExecution,
    /// Instead of a timed run: open N connections at once, one request each.
    #[arg(long)]
    burst: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("in-process server: {0}")]
    Server(#[from] isvc_ingress::server::ServerError),
    #[error("{0}")]
    Client(#[from] client::ClientError),
}

/// Resolves `addr` and refuses anything that is not loopback.
async fn loopback_addr(addr: &str) -> Result<SocketAddr, LoadError> {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return if socket.ip().is_loopback() {
            Ok(socket)
        } else {
            Err(LoadError::Usage(format!(
                "refusing non-loopback address {addr}: this tool only targets 127.0.0.0/8, ::1 or localhost"
            )))
        };
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| LoadError::Usage(format!("address {addr:?} needs a port")))?;
    if host != "localhost" {
        return Err(LoadError::Usage(format!(
            "refusing host {host:?}: only 127.0.0.0/8, ::1 or localhost"
        )));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| LoadError::Usage(format!("invalid port in {addr:?}")))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn check_bounds(args: &Args) -> Result<(), LoadError> {
    let usage = |m: String| Err(LoadError::Usage(m));
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return usage(format!(
            "--duration must be in (0, {}]",
            format_duration(MAX_DURATION)
        ));
    }
    for (flag, value) in [
        ("--concurrency", args.concurrency),
        ("--connections", args.connections),
        ("--burst", args.burst.unwrap_or(1)),
    ] {
        if value == 0 || value > MAX_CONNECTIONS {
            return usage(format!("{flag} must be between 1 and {MAX_CONNECTIONS}"));
        }
    }
    if !args.path.starts_with('/') {
        return usage("--path must start with '/'".to_owned());
    }
    Ok(())
}

fn new_histogram() -> Histogram<u64> {
    // 1ns to 60s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, serde::Serialize)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Self {
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct RunReport {
    target: String,
    handler_execution: Option<String>,
    protocol: &'static str,
    path: String,
    body_bytes: usize,
    concurrency: usize,
    connections: usize,
    duration_s: f64,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    latency: Latency,
}

#[derive(Debug, serde::Serialize)]
struct BurstReport {
    target: String,
    protocol: &'static str,
    connections: usize,
    answered: usize,
    answered_ok: usize,
    refused: usize,
    hung: usize,
    latency: Latency,
}

struct Target {
    addr: SocketAddr,
    server_name: String,
    config: Arc<rustls::ClientConfig>,
    label: String,
}

impl Target {
    fn new(
        addr: SocketAddr,
        server_name: String,
        tls: &ClientTls,
        label: String,
    ) -> Result<Self, LoadError> {
        let mut config = (*tls.build()?).clone();
        // Every new connection pays a full handshake, as a first contact does: the burst
        // numbers are then an upper bound rather than depending on ticket reuse.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            addr,
            server_name,
            config: Arc::new(config),
            label,
        })
    }

    async fn connect(&self) -> Result<Connection, client::ClientError> {
        client::connect(self.addr, &self.server_name, self.config.clone()).await
    }
}

struct WorkerResult {
    histogram: Histogram<u64>,
    requests: u64,
    errors: u64,
}

async fn worker(
    target: Arc<Target>,
    mut conn: Connection,
    path: Arc<str>,
    body: Bytes,
    deadline: Instant,
) -> WorkerResult {
    let mut result = WorkerResult {
        histogram: new_histogram(),
        requests: 0,
        errors: 0,
    };
    while Instant::now() < deadline {
        let started = Instant::now();
        match conn.post_json(&path, body.clone()).await {
            Ok(response) if response.status == 200 => {
                result.requests += 1;
                // Saturating: a value above the bound is clamped, not dropped.
                result.histogram.saturating_record(nanos(started.elapsed()));
            }
            Ok(_) => result.errors += 1,
            Err(_) => {
                result.errors += 1;
                match target.connect().await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
    result
}

async fn timed_run(args: &Args, target: Arc<Target>, body: Bytes) -> Result<RunReport, LoadError> {
    let path: Arc<str> = Arc::from(args.path.as_str());
    let connections = if args.http2 {
        args.connections.min(args.concurrency)
    } else {
        args.concurrency
    };
    // Establish every connection before the clock starts.
    let mut pool = Vec::with_capacity(connections);
    for _ in 0..connections {
        pool.push(target.connect().await?);
    }
    let mut worker_conns = Vec::with_capacity(args.concurrency);
    if args.http2 {
        for i in 0..args.concurrency {
            let shared = pool[i % connections]
                .try_clone()
                .ok_or_else(|| LoadError::Usage("server did not negotiate h2".to_owned()))?;
            worker_conns.push(shared);
        }
    } else {
        worker_conns = pool;
    }
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = worker_conns
        .into_iter()
        .map(|conn| {
            tokio::spawn(worker(
                target.clone(),
                conn,
                path.clone(),
                body.clone(),
                deadline,
            ))
        })
        .collect();
    let mut histogram = new_histogram();
    let (mut requests, mut errors) = (0, 0);
    for task in tasks {
        match task.await {
            Ok(r) => {
                histogram.add(&r.histogram).expect("same histogram bounds");
                requests += r.requests;
                errors += r.errors;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(RunReport {
        target: target.label.clone(),
        handler_execution: (args.in_process_echo || args.in_process_webhook || args.compare)
            .then(|| format!("{:?}", args.handler_execution).to_lowercase()),
        protocol: if args.http2 { "HTTP/2" } else { "HTTP/1.1" },
        path: args.path.clone(),
        body_bytes: body.len(),
        concurrency: args.concurrency,
        connections,
        duration_s: elapsed,
        requests,
        errors,
        requests_per_second: requests as f64 / elapsed,
        latency: Latency::of(&histogram),
    })
}

enum BurstOutcome {
    Answered { ok: bool, latency: Duration },
    Refused,
    Hung,
}

async fn burst_run(
    args: &Args,
    target: Arc<Target>,
    body: Bytes,
    n: usize,
) -> Result<BurstReport, LoadError> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let path: Arc<str> = Arc::from(args.path.as_str());
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (target, body, path, start) =
                (target.clone(), body.clone(), path.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let began = Instant::now();
                let attempt = async {
                    let mut conn = target.connect().await.ok()?;
                    conn.post_json(&path, body).await.ok()
                };
                match tokio::time::timeout(BURST_HANG, attempt).await {
                    Ok(Some(response)) => BurstOutcome::Answered {
                        ok: response.status == 200,
                        latency: began.elapsed(),
                    },
                    Ok(None) => BurstOutcome::Refused,
                    Err(_) => BurstOutcome::Hung,
                }
            })
        })
        .collect();
    let mut report = BurstReport {
        target: target.label.clone(),
        protocol: if args.http2 { "HTTP/2" } else { "HTTP/1.1" },
        connections: n,
        answered: 0,
        answered_ok: 0,
        refused: 0,
        hung: 0,
        latency: Latency::of(&new_histogram()),
    };
    let mut histogram = new_histogram();
    for task in tasks {
        match task.await {
            Ok(BurstOutcome::Answered { ok, latency }) => {
                report.answered += 1;
                report.answered_ok += usize::from(ok);
                histogram.saturating_record(nanos(latency));
            }
            Ok(BurstOutcome::Refused) | Err(_) => report.refused += 1,
            Ok(BurstOutcome::Hung) => report.hung += 1,
        }
    }
    report.latency = Latency::of(&histogram);
    Ok(report)
}

/// The handler an in-process server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InProcess {
    Echo,
    Webhook,
}

impl InProcess {
    fn label(self) -> &'static str {
        match self {
            Self::Echo => "in-process echo",
            Self::Webhook => "in-process webhook",
        }
    }

    fn handler(self, args: &Args) -> Result<Arc<dyn AdmissionHandler>, LoadError> {
        Ok(match self {
            Self::Echo => Arc::new(StaticAllowHandler),
            Self::Webhook => {
                let config = match &args.config {
                    None => KserveConfig::shipped(),
                    Some(path) => {
                        let text =
                            std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                                path: path.clone(),
                                source,
                            })?;
                        KserveConfig::from_text(&text).map_err(|error| {
                            LoadError::Usage(format!("{}: {error}", path.display()))
                        })?
                    }
                };
                let state = AdmissionState::new(config, Policy::default(), "kserve");
                Arc::new(Webhook::new(Arc::new(state)))
            }
        })
    }
}

async fn start_in_process(
    args: &Args,
    handler: Arc<dyn AdmissionHandler>,
) -> Result<(RunningServer, CancellationToken), LoadError> {
    #[derive(Parser)]
    struct ServeCli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let execution = format!("{:?}", args.handler_execution).to_lowercase();
    let serve = ServeCli::try_parse_from([
        "isvc-ingress",
        "--self-signed",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--handler-execution",
        &execution,
    ])
    .map_err(|e| LoadError::Usage(e.to_string()))?
    .serve;
    let readiness = Readiness::new();
    readiness.set_caches_synced(true);
    let shutdown = CancellationToken::new();
    let running =
        start_server(&serve, handler, Metrics::new(), readiness, shutdown.clone()).await?;
    Ok((running, shutdown))
}

fn print_latency(l: &Latency) {
    println!(
        "latency:     p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us   max {:.1} us",
        l.p50_us, l.p99_us, l.p999_us, l.max_us
    );
}

async fn run(args: Args) -> Result<(), LoadError> {
    check_bounds(&args)?;
    let body = match &args.body {
        Some(path) => Bytes::from(std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?),
        None => Bytes::from(client::sample_review(
            "load-test",
            "InferenceService",
            "CREATE",
        )),
    };
    let version = if args.http2 {
        HttpVersion::Http2
    } else {
        HttpVersion::Http1
    };
    let modes: Vec<Option<InProcess>> = if args.compare {
        vec![Some(InProcess::Echo), Some(InProcess::Webhook)]
    } else if args.in_process_echo {
        vec![Some(InProcess::Echo)]
    } else if args.in_process_webhook {
        vec![Some(InProcess::Webhook)]
    } else {
        vec![None]
    };
    let mut throughputs = Vec::new();
    for mode in modes {
        let mut in_process = None;
        let target = match mode {
            Some(handler) => {
                let (running, shutdown) = start_in_process(&args, handler.handler(&args)?).await?;
                let ca = running
                    .self_signed_ca_pem()
                    .expect("self-signed server has a CA")
                    .as_bytes()
                    .to_vec();
                let target = Target::new(
                    running.webhook_addr(),
                    "localhost".to_owned(),
                    &ClientTls::new(ca, version),
                    format!("{} at {}", handler.label(), running.webhook_addr()),
                )?;
                in_process = Some((running, shutdown));
                target
            }
            None => {
                let addr = loopback_addr(&args.addr).await?;
                let cacert = args.cacert.as_ref().expect("required by clap");
                let ca = std::fs::read(cacert).map_err(|source| LoadError::Read {
                    path: cacert.clone(),
                    source,
                })?;
                Target::new(
                    addr,
                    args.server_name.clone(),
                    &ClientTls::new(ca, version),
                    addr.to_string(),
                )?
            }
        };
        let target = Arc::new(target);
        match args.burst {
            Some(n) => print_burst(&args, &burst_run(&args, target, body.clone(), n).await?),
            None => {
                let report = timed_run(&args, target, body.clone()).await?;
                throughputs.push(report.requests_per_second);
                print_timed(&args, &report);
            }
        }
        if let Some((running, shutdown)) = in_process {
            shutdown.cancel();
            running.wait().await?;
        }
    }
    if let [echo, webhook] = throughputs[..]
        && !args.json
    {
        println!(
            "ratio:       webhook / echo throughput = {:.0}%",
            100.0 * webhook / echo
        );
    }
    Ok(())
}

fn print_burst(args: &Args, report: &BurstReport) {
    if args.json {
        println!("{}", serde_json::to_string(report).expect("serialisable"));
        return;
    }
    println!("target:      {} ({})", report.target, report.protocol);
    println!(
        "burst:       {} connections: {} answered ({} with 200), {} refused, {} hung (>{}s)",
        report.connections,
        report.answered,
        report.answered_ok,
        report.refused,
        report.hung,
        BURST_HANG.as_secs()
    );
    print_latency(&report.latency);
}

fn print_timed(args: &Args, report: &RunReport) {
    if args.json {
        println!("{}", serde_json::to_string(report).expect("serialisable"));
        return;
    }
    println!(
        "target:      {}{}",
        report.target,
        report
            .handler_execution
            .as_deref()
            .map(|e| format!(" (handler on {e})"))
            .unwrap_or_default()
    );
    println!(
        "protocol:    {}   concurrency {}   connections {}   path {}   body {} B",
        report.protocol, report.concurrency, report.connections, report.path, report.body_bytes
    );
    println!(
        "requests:    {} in {:.2}s = {:.0} req/s   errors {}",
        report.requests, report.duration_s, report.requests_per_second, report.errors
    );
    print_latency(&report.latency);
}

fn main() -> ExitCode {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a rustls crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
