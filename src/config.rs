//! The KServe `inferenceservice-config` ConfigMap: the `ingress`, `deploy`, `inferenceService`
//! and `service` keys, parsed with KServe's field names and defaults (reference §1.2–1.5),
//! validated strictly, with every violation reported against its field.
//!
//! KServe stops at the first problem, checks almost nothing (a `domainTemplate` that cannot
//! produce a host is found only when the first model is reconciled), and silently skips bad
//! `additionalIngressDomains`. Here the same file is refused at `kubectl apply` with the whole
//! list, and templates are parsed once, at load, so no request ever parses one.

use crate::dns;
use crate::template::{Dialect, Field, Template, TemplateData};
use crate::violation::Violation;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The configuration KServe ships (`config/configmap/inferenceservice.yaml`): our default.
pub const SHIPPED_CONFIG_MAP: &str = include_str!("../config/kserve-inferenceservice-config.yaml");
/// Name of the ConfigMap KServe reads.
pub const CONFIG_MAP_NAME: &str = "inferenceservice-config";
pub const DEFAULT_DOMAIN_TEMPLATE: &str = "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}";
pub const DEFAULT_INGRESS_DOMAIN: &str = "example.com";
pub const DEFAULT_URL_SCHEME: &str = "http";
pub const DEFAULT_MODEL_ROUTING_HEADER: &str = "X-Gateway-Model-Name";
pub const DEFAULT_MODEL_ROUTING_MODE: &str = "enabled";

/// Knative Serving's network ConfigMap, whose `domain-template` decides the hosts Knative gives
/// every Knative Service, hence every Knative-mode component URL.
pub const KNATIVE_NETWORK_CONFIG_MAP_NAME: &str = "config-network";
/// Where Knative Serving keeps its ConfigMaps (Knative's `SYSTEM_NAMESPACE` default).
pub const KNATIVE_SERVING_NAMESPACE: &str = "knative-serving";
/// The key of the template in `config-network`.
pub const KNATIVE_DOMAIN_TEMPLATE_KEY: &str = "domain-template";
/// The key's legacy spelling, which Knative still reads when the current one is absent.
pub const KNATIVE_LEGACY_DOMAIN_TEMPLATE_KEY: &str = "domainTemplate";
/// Knative's default `domain-template` (knative.dev/networking `DefaultDomainTemplate`).
pub const KNATIVE_DEFAULT_DOMAIN_TEMPLATE: &str = "{{.Name}}.{{.Namespace}}.{{.Domain}}";

/// Annotations KServe keeps off the routes it generates whenever the `inferenceService` key exists
/// (reference §1.5), ahead of the user's own list.
const BUILT_IN_ANNOTATION_DISALLOW_LIST: [&str; 5] = [
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration",
    "modelFormat",
];
const BUILT_IN_LABEL_DISALLOW_LIST: [&str; 1] = ["networking.knative.dev/visibility"];

/// Sample object used to prove at load time that `domainTemplate` and `pathTemplate` render.
const SAMPLE_NAME: &str = "model";
const SAMPLE_NAMESPACE: &str = "default";
const SAMPLE_METADATA_VALUE: &str = "value";

/// The three deployment modes, with KServe's current names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DeploymentMode {
    Knative,
    Standard,
    ModelMesh,
}

impl DeploymentMode {
    /// Parses a mode, accepting the names used up to KServe 0.15 (`Serverless`, `RawDeployment`).
    /// The flag says whether the legacy name was used.
    pub fn parse(value: &str) -> Option<(Self, bool)> {
        match value {
            "Knative" => Some((Self::Knative, false)),
            "Serverless" => Some((Self::Knative, true)),
            "Standard" => Some((Self::Standard, false)),
            "RawDeployment" => Some((Self::Standard, true)),
            "ModelMesh" => Some((Self::ModelMesh, false)),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Knative => "Knative",
            Self::Standard => "Standard",
            Self::ModelMesh => "ModelMesh",
        }
    }
}

pub const DEPLOYMENT_MODE_CHOICES: &str =
    "Knative, Standard or ModelMesh (or the legacy Serverless, RawDeployment)";

/// The `ingress` key, field for field (reference §1.2), after KServe's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressConfig {
    pub enable_gateway_api: bool,
    pub kserve_ingress_gateway: String,
    pub ingress_gateway: String,
    pub knative_local_gateway_service: String,
    pub local_gateway: String,
    pub local_gateway_service: String,
    pub ingress_domain: String,
    pub ingress_class_name: Option<String>,
    pub additional_ingress_domains: Option<Vec<String>>,
    pub domain_template: String,
    pub url_scheme: String,
    #[serde(rename = "enableLLMInferenceServiceTLS")]
    pub enable_llm_inference_service_tls: bool,
    pub disable_istio_virtual_host: bool,
    pub path_template: String,
    pub disable_ingress_creation: bool,
    #[serde(rename = "disableHTTPRouteTimeout")]
    pub disable_http_route_timeout: bool,
    pub model_based_routing_header_name: String,
    pub model_based_routing_mode: String,
}

