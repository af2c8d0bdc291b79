//! `isvc-ingress-load`: a closed-loop load generator for the webhook, loopback only.
//!
//! Each worker sends one request, waits for the answer, and sends the next, for a fixed
//! duration; latency is measured per request after all connections are established. With
//! `--http2`, workers share `--connections` HTTP/2 connections (default 1, as kube-apiserver
//! multiplexes its webhook calls); otherwise each worker owns an HTTP/1.1 keep-alive
//! connection. `--burst N` instead opens N connections at once, each sending one request, and
//! reports how many were answered, refused or left hanging.
//!
//! `--rate R` paces the workers to R requests per second in all (an open-loop soak rather than
//! a closed-loop maximum), and `--interval D` adds throughput and latency per interval of D to
//! the report, so a long run shows whether p99 and errors stay flat. `--matrix` measures the
//! echo baseline, `/mutate`, `/validate` and the status mutator at several concurrencies over
//! both protocols (in-process servers), prints a Markdown table, and with `--plot` draws the
//! latency percentiles against concurrency as an SVG.
//!
//! `--in-process-echo` starts the same server stack (TLS, router, handler execution) in this
//! process with a constant allowed-review handler on 127.0.0.1:0, so a baseline for the server
//! overhead comes from the same binary and run; `--in-process-webhook` starts it with the real
//! admission handler (`--config`, or KServe's shipped config), and `--compare` runs the echo
//! baseline and then the webhook with the same body and settings and prints their ratio, which
//! does not depend on the machine. The server then shares the CPU with the load
//! generator, which is what a loopback measurement on one machine means anyway.
//!
//! `--attack NAME` measures normal reviews and probes while `--attackers` hostile clients
//! besiege the webhook or admin port (see `attack.rs` and scripts/measure-hostile.sh).
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

