//! The objects `analyze` reads, whichever way they were read: from `kubectl get -o yaml` dumps
//! ([`Snapshot::add`]) or from the cluster (the shell in `crate::cluster_snapshot`).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Name of Knative Serving's network ConfigMap (`knative-serving/config-network`).
pub const KNATIVE_NETWORK_CONFIG_MAP: &str = "config-network";

/// A kind of object the analysis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `serving.kserve.io` InferenceService.
    InferenceService,
    /// `networking.k8s.io` Ingress.
    Ingress,
    /// `gateway.networking.k8s.io` HTTPRoute.
    HttpRoute,
    /// `networking.istio.io` VirtualService.
    VirtualService,
    /// `serving.knative.dev` DomainMapping.
    DomainMapping,
    /// `gateway.networking.k8s.io` Gateway.
    Gateway,
    /// `networking.istio.io` Gateway.
    IstioGateway,
    /// Core Service.
    Service,
    /// `networking.k8s.io` IngressClass (cluster-scoped).
    IngressClass,
    /// Core Namespace (cluster-scoped): its labels decide a Gateway listener's
    /// `allowedRoutes.namespaces.selector`.
    Namespace,
    /// Core ConfigMap: only KServe's `inferenceservice-config` and Knative's `config-network`.
    ConfigMap,
}

impl Kind {
    pub const ALL: [Self; 11] = [
        Self::InferenceService,
        Self::Ingress,
        Self::HttpRoute,
        Self::VirtualService,
        Self::DomainMapping,
        Self::Gateway,
        Self::IstioGateway,
        Self::Service,
        Self::IngressClass,
        Self::Namespace,
        Self::ConfigMap,
    ];

    /// API group, `""` for the core group.
    pub fn group(self) -> &'static str {
        match self {
            Self::InferenceService => "serving.kserve.io",
            Self::Ingress | Self::IngressClass => "networking.k8s.io",
            Self::HttpRoute | Self::Gateway => "gateway.networking.k8s.io",
            Self::VirtualService | Self::IstioGateway => "networking.istio.io",
            Self::DomainMapping => "serving.knative.dev",
            Self::Service | Self::Namespace | Self::ConfigMap => "",
        }
    }

    /// The versions to read, newest first: clusters serve the older ones for years (Istio
    /// before 1.22 has no `v1`, Gateway API before 1.0 none either).
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Self::InferenceService => &["v1beta1"],
            Self::HttpRoute | Self::Gateway => &["v1", "v1beta1"],
            Self::VirtualService | Self::IstioGateway => &["v1", "v1beta1"],
            Self::DomainMapping => &["v1beta1", "v1alpha1"],
            _ => &["v1"],
        }
    }

    /// `kind` as objects spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::InferenceService => "InferenceService",
            Self::Ingress => "Ingress",
            Self::HttpRoute => "HTTPRoute",
            Self::VirtualService => "VirtualService",
            Self::DomainMapping => "DomainMapping",
            Self::Gateway | Self::IstioGateway => "Gateway",
            Self::Service => "Service",
            Self::IngressClass => "IngressClass",
            Self::Namespace => "Namespace",
            Self::ConfigMap => "ConfigMap",
        }
    }

    /// The resource name in URLs and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            Self::InferenceService => "inferenceservices",
            Self::Ingress => "ingresses",
            Self::HttpRoute => "httproutes",
            Self::VirtualService => "virtualservices",
            Self::DomainMapping => "domainmappings",
            Self::Gateway | Self::IstioGateway => "gateways",
            Self::Service => "services",
            Self::IngressClass => "ingressclasses",
            Self::Namespace => "namespaces",
            Self::ConfigMap => "configmaps",
        }
    }

    /// How findings and messages name the kind: Istio's Gateway is told apart.
    pub fn display(self) -> &'static str {
        match self {
            Self::IstioGateway => "Gateway.networking.istio.io",
            other => other.name(),
        }
    }

    pub fn is_namespaced(self) -> bool {
        !matches!(self, Self::IngressClass | Self::Namespace)
    }

    /// The kind of an object, from its `apiVersion` (any version) and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.name() == kind && candidate.group() == group)
    }
}

/// The objects read, by kind, each kind in the order the API server lists it: by namespace, then
/// name. A dump (whose objects come in any order, from several files) and the cluster it was
/// taken from then analyse alike, findings in the same order (`tests/e2e/analyze.rs`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Each kind's objects by [`ObjectKey`]: listed in order and looked up by name in
    /// logarithmic time, whatever order they were read in, so an analysis of thousands of
    /// routes is not quadratic.
    objects: BTreeMap<Kind, BTreeMap<ObjectKey, Value>>,
    /// How many objects were inserted: the `read` of the next one.
    read: u64,
    /// Kinds the cluster does not serve (CRD not installed); empty for files.
    pub absent: BTreeSet<Kind>,
}

/// Where an object sorts among those of its kind: namespace (empty for cluster-scoped kinds),
/// name, then the order read, so objects of the same name (in dumps) keep that order and the
/// first one read is the one [`Snapshot::get`] finds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    namespace: String,
    name: String,
    read: u64,
}

impl ObjectKey {
    fn new(kind: Kind, namespace: &str, name: &str, read: u64) -> Self {
        Self {
            namespace: if kind.is_namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
            read,
        }
    }
}

impl Snapshot {
    /// Adds a document: an object of a kind the analysis reads, or a `List` of them. Returns
    /// a note for each object skipped (another kind, or a ConfigMap the analysis does not
    /// use), for the user to see what was left out.
    pub fn add(&mut self, document: Value) -> Vec<String> {
        let mut notes = Vec::new();
        self.add_one(document, &mut notes);
        notes
    }