impl Default for IngressConfig {
    /// What KServe uses when the `ingress` key is absent.
    fn default() -> Self {
        Self {
            enable_gateway_api: false,
            kserve_ingress_gateway: String::new(),
            ingress_gateway: String::new(),
            knative_local_gateway_service: String::new(),
            local_gateway: String::new(),
            local_gateway_service: String::new(),
            ingress_domain: DEFAULT_INGRESS_DOMAIN.to_string(),
            ingress_class_name: None,
            additional_ingress_domains: None,
            domain_template: DEFAULT_DOMAIN_TEMPLATE.to_string(),
            url_scheme: DEFAULT_URL_SCHEME.to_string(),
            enable_llm_inference_service_tls: false,
            disable_istio_virtual_host: false,
            path_template: String::new(),
            disable_ingress_creation: false,
            disable_http_route_timeout: false,
            model_based_routing_header_name: DEFAULT_MODEL_ROUTING_HEADER.to_string(),
            model_based_routing_mode: DEFAULT_MODEL_ROUTING_MODE.to_string(),
        }
    }
}

/// The `deploy` key (reference §1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployConfig {
    pub default_deployment_mode: DeploymentMode,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
}

/// Which ISVC annotations and labels never reach the generated routes (reference §1.5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataFilter {
    pub annotations: Vec<String>,
    pub labels: Vec<String>,
}

/// A loaded, validated configuration: what the planner needs, with templates parsed once.
#[derive(Debug, Clone)]
pub struct KserveConfig {
    pub ingress: IngressConfig,
    pub deploy: DeployConfig,
    pub metadata_filter: MetadataFilter,
    /// `service.serviceClusterIPNone`: Standard-mode Services are headless, so the address
    /// carries the container port (reference §6.3).
    pub service_cluster_ip_none: bool,
    pub domain_template: Template,
    pub path_template: Option<Template>,
    /// Knative's side of Knative-mode hosts: not part of KServe's ConfigMap, set with
    /// [`KserveConfig::with_knative_network`].
    pub knative_network: KnativeNetwork,
    /// Things that are allowed but worth a look (a key taken from the shipped default, ...).
    pub warnings: Vec<String>,
    /// Hash of everything above that a plan depends on; part of every `plan-hash`.
    pub fingerprint: String,
    /// The part of [`KserveConfig::fingerprint`] that KServe's ConfigMap decides.
    kserve_fingerprint: String,
}

/// What Knative Serving's `config-network` ConfigMap decides about hosts: the template Knative
/// renders every Knative Service's host with. Its `.Domain` is taken to be `ingressDomain`
/// (Knative reads it from `config-domain`; the two must agree, see docs/kserve-compatibility.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnativeNetwork {
    pub domain_template: Template,
}

impl Default for KnativeNetwork {
    fn default() -> Self {
        Self::from_domain_template(KNATIVE_DEFAULT_DOMAIN_TEMPLATE)
            .expect("Knative's default domain-template is valid")
    }
}

impl KnativeNetwork {
    /// Parses a Knative `domain-template` (Go template with `.Name`, `.Namespace`, `.Domain`,
    /// `.Annotations`, `.Labels`) and proves it renders a valid host for a sample component.
    ///
    /// # Errors
    ///
    /// A violation of `config-network.domain-template`: it does not parse, or renders an
    /// invalid host.
    pub fn from_domain_template(source: &str) -> Result<Self, Violation> {
        const FIELD: &str = "config-network.domain-template";
        let template = Template::parse_dialect(source, Dialect::Knative).map_err(|error| {
            Violation::new(FIELD, format!("\"{source}\" does not parse: {error}"))
        })?;
        let (annotations, labels) = sample_metadata(&template);
        let name = format!("{SAMPLE_NAME}-predictor");
        let rendered = template
            .render(&TemplateData {
                name: &name,
                namespace: SAMPLE_NAMESPACE,
                ingress_domain: DEFAULT_INGRESS_DOMAIN,
                annotations: &annotations,
                labels: &labels,
            })
            .expect("every key the template reads has a sample value");
        if let Some(problem) = dns::host_problem(&rendered) {
            return Err(Violation::new(
                FIELD,
                format!(
                    "renders the invalid host \"{rendered}\" for {name} in namespace \
                     {SAMPLE_NAMESPACE}: {problem}"
                ),
            ));
        }
        Ok(Self {
            domain_template: template,
        })
    }

