//! What the webhook and the reconciler know of the cluster, shared between them: the KServe
//! config in force, the policy, and which ISVC holds which external host ([`HostIndex`]).
//!
//! The admission layer reads it on the request path; the config watch and the reconciler write
//! it. It imports neither, so neither imports the other.

pub mod hosts;

pub use hosts::HostIndex;

use crate::config::KserveConfig;
use crate::plan::Policy;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};

/// What the webhook knows of the cluster: the KServe config in force, the policy, and — with a
/// cluster — which ISVC holds which external host.
pub struct AdmissionState {
    config: RwLock<Arc<KserveConfig>>,
    policy: Policy,
    config_namespace: String,
    hosts: Option<HostIndex>,
    /// Status URLs the status mutator kept as the platform wrote them, by field.
    kept_urls: Family<KeptUrlLabels, Counter>,
}

/// Labels of [`AdmissionState::count_kept_url`]: the status field (`status.url`,
/// `status.components.<component>.url`), a bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeptUrlLabels {
    field: String,
}

impl AdmissionState {
    pub fn new(config: KserveConfig, policy: Policy, config_namespace: impl Into<String>) -> Self {
        Self {
            config: RwLock::new(Arc::new(config)),
            policy,
            config_namespace: config_namespace.into(),
            hosts: None,
            kept_urls: Family::default(),
        }
    }

    /// Registers the webhook's own metrics (`isvc_ingress_status_urls_kept_total`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "status_urls_kept",
            "Status URLs the status mutator left as the platform wrote them instead of the \
             planned URL (a prediction, or a downgrade to http), by status field",
            self.kept_urls.clone(),
        );
    }

    /// Counts one URL kept as written.
    pub fn count_kept_url(&self, field: &str) {
        self.kept_urls
            .get_or_create(&KeptUrlLabels {
                field: field.to_string(),
            })
            .inc();
    }

    /// Refuse ISVCs that claim a host another ISVC holds (the reconciler keeps the index).
    pub fn with_host_index(mut self, hosts: HostIndex) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// The host index admission checks claims against; `None` without a cluster.
    pub fn host_index(&self) -> Option<&HostIndex> {
        self.hosts.as_ref()
    }

    /// The config in force; cheap (an `Arc` clone under a read lock).
    pub fn config(&self) -> Arc<KserveConfig> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts a new KServe config in force for the next request; Knative's network settings in
    /// force stay (they come from another ConfigMap).
    pub fn replace_config(&self, config: KserveConfig) {
        let mut current = self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let network = current.knative_network.clone();
        *current = Arc::new(config.with_knative_network(network));
    }

    /// Puts Knative's network settings (`config-network`) in force for the next request.
    pub fn replace_knative_network(&self, network: crate::config::KnativeNetwork) {
        let mut current = self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new((**current).clone().with_knative_network(network));
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn config_namespace(&self) -> &str {
        &self.config_namespace
    }
}
