//! Istio `networking.istio.io/v1` VirtualService plus the ExternalName Service for Knative mode
//! (reference §4.2).
//!
//! Traffic for the ISVC host goes to Knative's local gateway with the `Host` header rewritten
//! to the component's cluster-local Knative host; the ExternalName Service `<isvc>` makes
//! `<isvc>.<ns>.svc.cluster.local` (the status address) resolve to that gateway.

use super::metadata::RouteMetadata;
use super::objects::{
    ExternalNameServiceSpec, IstioDestination, IstioDestinationWeight, IstioHeaderOperations,
    IstioHeaders, IstioHttpRoute, IstioMatch, IstioRewrite, IstioRoutingHeaders, IstioStringMatch,
    Object, PortNumber, RouteObject, VirtualServiceSpec,
};
use super::{RoutePlan, service_host};
use crate::config::KserveConfig;
use crate::isvc::{ComponentKind, InferenceService};

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
) -> Vec<RouteObject> {
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
        timeout: routing.settings.timeout.as_deref().map(istio_timeout),
    };
    // KServe gives its ExternalName Service no labels or annotations.
    let service_metadata = if routing.owner == super::RouteOwner::Kserve {
        metadata.bare()
    } else {
        metadata.clone()
    };
    vec![
        builder.virtual_service(plan.path.as_deref(), metadata),
        external_name_service(isvc, config, &service_metadata),
    ]
}

impl Builder<'_> {
    fn virtual_service(&self, path: Option<&str>, metadata: &RouteMetadata) -> RouteObject {
        let local_gateway = &self.config.ingress.local_gateway;
        let ingress_domain = &self.config.ingress.ingress_domain;
        let mut hosts = vec![self.internal_host.clone()];
        let mut gateways = vec![local_gateway.clone(), MESH_GATEWAY.to_string()];
        gateways.extend(self.external_gateway.clone());
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
            let on_shared_host = |uri: IstioStringMatch| IstioMatch {
                uri: Some(uri),
                authority: IstioStringMatch::Regex(host_regex(ingress_domain)),
                gateways: vec![gateway.clone()],
            };
            if let Some(explainer) = explainer {
                let explain_regex = format!("{}{PATH_EXPLAIN_SUFFIX_REGEX}", quote_regex(path));
                http.push(self.route(
                    vec![on_shared_host(IstioStringMatch::Regex(
                        explain_regex.clone(),
                    ))],
                    &explainer.service_name,
                    Some(IstioRewrite::UriRegex {
                        pattern: explain_regex,
                        rewrite: "\\1",
                    }),
                ));
            }
            http.push(self.route(
                vec![
                    on_shared_host(IstioStringMatch::Prefix(format!("{path}/"))),
                    on_shared_host(IstioStringMatch::Exact(path.to_string())),
                ],
                &entry.service_name,
                Some(IstioRewrite::Uri("/")),
            ));
        }
        for host in self.external_hosts.iter().skip(1) {
            push_host(host);
        }
        RouteObject::VirtualService(Object {
            api_version: API_VERSION,
            kind: "VirtualService",
            metadata: metadata.for_route(&self.isvc.name),
            spec: VirtualServiceSpec {
                hosts,
                gateways,
                http,
            },
        })
    }

    /// KServe's `createHTTPMatchRequest`: the internal host through the local gateway and the
    /// mesh, then each external host through the external gateway.
    fn host_matches(&self, uri_regex: Option<&str>) -> Vec<IstioMatch> {
        let uri = || uri_regex.map(|regex| IstioStringMatch::Regex(regex.to_string()));
        let mut matches = vec![IstioMatch {
            uri: uri(),
            authority: IstioStringMatch::Regex(host_regex(&self.internal_host)),
            gateways: vec![
                self.config.ingress.local_gateway.clone(),
                MESH_GATEWAY.to_string(),
            ],
        }];
        if let Some(gateway) = &self.external_gateway {
            for host in &self.external_hosts {
                matches.push(IstioMatch {
                    uri: uri(),
                    authority: IstioStringMatch::Regex(host_regex(host)),
                    gateways: vec![gateway.clone()],
                });
            }
        }
        matches
    }

    /// A route to Knative's local gateway, with `Host` set to the component's Knative host.
    fn route(
        &self,
        matches: Vec<IstioMatch>,
        target_service: &str,
        rewrite: Option<IstioRewrite>,
    ) -> IstioHttpRoute {
        IstioHttpRoute {
            matches,
            route: vec![IstioDestinationWeight {
                destination: IstioDestination {
                    host: self.config.ingress.knative_local_gateway_service.clone(),
                    port: PortNumber { number: 80 },
                },
                weight: 100,
            }],
            headers: IstioHeaders {
                request: IstioHeaderOperations {
                    set: IstioRoutingHeaders {
                        host: service_host(target_service, &self.isvc.namespace),
                        isvc_name: self.isvc.name.clone(),
                        isvc_namespace: self.isvc.namespace.clone(),
                    },
                },
            },
            rewrite,
            timeout: self.timeout.clone(),
        }
    }
}

/// A Gateway API duration (the `timeout` annotation, already validated) as Istio writes a
/// protobuf `Duration`: seconds with up to three decimals (`1m30s` is `90s`, `500ms` is
/// `0.500s`), which both the CRD's CEL `duration()` and Istio's proto decoding accept.
fn istio_timeout(gateway_duration: &str) -> String {
    let millis = crate::duration::parse_duration(gateway_duration)
        .map_or(0, |duration| duration.as_millis());
    match (millis / 1000, millis % 1000) {
        (seconds, 0) => format!("{seconds}s"),
        (seconds, fraction) => format!("{seconds}.{fraction:03}s"),
    }
}

/// `<isvc>` of type ExternalName pointing at `localGatewayService`.
fn external_name_service(
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> RouteObject {
    RouteObject::Service(Object {
        api_version: "v1",
        kind: "Service",
        metadata: metadata.for_route(&isvc.name),
        spec: ExternalNameServiceSpec {
            service_type: "ExternalName",
            external_name: config.ingress.local_gateway_service.clone(),
            session_affinity: "None",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::{host_regex, istio_timeout};

    #[test]
    fn timeouts_become_istio_seconds() {
        for (gateway, istio) in [
            ("30s", "30s"),
            ("1m30s", "90s"),
            ("500ms", "0.500s"),
            ("2h", "7200s"),
            ("1s250ms", "1.250s"),
            ("0s", "0s"),
        ] {
            assert_eq!(istio_timeout(gateway), istio);
        }
    }

    #[test]
    fn host_regex_escapes_like_go_quote_meta() {
        assert_eq!(
            host_regex("my-model.test.example.com"),
            r"^my-model\.test\.example\.com(?::\d{1,5})?$"
        );
    }
}
