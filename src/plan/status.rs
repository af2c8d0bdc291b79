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

pub use super::FIELD_MANAGER;

/// The status URLs (`status.url`, `status.components.<c>.url`) that isvc-ingress wrote and no
/// other writer has written since, read from the object's `metadata.managedFields`. Those are
/// isvc-ingress's own earlier predictions, not the platform's: a new plan replaces them (after
/// a config change moves every host, for example) instead of keeping them as written. A field
/// another manager also owns (KServe wrote the same value) is the platform's. Without
/// managedFields (files, `render`), every written URL counts as the platform's.
///
/// Shape: one bit per URL (bit 0 `status.url`, then one per component in
/// [`ComponentKind::ALL`] order), so every cached ISVC carries it in one byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OwnUrls(u8);

impl OwnUrls {
    /// From a whole object (`metadata.managedFields`).
    pub fn of_object(object: &Value) -> Self {
        Self::from_managed_fields(object.pointer("/metadata/managedFields"))
    }

    /// From `metadata.managedFields` (a list of entries with `manager` and `fieldsV1`).
    pub fn from_managed_fields(managed_fields: Option<&Value>) -> Self {
        let (mut ours, mut others) = (0, 0);
        for entry in managed_fields
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(status) = entry.pointer("/fieldsV1/f:status") else {
                continue;
            };
            let mut bits = 0;
            if status.get("f:url").is_some() {
                bits |= Self::URL;
            }
            for kind in ComponentKind::ALL {
                let field = format!("/f:components/f:{}/f:url", kind.key());
                if status.pointer(&field).is_some() {
                    bits |= Self::component_bit(kind);
                }
            }
            if entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER) {
                ours |= bits;
            } else {
                others |= bits;
            }
        }
        Self(ours & !others)
    }

    /// `metadata.managedFields` that read back as these URLs (a cache that keeps only the byte
    /// writes them out again when it gives its object back as JSON).
    pub fn to_managed_fields(self) -> Option<Value> {
        if self.0 == 0 {
            return None;
        }
        let mut status = serde_json::Map::new();
        if self.url() {
            status.insert("f:url".into(), Value::Object(serde_json::Map::new()));
        }
        let mut components = serde_json::Map::new();
        for kind in ComponentKind::ALL
            .into_iter()
            .filter(|kind| self.component(*kind))
        {
            components.insert(
                format!("f:{}", kind.key()),
                serde_json::json!({ "f:url": {} }),
            );
        }
        if !components.is_empty() {
            status.insert("f:components".into(), Value::Object(components));
        }
        Some(serde_json::json!([{
            "manager": FIELD_MANAGER, "operation": "Update", "subresource": "status",
            "fieldsType": "FieldsV1", "fieldsV1": { "f:status": status },
        }]))
    }

    const URL: u8 = 1;

    fn component_bit(kind: ComponentKind) -> u8 {
        match kind {
            ComponentKind::Predictor => 2,
            ComponentKind::Transformer => 4,
            ComponentKind::Explainer => 8,
        }
    }

    /// isvc-ingress alone wrote `status.url`.
    pub fn url(self) -> bool {
        self.0 & Self::URL != 0
    }

    /// isvc-ingress alone wrote `status.components.<kind>.url`.
    pub fn component(self, kind: ComponentKind) -> bool {
        self.0 & Self::component_bit(kind) != 0
    }
}

/// The URLs to write and the disagreements found, for a plan, the live `status` (None or null
/// when there is none yet), and the URLs isvc-ingress itself wrote last (replaced, never kept).
pub fn resolve(
    plan: &RoutePlan,
    live_status: Option<&Value>,
    own: OwnUrls,
) -> (StatusUrls, Vec<Disagreement>) {
    let written = |pointer: &str| {
        live_status
            .and_then(|status| status.pointer(pointer))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let mut disagreements = Vec::new();
    let mut keep = |field: String, planned: &str, predicted: bool, pointer: &str, ours: bool| {
        let Some(written) = written(pointer).filter(|_| !ours) else {
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
    let url = plan.url.as_ref().map(|url| {
        let field = "status.url".to_string();
        keep(field, url, plan.predicted.url, "/url", own.url())
    });
    let mut components = BTreeMap::new();
    for (kind, planned) in &plan.components {
        let key = kind.key();
        let url = keep(
            format!("status.components.{key}.url"),
            &planned.url,
            plan.predicted.components,
            &format!("/components/{key}/url"),
            own.component(*kind),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, status: Value) -> Value {
        json!({"manager": manager, "operation": "Update", "subresource": "status",
               "fieldsType": "FieldsV1", "fieldsV1": {"f:status": status}})
    }

    #[test]
    fn own_urls_are_the_ones_isvc_ingress_alone_wrote() {
        let managed = json!([
            {"manager": "kubectl", "fieldsV1": {"f:spec": {}}},
            entry(FIELD_MANAGER, json!({"f:url": {}, "f:components": {
                "f:predictor": {"f:url": {}}, "f:transformer": {"f:url": {}}}})),
            // KServe wrote the transformer's URL as well: it is the platform's now.
            entry("manager", json!({"f:components": {"f:transformer": {"f:url": {}}},
                                     "f:conditions": {}})),
        ]);
        let own = OwnUrls::from_managed_fields(Some(&managed));
        assert!(own.url());
        assert!(own.component(ComponentKind::Predictor));
        assert!(!own.component(ComponentKind::Transformer));
        assert!(!own.component(ComponentKind::Explainer));
        // Written out and read back, the same URLs.
        let again = OwnUrls::from_managed_fields(own.to_managed_fields().as_ref());
        assert_eq!(again, own);
        // No managedFields (a file): nothing is ours, every written URL is the platform's.
        assert_eq!(OwnUrls::from_managed_fields(None), OwnUrls::default());
        assert_eq!(OwnUrls::default().to_managed_fields(), None);
        let object = json!({"metadata": {"managedFields": managed}});
        assert_eq!(OwnUrls::of_object(&object), own);
    }
}
