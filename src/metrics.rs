//! Prometheus metrics, one registry for the whole process under the `isvc_ingress` prefix.
//!
//! [`Metrics`] is a cheap clone (an `Arc`) so every layer can hold one. The server records
//! admission traffic, TLS reloads and panics here; other layers (the route reconciler) add
//! their own families through [`Metrics::with_registry`], ideally in a sub-registry
//! (`registry.sub_registry_with_prefix("reconcile")`), so all of them come out of the one
//! `/metrics` endpoint.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admission::{Endpoint, Outcome};

/// Prefix of every metric name.
pub const PREFIX: &str = "isvc_ingress";

/// Upper bounds of the admission latency buckets, in seconds: 50µs to 10s on a 1-2.5-5 ladder.
///
/// The pure admission logic runs in microseconds and the apiserver gives up at its
/// `timeoutSeconds` (at most 30s, 10s by default), so the buckets are dense where the
/// handler lives and stop where the caller stops waiting.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Labels of one admission answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    endpoint: Endpoint,
    kind: String,
    operation: String,
    outcome: Outcome,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Endpoint,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

struct Inner {
    registry: Mutex<Registry>,
    admission_requests: Family<AdmissionLabels, Counter>,
    admission_latency: Family<EndpointLabels, Histogram>,
    in_flight: Gauge,
    tls_reloads: Counter,
    tls_reload_failures: Counter,
    handler_panics: Family<EndpointLabels, Counter>,
    http_errors: Family<CodeLabels, Counter>,
}

/// The process's metrics. Clone freely; all clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Creates the registry and registers the server's families.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let admission_requests = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by endpoint, object kind, operation, outcome and HTTP code",
            admission_requests.clone(),
        );
        let admission_latency = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "admission_latency",
            "Time from receiving an admission request to having its answer, by endpoint",
            prometheus_client::registry::Unit::Seconds,
            admission_latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "admission_in_flight",
            "Admission requests being processed right now",
            in_flight.clone(),
        );
        let tls_reloads = Counter::default();
        registry.register(
            "tls_reloads",
            "Serving certificate changes that were loaded and put in service",
            tls_reloads.clone(),
        );
        let tls_reload_failures = Counter::default();
        registry.register(
            "tls_reload_failures",
            "Serving certificate changes that were rejected (unreadable, unparsable or key mismatch); the previous certificate stayed in service",
            tls_reload_failures.clone(),
        );
        let handler_panics = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "handler_panics",
            "Admission handler panics caught by the server and answered with HTTP 500",
            handler_panics.clone(),
        );
        let http_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "http_errors",
            "Responses with an HTTP error status (4xx/5xx) on the webhook port, by code",
            http_errors.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                admission_requests,
                admission_latency,
                in_flight,
                tls_reloads,
                tls_reload_failures,
                handler_panics,
                http_errors,
            }),
        }
    }

    /// Gives access to the registry, to register more families.
    ///
    /// Keep the closure short: `/metrics` encoding waits for the same lock.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut registry)
    }

    /// Renders every family in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        self.with_registry(|registry| {
            prometheus_client::encoding::text::encode(&mut out, registry)
        })?;
        Ok(out)
    }

    /// Records one answered admission request.
    ///
    /// `kind` and `operation` come from the request body, i.e. from whoever can reach the
    /// port; they are clamped by [`bounded_kind`] and [`bounded_operation`] so a hostile client
    /// cannot grow the label space without limit.
    pub fn observe_admission(
        &self,
        endpoint: Endpoint,
        kind: &str,
        operation: &str,
        outcome: Outcome,
        code: u16,
        elapsed: Duration,
    ) {
        self.inner
            .admission_requests
            .get_or_create(&AdmissionLabels {
                endpoint,
                kind: bounded_kind(kind).to_owned(),
                operation: bounded_operation(operation).to_owned(),
                outcome,
                code,
            })
            .inc();
        self.inner
            .admission_latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlightGuard {
        self.inner.in_flight.inc();
        InFlightGuard {
            gauge: self.inner.in_flight.clone(),
        }
    }

    /// A new certificate was put in service.
    pub fn tls_reloaded(&self) {
        self.inner.tls_reloads.inc();
    }

    /// A changed certificate was rejected; the old one stays in service.
    pub fn tls_reload_failed(&self) {
        self.inner.tls_reload_failures.inc();
    }

    /// The admission handler panicked.
    pub fn handler_panicked(&self, endpoint: Endpoint) {
        self.inner
            .handler_panics
            .get_or_create(&EndpointLabels { endpoint })
            .inc();
    }

    /// The webhook port answered with an error status.
    pub fn http_error(&self, code: u16) {
        self.inner
            .http_errors
            .get_or_create(&CodeLabels { code })
            .inc();
    }
}

