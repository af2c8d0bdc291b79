//! The exact duration of every call kube-apiserver makes to our webhooks, from its own trace
//! spans: an OpenTelemetry (OTLP/gRPC) trace receiver for `benches/control_plane_scale.rs`.
//!
//! Why it exists: issue 14 asks that the admission latency the API server measures for our
//! webhooks stay within its quiet-time p99 plus 5 ms while `serve` starts, catches up and
//! follows a config change. The API server's histogram
//! (`apiserver_admission_webhook_admission_duration_seconds`) has buckets of 5 ms, 25 ms,
//! 100 ms, ...: every p99 compared falls in the 5–25 ms bucket, and a value interpolated within
//! it says little. kube-apiserver also opens a span around each webhook call and exports it over
//! OTLP when started with `--tracing-config-file` ([`WebhookSpans::tracing_configuration`]):
//! those spans carry the call's start and end in nanoseconds.
//!
//! What a span covers, against the histogram's timer (k8s.io/apiserver v0.37.2,
//! `pkg/admission/plugin/webhook/mutating/dispatcher.go` and `validating/dispatcher.go`): the
//! dispatcher takes `t := time.Now()` and calls `callAttrMutatingHook` (mutating) or `callHook`
//! (validating), which first builds the AdmissionReview (`CreateAdmissionObjects`, a copy and
//! conversion of the object) and looks up the webhook's REST client (`GetRESTClient`, cached),
//! and only then opens the span "Call mutating webhook" / "Call validating webhook". The span
//! ends when that function returns: it covers the HTTPS POST to the webhook (encoding the
//! review, the round trip, decoding the answer), checking the answer and, for a mutating
//! webhook, decoding and applying its JSON Patch to the object. The histogram observes
//! `time.Since(t)` after the function returns. So a span is the histogram's interval less the
//! review's construction and the client look-up: never longer than what the histogram observed
//! for the same call, and it holds everything our webhook's answer costs the API server.
//!
//! Go's OpenTelemetry SDK exports through a batch span processor: spans queue (2,048 by
//! default) and go out every 5 s or per 512; a full queue drops spans silently.
//! [`exporter_environment`] gives kube-apiserver a larger queue and a 1 s delay, and the
//! benchmark compares the spans it received with the calls the histogram counted.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The span name of a mutating webhook call (`mutating/dispatcher.go`).
pub const MUTATING_SPAN: &str = "Call mutating webhook";
/// The span name of a validating webhook call (`validating/dispatcher.go`).
pub const VALIDATING_SPAN: &str = "Call validating webhook";
/// How often kube-apiserver's exporter sends, in ms (`OTEL_BSP_SCHEDULE_DELAY`; Go's default is
/// 5,000). Short, so a step's last spans arrive soon after it.
const EXPORT_DELAY_MS: u64 = 1000;
/// Spans kube-apiserver may hold before export (`OTEL_BSP_MAX_QUEUE_SIZE`; default 2,048).
/// With every request traced, a catch-up at 10,000 ISVCs makes thousands of spans a second;
/// a channel of this size costs the API server about 1 MiB.
const EXPORT_QUEUE: u32 = 65_536;
/// Largest OTLP request accepted, in bytes (tonic's default is 4 MiB; a batch of 512 spans is
/// far smaller).
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Environment for kube-apiserver: the batch span processor's settings that Go's
/// OpenTelemetry SDK reads (`go.opentelemetry.io/otel/sdk/trace`, `NewBatchSpanProcessor`;
/// component-base's `tracing.NewProvider` passes no options of its own).
pub fn exporter_environment() -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS.to_string()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", EXPORT_QUEUE.to_string()),
    ]
}

/// Which of the API server's admission phases made the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Admission {
    Mutating,
    Validating,
}