    /// Reads the `data` of `config-network`: `domain-template`, else the legacy
    /// `domainTemplate`, else Knative's default (as Knative does).
    ///
    /// # Errors
    ///
    /// As [`KnativeNetwork::from_domain_template`].
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Result<Self, Violation> {
        match data
            .get(KNATIVE_DOMAIN_TEMPLATE_KEY)
            .or_else(|| data.get(KNATIVE_LEGACY_DOMAIN_TEMPLATE_KEY))
        {
            Some(source) => Self::from_domain_template(source),
            None => Ok(Self::default()),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is neither a ConfigMap nor the JSON of an `ingress` key.
    #[error("{0}")]
    Unreadable(String),
    /// The text was read, and its values break these rules.
    #[error("{}", crate::violation::join(.violations))]
    Invalid {
        violations: Vec<Violation>,
        warnings: Vec<String>,
    },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The data keys of a ConfigMap that matter for routing, as JSON text.
#[derive(Debug, Default)]
struct RoutingKeys {
    ingress: Option<String>,
    deploy: Option<String>,
    inference_service: Option<String>,
    service: Option<String>,
    /// Read from a whole ConfigMap (not from the bare JSON of its `ingress` key).
    is_config_map: bool,
}

impl KserveConfig {
    /// The configuration KServe ships.
    pub fn shipped() -> Self {
        Self::from_text(SHIPPED_CONFIG_MAP).expect("the shipped KServe configuration is valid")
    }

    /// Reads a ConfigMap YAML/JSON, or the bare JSON of its `ingress` key. A missing `ingress`
    /// or `deploy` key takes the shipped default, with a warning saying so (the webhook refuses
    /// a ConfigMap without `deploy`, so no cluster runs one). A ConfigMap without
    /// `inferenceService` is read as a cluster runs it, with KServe's own behaviour for the
    /// missing key (no annotation or label kept off the routes, reference §1.5), so that
    /// `render --config` of the cluster's ConfigMap shows what the webhook answers (found
    /// against a real API server: the shipped default changed `plan-hash`); bare ingress JSON
    /// takes the shipped `inferenceService` too.
    pub fn from_text(text: &str) -> Result<Self> {
        let (keys, mut warnings) = read_routing_keys(text)?;
        let is_config_map = keys.is_config_map;
        let shipped = shipped_keys();
        let mut take = |key: Option<String>, shipped_value: &Option<String>, name: &str| {
            key.or_else(|| {
                warnings.push(format!(
                    "the configuration has no `{name}` key: using the default KServe ships"
                ));
                shipped_value.clone()
            })
        };
        let keys = RoutingKeys {
            ingress: take(keys.ingress, &shipped.ingress, "ingress"),
            deploy: take(keys.deploy, &shipped.deploy, "deploy"),
            inference_service: if is_config_map {
                if keys.inference_service.is_none() {
                    warnings.push(
                        "the ConfigMap has no `inferenceService` key: as in a cluster, KServe \
                         then keeps no annotation or label off the routes"
                            .to_string(),
                    );
                }
                keys.inference_service
            } else {
                take(
                    keys.inference_service,
                    &shipped.inference_service,
                    "inferenceService",
                )
            },
            service: keys.service,
            is_config_map,
        };
        Self::from_keys(keys, warnings)
    }

    /// Validates the `data` of an `inferenceservice-config` ConfigMap as the API server would
    /// store it: exactly what the admission webhook checks on a ConfigMap change. Unlike
    /// [`KserveConfig::from_text`], missing keys keep KServe's own (non-shipped) defaults,
    /// because that is what KServe will run with.
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Result<Self> {
        let keys = RoutingKeys {
            ingress: data.get("ingress").cloned(),
            deploy: data.get("deploy").cloned(),
            inference_service: data.get("inferenceService").cloned(),
            service: data.get("service").cloned(),
            is_config_map: true,
        };
        Self::from_keys(keys, Vec::new())
    }

    fn from_keys(keys: RoutingKeys, mut warnings: Vec<String>) -> Result<Self> {
        let mut violations = Vec::new();
        let ingress = parse_ingress(keys.ingress.as_deref(), &mut violations, &mut warnings);
        let deploy = parse_deploy(keys.deploy.as_deref(), &mut violations);
        let metadata_filter =
            parse_metadata_filter(keys.inference_service.as_deref(), &mut violations);
        let service_cluster_ip_none = parse_service(keys.service.as_deref(), &mut violations);
        let domain_template = check_domain_template(&ingress, &mut violations);
        let path_template = check_path_template(&ingress, &mut violations);
        match (
            deploy,
            domain_template,
            path_template,
            violations.is_empty(),
        ) {
            (Some(deploy), Some(domain_template), Some(path_template), true) => {
                let kserve_fingerprint =
                    fingerprint(&ingress, &deploy, &metadata_filter, service_cluster_ip_none);
                Ok(Self {
                    ingress,
                    deploy,
                    metadata_filter,
                    service_cluster_ip_none,
                    domain_template,
                    path_template,
                    knative_network: KnativeNetwork::default(),
                    warnings,
                    fingerprint: kserve_fingerprint.clone(),
                    kserve_fingerprint,
                }
                .with_knative_network(KnativeNetwork::default()))
            }
            _ => Err(ConfigError::Invalid {
                violations,
                warnings,
            }),
        }
    }

    /// This configuration with Knative's network settings (which live in Knative's own
    /// ConfigMap, not KServe's); the fingerprint covers both.
    #[must_use]
    pub fn with_knative_network(mut self, network: KnativeNetwork) -> Self {
        self.fingerprint = crate::hash::hex_digest(&[
            self.kserve_fingerprint.as_bytes(),
            network.domain_template.source().as_bytes(),
        ]);
        self.knative_network = network;
        self
    }

    /// The external gateways an ISVC may name in `isvc-ingress.io/gateway` without an explicit
    /// `--allowed-gateway`: the ones this configuration already routes through.
    pub fn configured_gateways(&self) -> impl Iterator<Item = &str> {
        [
            self.ingress.kserve_ingress_gateway.as_str(),
            self.ingress.ingress_gateway.as_str(),
        ]
        .into_iter()
        .filter(|gateway| !gateway.is_empty())
    }

    /// `ingressDomain` followed by `additionalIngressDomains`.
    pub fn configured_domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.ingress.ingress_domain.as_str()).chain(
            self.ingress
                .additional_ingress_domains
                .iter()
                .flatten()
                .map(String::as_str),
        )
    }

    /// A one-paragraph description for `check-config`.
    pub fn summary(&self) -> Vec<(String, String)> {
        let ingress = &self.ingress;
        let mut lines = vec![
            (
                "defaultDeploymentMode".to_string(),
                self.deploy.default_deployment_mode.as_str().to_string(),
            ),
            (
                "standard routes".to_string(),
                if ingress.disable_ingress_creation {
                    "none (disableIngressCreation)".to_string()
                } else if ingress.enable_gateway_api {
                    format!("HTTPRoute on {}", ingress.kserve_ingress_gateway)
                } else {
                    "Ingress".to_string()
                },
            ),
            (
                "knative routes".to_string(),
                if ingress.disable_istio_virtual_host {
                    "none (disableIstioVirtualHost), DomainMapping on request".to_string()
                } else {
                    format!("VirtualService on {}", ingress.ingress_gateway)
                },
            ),
            ("ingressDomain".to_string(), ingress.ingress_domain.clone()),
            (
                "domainTemplate".to_string(),
                ingress.domain_template.clone(),
            ),
            ("urlScheme".to_string(), ingress.url_scheme.clone()),
        ];
        if let Some(domains) = &ingress.additional_ingress_domains {
            lines.push(("additionalIngressDomains".to_string(), domains.join(", ")));
        }
        if !ingress.path_template.is_empty() {
            lines.push(("pathTemplate".to_string(), ingress.path_template.clone()));
        }
        lines
    }
}

fn shipped_keys() -> RoutingKeys {
    read_routing_keys(SHIPPED_CONFIG_MAP)
        .expect("the shipped KServe configuration is a ConfigMap")
        .0
}

/// Tells a ConfigMap (YAML or JSON) from the bare JSON of an `ingress` key and extracts the keys.
fn read_routing_keys(text: &str) -> Result<(RoutingKeys, Vec<String>)> {
    let document: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(json_error) => serde_yaml_ng::from_str(text).map_err(|yaml_error| {
            ConfigError::Unreadable(format!(
                "not a ConfigMap in YAML or JSON ({yaml_error}) nor the JSON of an ingress key \
                 ({json_error})"
            ))
        })?,
    };
    let Value::Object(object) = document else {
        return Err(ConfigError::Unreadable(
            "expected a ConfigMap or the JSON object of its `ingress` key".to_string(),
        ));
    };
    let is_config_map = object.contains_key("kind") || object.contains_key("apiVersion");
    if !is_config_map {
        let keys = RoutingKeys {
            ingress: Some(serde_json::to_string(&object).expect("a JSON object serialises")),
            ..RoutingKeys::default()
        };
        return Ok((keys, Vec::new()));
    }
    if object.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        return Err(ConfigError::Unreadable(format!(
            "expected kind ConfigMap, found {}",
            object
                .get("kind")
                .map_or("none".to_string(), Value::to_string)
        )));
    }
    // A ConfigMap is core `v1`; any other apiVersion is another resource that shares the name.
    if object.get("apiVersion").and_then(Value::as_str) != Some("v1") {
        return Err(ConfigError::Unreadable(format!(
            "expected apiVersion v1 for a ConfigMap, found {}",
            object
                .get("apiVersion")
                .map_or("none".to_string(), Value::to_string)
        )));
    }
    let mut warnings = Vec::new();
    let name = object
        .get("metadata")
        .and_then(|metadata| metadata.get("name"))
        .and_then(Value::as_str);
    if name != Some(CONFIG_MAP_NAME) {
        warnings.push(format!(
            "the ConfigMap is named {}, KServe reads the one named {CONFIG_MAP_NAME}",
            name.unwrap_or("(no name)")
        ));
    }
    let data = match object.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data.clone(),
        Some(_) => {
            return Err(ConfigError::Unreadable(
                "the ConfigMap's data must be a map of strings".to_string(),
            ));
        }
    };
    let text_of = |key: &str| -> Result<Option<String>> {
        match data.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(ConfigError::Unreadable(format!(
                "data.{key} must be a string holding JSON, found {}",
                json_type(other)
            ))),
        }
    };
    let keys = RoutingKeys {
        ingress: text_of("ingress")?,
        deploy: text_of("deploy")?,
        inference_service: text_of("inferenceService")?,
        service: text_of("service")?,
        is_config_map: true,
    };
    Ok((keys, warnings))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses one data key as a JSON object, as Go's `encoding/json` would: a `null` document is an