/// Decrements the in-flight gauge when dropped, including on panic or cancellation.
#[derive(Debug)]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// `kind` as a label value: one of the kinds the webhook is registered for
/// (`manifests/base/webhooks.yaml`), `unknown` for a body that names none, else `other`.
///
/// A closed set, not a shape check: every distinct value is a new series kept for the life of the
/// process, so a client that can reach the port and sends reviews with made-up kinds must not be
/// able to add series (memory, and the size of every scrape) without limit.
pub fn bounded_kind(kind: &str) -> &str {
    match kind {
        crate::isvc::KIND | "ConfigMap" | "unknown" => kind,
        _ => "other",
    }
}

/// `operation` as a label value: one of the four admission operations, else `unknown`.
pub fn bounded_operation(operation: &str) -> &str {
    match operation {
        "CREATE" | "UPDATE" | "DELETE" | "CONNECT" => operation,
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prefixed_families() {
        let metrics = Metrics::new();
        metrics.observe_admission(
            Endpoint::Mutate,
            "InferenceService",
            "CREATE",
            Outcome::Patched,
            200,
            Duration::from_micros(120),
        );
        metrics.handler_panicked(Endpoint::Validate);
        metrics.http_error(415);
        metrics.tls_reloaded();
        metrics.tls_reload_failed();
        let text = metrics.encode().expect("encode");
        assert!(text.contains(
            r#"isvc_ingress_admission_requests_total{endpoint="mutate",kind="InferenceService",operation="CREATE",outcome="patched",code="200"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"isvc_ingress_admission_latency_seconds_bucket{le="0.00025",endpoint="mutate"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"isvc_ingress_handler_panics_total{endpoint="validate"} 1"#));
        assert!(text.contains(r#"isvc_ingress_http_errors_total{code="415"} 1"#));
        assert!(text.contains("isvc_ingress_tls_reloads_total 1"));
        assert!(text.contains("isvc_ingress_tls_reload_failures_total 1"));
        assert!(text.contains("isvc_ingress_admission_in_flight 0"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn in_flight_guard_decrements() {
        let metrics = Metrics::new();
        let guard = metrics.in_flight();
        assert!(
            metrics
                .encode()
                .unwrap()
                .contains("isvc_ingress_admission_in_flight 1")
        );
        drop(guard);
        assert!(
            metrics
                .encode()
                .unwrap()
                .contains("isvc_ingress_admission_in_flight 0")
        );
    }

    #[test]
    fn other_layers_can_register_families() {
        let metrics = Metrics::new();
        let reconciles = Counter::<u64>::default();
        metrics.with_registry(|r| {
            r.sub_registry_with_prefix("reconcile").register(
                "runs",
                "Reconcile runs",
                reconciles.clone(),
            )
        });
        reconciles.inc();
        assert!(
            metrics
                .encode()
                .unwrap()
                .contains("isvc_ingress_reconcile_runs_total 1")
        );
    }

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(bounded_kind("InferenceService"), "InferenceService");
        assert_eq!(bounded_kind("ConfigMap"), "ConfigMap");
        assert_eq!(bounded_kind("unknown"), "unknown");
        assert_eq!(bounded_kind("Pod"), "other");
        assert_eq!(bounded_kind("a\"b"), "other");
        assert_eq!(bounded_kind(""), "other");
        assert_eq!(bounded_kind(&"x".repeat(64)), "other");
        assert_eq!(bounded_operation("UPDATE"), "UPDATE");
        assert_eq!(bounded_operation("PATCH"), "unknown");
    }

    #[test]
    fn made_up_kinds_and_operations_add_no_series() {
        let metrics = Metrics::new();
        for i in 0..1000 {
            metrics.observe_admission(
                Endpoint::Validate,
                &format!("Kind{i}"),
                &format!("OP{i}"),
                Outcome::Allowed,
                200,
                Duration::from_micros(5),
            );
        }
        let text = metrics.encode().unwrap();
        let series: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("isvc_ingress_admission_requests_total{"))
            .collect();
        assert_eq!(series.len(), 1, "one series, not one per made-up kind");
        assert_eq!(
            series,
            [
                r#"isvc_ingress_admission_requests_total{endpoint="validate",kind="other",operation="unknown",outcome="allowed",code="200"} 1000"#
            ]
        );
    }
}
