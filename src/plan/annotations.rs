//! The `isvc-ingress.io/*` annotations: the settings users write, validated, and the values the
//! webhook writes back (docs/design.md "Annotations").

use super::{Findings, Policy, RouteKind, RoutePlan};
use crate::config::KserveConfig;
use crate::dns;
use crate::isvc::InferenceService;
use std::collections::BTreeMap;
use std::ops::Bound;

pub const PREFIX: &str = "isvc-ingress.io/";

pub const HOST: &str = "isvc-ingress.io/host";
pub const PATH: &str = "isvc-ingress.io/path";
pub const ROUTE: &str = "isvc-ingress.io/route";
pub const GATEWAY: &str = "isvc-ingress.io/gateway";
pub const INGRESS_CLASS: &str = "isvc-ingress.io/ingress-class";
pub const TIMEOUT: &str = "isvc-ingress.io/timeout";
pub const TLS_SECRET: &str = "isvc-ingress.io/tls-secret";

pub const URL: &str = "isvc-ingress.io/url";
pub const ADDRESS: &str = "isvc-ingress.io/address";
pub const HOSTS: &str = "isvc-ingress.io/hosts";
pub const ROUTE_KIND: &str = "isvc-ingress.io/route-kind";
pub const PREDICTOR_URL: &str = "isvc-ingress.io/predictor-url";
pub const TRANSFORMER_URL: &str = "isvc-ingress.io/transformer-url";
pub const EXPLAINER_URL: &str = "isvc-ingress.io/explainer-url";
pub const PLAN_HASH: &str = "isvc-ingress.io/plan-hash";

/// Keys users set.
pub const INPUT_KEYS: [&str; 7] = [
    HOST,
    PATH,
    ROUTE,
    GATEWAY,
    INGRESS_CLASS,
    TIMEOUT,
    TLS_SECRET,
];
/// Keys the webhook writes; a user value is overwritten, a stale one removed.
pub const OUTPUT_KEYS: [&str; 8] = [
    URL,
    ADDRESS,
    HOSTS,
    ROUTE_KIND,
    PREDICTOR_URL,
    TRANSFORMER_URL,
    EXPLAINER_URL,
    PLAN_HASH,
];

/// `metadata.annotations[<key>]`, the field path of an annotation in violations.
pub fn annotation_field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// The user's `isvc-ingress.io/*` settings, each already validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSettings {
    pub host: Option<String>,
    /// Without a trailing `/`.
    pub path: Option<String>,
    pub route: Option<RouteKind>,
    pub gateway: Option<String>,
    pub ingress_class: Option<String>,
    pub timeout: Option<String>,
    pub tls_secret: Option<String>,
}