/// empty object, and field names match case-insensitively. Returns the fields under their
/// canonical names.
fn parse_object(
    text: &str,
    config_key: &str,
    known_fields: &[&'static str],
    violations: &mut Vec<Violation>,
) -> Option<Vec<(&'static str, Value)>> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            violations.push(Violation::new(
                format!("config.{config_key}"),
                format!("unable to parse {config_key} config json: {error}"),
            ));
            return None;
        }
    };
    let object = match value {
        Value::Object(object) => object,
        Value::Null => Map::new(),
        other => {
            violations.push(Violation::new(
                format!("config.{config_key}"),
                format!("must be a JSON object, found {}", json_type(&other)),
            ));
            return None;
        }
    };
    let mut fields = Vec::new();
    for (key, value) in object {
        let canonical = known_fields
            .iter()
            .find(|known| **known == key)
            .or_else(|| {
                known_fields
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(&key))
            });
        // Unknown keys are ignored, like KServe; `null` leaves the default, like Go.
        if let (Some(canonical), false) = (canonical, value.is_null()) {
            fields.push((*canonical, value));
        }
    }
    Some(fields)
}

fn expect_bool(value: &Value, field: &str, violations: &mut Vec<Violation>) -> Option<bool> {
    let parsed = value.as_bool();
    if parsed.is_none() {
        violations.push(Violation::new(
            field,
            format!("must be a boolean, found {}", json_type(value)),
        ));
    }
    parsed
}