mod attack;
mod matrix;
mod plot;
use hdrhistogram::Histogram;
use isvc_ingress::admission::{AdmissionState, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::duration::{format_duration, parse_duration};
use isvc_ingress::metrics::Metrics;
use isvc_ingress::plan::{Policy, RouteOwner};
use isvc_ingress::server::echo::StaticAllowHandler;
use isvc_ingress::server::{
    AdmissionHandler, CancellationToken, HandlerExecution, Readiness, RunningServer, ServerArgs,
    start_server,
};
use isvc_ingress_testkit::client::{self, ClientTls, Connection, HttpVersion};

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
    #[arg(long, required_unless_present_any = ["in_process_echo", "in_process_webhook", "compare", "matrix", "plot_rss"])]
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
    #[arg(long, conflicts_with_all = ["matrix", "rate"])]
    burst: Option<usize>,
    /// Requests per second in all, spread evenly over the workers (default: as fast as the
    /// server answers).
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Report throughput, errors and latency for every interval of this length too.
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// Measure echo, mutate, validate and status at each `--levels` concurrency over HTTP/1.1
    /// and HTTP/2, each with an in-process server, and print a Markdown table.
    #[arg(long, conflicts_with_all = ["in_process_echo", "in_process_webhook", "compare", "http2", "rate"], requires = "status_body")]
    matrix: bool,
    /// With `--matrix`: the status-subresource review the status rows send.
    #[arg(long)]
    status_body: Option<PathBuf>,
    /// With `--matrix`: the concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
    /// With `--matrix`: also draw latency percentiles against concurrency into this SVG file.
    #[arg(long, requires = "matrix")]
    plot: Option<PathBuf>,
    /// Instead of a load run: draw the memory plot of docs/performance.md from the rows
    /// (JSON lines) `benches/control_plane_scale.rs` wrote, into the SVG file `--rss-svg`.
    #[arg(long, requires = "rss_svg")]
    plot_rss: Option<PathBuf>,
    /// With `--plot-rss`: the SVG file to write.
    #[arg(long, requires = "plot_rss")]
    rss_svg: Option<PathBuf>,
    #[command(flatten)]
    attack: attack::AttackArgs,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of requests per second"
        )),
    }
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
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
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
    if args
        .interval
        .is_some_and(|interval| interval.is_zero() || interval > args.duration)
    {
        return usage("--interval must be in (0, --duration]".to_owned());
    }
    let levels = args.levels.iter().map(|level| ("--levels", *level));
    for (flag, value) in [
        ("--concurrency", args.concurrency),
        ("--connections", args.connections),
        ("--burst", args.burst.unwrap_or(1)),
    ]
    .into_iter()
    .chain(levels)
    {
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
    /// `--rate`, when the run was paced.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_rate: Option<f64>,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    latency: Latency,
    /// Per `--interval`, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    intervals: Vec<IntervalReport>,
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

/// What one interval of a run saw (see `--interval`).
#[derive(Debug, serde::Serialize)]
struct IntervalReport {
    /// Seconds from the start of the run to the start of this interval.
    start_s: f64,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    latency: Latency,
}

/// Counts for one interval, merged from every worker.
struct IntervalCounts {
    histogram: Histogram<u64>,
    requests: u64,
    errors: u64,
}

impl IntervalCounts {
    fn new() -> Self {
        Self {
            histogram: new_histogram(),
            requests: 0,
            errors: 0,
        }
    }

    fn add(&mut self, other: &Self) {
        self.histogram
            .add(&other.histogram)
            .expect("same histogram bounds");
        self.requests += other.requests;
        self.errors += other.errors;
    }
}

/// Where workers hand in their counts: the whole run, and per interval when asked.
struct Tally {
    started: Instant,
    interval: Option<Duration>,
    total: std::sync::Mutex<IntervalCounts>,
    intervals: std::sync::Mutex<Vec<IntervalCounts>>,
}

impl Tally {
    fn interval_index(&self, at: Instant) -> usize {
        self.interval.map_or(0, |interval| {
            (at.saturating_duration_since(self.started).as_nanos() / interval.as_nanos()) as usize
        })
    }

    fn hand_in(&self, index: usize, counts: &IntervalCounts) {
        let mut total = self
            .total
            .lock()
            .expect("no worker panics holding the tally");
        total.add(counts);
        drop(total);
        if self.interval.is_some() {
            let mut intervals = self
                .intervals
                .lock()
                .expect("no worker panics holding the tally");
            while intervals.len() <= index {
                intervals.push(IntervalCounts::new());
            }
            intervals[index].add(counts);
        }
    }
}

/// When each worker sends: as soon as its last answer came (closed loop), or on a fixed
/// schedule that adds up to `--rate` over all workers, each worker's schedule shifted so the
/// sends interleave.
#[derive(Debug, Clone, Copy)]
enum Pace {
    AsFastAsAnswered,
    Every { period: Duration, offset: Duration },
}

impl Pace {
    fn for_worker(rate: Option<f64>, workers: usize, worker: usize) -> Self {
        match rate {
            None => Self::AsFastAsAnswered,
            Some(rate) => {
                let period = Duration::from_secs_f64(workers as f64 / rate);
                let offset = period.mul_f64(worker as f64 / workers as f64);
                Self::Every { period, offset }
            }
        }
    }
}

async fn worker(
    target: Arc<Target>,
    mut conn: Connection,
    path: Arc<str>,
    body: Bytes,
    deadline: Instant,
    pace: Pace,
    tally: Arc<Tally>,
) {
    let mut counts = IntervalCounts::new();
    let mut index = 0;
    let mut next_send = match pace {
        Pace::AsFastAsAnswered => tally.started,
        Pace::Every { offset, .. } => tally.started + offset,
    };
    loop {
        if let Pace::Every { period, .. } = pace {
            tokio::time::sleep_until(next_send.into()).await;
            next_send += period;
        }
        let started = Instant::now();
        if started >= deadline {
            break;
        }
        let answer = conn.post_json(&path, body.clone()).await;
        let finished = Instant::now();
        let finished_index = tally.interval_index(finished);
        if finished_index != index {
            tally.hand_in(index, &counts);
            counts = IntervalCounts::new();
            index = finished_index;
        }
        match answer {
            Ok(response) if response.status == 200 => {
                counts.requests += 1;
                // Saturating: a value above the bound is clamped, not dropped.
                counts
                    .histogram
                    .saturating_record(nanos(finished - started));
            }
            Ok(_) => counts.errors += 1,
            Err(_) => {
                counts.errors += 1;
                match target.connect().await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
    tally.hand_in(index, &counts);
}

/// The settings of one timed run; `--matrix` makes several from one command line.
#[derive(Debug, Clone)]
struct RunSettings {
    path: String,
    http2: bool,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
    interval: Option<Duration>,
    handler_execution: Option<String>,
}

impl RunSettings {
    fn from_args(args: &Args) -> Self {
        let in_process = args.in_process_echo || args.in_process_webhook || args.compare;
        Self {
            path: args.path.clone(),
            http2: args.http2,
            concurrency: args.concurrency,
            connections: args.connections,
            duration: args.duration,
            rate: args.rate,
            interval: args.interval,
            handler_execution: in_process
                .then(|| format!("{:?}", args.handler_execution).to_lowercase()),
        }
    }

    fn protocol(&self) -> &'static str {
        if self.http2 { "HTTP/2" } else { "HTTP/1.1" }
    }
}

async fn timed_run(
    settings: &RunSettings,
    target: Arc<Target>,
    body: Bytes,
) -> Result<RunReport, LoadError> {
    let path: Arc<str> = Arc::from(settings.path.as_str());
    let connections = if settings.http2 {
        settings.connections.min(settings.concurrency)
    } else {
        settings.concurrency
    };
    // Establish every connection before the clock starts.
    let mut pool = Vec::with_capacity(connections);
    for _ in 0..connections {
        pool.push(target.connect().await?);
    }
    let mut worker_conns = Vec::with_capacity(settings.concurrency);
    if settings.http2 {
        for i in 0..settings.concurrency {
            let shared = pool[i % connections]
                .try_clone()
                .ok_or_else(|| LoadError::Usage("server did not negotiate h2".to_owned()))?;
            worker_conns.push(shared);
        }
    } else {
        worker_conns = pool;
    }
    let started = Instant::now();
    let deadline = started + settings.duration;
    let tally = Arc::new(Tally {
        started,
        interval: settings.interval,
        total: std::sync::Mutex::new(IntervalCounts::new()),
        intervals: std::sync::Mutex::new(Vec::new()),
    });
    let tasks: Vec<_> = worker_conns
        .into_iter()
        .enumerate()
        .map(|(index, conn)| {
            let pace = Pace::for_worker(settings.rate, settings.concurrency, index);
            tokio::spawn(worker(
                target.clone(),
                conn,
                path.clone(),
                body.clone(),
                deadline,
                pace,
                tally.clone(),
            ))
        })
        .collect();
    let mut lost_workers = 0;
    for task in tasks {
        if task.await.is_err() {
            lost_workers += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tally = Arc::into_inner(tally).expect("every worker has finished");
    let total = tally
        .total
        .into_inner()
        .expect("no worker panicked holding it");
    let interval_seconds = settings.interval.map_or(0.0, |i| i.as_secs_f64());
    let intervals = tally
        .intervals
        .into_inner()
        .expect("no worker panicked holding it")
        .iter()
        .enumerate()
        // A last interval cut short by the deadline says little; report whole ones only.
        .filter(|(index, _)| (*index as f64 + 1.0) * interval_seconds <= elapsed + 1e-3)
        .map(|(index, counts)| IntervalReport {
            start_s: index as f64 * interval_seconds,
            requests: counts.requests,
            errors: counts.errors,
            requests_per_second: counts.requests as f64 / interval_seconds,
            latency: Latency::of(&counts.histogram),
        })
        .collect();
    Ok(RunReport {
        target: target.label.clone(),
        handler_execution: settings.handler_execution.clone(),
        protocol: settings.protocol(),
        path: settings.path.clone(),
        body_bytes: body.len(),
        concurrency: settings.concurrency,
        connections,
        duration_s: elapsed,
        target_rate: settings.rate,
        requests: total.requests,
        errors: total.errors + lost_workers,
        requests_per_second: total.requests as f64 / elapsed,
        latency: Latency::of(&total.histogram),
        intervals,
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
                let state = AdmissionState::new(
                    config,
                    Policy {
                        route_owner: RouteOwner::IsvcIngress,
                        ..Policy::default()
                    },
                    "kserve",
                );
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
        server: ServerArgs,
    }
    let execution = format!("{:?}", args.handler_execution).to_lowercase();
    let server = ServeCli::try_parse_from([
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
    .server;
    let readiness = Readiness::new();
    readiness.set_caches_synced(true);
    let shutdown = CancellationToken::new();
    let running = start_server(
        &server,
        handler,
        Metrics::new(),
        readiness,
        shutdown.clone(),
    )
    .await?;
    Ok((running, shutdown))
}

fn print_latency(l: &Latency) {
    println!(
        "latency:     p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us   max {:.1} us",
        l.p50_us, l.p99_us, l.p999_us, l.max_us
    );
}

/// A server this process started, stopped when the measurement is done.
struct InProcessServer {
    running: RunningServer,
    shutdown: CancellationToken,
}

impl InProcessServer {
    async fn start(args: &Args, mode: InProcess) -> Result<Self, LoadError> {
        let (running, shutdown) = start_in_process(args, mode.handler(args)?).await?;
        Ok(Self { running, shutdown })
    }

    /// A target for this server; the label says which handler answers.
    fn target(&self, mode: InProcess, version: HttpVersion) -> Result<Target, LoadError> {
        let ca = self
            .running
            .self_signed_ca_pem()
            .expect("self-signed server has a CA")
            .as_bytes()
            .to_vec();
        let addr = self.running.webhook_addr();
        Target::new(
            addr,
            "localhost".to_owned(),
            &ClientTls::new(ca, version),
            format!("{} at {addr}", mode.label()),
        )
    }

    async fn stop(self) -> Result<(), LoadError> {
        self.shutdown.cancel();
        Ok(self.running.wait().await?)
    }
}

fn read_file(path: &PathBuf) -> Result<Bytes, LoadError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })
}

/// `--plot-rss`: reads the benchmark's rows and draws them.
fn plot_rss(rows: &std::path::Path, svg: &std::path::Path) -> Result<(), LoadError> {
    let text = read_file(&rows.to_path_buf())?;
    let rows: Vec<plot::RssRow> = String::from_utf8_lossy(&text)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| {
                LoadError::Usage(format!(
                    "{} line {}: not a row of the scale benchmark: {error}",
                    rows.display(),
                    index + 1
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    plot::rss_against_isvcs(&rows, svg).map_err(|message| LoadError::Write {
        path: svg.to_path_buf(),
        message,
    })
}

async fn run(args: Args) -> Result<(), LoadError> {
    if let (Some(rows), Some(svg)) = (&args.plot_rss, &args.rss_svg) {
        return plot_rss(rows, svg);
    }
    check_bounds(&args)?;
    let body = match &args.body {
        Some(path) => read_file(path)?,
        None => Bytes::from(client::sample_review(
            "load-test",
            "InferenceService",
            "CREATE",
        )),
    };
    if args.matrix {
        return matrix::run(&args, body).await;
    }
    if let Some(attack) = args.attack.attack() {
        return attack::run(&args, attack, body).await;
    }
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
    let settings = RunSettings::from_args(&args);
    let mut throughputs = Vec::new();
    for mode in modes {
        let mut in_process = None;
        let target = match mode {
            Some(mode) => {
                let server = InProcessServer::start(&args, mode).await?;
                let target = server.target(mode, version)?;
                in_process = Some(server);
                target
            }
            None => {
                let addr = loopback_addr(&args.addr).await?;
                let cacert = args.cacert.as_ref().expect("required by clap");
                Target::new(
                    addr,
                    args.server_name.clone(),
                    &ClientTls::new(read_file(cacert)?.to_vec(), version),
                    addr.to_string(),
                )?
            }
        };
        let target = Arc::new(target);
        match args.burst {
            Some(n) => print_burst(&args, &burst_run(&args, target, body.clone(), n).await?),
            None => {
                let report = timed_run(&settings, target, body.clone()).await?;
                throughputs.push(report.requests_per_second);
                print_timed(&args, &report);
            }
        }
        if let Some(server) = in_process {
            server.stop().await?;
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
        "requests:    {} in {:.2}s = {:.0} req/s{}   errors {}",
        report.requests,
        report.duration_s,
        report.requests_per_second,
        report
            .target_rate
            .map(|rate| format!(" (paced at {rate:.0} req/s)"))
            .unwrap_or_default(),
        report.errors
    );
    print_latency(&report.latency);
    for interval in &report.intervals {
        println!(
            "  from {:>6.0}s: {:.0} req/s   errors {}   p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us",
            interval.start_s,
            interval.requests_per_second,
            interval.errors,
            interval.latency.p50_us,
            interval.latency.p99_us,
            interval.latency.p999_us
        );
    }
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
