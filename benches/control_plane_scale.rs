//! Scale on the real control plane (issue 14): etcd and kube-apiserver of the end-to-end suite
//! (`tests/e2e/control_plane.rs`), isvc-ingress installed from its manifests
//! (`tests/e2e/install.rs`), `isvc-ingress serve --route-owner isvc-ingress` of this build as
//! its ServiceAccount, and a fleet of ISVCs of the synthetic mix (`tests/e2e/fleet.rs`). For
//! each size N (ascending, the fleet grows from one to the next), it measures:
//!
//! 1. **Load**: N ISVCs created through the webhooks (parallel `kubectl create -f` of Lists)
//!    while `serve` annotates and routes them, until every route exists and every status is
//!    settled. This `serve` runs at `--kube-api-qps 200` (the setup, not a measurement); a
//!    fresh one with the default limits then takes over and settles before step 2.
//! 2. **Quiet webhook latency**: dry-run creates and updates of ISVCs at a steady rate against an
//!    idle `serve`: the exact duration of every call the API server made to our webhooks, from
//!    its own trace spans (below); beside it, its
//!    `apiserver_admission_webhook_admission_duration_seconds` interpolated, `serve`'s own
//!    histogram, and the client's own timing.
//! 3. **Start-up with the routes correct**: `serve` stopped and a fresh one started: time to
//!    `/readyz` 200 and to no pending reconcile, its RSS (VmRSS) and peak (VmHWM) then, and
//!    its writes (the API server's `apiserver_request_total` and `serve`'s own counter):
//!    should be zero.
//! 4. **Catch-up with every route missing**: `serve` stopped, every managed route deleted,
//!    `serve` started: time until all exist again, API requests per second meanwhile, writes.
//! 5. **A config change** (`ingressDomain`): time until every route and status follows, and
//!    the writes against those the change needs (computed from the plans).
//!
//! During 3–5 the same webhook load runs, so its latency is measured under that work.
//! CPU seconds of kube-apiserver, etcd and `serve` are reported per step.
//!
//! **The webhook's latency, exactly.** The API server's histogram has buckets of 5, 25 and
//! 100 ms: the p99s to compare (issue 14: under load within the quiet p99 + 5 ms) all fall in
//! one bucket. So kube-apiserver runs with `--tracing-config-file`, every request sampled, and
//! exports its spans to an OTLP receiver in this process (`support/webhook_spans.rs`, which
//! says what a span covers against the histogram's timer). For each step, the calls to our
//! webhooks (their names from `manifests/base`) whose span ended between the step's two
//! histogram readings give exact p50 / p99 / max (nearest rank), overall and per kind of call
//! (mutating or validating, webhook, operation, subresource, dry run), and the span count is
//! printed beside the calls the histogram counted, which shows whether the exporter dropped any.
//! The target line of the report uses the spans' p99, of every call and of the load's dry runs
//! alone (the quiet step's calls; the reconciler's own writes, e.g. 900 status patches in a
//! config change at 1,000 ISVCs, join them under load).
//!
//! Run: `scripts/measure-scale.sh` (writes docs/performance.md), or
//! `CONTROL_PLANE_SCALE_ISVCS=0,200,1000 cargo bench --bench control_plane_scale`.
//! Environment: `CONTROL_PLANE_SCALE_ISVCS` (sizes, default `0,1000,10000`),
//! `CONTROL_PLANE_SCALE_RATE` (webhook load, requests/s, default 10),
//! `CONTROL_PLANE_SCALE_QUIET_SECONDS` (quiet latency run, default 120: 2,400 calls, whose p99
//! is their 24th slowest; at 20 s it was the 4th of 400, and one slow call moved it by ms),
//! `CONTROL_PLANE_SCALE_SERVE_ARGS` (flags added to `serve`'s in steps 2–5, e.g.
//! `--concurrent-reconciles 8`),
//! `CONTROL_PLANE_SCALE_REPORT` (the Markdown section, default stdout only),
//! `CONTROL_PLANE_SCALE_ROWS` (one JSON line per size, for the plot).

#![allow(dead_code)]

#[path = "../tests/e2e/control_plane.rs"]
mod control_plane;
#[path = "../tests/e2e/fleet.rs"]
mod fleet;
#[path = "../tests/e2e/install.rs"]
mod install;
// Not `benches/webhook_spans.rs`: cargo would take a file there for a benchmark of its own.
#[path = "support/webhook_spans.rs"]
mod webhook_spans;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use control_plane::ControlPlane;
use fleet::{ApiRequests, Reconciler};
use install::{Installation, Replica, install};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use webhook_spans::{Summary, WebhookSpans};