impl UserSettings {
    /// Reads and validates every setting; a bad value is a violation and is then left unset.
    pub(super) fn read(
        isvc: &InferenceService,
        config: &KserveConfig,
        policy: &Policy,
        findings: &mut Findings,
    ) -> Self {
        let mut settings = Self::default();
        let from_prefix = (Bound::Included(PREFIX), Bound::Unbounded);
        for (key, value) in isvc.annotations.range::<str, _>(from_prefix) {
            if !key.starts_with(PREFIX) {
                break;
            }
            let field = annotation_field(key);
            let problem: Result<(), Refusal> = match key.as_str() {
                HOST => {
                    check_host(value, config, policy).map(|()| settings.host = Some(value.clone()))
                }
                PATH => match crate::config::path_problem(value) {
                    None => {
                        settings.path = Some(value.trim_end_matches('/').to_string());
                        Ok(())
                    }
                    Some(problem) => Err(format!("\"{value}\" {problem}")),
                }
                .map_err(Refusal::Invalid),
                ROUTE => match RouteKind::parse(value) {
                    Some(kind) => {
                        settings.route = Some(kind);
                        Ok(())
                    }
                    None => Err(format!("must be {}, found \"{value}\"", RouteKind::CHOICES)),
                }
                .map_err(Refusal::Invalid),
                GATEWAY => check_gateway(value, config, policy)
                    .map(|()| settings.gateway = Some(value.clone())),
                INGRESS_CLASS => match dns::subdomain_problem(value) {
                    None => {
                        settings.ingress_class = Some(value.clone());
                        Ok(())
                    }
                    Some(problem) => Err(format!(
                        "\"{value}\" is not a valid IngressClass name: {problem}"
                    )),
                }
                .map_err(Refusal::Invalid),
                TIMEOUT => match is_gateway_duration(value) {
                    true => {
                        settings.timeout = Some(value.clone());
                        Ok(())
                    }
                    false => Err(format!(
                        "\"{value}\" is not a Gateway API duration (one to four groups of up to \
                         5 digits with h, m, s or ms, such as 30s or 1m30s)"
                    )),
                }
                .map_err(Refusal::Invalid),
                TLS_SECRET => match dns::subdomain_problem(value) {
                    None => {
                        settings.tls_secret = Some(value.clone());
                        Ok(())
                    }
                    Some(problem) => {
                        Err(format!("\"{value}\" is not a valid Secret name: {problem}"))
                    }
                }
                .map_err(Refusal::Invalid),
                key if OUTPUT_KEYS.contains(&key) => Ok(()),
                _ => {
                    findings.warn(format!(
                        "{field} is not an isvc-ingress annotation (known: {}) and is ignored",
                        INPUT_KEYS.join(", ")
                    ));
                    Ok(())
                }
            };
            match problem {
                Ok(()) => {}
                Err(Refusal::Invalid(message)) => findings.reject(field, message),
                Err(Refusal::Forbidden(message)) => findings.forbid(field, message),
            }
        }
        settings
    }
}

/// Why a setting is refused: it is malformed, or the policy does not allow it.
enum Refusal {
    Invalid(String),
    Forbidden(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

/// An override host must be a valid host below one of the allowed domains, and not the domain
/// itself (that host is shared by path-based routing): one team must not take another's host.
fn check_host(host: &str, config: &KserveConfig, policy: &Policy) -> Result<(), Refusal> {
    if let Some(problem) = dns::host_problem(host) {
        return Err(Refusal::Invalid(format!(
            "\"{host}\" is not a valid host: {problem}"
        )));
    }
    let allowed: Vec<&str> = config
        .configured_domains()
        .chain(policy.allowed_domains.iter().map(String::as_str))
        .collect();
    let inside = allowed
        .iter()
        .any(|domain| dns::is_within_domain(host, domain) && host.trim_end_matches('.') != *domain);
    if inside {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "\"{host}\" is outside the allowed domains; it must be a name below one of: {}",
            allowed.join(", ")
        )))
    }
}

fn check_gateway(gateway: &str, config: &KserveConfig, policy: &Policy) -> Result<(), Refusal> {
    dns::parse_namespaced_name(gateway)?;
    let allowed: Vec<&str> = config
        .configured_gateways()
        .chain(policy.allowed_gateways.iter().map(String::as_str))
        .collect();
    if allowed.contains(&gateway) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "\"{gateway}\" is not an allowed gateway; allowed: {}",
            allowed.join(", ")
        )))
    }
}

/// The Gateway API `Duration` format: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`.
pub fn is_gateway_duration(value: &str) -> bool {
    let mut rest = value.as_bytes();
    let mut groups = 0;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
        if !(1..=5).contains(&digits) {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with(b"ms") {
            2
        } else if rest
            .first()
            .is_some_and(|byte| matches!(byte, b'h' | b'm' | b's'))
        {
            1
        } else {
            return false;
        };
        rest = &rest[unit..];
        groups += 1;
    }
    (1..=4).contains(&groups)
}