fn expect_string(value: &Value, field: &str, violations: &mut Vec<Violation>) -> Option<String> {
    let parsed = value.as_str().map(str::to_string);
    if parsed.is_none() {
        violations.push(Violation::new(
            field,
            format!("must be a string, found {}", json_type(value)),
        ));
    }
    parsed
}

fn expect_string_list(
    value: &Value,
    field: &str,
    violations: &mut Vec<Violation>,
) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        violations.push(Violation::new(
            field,
            format!("must be an array of strings, found {}", json_type(value)),
        ));
        return None;
    };
    let mut strings = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        strings.push(expect_string(
            item,
            &format!("{field}[{index}]"),
            violations,
        )?);
    }
    Some(strings)
}

const INGRESS_FIELDS: [&str; 18] = [
    "enableGatewayApi",
    "kserveIngressGateway",
    "ingressGateway",
    "knativeLocalGatewayService",
    "localGateway",
    "localGatewayService",
    "ingressDomain",
    "ingressClassName",
    "additionalIngressDomains",
    "domainTemplate",
    "urlScheme",
    "enableLLMInferenceServiceTLS",
    "disableIstioVirtualHost",
    "pathTemplate",
    "disableIngressCreation",
    "disableHTTPRouteTimeout",
    "modelBasedRoutingHeaderName",
    "modelBasedRoutingMode",
];

