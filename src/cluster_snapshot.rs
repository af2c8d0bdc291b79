//! The live half of `isvc-ingress analyze`: reads a [`Snapshot`] from the API server, one list
//! per kind, read-only. A kind whose CRD is absent (Istio, Gateway API or Knative not
//! installed) is recorded as absent rather than failing; any other error ends the read, since
//! an analysis on half the objects would report routes as missing that are only unreadable.
//!
//! The RBAC it needs is [`API_PERMISSIONS`]: `manifests/analyze/clusterrole.yaml` grants exactly
//! these rules (`tests/manifests.rs`), for users to bind to themselves.

use crate::analyze::snapshot::{KNATIVE_NETWORK_CONFIG_MAP, Kind, Snapshot};
use crate::config::CONFIG_MAP_NAME;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

/// Objects per list request; the rest follows with the continue token.
pub const PAGE_SIZE: u32 = 500;

/// Every API call of a read, as `(group, resource, verbs)`: a list of each kind the analysis
/// reads, and a get of the two ConfigMaps by name.
pub const API_PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("serving.kserve.io", "inferenceservices", &["list"]),
    ("networking.k8s.io", "ingresses", &["list"]),
    ("networking.k8s.io", "ingressclasses", &["list"]),
    ("gateway.networking.k8s.io", "httproutes", &["list"]),
    ("gateway.networking.k8s.io", "gateways", &["list"]),
    ("networking.istio.io", "virtualservices", &["list"]),
    ("networking.istio.io", "gateways", &["list"]),
    ("serving.knative.dev", "domainmappings", &["list"]),
    ("", "services", &["list"]),
    ("", "namespaces", &["list"]),
    ("", "configmaps", &["get"]),
];

/// Where KServe's and Knative's ConfigMaps live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocations {
    /// Namespace of `inferenceservice-config` (KServe's, `kserve` by default).
    pub kserve_namespace: String,
    /// Namespace of `config-network` (Knative Serving's, `knative-serving` by default).
    pub knative_namespace: String,
}

/// Why the cluster could not be read: `analyze` exits 2.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {what}: {source}{}", permission_hint(.source))]
    Request {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn permission_hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            " (bind the ClusterRole of manifests/analyze to your user: see docs/analyze.md)"
        }
        _ => "",
    }
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

fn api_resource(kind: Kind, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group(), version, kind.name()),
        kind.plural(),
    )
}

/// Reads every kind the analysis needs, in every namespace.
pub async fn read(client: &Client, locations: &ConfigLocations) -> Result<Snapshot, ReadError> {
    let mut snapshot = Snapshot::default();
    for kind in Kind::ALL {
        if kind == Kind::ConfigMap {
            continue;
        }
        match list_kind(client, kind).await? {
            Some(objects) => {
                for object in objects {
                    snapshot.insert(kind, object);
                }
            }
            None => {
                snapshot.absent.insert(kind);
            }
        }
    }
    for (namespace, name) in [
        (&locations.kserve_namespace, CONFIG_MAP_NAME),
        (&locations.knative_namespace, KNATIVE_NETWORK_CONFIG_MAP),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            namespace,
            &api_resource(Kind::ConfigMap, "v1"),
        );
        match api.get_opt(name).await {
            Ok(Some(object)) => snapshot.insert(Kind::ConfigMap, to_value(object)),
            Ok(None) => {}
            Err(source) => {
                return Err(ReadError::Request {
                    what: format!("ConfigMap {namespace}/{name}"),
                    source,
                });
            }
        }
    }
    Ok(snapshot)
}

/// Every object of `kind`, at the first of its versions the cluster serves; None when it serves
/// none (the CRD is not installed).
async fn list_kind(
    client: &Client,
    kind: Kind,
) -> Result<Option<Vec<serde_json::Value>>, ReadError> {
    for version in kind.versions() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind, version));
        let mut objects = Vec::new();
        let mut continue_token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(PAGE_SIZE);
            if let Some(token) = &continue_token {
                params = params.continue_token(token);
            }
            match api.list(&params).await {
                Ok(page) => {
                    continue_token = page.metadata.continue_.filter(|token| !token.is_empty());
                    objects.extend(page.items.into_iter().map(to_value));
                    if continue_token.is_none() {
                        return Ok(Some(objects));
                    }
                }
                Err(error) if is_not_found(&error) && objects.is_empty() => break,
                Err(source) => {
                    return Err(ReadError::Request {
                        what: format!("{} ({})", kind.plural(), api_version(kind, version)),
                        source,
                    });
                }
            }
        }
    }
    Ok(None)
}

fn api_version(kind: Kind, version: &str) -> String {
    match kind.group() {
        "" => version.to_string(),
        group => format!("{group}/{version}"),
    }
}

fn to_value(object: DynamicObject) -> serde_json::Value {
    serde_json::to_value(object).expect("a Kubernetes object serialises")
}