/// `serve`'s arguments besides the Deployment's: it writes every route. Its API client keeps
/// the default rate limits (`--kube-api-qps 10`, `--kube-api-burst 50`): at 20 the
/// reconciler's writes pushed the API server's p99 for the webhook's calls 6.9–7.0 ms above its
/// quiet p99 at 10,000 ISVCs on a 2-core control plane in two runs of three, at 50 and 100 more
/// than 5 ms above already at 1,000 (`docs/performance.md`, `docs/operations.md`). The requests
/// per second columns show the limit is kept.
const ARGS: &[&str] = &["--route-owner", "isvc-ingress"];
/// `serve`'s flags of the measured steps: [`ARGS`], then those of `CONTROL_PLANE_SCALE_SERVE_ARGS`
/// (split on white space), to measure other settings than the defaults, e.g.
/// `--concurrent-reconciles 8` or `--kube-api-qps 20`.
fn measured_args() -> Vec<&'static str> {
    let extra = std::env::var("CONTROL_PLANE_SCALE_SERVE_ARGS").unwrap_or_default();
    let extra: &'static str = Box::leak(extra.into_boxed_str());
    ARGS.iter()
        .copied()
        .chain(extra.split_whitespace())
        .collect()
}
/// The replica that fills the cluster (step 1, the benchmark's setup rather than one of its
/// measurements) writes faster: at the default rate 10,000 ISVCs would take 40 minutes to route.
/// The steps measured after it run [`measured_args`].
const LOAD_ARGS: &[&str] = &[
    "--route-owner",
    "isvc-ingress",
    "--kube-api-qps",
    "200",
    "--kube-api-burst",
    "400",
];
/// No reconcile or write counter moved for this long: nothing is pending.
const QUIET: Duration = Duration::from_secs(5);
/// Generous bound on any one wait (10,000 ISVCs on a shared 2-core machine: the config change
/// takes about 34 minutes at the default 10 writes a second).
const LIMIT: Duration = Duration::from_secs(3600);
/// The namespace the webhook load's dry-run creates name.
const LOAD_NAMESPACE: &str = "webhook-load";
const DOMAINS: [&str; 2] = ["example.com", "example.org"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / ticks
}

/// CPU seconds of kube-apiserver, etcd and `serve` between two readings.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    apiserver: f64,
    etcd: f64,
    serve: f64,
}

impl Cpu {
    fn read(plane: &ControlPlane, replica: Option<&Replica>) -> Self {
        Self {
            apiserver: cpu_seconds(plane.apiserver_pid()),
            etcd: cpu_seconds(plane.etcd_pid()),
            serve: replica.map_or(0.0, |replica| cpu_seconds(replica.process.pid())),
        }
    }

    /// Used since `before`; `serve` only when the same process was read both times.
    fn since(self, before: Self, same_serve: bool) -> Self {
        Self {
            apiserver: self.apiserver - before.apiserver,
            etcd: self.etcd - before.etcd,
            serve: if same_serve {
                self.serve - before.serve
            } else {
                self.serve
            },
        }
    }

    fn describe(self) -> String {
        format!(
            "{:.1} / {:.1} / {:.1}",
            self.apiserver, self.etcd, self.serve
        )
    }
}

/// Admission traffic at a steady rate while a step runs: dry-run creates of new ISVCs and
/// dry-run updates (a label) of a stored one, alternating. Dry runs go through every webhook
/// but store nothing, so the reconciler has nothing to do for them and the write counts of the
/// step stay its own (the API server counts dry runs under their own label).
struct WebhookLoad<'a> {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<Duration>, usize)>,
    histogram: Histogram,
    serve_histogram: BTreeMap<String, f64>,
    tracing: &'a Tracing,
}

/// kube-apiserver's spans of the webhook calls ([`WebhookSpans`]) and the names of our
/// webhooks (`manifests/base/webhooks.yaml`, as installed).
struct Tracing {
    receiver: WebhookSpans,
    webhooks: Vec<String>,
}

/// One reading of the API server's `apiserver_admission_webhook_admission_duration_seconds`.
struct Histogram {
    /// When the reading began (the span window's edge).
    at: SystemTime,
    /// The buckets of `inferenceservices.isvc-ingress.io`, mutating and validating (what
    /// [`fleet::webhook_latency_histogram`] reads): upper bound (s) → cumulative count.
    buckets: BTreeMap<String, f64>,
    /// Calls counted for each of our webhooks (the `+Inf` bucket), mutating and validating.
    calls: BTreeMap<String, f64>,
}

impl Histogram {
    fn read(plane: &ControlPlane, webhooks: &[String]) -> Self {
        let at = SystemTime::now();
        let text = plane.kubectl_ok(&["get", "--raw", "/metrics"]);
        let name = "apiserver_admission_webhook_admission_duration_seconds";
        let buckets = fleet::histogram(&text, name, |labels| {
            labels.get("name") == Some(&"inferenceservices.isvc-ingress.io")
        });
        let calls = webhooks
            .iter()
            .map(|webhook| {
                let buckets = fleet::histogram(&text, name, |labels| {
                    labels.get("name") == Some(&webhook.as_str())
                });
                (webhook.clone(), buckets.get("+Inf").copied().unwrap_or(0.0))
            })
            .collect();
        Self { at, buckets, calls }
    }
}