    fn add_one(&mut self, document: Value, notes: &mut Vec<String>) {
        if document.is_null() {
            return;
        }
        let text = |key: &str| document.get(key).and_then(Value::as_str).unwrap_or("");
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if kind.ends_with("List") {
            if let Some(Value::Array(items)) = document.get("items") {
                for item in items.clone() {
                    self.add_one(item, notes);
                }
            }
            return;
        }
        match Kind::of(api_version, kind) {
            Some(Kind::ConfigMap) if !is_analyzed_config_map(&document) => notes.push(format!(
                "ConfigMap {} is neither KServe's {} nor Knative's {KNATIVE_NETWORK_CONFIG_MAP}: \
                 skipped",
                qualified_name(&document),
                crate::config::CONFIG_MAP_NAME
            )),
            Some(kind) => self.insert(kind, document),
            None => notes.push(format!(
                "{} {} is not a kind analyze reads: skipped",
                if kind.is_empty() {
                    "an object without kind"
                } else {
                    kind
                },
                qualified_name(&document)
            )),
        }
    }

    /// Adds an object known to be of `kind`.
    pub fn insert(&mut self, kind: Kind, object: Value) {
        let key = ObjectKey::new(
            kind,
            object_namespace(&object),
            object_name(&object),
            self.read,
        );
        self.read += 1;
        self.objects.entry(kind).or_default().insert(key, object);
    }

    /// Every object of `kind`, by namespace, then name.
    pub fn list(
        &self,
        kind: Kind,
    ) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone {
        static NONE: BTreeMap<ObjectKey, Value> = BTreeMap::new();
        self.objects.get(&kind).unwrap_or(&NONE).values()
    }

    /// The object of `kind` named `name` in `namespace` (ignored for cluster-scoped kinds); of
    /// several of that name, the first read.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        let first = ObjectKey::new(kind, namespace, name, 0);
        let (key, object) = self.objects.get(&kind)?.range(&first..).next()?;
        (key.namespace == first.namespace && key.name == first.name).then_some(object)
    }

    /// KServe's `inferenceservice-config` ConfigMap, if read.
    pub fn kserve_config_map(&self) -> Option<&Value> {
        self.config_map(crate::config::CONFIG_MAP_NAME)
    }

    /// Knative's `config-network` ConfigMap, if read.
    pub fn knative_network_config_map(&self) -> Option<&Value> {
        self.config_map(KNATIVE_NETWORK_CONFIG_MAP)
    }

    fn config_map(&self, name: &str) -> Option<&Value> {
        self.list(Kind::ConfigMap)
            .find(|object| object_name(object) == name)
    }

    /// Whether nothing at all was read.
    pub fn is_empty(&self) -> bool {
        self.objects.values().all(BTreeMap::is_empty)
    }
}

fn is_analyzed_config_map(object: &Value) -> bool {
    let name = object_name(object);
    name == crate::config::CONFIG_MAP_NAME || name == KNATIVE_NETWORK_CONFIG_MAP
}

/// `metadata.name`, or "" when absent.
pub fn object_name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.namespace`, or "" when absent (cluster-scoped objects).
pub fn object_namespace(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn qualified_name(object: &Value) -> String {
    match (object_namespace(object), object_name(object)) {
        ("", name) => name.to_string(),
        (namespace, name) => format!("{namespace}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_listed_by_namespace_then_name_and_the_first_of_a_name_wins() {
        let service = |namespace: &str, name: &str, port: u16| {
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"ports": [{"port": port}]}})
        };
        let mut snapshot = Snapshot::default();
        for object in [
            service("b", "a", 1),
            service("a", "z", 2),
            service("a", "b", 3),
            service("b", "a", 4),
            service("a", "c", 5),
        ] {
            snapshot.insert(Kind::Service, object);
        }
        let listed: Vec<(&str, &str, u64)> = snapshot
            .list(Kind::Service)
            .map(|object| {
                (
                    object_namespace(object),
                    object_name(object),
                    object
                        .pointer("/spec/ports/0/port")
                        .unwrap()
                        .as_u64()
                        .unwrap(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("a", "b", 3),
                ("a", "c", 5),
                ("a", "z", 2),
                ("b", "a", 1),
                ("b", "a", 4)
            ]
        );
        let found = snapshot.get(Kind::Service, "b", "a").unwrap();
        assert_eq!(found.pointer("/spec/ports/0/port"), Some(&json!(1)));
        assert!(snapshot.get(Kind::Service, "a", "a").is_none());
        assert!(snapshot.get(Kind::Service, "c", "a").is_none());

        // Cluster-scoped kinds ignore the namespace, of the object and of the lookup.
        snapshot.insert(
            Kind::IngressClass,
            json!({"metadata": {"name": "nginx", "namespace": "stray"}}),
        );
        assert!(snapshot.get(Kind::IngressClass, "any", "nginx").is_some());
    }

    #[test]
    fn lists_are_expanded_and_unread_kinds_noted() {
        let mut snapshot = Snapshot::default();
        let notes = snapshot.add(json!({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
                 "metadata": {"name": "r", "namespace": "n"}},
                {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                 "metadata": {"name": "g", "namespace": "istio-system"}},
                {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "d", "namespace": "n"}},
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "other", "namespace": "n"}},
            ]
        }));
        assert_eq!(snapshot.list(Kind::HttpRoute).len(), 1);
        assert!(
            snapshot
                .get(Kind::IstioGateway, "istio-system", "g")
                .is_some()
        );
        assert!(snapshot.get(Kind::Gateway, "istio-system", "g").is_none());
        assert_eq!(
            notes,
            [
                "Deployment n/d is not a kind analyze reads: skipped",
                "ConfigMap n/other is neither KServe's inferenceservice-config nor Knative's \
                 config-network: skipped"
            ]
        );
    }
}