/// What a call was: the grouping of the benchmark's breakdown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    pub admission: Admission,
    /// The webhook's name in its configuration (`webhook` attribute), e.g.
    /// `status.inferenceservices.isvc-ingress.io`.
    pub webhook: String,
    /// `CREATE`, `UPDATE`, ... (`operation` attribute).
    pub operation: String,
    /// `status`, or empty for the object itself (`subresource` attribute).
    pub subresource: String,
    /// Whether the request was a dry run: its trace's request span (`KubernetesAPI`, with the
    /// `http.target` attribute kube-apiserver's `WithTracing` filter adds) asks `dryRun=`.
    /// The benchmark's webhook load is all dry runs; the reconciler's writes are not.
    pub dry_run: bool,
}

impl std::fmt::Display for Call {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let admission = match self.admission {
            Admission::Mutating => "mutating",
            Admission::Validating => "validating",
        };
        write!(
            formatter,
            "{admission} `{}` {}",
            self.webhook, self.operation
        )?;
        if !self.subresource.is_empty() {
            write!(formatter, " {}", self.subresource)?;
        }
        if self.dry_run {
            write!(formatter, " (dry run)")?;
        }
        Ok(())
    }
}

/// One call of one of our webhooks as kube-apiserver's span timed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    pub call: Call,
    /// End − start of the span.
    pub duration: Duration,
    /// When the span ended (the API server's clock, this machine's).
    pub end: SystemTime,
}

/// A webhook call span as received, before its trace's request span is known.
struct Received {
    admission: Admission,
    webhook: String,
    operation: String,
    subresource: String,
    trace_id: Vec<u8>,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
}

/// What the receiver has kept.
#[derive(Default)]
struct Store {
    calls: Vec<Received>,
    /// Traces whose request span asks for a dry run.
    dry_run_traces: HashSet<Vec<u8>>,
    /// Every span received, ours or not.
    spans: u64,
    /// The latest end of any span received, in ns since the epoch.
    latest_end_unix_nanos: u64,
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                Value::StringValue(text) => Some(text.as_str()),
                _ => None,
            },
        )
}

impl Store {
    fn keep(&mut self, span: &Span) {
        self.spans += 1;
        self.latest_end_unix_nanos = self.latest_end_unix_nanos.max(span.end_time_unix_nano);
        if attribute(&span.attributes, "http.target").is_some_and(|target| {
            target
                .split_once('?')
                .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("dryRun=")))
        }) {
            self.dry_run_traces.insert(span.trace_id.clone());
        }
        let admission = match span.name.as_str() {
            MUTATING_SPAN => Admission::Mutating,
            VALIDATING_SPAN => Admission::Validating,
            _ => return,
        };
        let text = |key| {
            attribute(&span.attributes, key)
                .unwrap_or_default()
                .to_owned()
        };
        self.calls.push(Received {
            admission,
            webhook: text("webhook"),
            operation: text("operation"),
            subresource: text("subresource"),
            trace_id: span.trace_id.clone(),
            start_unix_nanos: span.start_time_unix_nano,
            end_unix_nanos: span.end_time_unix_nano,
        });
    }
}