/// Waits until kube-apiserver has exported every span that ended before `end`: until a span
/// that ended at least 1 s after `end` has arrived. Go's batch span processor queues a span
/// when it ends and exports the queue in order, so by then the earlier ones are here (or were
/// dropped, which the span count against the histogram's shows). A request to `/readyz` each
/// poll makes sure such a span exists. False after 30 s without one.
fn wait_for_spans(plane: &ControlPlane, receiver: &WebhookSpans, end: SystemTime) -> bool {
    let wanted = end + Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if receiver.latest_end() >= wanted {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if SystemTime::now() >= wanted {
            let _ = plane.kubectl(&["get", "--raw", "/readyz"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `serve`'s own admission latency histogram (mutate and validate).
fn serve_histogram(replica: &Replica) -> BTreeMap<String, f64> {
    fleet::histogram(
        &replica.metrics(),
        "isvc_ingress_admission_latency_seconds",
        |labels| matches!(labels.get("endpoint"), Some(&"mutate" | &"validate")),
    )
}

/// What the webhooks took over one step.
#[derive(Debug, Clone, Default)]
struct Latency {
    /// kube-apiserver's spans of the calls to our webhooks that ended in the step: exact
    /// p50 / p99 / max (nearest rank), over all and per kind of call. None without a call.
    spans: Option<Summary>,
    /// Calls to each of our webhooks the API server's histogram counted in the step, to check
    /// that no span was lost.
    histogram_calls: BTreeMap<String, f64>,
    /// Whether the spans up to the step's end arrived ([`wait_for_spans`]).
    spans_complete: bool,
    /// Calls to `inferenceservices.isvc-ingress.io` the API server's histogram counted
    /// (mutating + validating): the interpolated figures below are theirs.
    calls: f64,
    /// Interpolated from the API server's buckets, in ms.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// The API server's bucket bound holding p99, in s.
    p99_bucket: String,
    /// `serve`'s own handling time (`isvc_ingress_admission_latency_seconds`, mutate and
    /// validate), interpolated, in ms.
    serve_p50_ms: Option<f64>,
    serve_p99_ms: Option<f64>,
    /// Whole dry-run requests timed by the client (API server + webhooks), in ms.
    client_p50_ms: Option<f64>,
    client_p99_ms: Option<f64>,
    errors: usize,
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

impl Latency {
    /// Exact p99 of the spans (of the dry runs alone with `dry_runs`), in ms.
    fn span_p99_ms(&self, dry_runs: bool) -> Option<f64> {
        let spans = self.spans.as_ref()?;
        let figures = if dry_runs { spans.dry_runs? } else { spans.all };
        Some(figures.p99.as_secs_f64() * 1000.0)
    }

    /// The headline: p50 / p99 / max of the API server's spans, and their count against the
    /// calls its histogram counted.
    fn describe_spans(&self) -> String {
        let counted: f64 = self.histogram_calls.values().sum();
        let figures = match &self.spans {
            Some(spans) => format!(
                "{} / **{}** / {} ms{}",
                ms(spans.all.p50),
                ms(spans.all.p99),
                ms(spans.all.max),
                // Only when other calls (the reconciler's writes) are among them.
                spans
                    .dry_runs
                    .filter(|dry_runs| dry_runs.calls < spans.all.calls)
                    .map_or(String::new(), |dry_runs| format!(
                        "; the load's dry runs alone {} / {} / {} ms",
                        ms(dry_runs.p50),
                        ms(dry_runs.p99),
                        ms(dry_runs.max)
                    ))
            ),
            None => "—".to_owned(),
        };
        format!(
            "{figures} ({} spans, {counted:.0} calls counted{})",
            self.spans.as_ref().map_or(0, |spans| spans.all.calls),
            if self.spans_complete {
                ""
            } else {
                "; **spans still missing after 30 s**"
            }
        )
    }

    /// The secondary figures: interpolated in the API server's buckets, `serve`'s own, the
    /// client's.
    fn describe(&self) -> String {
        let ms = |value: Option<f64>| value.map_or("—".to_owned(), |value| format!("{value:.1}"));
        format!(
            "{} / {} ms (p99 bucket ≤ {} s; {:.0} calls); serve {} / {} ms; client {} / {} ms{}",
            ms(self.p50_ms),
            ms(self.p99_ms),
            self.p99_bucket,
            self.calls,
            ms(self.serve_p50_ms),
            ms(self.serve_p99_ms),
            ms(self.client_p50_ms),
            ms(self.client_p99_ms),
            if self.errors > 0 {
                format!(", **{} errors**", self.errors)
            } else {
                String::new()
            }
        )
    }
}

impl<'a> WebhookLoad<'a> {
    fn start(
        plane: &ControlPlane,
        replica: &Replica,
        rate: f64,
        update_target: Option<(String, String)>,
        tracing: &'a Tracing,
    ) -> Self {
        let histogram = Histogram::read(plane, &tracing.webhooks);
        let serve_histogram = serve_histogram(replica);
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = plane.admin_kubeconfig.clone();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(send(kubeconfig, rate, update_target, stopping))
        });
        Self {
            stop,
            thread,
            histogram,
            serve_histogram,
            tracing,
        }
    }

    fn finish(self, plane: &ControlPlane, replica: &Replica) -> Latency {
        self.stop.store(true, Ordering::SeqCst);
        let (mut timings, errors) = self.thread.join().expect("the load thread");
        let after = Histogram::read(plane, &self.tracing.webhooks);
        let serve_after = serve_histogram(replica);
        let receiver = &self.tracing.receiver;
        let spans_complete = wait_for_spans(plane, receiver, after.at);
        if !spans_complete {
            eprintln!(
                "kube-apiserver's spans up to the step's end did not all arrive within 30 s: \
                 the span figures lack some calls"
            );
        }
        let calls = receiver.calls(&self.tracing.webhooks, self.histogram.at, after.at);
        let histogram_calls = after
            .calls
            .iter()
            .map(|(webhook, count)| {
                let before = self.histogram.calls.get(webhook).copied().unwrap_or(0.0);
                (webhook.clone(), count - before)
            })
            .collect();
        let (before, after) = (&self.histogram.buckets, &after.buckets);
        let serve_ms = |quantile| {
            fleet::interpolated_quantile(&self.serve_histogram, &serve_after, quantile)
                .map(|s| s * 1000.0)
        };
        let (histogram_total, _, p99_bucket) = fleet::percentiles(before, after);
        timings.sort();
        let client = |quantile: f64| {
            webhook_spans::nearest_rank(&timings, quantile).map(|took| took.as_secs_f64() * 1000.0)
        };
        let ms =
            |quantile| fleet::interpolated_quantile(before, after, quantile).map(|s| s * 1000.0);
        Latency {
            spans: webhook_spans::summarize(&calls),
            histogram_calls,
            spans_complete,
            calls: histogram_total,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p99_bucket,
            serve_p50_ms: serve_ms(0.5),
            serve_p99_ms: serve_ms(0.99),
            client_p50_ms: client(0.5),
            client_p99_ms: client(0.99),
            errors,
        }
    }
}

/// The load loop: one request every `1 / rate` s, each on its own task so a slow answer does
/// not slow the rate. Returns each answered request's time and the number of failures.
async fn send(
    kubeconfig: std::path::PathBuf,
    rate: f64,
    update_target: Option<(String, String)>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, usize) {
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    let client = kube::Client::try_from(config).expect("a client");
    let resource = isvc_ingress::reconcile::isvc_api_resource();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::new();
    let mut tick = 0usize;
    while !stop.load(Ordering::SeqCst) {
        interval.tick().await;
        tick += 1;
        let client = client.clone();
        let resource = resource.clone();
        let target = update_target.clone().filter(|_| tick.is_multiple_of(2));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let dry_run = PostParams {
                dry_run: true,
                field_manager: None,
            };
            let result = match target {
                Some((namespace, name)) => {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client, &namespace, &resource);
                    let params = PatchParams {
                        dry_run: true,
                        ..PatchParams::default()
                    };
                    let patch = json!({"metadata": {"labels": {"webhook-load": tick.to_string()}}});
                    api.patch(&name, &params, &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
                None => {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client, LOAD_NAMESPACE, &resource);
                    let mut object = fleet::isvc(tick);
                    object["metadata"]["name"] = json!(format!("load-{tick}"));
                    object["metadata"]["namespace"] = json!(LOAD_NAMESPACE);
                    let object: DynamicObject =
                        serde_json::from_value(object).expect("an ISVC object");
                    api.create(&dry_run, &object).await.map(|_| ())
                }
            };
            result.map(|()| started.elapsed())
        }));
    }
    let mut timings = Vec::new();
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(took)) => timings.push(took),
            Ok(Err(error)) => {
                if errors == 0 {
                    eprintln!("webhook load: a request failed: {error}");
                }
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    (timings, errors)
}

/// What one step (start-up, catch-up, config change) cost.
#[derive(Debug, Default)]
struct Step {
    /// From the step's start until `serve` holds the lease (and may write).
    led: Duration,
    /// From the step's start until no reconcile is pending.
    settled: Duration,
    /// Writes the API server carried out ("VERB resource" → requests).
    api_writes: BTreeMap<String, f64>,
    /// Writes it refused ("VERB resource code" → requests).
    refused: BTreeMap<String, f64>,
    /// `serve`'s own count ("verb kind" → writes, refused ones included).
    serve_writes: BTreeMap<String, f64>,
    cpu: Cpu,
    latency: Latency,
}

/// The counters at the start of a step.
struct Before {
    requests: ApiRequests,
    cpu: Cpu,
    /// `serve`'s counters, when the step's `serve` already runs.
    serve: Option<Reconciler>,
}

impl Before {
    fn read(plane: &ControlPlane, replica: Option<&Replica>) -> Self {
        Self {
            requests: ApiRequests::read(plane),
            cpu: Cpu::read(plane, replica),
            serve: replica.map(Reconciler::read),
        }
    }

    /// Waits until no reconcile is pending (at least `runs` as leader), stops `load`, and
    /// reads what the step begun at `started` cost.
    fn finish(
        self,
        plane: &ControlPlane,
        replica: &Replica,
        started: Instant,
        runs: f64,
        load: WebhookLoad<'_>,
    ) -> Step {
        let settled = fleet::settle(replica, runs, QUIET, LIMIT);
        let reading = settled.reading;
        let latency = load.finish(plane, replica);
        let requests = ApiRequests::read(plane).since(&self.requests);
        Step {
            led: settled.led.saturating_duration_since(started),
            settled: settled.moved.duration_since(started),
            api_writes: requests.reconciler_writes(),
            refused: requests.refused_writes(),
            serve_writes: match &self.serve {
                Some(before) => reading.writes_since(before),
                None => reading.writes.clone(),
            },
            cpu: Cpu::read(plane, Some(replica)).since(self.cpu, self.serve.is_some()),
            latency,
        }
    }
}

/// What one size measured.
#[derive(Debug, Default)]
struct Row {
    isvcs: usize,
    routes: usize,
    load: Duration,
    load_converged: Duration,
    load_cpu: Cpu,
    quiet: Latency,
    ready: Duration,
    rss_kib: u64,
    hwm_kib: u64,
    start: Step,
    delete: Duration,
    deleted: usize,
    catch_up_ready: Duration,
    catch_up_all_exist: Duration,
    catch_up_requests_per_second: f64,
    catch_up: Step,
    change_expected_routes: usize,
    change_expected_statuses: usize,
    change: Step,
    rss_after_change_kib: u64,
    apiserver_rss_kib: u64,
    etcd_rss_kib: u64,
}

fn describe_writes(writes: &BTreeMap<String, f64>) -> String {
    if writes.is_empty() {
        return "0".to_owned();
    }
    let total: f64 = writes.values().sum();
    let parts: Vec<String> = writes
        .iter()
        .map(|(key, count)| format!("{count:.0} {key}"))
        .collect();
    format!("{total:.0} ({})", parts.join(", "))
}

fn progress(started: Instant, message: &str) {
    eprintln!("[{:>7.1} s] {message}", started.elapsed().as_secs_f64());
}

/// Stops the replica of `installation` and returns its ports.
fn stop(installation: &mut Installation) -> (u16, u16) {
    let replica = installation.replicas.pop().expect("a replica runs");
    let ports = (replica.webhook_port, replica.admin_port);
    drop(replica);
    ports
}

/// Starts a replica on `ports` with [`measured_args`]; returns the time from the process start to
/// `/readyz` 200.
fn start(plane: &ControlPlane, installation: &mut Installation, ports: (u16, u16)) -> Duration {
    start_with(plane, installation, ports, &measured_args())
}

/// [`start`] with `args`.
fn start_with(
    plane: &ControlPlane,
    installation: &mut Installation,
    ports: (u16, u16),
    args: &[&str],
) -> Duration {
    let started = Instant::now();
    let replica = installation.start_replica_on(plane, ports.0, ports.1, args);
    let ready = started.elapsed();
    installation.replicas.push(replica);
    ready
}

/// The run's settings and clock.
#[derive(Clone, Copy)]
struct Settings<'a> {
    rate: f64,
    quiet_seconds: u64,
    clock: Instant,
    tracing: &'a Tracing,
}