/// Parses and validates the `ingress` key; `None` text means the key is absent (KServe then
/// validates nothing and fills four defaults).
fn parse_ingress(
    text: Option<&str>,
    violations: &mut Vec<Violation>,
    warnings: &mut Vec<String>,
) -> IngressConfig {
    let mut config = IngressConfig::default();
    let Some(text) = text else {
        return config;
    };
    let Some(fields) = parse_object(text, "ingress", &INGRESS_FIELDS, violations) else {
        return config;
    };
    let mut ingress_domain_given = false;
    for (name, value) in &fields {
        let field = format!("config.ingress.{name}");
        let field = field.as_str();
        match *name {
            "enableGatewayApi" => set(
                &mut config.enable_gateway_api,
                expect_bool(value, field, violations),
            ),
            "kserveIngressGateway" => set(
                &mut config.kserve_ingress_gateway,
                expect_string(value, field, violations),
            ),
            "ingressGateway" => set(
                &mut config.ingress_gateway,
                expect_string(value, field, violations),
            ),
            "knativeLocalGatewayService" => set(
                &mut config.knative_local_gateway_service,
                expect_string(value, field, violations),
            ),
            "localGateway" => set(
                &mut config.local_gateway,
                expect_string(value, field, violations),
            ),
            "localGatewayService" => set(
                &mut config.local_gateway_service,
                expect_string(value, field, violations),
            ),
            "ingressDomain" => {
                let domain = expect_string(value, field, violations).unwrap_or_default();
                ingress_domain_given = !domain.is_empty();
                config.ingress_domain = domain;
            }
            "ingressClassName" => {
                config.ingress_class_name = expect_string(value, field, violations)
            }
            "additionalIngressDomains" => {
                config.additional_ingress_domains = expect_string_list(value, field, violations)
            }
            "domainTemplate" => set(
                &mut config.domain_template,
                expect_string(value, field, violations),
            ),
            "urlScheme" => set(
                &mut config.url_scheme,
                expect_string(value, field, violations),
            ),
            "enableLLMInferenceServiceTLS" => set(
                &mut config.enable_llm_inference_service_tls,
                expect_bool(value, field, violations),
            ),
            "disableIstioVirtualHost" => set(
                &mut config.disable_istio_virtual_host,
                expect_bool(value, field, violations),
            ),
            "pathTemplate" => set(
                &mut config.path_template,
                expect_string(value, field, violations),
            ),
            "disableIngressCreation" => set(
                &mut config.disable_ingress_creation,
                expect_bool(value, field, violations),
            ),
            "disableHTTPRouteTimeout" => set(
                &mut config.disable_http_route_timeout,
                expect_bool(value, field, violations),
            ),
            "modelBasedRoutingHeaderName" => set(
                &mut config.model_based_routing_header_name,
                expect_string(value, field, violations),
            ),
            "modelBasedRoutingMode" => set(
                &mut config.model_based_routing_mode,
                expect_string(value, field, violations),
            ),
            _ => unreachable!("parse_object only returns INGRESS_FIELDS"),
        }
    }
    validate_ingress(&config, ingress_domain_given, violations, warnings);
    // KServe's defaults apply to empty strings after validation (NewIngressConfig, §1.3 step 6).
    if config.knative_local_gateway_service.is_empty() {
        config.knative_local_gateway_service = config.local_gateway_service.clone();
    }
    for (value, default) in [
        (&mut config.domain_template, DEFAULT_DOMAIN_TEMPLATE),
        (&mut config.ingress_domain, DEFAULT_INGRESS_DOMAIN),
        (&mut config.url_scheme, DEFAULT_URL_SCHEME),
        (
            &mut config.model_based_routing_header_name,
            DEFAULT_MODEL_ROUTING_HEADER,
        ),
        (
            &mut config.model_based_routing_mode,
            DEFAULT_MODEL_ROUTING_MODE,
        ),
    ] {
        if value.is_empty() {
            *value = default.to_string();
        }
    }
    config
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// Everything KServe rejects (§1.3) and what it should reject but does not.
fn validate_ingress(
    config: &IngressConfig,
    ingress_domain_given: bool,
    violations: &mut Vec<Violation>,
    warnings: &mut Vec<String>,
) {
    let mut reject = |field: &str, message: String| {
        violations.push(Violation::new(format!("config.ingress.{field}"), message));
    };
    if config.enable_gateway_api && config.kserve_ingress_gateway.is_empty() {
        reject(
            "kserveIngressGateway",
            "is required when enableGatewayApi is true".to_string(),
        );
    }
    if config.ingress_gateway.is_empty() {
        reject(
            "ingressGateway",
            "is required (KServe refuses an ingress config without it, even when only Standard \
             mode is used)"
                .to_string(),
        );
    }
    for (field, gateway) in [
        ("kserveIngressGateway", &config.kserve_ingress_gateway),
        ("ingressGateway", &config.ingress_gateway),
        ("localGateway", &config.local_gateway),
    ] {
        if !gateway.is_empty()
            && let Err(problem) = dns::parse_namespaced_name(gateway)
        {
            reject(field, problem);
        }
    }
    for (field, host) in [
        ("localGatewayService", &config.local_gateway_service),
        (
            "knativeLocalGatewayService",
            &config.knative_local_gateway_service,
        ),
    ] {
        if !host.is_empty()
            && let Some(problem) = dns::subdomain_problem(host)
        {
            reject(
                field,
                format!("\"{host}\" is not a valid service host: {problem}"),
            );
        }
    }
    if !config.path_template.is_empty() && !ingress_domain_given {
        reject(
            "ingressDomain",
            "is required if pathTemplate is given".to_string(),
        );
    }
    if !config.ingress_domain.is_empty()
        && let Some(problem) = dns::subdomain_problem(&config.ingress_domain)
    {
        reject(
            "ingressDomain",
            format!(
                "\"{}\" is not a valid domain: {problem}",
                config.ingress_domain
            ),
        );
    }
    if !config.url_scheme.is_empty() && !matches!(config.url_scheme.as_str(), "http" | "https") {
        reject(
            "urlScheme",
            format!("must be http or https, found \"{}\"", config.url_scheme),
        );
    }
    if let Some(domains) = &config.additional_ingress_domains {
        for (index, domain) in domains.iter().enumerate() {
            if let Some(problem) = dns::subdomain_problem(domain) {
                reject(
                    &format!("additionalIngressDomains[{index}]"),
                    format!("\"{domain}\" is not a valid domain: {problem}"),
                );
            } else if domains[..index].contains(domain) {
                warnings.push(format!(
                    "config.ingress.additionalIngressDomains[{index}]: \"{domain}\" is listed twice"
                ));
            }
        }
    }
    if let Some(class) = &config.ingress_class_name
        && let Some(problem) = dns::subdomain_problem(class)
    {
        reject(
            "ingressClassName",
            format!("\"{class}\" is not a valid IngressClass name: {problem}"),
        );
    }
}

/// Parses `domainTemplate` and proves it renders a valid host for a sample model, with a sample
/// value for every label or annotation it reads (ISVCs may legitimately carry them).
fn check_domain_template(
    config: &IngressConfig,
    violations: &mut Vec<Violation>,
) -> Option<Template> {
    const FIELD: &str = "config.ingress.domainTemplate";
    let template = match Template::parse(&config.domain_template) {
        Ok(template) => template,
        Err(error) => {
            violations.push(Violation::new(
                FIELD,
                format!("\"{}\" does not parse: {error}", config.domain_template),
            ));
            return None;
        }
    };
    let (annotations, labels) = sample_metadata(&template);
    for name in [SAMPLE_NAME.to_string(), format!("{SAMPLE_NAME}-predictor")] {
        let data = TemplateData {
            name: &name,
            namespace: SAMPLE_NAMESPACE,
            ingress_domain: &config.ingress_domain,
            annotations: &annotations,
            labels: &labels,
        };
        let rendered = template
            .render(&data)
            .expect("every key the template reads has a sample value");
        if let Some(problem) = dns::host_problem(&rendered) {
            violations.push(Violation::new(
                FIELD,
                format!(
                    "renders the invalid host \"{rendered}\" for {name} in namespace \
                     {SAMPLE_NAMESPACE}: {problem}"
                ),
            ));
            return None;
        }
    }
    Some(template)
}

/// Gives every label and annotation a template reads a sample value.
fn sample_metadata(template: &Template) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut annotations = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for field in template.fields() {
        match field {
            Field::Annotation(key) => {
                annotations.insert(key.clone(), SAMPLE_METADATA_VALUE.to_string());
            }
            Field::Label(key) => {
                labels.insert(key.clone(), SAMPLE_METADATA_VALUE.to_string());
            }
            Field::Name | Field::Namespace | Field::IngressDomain => {}
        }
    }
    (annotations, labels)
}

