//! Prometheus metrics of the reconciler, registered under the caller's registry (the `serve`
//! command serves them on `/metrics`).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// How one reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Outcome {
    /// Routes or status were written.
    Changed,
    /// Everything already matched: no write.
    Unchanged,
    /// This replica does not hold the lease (or lost it mid-way): nothing written.
    NotLeader,
    /// An API call failed; retried with backoff.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

/// The API verb of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Verb {
    /// Server-side apply of a route.
    Apply,
    Delete,
    /// Merge patch of the ISVC status.
    PatchStatus,
    /// Event creation.
    Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WriteLabels {
    /// `Ingress`, `HTTPRoute`, `VirtualService`, `Service`, `DomainMapping`, `InferenceService`
    /// or `Event`.
    pub kind: String,
    pub verb: Verb,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    /// [`super::Error::metric_label`].
    pub error: String,
}

/// Every reconciler metric. Cheap to share (`Arc` it); the metric types are atomics.
#[derive(Debug)]
pub struct ReconcileMetrics {
    pub reconciles: Family<OutcomeLabels, Counter>,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    pub leader: Gauge,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            failures: Family::default(),
            // 1 ms .. ~16 s: a no-op reconcile is microseconds, a write tens of milliseconds.
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            writes: Family::default(),
            leader: Gauge::default(),
        }
    }
}

impl ReconcileMetrics {
    /// Creates the metrics and registers them under `registry` with the prefix `reconcile`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let registry = registry.sub_registry_with_prefix("reconcile");
        registry.register(
            "runs",
            "Reconciles of InferenceServices, by outcome",
            metrics.reconciles.clone(),
        );
        registry.register(
            "failures",
            "Failed reconciles, by error",
            metrics.failures.clone(),
        );
        registry.register(
            "duration_seconds",
            "Time to reconcile one InferenceService",
            metrics.duration.clone(),
        );
        registry.register(
            "api_writes",
            "API writes, by object kind and verb",
            metrics.writes.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease and writes, else 0",
            metrics.leader.clone(),
        );
        metrics
    }

    pub fn reconciled(&self, outcome: Outcome, took: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn wrote(&self, kind: &str, verb: Verb) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                verb,
            })
            .inc();
    }

    pub fn failed(&self, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.to_string(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Writes counted for `kind` and `verb` (tests).
    pub fn writes_of(&self, kind: &str, verb: Verb) -> u64 {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                verb,
            })
            .get()
    }

    /// Reconciles counted with `outcome` (tests).
    pub fn reconciles_with(&self, outcome: Outcome) -> u64 {
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_registered_and_encoded() {
        let mut registry = Registry::with_prefix("isvc_ingress");
        let metrics = ReconcileMetrics::register(&mut registry);
        metrics.reconciled(Outcome::Unchanged, Duration::from_millis(3));
        metrics.wrote("HTTPRoute", Verb::Apply);
        metrics.failed("conflict");
        metrics.set_leader(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for expected in [
            "isvc_ingress_reconcile_runs_total{outcome=\"Unchanged\"} 1",
            "isvc_ingress_reconcile_api_writes_total{kind=\"HTTPRoute\",verb=\"Apply\"} 1",
            "isvc_ingress_reconcile_failures_total{error=\"conflict\"} 1",
            "isvc_ingress_reconcile_leader 1",
            "isvc_ingress_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
