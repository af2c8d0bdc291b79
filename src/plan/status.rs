//! The status URLs to write for a plan, given the status the platform already wrote.
//!
//! The rule (docs/status-urls.md): a URL the plan only *predicts* — a host Knative assigns, or
//! the host KServe derives from it — never replaces a URL the platform wrote. Where the two
//! disagree, the platform's stays and the disagreement is reported (the status mutator logs
//! and counts it, the reconciler records an Event). And no URL is ever downgraded from `https`
//! to `http`: a platform that serves a host over TLS knows more than `urlScheme`.

use super::RoutePlan;
use crate::isvc::ComponentKind;
use serde_json::Value;
use std::collections::BTreeMap;

/// The URLs of one component in the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUrls {
    pub url: String,
    pub rest_url: String,
    /// None removes a stale `grpcUrl`.
    pub grpc_url: Option<String>,
}

/// `status.url`, `status.address.url` and `status.components.<c>.{url,restUrl,grpcUrl}` to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUrls {
    pub url: Option<String>,
    pub address: Option<String>,
    pub components: BTreeMap<ComponentKind, ComponentUrls>,
}

/// A URL the platform wrote that the plan would have replaced with a different one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// `status.url` or `status.components.<c>.url`.
    pub field: String,
    /// What the platform wrote, and stays.
    pub written: String,
    /// What the plan predicted.
    pub planned: String,
    /// Why the written URL stays.
    pub why: KeptBecause,
}

/// Why a written URL was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptBecause {
    /// The plan's URL is a prediction of what the platform serves.
    Predicted,
    /// The plan's URL is the written one with `http` for `https`.
    NoDowngrade,
}

/// Said once after the kept predictions: where to look.
const PREDICTION_ADVICE: &str = "isvc-ingress only predicts the hosts Knative assigns: compare \
Knative's config-network domain-template and config-domain with --knative-domain-template and \
ingressDomain";

impl std::fmt::Display for Disagreement {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.why {
            KeptBecause::Predicted => "a prediction",
            KeptBecause::NoDowngrade => "never downgraded to http",
        };
        write!(
            formatter,
            "{} keeps \"{}\" as written (planned \"{}\": {why})",
            self.field, self.written, self.planned
        )
    }
}

/// The URLs to write and the disagreements found, for a plan and the live `status` (None or
/// null when there is none yet).
pub fn resolve(plan: &RoutePlan, live_status: Option<&Value>) -> (StatusUrls, Vec<Disagreement>) {
    let written = |pointer: &str| {
        live_status
            .and_then(|status| status.pointer(pointer))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let mut disagreements = Vec::new();
    let mut keep = |field: String, planned: &str, predicted: bool, pointer: &str| {
        let Some(written) = written(pointer) else {
            return planned.to_string();
        };
        let why = if written == planned {
            return planned.to_string();
        } else if is_downgrade(written, planned) {
            KeptBecause::NoDowngrade
        } else if predicted {
            KeptBecause::Predicted
        } else {
            return planned.to_string();
        };
        disagreements.push(Disagreement {
            field,
            written: written.to_string(),
            planned: planned.to_string(),
            why,
        });
        written.to_string()
    };
    let url = plan
        .url
        .as_ref()
        .map(|url| keep("status.url".to_string(), url, plan.predicted.url, "/url"));
    let mut components = BTreeMap::new();
    for (kind, planned) in &plan.components {
        let key = kind.key();
        let url = keep(
            format!("status.components.{key}.url"),
            &planned.url,
            plan.predicted.components,
            &format!("/components/{key}/url"),
        );
        let urls = if url == planned.url {
            ComponentUrls {
                url,
                rest_url: planned.rest_url.clone(),
                grpc_url: planned.grpc_url.clone(),
            }
        } else {
            // The kept URL names the host served: the REST and gRPC URLs follow it.
            ComponentUrls {
                rest_url: url.clone(),
                grpc_url: planned.grpc_url.as_ref().and_then(|_| grpc_url_for(&url)),
                url,
            }
        };
        components.insert(*kind, urls);
    }
    let urls = StatusUrls {
        url,
        address: plan.address.clone(),
        components,
    };
    (urls, disagreements)
}

/// `written` is `planned` with `https` where the plan says `http`.
fn is_downgrade(written: &str, planned: &str) -> bool {
    matches!(
        (written.strip_prefix("https://"), planned.strip_prefix("http://")),
        (Some(written_rest), Some(planned_rest)) if written_rest == planned_rest
    )
}

/// `grpc://<host>:<443 or 80>` for a kept component URL, through the route it is served by.
fn grpc_url_for(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest
        .split(['/', ':'])
        .next()
        .filter(|host| !host.is_empty())?;
    let port = if scheme == "https" { 443 } else { 80 };
    Some(format!("grpc://{host}:{port}"))
}

/// One message for every URL kept as written (the note of the reconciler's Event, the status
/// mutator's log line), or None.
pub fn kept_message(disagreements: &[Disagreement]) -> Option<String> {
    if disagreements.is_empty() {
        return None;
    }
    let mut message = disagreements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if disagreements
        .iter()
        .any(|disagreement| disagreement.why == KeptBecause::Predicted)
    {
        message.push_str(". ");
        message.push_str(PREDICTION_ADVICE);
    }
    Some(message)
}