/// Parses `pathTemplate` (which KServe renders with `.Name` and `.Namespace` only) and proves it
/// renders an absolute path. `Some(None)` means no path template.
fn check_path_template(
    config: &IngressConfig,
    violations: &mut Vec<Violation>,
) -> Option<Option<Template>> {
    const FIELD: &str = "config.ingress.pathTemplate";
    if config.path_template.is_empty() {
        return Some(None);
    }
    let template = match Template::parse(&config.path_template) {
        Ok(template) => template,
        Err(error) => {
            violations.push(Violation::new(
                FIELD,
                format!("\"{}\" does not parse: {error}", config.path_template),
            ));
            return None;
        }
    };
    if let Some(field) = template
        .fields()
        .find(|field| !matches!(field, Field::Name | Field::Namespace))
    {
        violations.push(Violation::new(
            FIELD,
            format!("reads {field}, but a path template can read only .Name and .Namespace"),
        ));
        return None;
    }
    let empty = BTreeMap::new();
    let data = TemplateData {
        name: SAMPLE_NAME,
        namespace: SAMPLE_NAMESPACE,
        ingress_domain: &config.ingress_domain,
        annotations: &empty,
        labels: &empty,
    };
    let rendered = template
        .render(&data)
        .expect("a path template reads no labels or annotations");
    if let Some(problem) = path_problem(&rendered) {
        violations.push(Violation::new(
            FIELD,
            format!(
                "renders \"{rendered}\" for {SAMPLE_NAME} in namespace {SAMPLE_NAMESPACE}, which \
                 {problem}"
            ),
        ));
        return None;
    }
    Some(Some(template))
}

/// Why `path` cannot be a routing path prefix, if it cannot. The rules are the Gateway API's for
/// `PathPrefix` values (the HTTPRoute CRD's CEL validations, which a schema check does not run),
/// so a path accepted here is accepted by the API server; plus: not `/` alone, which would claim
/// every path of the shared host.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("is not an absolute path (it must start with /)")
    } else if path.contains("//") {
        Some("contains // (a path starting with // names a host)")
    } else if path.trim_end_matches('/').is_empty() {
        Some("is / alone, which would claim every path of the shared host")
    } else if path.contains(['?', '#']) {
        Some("contains a query or fragment, not only a path")
    } else if !has_only_path_characters(path) {
        Some(
            "contains characters a URL path cannot hold unescaped (allowed: letters, digits, \
             -._~!$&'()*+,;=:@/ and %XX escapes)",
        )
    } else if path.contains("%2f") || path.contains("%2F") {
        Some("contains an encoded slash (%2F)")
    } else if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        Some("contains a . or .. segment")
    } else {
        None
    }
}

/// `^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$`, the Gateway API path alphabet.
fn has_only_path_characters(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let escape = bytes.get(index + 1..index + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            index += 3;
        } else if byte.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&byte) {
            index += 1;
        } else {
            return false;
        }
    }
    true
}

