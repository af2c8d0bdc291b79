//! The route objects a plan asks for, as typed structs whose serialisation is exactly the
//! Kubernetes object (field names, order and omissions). Typed rather than `serde_json::Value`
//! trees: building a tree allocates and hashes every key, which made the full plan five times
//! slower than these structs; the objects are serialised once, when written or printed.

use serde::Serialize;
use std::collections::BTreeMap;

/// `metadata` of every generated object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
    pub uid: String,
    pub controller: bool,
    pub block_owner_deletion: bool,
}

/// One Kubernetes object: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<Spec> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: Spec,
}

/// Any generated route object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RouteObject {
    Ingress(Object<IngressSpec>),
    HttpRoute(Object<HttpRouteSpec>),
    VirtualService(Object<VirtualServiceSpec>),
    Service(Object<ExternalNameServiceSpec>),
    DomainMapping(Object<DomainMappingSpec>),
}

impl RouteObject {
    pub fn api_version(&self) -> &'static str {
        self.parts().0
    }

    pub fn kind(&self) -> &'static str {
        self.parts().1
    }

    pub fn metadata(&self) -> &ObjectMeta {
        self.parts().2
    }

    fn parts(&self) -> (&'static str, &'static str, &ObjectMeta) {
        match self {
            Self::Ingress(object) => (object.api_version, object.kind, &object.metadata),
            Self::HttpRoute(object) => (object.api_version, object.kind, &object.metadata),
            Self::VirtualService(object) => (object.api_version, object.kind, &object.metadata),
            Self::Service(object) => (object.api_version, object.kind, &object.metadata),
            Self::DomainMapping(object) => (object.api_version, object.kind, &object.metadata),
        }
    }

    /// The object as JSON, for printing and for comparing with live objects.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("route objects serialise")
    }
}

// networking.k8s.io/v1 Ingress

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    pub rules: Vec<IngressRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTls>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressRule {
    pub host: String,
    pub http: IngressHttp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressHttp {
    pub paths: Vec<IngressPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressPath {
    pub path: &'static str,
    pub path_type: &'static str,
    pub backend: IngressBackend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressBackend {
    pub service: IngressServiceBackend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressServiceBackend {
    pub name: String,
    pub port: PortNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortNumber {
    pub number: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    pub hosts: Vec<String>,
    pub secret_name: String,
}

// gateway.networking.k8s.io/v1 HTTPRoute

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub hostnames: Vec<String>,
    pub parent_refs: Vec<ParentReference>,
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentReference {
    pub group: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub matches: Vec<HttpRouteMatch>,
    pub filters: Vec<HttpRouteFilter>,
    pub backend_refs: Vec<BackendReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRouteMatch {
    pub path: HttpPathMatch,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeaderMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpPathMatch {
    #[serde(rename = "type")]
    pub match_type: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpHeaderMatch {
    #[serde(rename = "type")]
    pub match_type: &'static str,
    pub name: &'static str,
    pub value: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum HttpRouteFilter {
    RequestHeaderModifier {
        #[serde(rename = "requestHeaderModifier")]
        request_header_modifier: HttpHeaderModifier,
    },
    #[serde(rename = "URLRewrite")]
    UrlRewrite {
        #[serde(rename = "urlRewrite")]
        url_rewrite: HttpUrlRewrite,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpHeaderModifier {
    pub set: Vec<HttpHeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpHeader {
    pub name: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpUrlRewrite {
    pub path: HttpPathModifier,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathModifier {
    #[serde(rename = "type")]
    pub modifier_type: &'static str,
    pub replace_prefix_match: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendReference {
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRouteTimeouts {
    pub request: String,
}

// networking.istio.io/v1 VirtualService

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualServiceSpec {
    pub hosts: Vec<String>,
    pub gateways: Vec<String>,
    pub http: Vec<IstioHttpRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioHttpRoute {
    #[serde(rename = "match")]
    pub matches: Vec<IstioMatch>,
    pub route: Vec<IstioDestinationWeight>,
    pub headers: IstioHeaders,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<IstioRewrite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<IstioStringMatch>,
    pub authority: IstioStringMatch,
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IstioStringMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioDestinationWeight {
    pub destination: IstioDestination,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioDestination {
    pub host: String,
    pub port: PortNumber,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioHeaders {
    pub request: IstioHeaderOperations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioHeaderOperations {
    pub set: IstioRoutingHeaders,
}

/// The three headers KServe sets on every VirtualService route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstioRoutingHeaders {
    #[serde(rename = "Host")]
    pub host: String,
    #[serde(rename = "KServe-Isvc-Name")]
    pub isvc_name: String,
    #[serde(rename = "KServe-Isvc-Namespace")]
    pub isvc_namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum IstioRewrite {
    #[serde(rename = "uri")]
    Uri(&'static str),
    #[serde(rename = "uriRegexRewrite")]
    UriRegex {
        #[serde(rename = "match")]
        pattern: String,
        rewrite: &'static str,
    },
}

// v1 Service of type ExternalName

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalNameServiceSpec {
    #[serde(rename = "type")]
    pub service_type: &'static str,
    pub external_name: String,
    pub session_affinity: &'static str,
}

// serving.knative.dev/v1beta1 DomainMapping

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainMappingSpec {
    #[serde(rename = "ref")]
    pub reference: KnativeReference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<DomainMappingTls>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnativeReference {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainMappingTls {
    pub secret_name: String,
}