/// The output annotations of a finished plan, including `plan-hash`.
pub(super) fn output(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
) -> BTreeMap<&'static str, String> {
    let mut annotations = BTreeMap::new();
    if let Some(url) = &plan.url {
        annotations.insert(URL, url.clone());
    }
    if let Some(address) = &plan.address {
        annotations.insert(ADDRESS, address.clone());
    }
    if !plan.hosts.is_empty() {
        annotations.insert(HOSTS, plan.hosts.join(","));
    }
    annotations.insert(ROUTE_KIND, plan.route_kind.as_str().to_string());
    for (kind, component) in &plan.components {
        let key = match kind {
            crate::isvc::ComponentKind::Predictor => PREDICTOR_URL,
            crate::isvc::ComponentKind::Transformer => TRANSFORMER_URL,
            crate::isvc::ComponentKind::Explainer => EXPLAINER_URL,
        };
        annotations.insert(key, component.url.clone());
    }
    annotations.insert(PLAN_HASH, plan_hash(plan, isvc, config));
    annotations
}

/// Hash of the plan's inputs: config, the ISVC's identity, labels, the annotations that can
/// change the plan, component specs and the resolved mode. Equal hashes mean equal plans, so
/// writers can skip no-ops. Fed to the hasher as length-prefixed parts, not as JSON: escaping a
/// large annotation such as `last-applied-configuration` cost more than the rest of the plan.
fn plan_hash(plan: &RoutePlan, isvc: &InferenceService, config: &KserveConfig) -> String {
    let mut hasher = crate::hash::StableHasher::new();
    hasher.part(config.fingerprint.as_bytes());
    hasher.part(isvc.name.as_bytes());
    hasher.part(isvc.namespace.as_bytes());
    hasher.part(isvc.uid.as_deref().unwrap_or_default().as_bytes());
    hasher.part(plan.mode.as_str().as_bytes());
    // The route owner decides which routes the plan describes (KServe's or ours).
    hasher.part(&[u8::from(plan.routing.owner == super::RouteOwner::Kserve)]);
    hasher.part(&(isvc.labels.len() as u64).to_le_bytes());
    for (key, value) in &isvc.labels {
        hasher.part(key.as_bytes());
        hasher.part(value.as_bytes());
    }
    let relevant = || {
        isvc.annotations
            .iter()
            .filter(|(key, _)| can_change_the_plan(key, config))
    };
    hasher.part(&(relevant().count() as u64).to_le_bytes());
    for (key, value) in relevant() {
        hasher.part(key.as_bytes());
        hasher.part(value.as_bytes());
    }
    hasher.part(&(isvc.components.len() as u64).to_le_bytes());
    for component in &isvc.components {
        let spec = &component.spec;
        hasher.part(component.kind.key().as_bytes());
        hasher.part(component.service_name.as_bytes());
        hasher.part(&spec.timeout_seconds.unwrap_or(-1).to_le_bytes());
        hasher.part(&[u8::from(spec.grpc_v2)]);
        hasher.part(&(spec.ports.len() as u64).to_le_bytes());
        for port in &spec.ports {
            hasher.part(port.name.as_bytes());
            hasher.part(&port.number.to_le_bytes());
        }
    }
    hasher.finish_hex()
}

/// Annotations reach the plan by being copied to the routes (unless disallowed) or by being read
/// by `domainTemplate`; ours are outputs, and the mode annotation is replaced by the resolved mode.
fn can_change_the_plan(key: &str, config: &KserveConfig) -> bool {
    if OUTPUT_KEYS.contains(&key) || key == super::DEPLOYMENT_MODE_ANNOTATION {
        return false;
    }
    let copied = !config
        .metadata_filter
        .annotations
        .iter()
        .any(|disallowed| disallowed == key);
    copied
        || key.starts_with(PREFIX)
        || config
            .domain_template
            .fields()
            .any(|field| matches!(field, crate::template::Field::Annotation(read) if read == key))
}

#[cfg(test)]
mod tests {
    use super::is_gateway_duration;

    #[test]
    fn gateway_durations() {
        for good in ["30s", "2m", "1h", "500ms", "1m30s", "1h2m3s4ms", "99999s"] {
            assert!(is_gateway_duration(good), "{good}");
        }
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "100000s",
            "1h1h1h1h1h",
            "30S",
            "-1s",
            "1d",
        ] {
            assert!(!is_gateway_duration(bad), "{bad}");
        }
    }
}