fn parse_deploy(text: Option<&str>, violations: &mut Vec<Violation>) -> Option<DeployConfig> {
    const MODE_FIELD: &str = "config.deploy.defaultDeploymentMode";
    let Some(text) = text else {
        violations.push(Violation::new(
            MODE_FIELD,
            "is required: without a deploy key KServe cannot route an InferenceService that has no \
             deploymentMode annotation",
        ));
        return None;
    };
    let fields = parse_object(
        text,
        "deploy",
        &["defaultDeploymentMode", "deploymentRolloutStrategy"],
        violations,
    )?;
    let mut mode_text = String::new();
    let mut deploy = DeployConfig {
        default_deployment_mode: DeploymentMode::Knative,
        max_surge: None,
        max_unavailable: None,
    };
    for (name, value) in &fields {
        match *name {
            "defaultDeploymentMode" => {
                mode_text = expect_string(value, MODE_FIELD, violations).unwrap_or_default();
            }
            _ => parse_rollout_strategy(value, &mut deploy, violations),
        }
    }
    if mode_text.is_empty() {
        violations.push(Violation::new(MODE_FIELD, "is required"));
        return None;
    }
    match DeploymentMode::parse(&mode_text) {
        // KServe itself ships the legacy name `Serverless`, so it earns no warning here.
        Some((mode, _legacy)) => {
            deploy.default_deployment_mode = mode;
            Some(deploy)
        }
        None => {
            violations.push(Violation::new(
                MODE_FIELD,
                format!("must be {DEPLOYMENT_MODE_CHOICES}, found \"{mode_text}\""),
            ));
            None
        }
    }
}

fn parse_rollout_strategy(
    value: &Value,
    deploy: &mut DeployConfig,
    violations: &mut Vec<Violation>,
) {
    const FIELD: &str = "config.deploy.deploymentRolloutStrategy";
    let Some(strategy) = value.as_object() else {
        violations.push(Violation::new(
            FIELD,
            format!("must be an object, found {}", json_type(value)),
        ));
        return;
    };
    let Some(rollout) = strategy
        .get("defaultRollout")
        .filter(|value| !value.is_null())
    else {
        return;
    };
    let Some(rollout) = rollout.as_object() else {
        violations.push(Violation::new(
            format!("{FIELD}.defaultRollout"),
            format!("must be an object, found {}", json_type(rollout)),
        ));
        return;
    };
    for (key, target) in [
        ("maxSurge", &mut deploy.max_surge),
        ("maxUnavailable", &mut deploy.max_unavailable),
    ] {
        let field = format!("{FIELD}.defaultRollout.{key}");
        let Some(value) = rollout.get(key).filter(|value| !value.is_null()) else {
            continue;
        };
        let Some(text) = expect_string(value, &field, violations) else {
            continue;
        };
        let number = text.strip_suffix('%').unwrap_or(&text);
        if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
            violations.push(Violation::new(
                field,
                format!("must be a whole number or a percentage like 25%, found \"{text}\""),
            ));
        } else {
            *target = Some(text);
        }
    }
}

fn parse_metadata_filter(text: Option<&str>, violations: &mut Vec<Violation>) -> MetadataFilter {
    let Some(text) = text else {
        // KServe filters nothing when the key is absent (reference §10 Q9).
        return MetadataFilter::default();
    };
    let mut filter = MetadataFilter {
        annotations: BUILT_IN_ANNOTATION_DISALLOW_LIST.map(String::from).to_vec(),
        labels: BUILT_IN_LABEL_DISALLOW_LIST.map(String::from).to_vec(),
    };
    let known = [
        "serviceAnnotationDisallowedList",
        "serviceLabelDisallowedList",
    ];
    let Some(fields) = parse_object(text, "inferenceService", &known, violations) else {
        return filter;
    };
    for (name, value) in &fields {
        let field = format!("config.inferenceService.{name}");
        let extra = expect_string_list(value, &field, violations).unwrap_or_default();
        let list = if *name == known[0] {
            &mut filter.annotations
        } else {
            &mut filter.labels
        };
        list.extend(extra);
    }
    filter
}

fn parse_service(text: Option<&str>, violations: &mut Vec<Violation>) -> bool {
    let Some(text) = text else {
        return false;
    };
    let fields = parse_object(text, "service", &["serviceClusterIPNone"], violations);
    fields
        .into_iter()
        .flatten()
        .find_map(|(_, value)| {
            expect_bool(&value, "config.service.serviceClusterIPNone", violations)
        })
        .unwrap_or(false)
}

fn fingerprint(
    ingress: &IngressConfig,
    deploy: &DeployConfig,
    metadata_filter: &MetadataFilter,
    service_cluster_ip_none: bool,
) -> String {
    let canonical =
        serde_json::to_vec(&(ingress, deploy, metadata_filter, service_cluster_ip_none))
            .expect("the configuration serialises");
    crate::hash::hex_digest(&[&canonical])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_with_kserve_values() {
        let config = KserveConfig::shipped();
        assert_eq!(
            config.deploy.default_deployment_mode,
            DeploymentMode::Knative
        );
        assert_eq!(
            config.ingress.ingress_gateway,
            "knative-serving/knative-ingress-gateway"
        );
        assert_eq!(
            config.ingress.knative_local_gateway_service,
            "knative-local-gateway.istio-system.svc.cluster.local"
        );
        assert_eq!(config.ingress.ingress_class_name.as_deref(), Some("istio"));
        assert_eq!(
            config.metadata_filter.labels,
            ["networking.knative.dev/visibility"]
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        let config = KserveConfig::from_text(
            r#"{"INGRESSGATEWAY": "a/b", "ingressdomain": "models.example.org"}"#,
        )
        .unwrap();
        assert_eq!(config.ingress.ingress_gateway, "a/b");
        assert_eq!(config.ingress.ingress_domain, "models.example.org");
    }
}
