//! Istio `networking.istio.io/v1` VirtualService plus the ExternalName Service for Knative mode
//! (reference §4.2).
//!
//! Traffic for the ISVC host goes to Knative's local gateway with the `Host` header rewritten
//! to the component's cluster-local Knative host; the ExternalName Service `<isvc>` makes
//! `<isvc>.<ns>.svc.cluster.local` (the status address) resolve to that gateway.

use super::metadata::RouteMetadata;
use super::{RoutePlan, service_host};
use crate::config::KserveConfig;
use crate::isvc::{ComponentKind, InferenceService};
use serde_json::{Value, json};

pub const API_VERSION: &str = "networking.istio.io/v1";
/// Explain requests (KServe's `ExplainPrefix`).
const EXPLAIN_URI_REGEX: &str = r"^/v1/models/[\w-]+:explain$";
/// Suffix of the path-based explain match (KServe's `PathBasedExplainPrefix`).
const PATH_EXPLAIN_SUFFIX_REGEX: &str = r"(/v1/models/[\w-]+:explain)$";
const MESH_GATEWAY: &str = "mesh";

/// `^<host, regex-escaped>(?::\d{1,5})?$`: the host with an optional port (§2.4).
pub fn host_regex(host: &str) -> String {
    format!("^{}(?::\\d{{1,5}})?$", quote_regex(host))
}

/// Escapes the characters Go's `regexp.QuoteMeta` escapes.
fn quote_regex(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 4);
    for character in text.chars() {
        if r"\.+*?()|[]{}^$".contains(character) {
            quoted.push('\\');
        }
        quoted.push(character);
    }
    quoted
}

struct Builder<'a> {
    isvc: &'a InferenceService,
    config: &'a KserveConfig,
    internal_host: String,
    /// The external gateway `<ns>/<name>`; None for a cluster-local ISVC.
    external_gateway: Option<String>,
    /// External hosts: the top-level host, then the additional hosts.
    external_hosts: Vec<String>,
    timeout: Option<String>,
}

pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> Vec<Value> {
    let routing = &plan.routing;
    let external_gateway = (!routing.internal).then(|| {
        let (namespace, name) = routing
            .gateway
            .as_ref()
            .expect("an external VirtualService plan has a gateway");
        format!("{namespace}/{name}")
    });
    let builder = Builder {
        isvc,
        config,
        internal_host: service_host(&isvc.name, &isvc.namespace),
        external_gateway,
        external_hosts: routing
            .top_host
            .iter()
            .chain(&routing.additional_hosts)
            .cloned()
            .collect(),
        timeout: routing.settings.timeout.clone(),
    };
    vec![
        builder.virtual_service(plan.path.as_deref(), metadata),
        external_name_service(isvc, config, metadata),
    ]
}

impl Builder<'_> {
    fn virtual_service(&self, path: Option<&str>, metadata: &RouteMetadata) -> Value {
        let local_gateway = &self.config.ingress.local_gateway;
        let ingress_domain = &self.config.ingress.ingress_domain;
        let mut hosts = vec![self.internal_host.clone()];
        let mut gateways = vec![local_gateway.clone(), MESH_GATEWAY.to_string()];
        if let Some(gateway) = &self.external_gateway {
            gateways.push(gateway.clone());
        }
        let entry = self.isvc.entry_component();
        let explainer = self.isvc.component(ComponentKind::Explainer);
        let mut http = Vec::new();
        if let Some(explainer) = explainer {
            http.push(self.route(
                self.host_matches(Some(EXPLAIN_URI_REGEX)),
                &explainer.service_name,
                None,
            ));
        }
        http.push(self.route(self.host_matches(None), &entry.service_name, None));
        let mut push_host = |host: &str| {
            if !hosts.iter().any(|existing| existing == host) {
                hosts.push(host.to_string());
            }
        };
        if let Some(top_host) = self.external_hosts.first() {
            push_host(top_host);
        }
        if let (Some(path), Some(gateway)) = (path, &self.external_gateway) {
            push_host(ingress_domain);
            let authority = json!({ "regex": host_regex(ingress_domain) });
            if let Some(explainer) = explainer {
                let explain_regex = format!("{}{PATH_EXPLAIN_SUFFIX_REGEX}", quote_regex(path));
                http.push(self.route(
                    json!([{ "uri": { "regex": explain_regex }, "authority": authority, "gateways": [gateway] }]),
                    &explainer.service_name,
                    Some(json!({ "uriRegexRewrite": { "match": explain_regex, "rewrite": "\\1" } })),
                ));
            }
            http.push(self.route(
                json!([
                    { "uri": { "prefix": format!("{path}/") }, "authority": authority, "gateways": [gateway] },
                    { "uri": { "exact": path }, "authority": authority, "gateways": [gateway] },
                ]),
                &entry.service_name,
                Some(json!({ "uri": "/" })),
            ));
        }
        for host in self.external_hosts.iter().skip(1) {
            push_host(host);
        }
        json!({
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": metadata.for_route(&self.isvc.name),
            "spec": { "hosts": hosts, "gateways": gateways, "http": http },
        })
    }

    /// KServe's `createHTTPMatchRequest`: the internal host through the local gateway and the
    /// mesh, then each external host through the external gateway.
    fn host_matches(&self, uri_regex: Option<&str>) -> Value {
        let with_uri = |mut matched: Value| {
            if let Some(regex) = uri_regex {
                matched["uri"] = json!({ "regex": regex });
            }
            matched
        };
        let mut matches = vec![with_uri(json!({
            "authority": { "regex": host_regex(&self.internal_host) },
            "gateways": [self.config.ingress.local_gateway, MESH_GATEWAY],
        }))];
        if let Some(gateway) = &self.external_gateway {
            for host in &self.external_hosts {
                matches.push(with_uri(json!({
                    "authority": { "regex": host_regex(host) },
                    "gateways": [gateway],
                })));
            }
        }
        Value::Array(matches)
    }

    /// A route to Knative's local gateway, with `Host` set to the component's Knative host.
    fn route(&self, matches: Value, target_service: &str, rewrite: Option<Value>) -> Value {
        let mut route = json!({
            "match": matches,
            "route": [{
                "destination": {
                    "host": self.config.ingress.knative_local_gateway_service,
                    "port": { "number": 80 },
                },
                "weight": 100,
            }],
            "headers": { "request": { "set": {
                "Host": service_host(target_service, &self.isvc.namespace),
                "KServe-Isvc-Name": self.isvc.name,
                "KServe-Isvc-Namespace": self.isvc.namespace,
            }}},
        });
        if let Some(rewrite) = rewrite {
            route["rewrite"] = rewrite;
        }
        if let Some(timeout) = &self.timeout {
            route["timeout"] = json!(timeout);
        }
        route
    }
}

/// `<isvc>` of type ExternalName pointing at `localGatewayService`.
fn external_name_service(
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata.for_route(&isvc.name),
        "spec": {
            "type": "ExternalName",
            "externalName": config.ingress.local_gateway_service,
            "sessionAffinity": "None",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::host_regex;

    #[test]
    fn host_regex_escapes_like_go_quote_meta() {
        assert_eq!(
            host_regex("my-model.test.example.com"),
            r"^my-model\.test\.example\.com(?::\d{1,5})?$"
        );
    }
}