/// The gRPC service: keeps what [`Store::keep`] keeps of every span of every request: the
/// webhook call spans (a cluster of the benchmark calls no webhook but ours; the webhooks are
/// chosen when read, [`WebhookSpans::calls`], since they are known only once installed), and
/// which traces are dry runs.
struct Collector {
    store: Arc<Mutex<Store>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut store = self.store.lock().expect("the span store");
        for resource in &request.get_ref().resource_spans {
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    store.keep(span);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC trace receiver on 127.0.0.1 (plain HTTP/2, as kube-apiserver's exporter sends
/// with `WithInsecure`), on its own thread and runtime. Stopped when dropped, its open
/// connections closed.
pub struct WebhookSpans {
    address: SocketAddr,
    store: Arc<Mutex<Store>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

impl WebhookSpans {
    /// Listens on a free loopback port (bound here, so no other process can take it between
    /// choosing and listening).
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("the listener's address");
        let store = Arc::new(Mutex::new(Store::default()));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = TraceServiceServer::new(Collector {
            store: store.clone(),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let server = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming);
                // Not tonic's graceful shutdown, which waits for every connection to close:
                // kube-apiserver keeps its exporter's connection open while it runs.
                tokio::select! {
                    served = server => served.expect("the OTLP trace receiver"),
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops the connections' tasks.
            drop(runtime);
        });
        Self {
            address,
            store,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, the exporter's endpoint.
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// kube-apiserver's `--tracing-config-file` content: export to this receiver, trace every
    /// request (`samplingRatePerMillion: 1000000`; the API server samples a request's trace as
    /// a whole, so the webhook spans need their requests sampled). `apiserver.config.k8s.io/v1`
    /// is served by kube-apiserver 1.37 (k8s.io/apiserver `pkg/apis/apiserver/v1`).
    pub fn tracing_configuration(&self) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\n\
             kind: TracingConfiguration\n\
             endpoint: {}\n\
             samplingRatePerMillion: 1000000\n",
            self.endpoint()
        )
    }

    /// Spans received so far, of any name.
    pub fn spans_received(&self) -> u64 {
        self.store.lock().expect("the span store").spans
    }

    /// The latest end of any span received (the epoch before the first).
    pub fn latest_end(&self) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_nanos(
                self.store
                    .lock()
                    .expect("the span store")
                    .latest_end_unix_nanos,
            )
    }

    /// The calls of the webhooks named `webhooks` whose span ended in `[from, to)`, in the
    /// order received.
    pub fn calls(&self, webhooks: &[String], from: SystemTime, to: SystemTime) -> Vec<WebhookCall> {
        let (from, to) = (unix_nanos(from), unix_nanos(to));
        let store = self.store.lock().expect("the span store");
        store
            .calls
            .iter()
            .filter(|call| call.end_unix_nanos >= from && call.end_unix_nanos < to)
            .filter(|call| webhooks.contains(&call.webhook))
            .map(|call| WebhookCall {
                call: Call {
                    admission: call.admission,
                    webhook: call.webhook.clone(),
                    operation: call.operation.clone(),
                    subresource: call.subresource.clone(),
                    dry_run: store.dry_run_traces.contains(&call.trace_id),
                },
                duration: Duration::from_nanos(
                    call.end_unix_nanos.saturating_sub(call.start_unix_nanos),
                ),
                end: UNIX_EPOCH + Duration::from_nanos(call.end_unix_nanos),
            })
            .collect()
    }
}

impl Drop for WebhookSpans {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The nearest-rank `quantile` (0 < quantile ≤ 1) of `sorted` (ascending): the value at rank
/// ⌈quantile × n⌉, one of the measured values, never an interpolation. None when empty.
pub fn nearest_rank(sorted: &[Duration], quantile: f64) -> Option<Duration> {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// p50, p99 and the largest of some calls, exact (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    pub calls: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Figures {
    /// None without calls.
    pub fn of(durations: &mut [Duration]) -> Option<Self> {
        durations.sort_unstable();
        Some(Self {
            calls: durations.len(),
            p50: nearest_rank(durations, 0.5)?,
            p99: nearest_rank(durations, 0.99)?,
            max: *durations.last()?,
        })
    }
}

/// All the calls of a step, the dry runs alone, and each kind of call on its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub all: Figures,
    /// The dry runs (the benchmark's webhook load: the same calls in every step, so the
    /// like-for-like comparison with the quiet step); None without one.
    pub dry_runs: Option<Figures>,
    pub by_call: BTreeMap<Call, Figures>,
}

/// The figures of `calls`; None without calls.
pub fn summarize(calls: &[WebhookCall]) -> Option<Summary> {
    let mut durations: Vec<Duration> = calls.iter().map(|call| call.duration).collect();
    let all = Figures::of(&mut durations)?;
    let mut dry_runs: Vec<Duration> = calls
        .iter()
        .filter(|call| call.call.dry_run)
        .map(|call| call.duration)
        .collect();
    let dry_runs = Figures::of(&mut dry_runs);
    let mut grouped: BTreeMap<Call, Vec<Duration>> = BTreeMap::new();
    for call in calls {
        grouped
            .entry(call.call.clone())
            .or_default()
            .push(call.duration);
    }
    let by_call = grouped
        .into_iter()
        .filter_map(|(call, mut durations)| Some((call, Figures::of(&mut durations)?)))
        .collect();
    Some(Summary {
        all,
        dry_runs,
        by_call,
    })
}