fn measure(
    plane: &ControlPlane,
    installation: &mut Installation,
    from: usize,
    isvcs: usize,
    domain: &mut usize,
    settings: &Settings,
) -> Row {
    let Settings {
        rate,
        quiet_seconds,
        clock,
        tracing,
    } = *settings;
    let mut row = Row {
        isvcs,
        ..Row::default()
    };
    let config = fleet::config(DOMAINS[*domain]);
    let target = (isvcs > 0).then(|| (fleet::namespace_of(0), "model-00000".to_owned()));
    let webhook_load =
        |replica: &Replica| WebhookLoad::start(plane, replica, rate, target.clone(), tracing);
    let spans = |step: &str, latency: &Latency| {
        progress(
            clock,
            &format!(
                "N={isvcs}: {step} webhook spans {}",
                latency.describe_spans()
            ),
        );
    };

    // 1. Load.
    progress(
        clock,
        &format!("N={isvcs}: creating ISVCs {from}..{isvcs} through the webhooks"),
    );
    let ports = stop(installation);
    start_with(plane, installation, ports, LOAD_ARGS);
    let cpu = Cpu::read(plane, installation.replicas.first());
    let started = Instant::now();
    fleet::load(plane, from..isvcs);
    row.load = started.elapsed();
    progress(
        clock,
        &format!(
            "N={isvcs}: created {} in {}; waiting until every route and status is settled",
            isvcs - from,
            seconds(row.load)
        ),
    );
    let (_, routes) =
        fleet::wait_converged(plane, &installation.replicas[0], isvcs, &config, LIMIT);
    row.load_converged = started.elapsed();
    row.load_cpu = Cpu::read(plane, installation.replicas.first()).since(cpu, true);
    row.routes = routes.len();
    progress(
        clock,
        &format!(
            "N={isvcs}: {} routes, converged {} after the first create; serve restarted with \
             the default rate limits",
            row.routes,
            seconds(row.load_converged)
        ),
    );
    let ports = stop(installation);
    start(plane, installation, ports);
    fleet::settle(&installation.replicas[0], isvcs as f64, QUIET, LIMIT);

    // 2. Quiet webhook latency.
    progress(
        clock,
        &format!("N={isvcs}: quiet webhook latency, {quiet_seconds} s at {rate} requests/s"),
    );
    let load = webhook_load(&installation.replicas[0]);
    std::thread::sleep(Duration::from_secs(quiet_seconds));
    row.quiet = load.finish(plane, &installation.replicas[0]);
    progress(
        clock,
        &format!(
            "N={isvcs}: quiet, spans {}; histogram {}",
            row.quiet.describe_spans(),
            row.quiet.describe()
        ),
    );

    // 3. Start-up with every route correct.
    let ports = stop(installation);
    let before = Before::read(plane, None);
    progress(clock, &format!("N={isvcs}: start-up of a fresh serve"));
    let started = Instant::now();
    row.ready = start(plane, installation, ports);
    let load = webhook_load(&installation.replicas[0]);
    let replica = &installation.replicas[0];
    row.start = before.finish(plane, replica, started, isvcs as f64, load);
    spans("start-up", &row.start.latency);
    let pid = replica.process.pid();
    row.rss_kib = status_kib(pid, "VmRSS");
    row.hwm_kib = status_kib(pid, "VmHWM");
    progress(
        clock,
        &format!(
            "N={isvcs}: ready {}, settled {}, RSS {:.1} MiB (peak {:.1}), writes {} (serve: {})",
            seconds(row.ready),
            seconds(row.start.settled),
            mib(row.rss_kib),
            mib(row.hwm_kib),
            describe_writes(&row.start.api_writes),
            describe_writes(&row.start.serve_writes)
        ),
    );

    // 4. Catch-up with every route missing.
    let ports = stop(installation);
    progress(clock, &format!("N={isvcs}: deleting every managed route"));
    let started = Instant::now();
    let deleted = fleet::delete_managed_routes(plane);
    row.delete = started.elapsed();
    row.deleted = deleted.values().sum();
    let before = Before::read(plane, None);
    progress(
        clock,
        &format!(
            "N={isvcs}: deleted {} routes in {}; starting serve",
            row.deleted,
            seconds(row.delete)
        ),
    );
    let started = Instant::now();
    row.catch_up_ready = start(plane, installation, ports);
    let load = webhook_load(&installation.replicas[0]);
    let replica = &installation.replicas[0];
    let mut at_lease: Option<(Instant, ApiRequests)> = None;
    loop {
        let reading = Reconciler::read(replica);
        if reading.leader && at_lease.is_none() {
            at_lease = Some((Instant::now(), ApiRequests::read(plane)));
        }
        let applied: f64 = reading
            .writes
            .iter()
            .filter(|(key, _)| key.starts_with("Apply "))
            .map(|(_, count)| count)
            .sum();
        if applied >= row.deleted as f64 {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the catch-up did not finish: {applied} of {} applied",
            row.deleted
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    row.catch_up_all_exist = started.elapsed();
    // Nothing was missing (N = 0): the loop may end before the lease is seen.
    let lease = at_lease.map(|(led, requests)| {
        let rate = ApiRequests::read(plane).since(&requests).total()
            / led.elapsed().as_secs_f64().max(0.001);
        (led, rate)
    });
    row.catch_up = before.finish(plane, replica, started, isvcs as f64, load);
    spans("catch-up", &row.catch_up.latency);
    if let Some((led, rate)) = lease {
        // The lease came while the loop above polled, before `finish` began to watch.
        row.catch_up.led = led.duration_since(started);
        row.catch_up_requests_per_second = rate;
    }
    assert_eq!(
        fleet::managed_routes(plane).len(),
        row.routes,
        "every route is back"
    );
    progress(
        clock,
        &format!(
            "N={isvcs}: all {} routes exist {} after the start, settled {}, {:.0} API requests/s; writes {}",
            row.deleted,
            seconds(row.catch_up_all_exist),
            seconds(row.catch_up.settled),
            row.catch_up_requests_per_second,
            describe_writes(&row.catch_up.api_writes)
        ),
    );

    // 5. A config change.
    let next = 1 - *domain;
    let isvcs_now = fleet::stored_isvcs(plane);
    let changes = fleet::changes(&isvcs_now, &config, &fleet::config(DOMAINS[next]));
    row.change_expected_routes = changes.routes.len();
    row.change_expected_statuses = changes.statuses.len();
    let replica = &installation.replicas[0];
    let before = Before::read(plane, Some(replica));
    let runs = before.serve.as_ref().map_or(0.0, |serve| serve.runs) + isvcs as f64;
    progress(
        clock,
        &format!(
            "N={isvcs}: ingressDomain {} -> {} (needs {} route applies, {} status patches)",
            DOMAINS[*domain],
            DOMAINS[next],
            row.change_expected_routes,
            row.change_expected_statuses
        ),
    );
    let load = webhook_load(replica);
    let started = Instant::now();
    plane.apply(&fleet::config_map(DOMAINS[next]).to_string());
    row.change = before.finish(plane, replica, started, runs, load);
    spans("config change", &row.change.latency);
    row.rss_after_change_kib = status_kib(replica.process.pid(), "VmRSS");
    *domain = next;
    fleet::wait_converged(plane, replica, isvcs, &fleet::config(DOMAINS[next]), LIMIT);
    row.apiserver_rss_kib = status_kib(plane.apiserver_pid(), "VmRSS");
    row.etcd_rss_kib = status_kib(plane.etcd_pid(), "VmRSS");
    progress(
        clock,
        &format!(
            "N={isvcs}: config change settled {}, writes {}, refused {}",
            seconds(row.change.settled),
            describe_writes(&row.change.api_writes),
            describe_writes(&row.change.refused)
        ),
    );
    row
}

/// Least-squares slope of RSS against ISVC count, in MiB per 1,000 ISVCs.
fn slope(rows: &[Row]) -> Option<f64> {
    if rows.len() < 2 {
        return None;
    }
    let n = rows.len() as f64;
    let mean_x = rows.iter().map(|row| row.isvcs as f64).sum::<f64>() / n;
    let mean_y = rows.iter().map(|row| mib(row.rss_kib)).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for row in rows {
        let dx = row.isvcs as f64 - mean_x;
        covariance += dx * (mib(row.rss_kib) - mean_y);
        variance += dx * dx;
    }
    (variance > 0.0).then(|| covariance / variance * 1000.0)
}

fn report(rows: &[Row], plane_ready: Duration, rate: f64, quiet_seconds: u64) -> String {
    let mut text = String::new();
    let header: Vec<String> = rows
        .iter()
        .map(|row| format!("N = {}", thousands(row.isvcs)))
        .collect();
    let _ = writeln!(text, "| | {} |", header.join(" | "));
    let _ = writeln!(text, "|---|{}", "---|".repeat(rows.len()));
    let mut line = |label: &str, cell: &dyn Fn(&Row) -> String| {
        let cells: Vec<String> = rows.iter().map(cell).collect();
        let _ = writeln!(text, "| {label} | {} |", cells.join(" | "));
    };
    line("routes", &|row| thousands(row.routes));
    line("**serve RSS** after start-up (VmRSS / VmHWM)", &|row| {
        format!(
            "**{:.1} MiB** / {:.1} MiB",
            mib(row.rss_kib),
            mib(row.hwm_kib)
        )
    });
    line("serve RSS after the config change", &|row| {
        format!("{:.1} MiB", mib(row.rss_after_change_kib))
    });
    line("load: `kubectl create` of the new ISVCs", &|row| {
        format!(
            "{} ({} ISVCs)",
            seconds(row.load),
            thousands(row.isvcs_loaded(rows))
        )
    });
    line(
        "load (serve at `--kube-api-qps 200`): until every route and status is settled",
        &|row| seconds(row.load_converged),
    );
    line("**start-up**: process start to `/readyz` 200", &|row| {
        format!("**{}**", seconds(row.ready))
    });
    line("start-up: to the lease / to no pending reconcile", &|row| {
        format!(
            "{} / **{}**",
            seconds(row.start.led),
            seconds(row.start.settled)
        )
    });
    line("start-up: writes (API server / serve; refused)", &|row| {
        format!(
            "**{}** / {}; {}",
            describe_writes(&row.start.api_writes),
            describe_writes(&row.start.serve_writes),
            describe_writes(&row.start.refused)
        )
    });
    line(
        "catch-up: routes deleted (`kubectl delete`, time)",
        &|row| format!("{} ({})", thousands(row.deleted), seconds(row.delete)),
    );
    line(
        "catch-up: start to ready / lease / **all routes exist** / settled",
        &|row| {
            format!(
                "{} / {} / **{}** / {}",
                seconds(row.catch_up_ready),
                seconds(row.catch_up.led),
                seconds(row.catch_up_all_exist),
                seconds(row.catch_up.settled)
            )
        },
    );
    line(
        "catch-up: API requests/s from the lease until all exist",
        &|row| format!("{:.0}", row.catch_up_requests_per_second),
    );
    line("catch-up: writes (API server) / refused", &|row| {
        format!(
            "{} / {}",
            describe_writes(&row.catch_up.api_writes),
            describe_writes(&row.catch_up.refused)
        )
    });
    line(
        "**config change**: until every route and status follows",
        &|row| format!("**{}**", seconds(row.change.settled)),
    );
    line("config change: writes needed (routes + statuses)", &|row| {
        format!(
            "{} + {}",
            thousands(row.change_expected_routes),
            thousands(row.change_expected_statuses)
        )
    });
    line("config change: writes (API server / serve)", &|row| {
        format!(
            "{} / {}",
            describe_writes(&row.change.api_writes),
            describe_writes(&row.change.serve_writes)
        )
    });
    line("config change: writes refused by the API server", &|row| {
        describe_writes(&row.change.refused)
    });
    for (index, step) in STEPS.iter().enumerate() {
        let label = if index == 0 {
            "**webhook p50 / p99 / max** (the API server's spans, exact), quiet".to_owned()
        } else {
            format!("**webhook** during {step}")
        };
        line(&label, &|row| row.latencies()[index].describe_spans());
    }
    for (index, step) in STEPS.iter().enumerate() {
        let label = if index == 0 {
            "webhook p50 / p99 in the API server's histogram (interpolated; \
             `inferenceservices` only), serve's own, client's: quiet"
                .to_owned()
        } else {
            format!("the same during {step}")
        };
        line(&label, &|row| row.latencies()[index].describe());
    }
    line("CPU s, kube-apiserver / etcd / serve: load", &|row| {
        row.load_cpu.describe()
    });
    line("CPU s: start-up", &|row| row.start.cpu.describe());
    line("CPU s: catch-up", &|row| row.catch_up.cpu.describe());
    line("CPU s: config change", &|row| row.change.cpu.describe());
    line("RSS of kube-apiserver / etcd at the end", &|row| {
        format!(
            "{:.0} / {:.0} MiB",
            mib(row.apiserver_rss_kib),
            mib(row.etcd_rss_kib)
        )
    });
    let _ = writeln!(text);
    if let Some(slope) = slope(rows) {
        let _ = writeln!(
            text,
            "RSS slope (least squares over the {} sizes): **{slope:.1} MiB per 1,000 ISVCs** \
             (target: at most 4).",
            rows.len()
        );
    }
    let within = |p99: &dyn Fn(&Latency) -> Option<f64>| {
        let held = rows.iter().all(|row| {
            let [quiet, loaded @ ..] = row.latencies();
            let quiet = p99(quiet).unwrap_or(0.0);
            loaded
                .iter()
                .all(|loaded| p99(loaded).is_none_or(|p99| p99 <= quiet + 5.0))
        });
        if held { "yes" } else { "no" }
    };
    let _ = writeln!(
        text,
        "Webhook p99 under load within quiet p99 + 5 ms at every size and step (the API \
         server's spans of every call to our webhooks): **{}**; for the load's dry runs alone, \
         the same calls as the quiet figure's: **{}**. Webhook load: {rate} dry-run creates and \
         updates a second ({quiet_seconds} s for the quiet figure). `serve`'s flags in the \
         measured steps: `{}`. Control plane start to ready: {}.",
        within(&|latency| latency.span_p99_ms(false)),
        within(&|latency| latency.span_p99_ms(true)),
        measured_args().join(" "),
        seconds(plane_ready)
    );
    let _ = writeln!(text);
    breakdown(&mut text, rows);
    text
}

/// The spans' p99 per kind of call (admission, webhook, operation, subresource, dry run) and
/// step: which calls are the slow ones, the load's dry runs or the reconciler's own writes
/// (its status patches go through the status webhook).
fn breakdown(text: &mut String, rows: &[Row]) {
    let _ = writeln!(
        text,
        "Webhook calls by kind, from the API server's spans: p99 in ms / calls (nearest rank).\n"
    );
    let _ = writeln!(
        text,
        "| N | call | quiet | start-up | catch-up | config change |\n|---|---|---|---|---|---|"
    );
    for row in rows {
        let steps = row.latencies();
        let calls: std::collections::BTreeSet<&webhook_spans::Call> = steps
            .iter()
            .filter_map(|latency| latency.spans.as_ref())
            .flat_map(|spans| spans.by_call.keys())
            .collect();
        for call in calls {
            let cells: Vec<String> = steps
                .iter()
                .map(|latency| {
                    latency
                        .spans
                        .as_ref()
                        .and_then(|spans| spans.by_call.get(call))
                        .map_or("—".to_owned(), |figures| {
                            format!("{} / {}", ms(figures.p99), figures.calls)
                        })
                })
                .collect();
            let _ = writeln!(
                text,
                "| {} | {call} | {} |",
                thousands(row.isvcs),
                cells.join(" | ")
            );
        }
    }
}

/// The steps whose webhook latency is measured, in [`Row::latencies`]' order.
const STEPS: [&str; 4] = ["quiet", "start-up", "catch-up", "the config change"];

impl Row {
    /// The webhook latency of each of [`STEPS`].
    fn latencies(&self) -> [&Latency; 4] {
        [
            &self.quiet,
            &self.start.latency,
            &self.catch_up.latency,
            &self.change.latency,
        ]
    }

    /// ISVCs created for this size (the fleet grows from the previous size).
    fn isvcs_loaded(&self, rows: &[Row]) -> usize {
        let previous = rows
            .iter()
            .map(|row| row.isvcs)
            .filter(|isvcs| *isvcs < self.isvcs)
            .max()
            .unwrap_or(0);
        self.isvcs - previous
    }
}

fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` builds and starts this without it.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!(
            "control_plane_scale measures for minutes on a real control plane: run it with \
             `cargo bench --bench control_plane_scale` or scripts/measure-scale.sh"
        );
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut sizes: Vec<usize> = std::env::var("CONTROL_PLANE_SCALE_ISVCS")
        .unwrap_or_else(|_| "0,1000,10000".to_owned())
        .split(',')
        .map(|size| {
            size.trim().parse().unwrap_or_else(|_| {
                panic!("CONTROL_PLANE_SCALE_ISVCS: {size:?} is not a number of ISVCs")
            })
        })
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let rate: f64 = env_or("CONTROL_PLANE_SCALE_RATE", 10.0);
    assert!(
        rate > 0.0 && rate <= 200.0,
        "CONTROL_PLANE_SCALE_RATE: requests per second between 0 and 200, got {rate}"
    );
    let quiet_seconds: u64 = env_or("CONTROL_PLANE_SCALE_QUIET_SECONDS", 120);

    let clock = Instant::now();
    progress(
        clock,
        &format!("sizes {sizes:?}; starting etcd and kube-apiserver (tracing every request)"),
    );
    let receiver = WebhookSpans::start();
    let tracing_directory = tempfile::tempdir().expect("a temporary directory");
    let tracing_configuration = tracing_directory.path().join("tracing.yaml");
    std::fs::write(&tracing_configuration, receiver.tracing_configuration())
        .expect("the tracing configuration written");
    let plane = ControlPlane::start_configured(
        &[format!(
            "--tracing-config-file={}",
            tracing_configuration.display()
        )],
        &webhook_spans::exporter_environment(),
    );
    progress(
        clock,
        &format!(
            "control plane ready in {}; installing isvc-ingress",
            seconds(plane.start_to_ready)
        ),
    );
    let mut installation = install(&plane, &measured_args());
    plane.namespace(LOAD_NAMESPACE);
    let webhooks = installation.webhook_names();
    assert!(
        control_plane::eventually(Duration::from_secs(10), || receiver.spans_received() > 0),
        "kube-apiserver exported no span to {} (its log: {})",
        receiver.endpoint(),
        plane.directory().join("kube-apiserver.log").display()
    );
    progress(
        clock,
        &format!(
            "our webhooks: {}; {} spans received from kube-apiserver so far",
            webhooks.join(", "),
            receiver.spans_received()
        ),
    );
    let tracing = Tracing { receiver, webhooks };
    let settings = Settings {
        rate,
        quiet_seconds,
        clock,
        tracing: &tracing,
    };
    let mut rows = Vec::new();
    let mut domain = 0;
    let mut from = 0;
    for isvcs in sizes {
        rows.push(measure(
            &plane,
            &mut installation,
            from,
            isvcs,
            &mut domain,
            &settings,
        ));
        from = isvcs;
    }
    let text = report(&rows, plane.start_to_ready, rate, quiet_seconds);
    println!("\n{text}");
    if let Ok(path) = std::env::var("CONTROL_PLANE_SCALE_REPORT") {
        std::fs::write(&path, &text).unwrap_or_else(|error| panic!("{path}: {error}"));
    }
    if let Ok(path) = std::env::var("CONTROL_PLANE_SCALE_ROWS") {
        let lines: String = rows
            .iter()
            .map(|row| {
                json!({
                    "isvcs": row.isvcs,
                    "routes": row.routes,
                    "rss_mib": mib(row.rss_kib),
                    "hwm_mib": mib(row.hwm_kib),
                })
                .to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(&path, lines).unwrap_or_else(|error| panic!("{path}: {error}"));
    }
    progress(clock, "done");
}
