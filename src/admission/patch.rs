//! JSON Patches (RFC 6902) against the object exactly as the API server sent it, touching only
//! the fields the contract names. Pointers are built from tokens, so keys with `/` and `~` are
//! escaped (`~1`, `~0`); a missing parent map is added whole, never assumed.

use crate::plan::RoutePlan;
use crate::plan::annotations::OUTPUT_KEYS;
use crate::plan::status::Disagreement;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Writes the plan's output annotations and the normalised deployment mode; removes stale
/// output annotations; leaves every other annotation alone. `current` is the object's
/// annotations, `has_annotations` whether it has a map at all (absent or null: added whole).
pub fn annotations(
    current: &BTreeMap<String, String>,
    has_annotations: bool,
    plan: &RoutePlan,
) -> Patch {
    let mut desired: Vec<(&str, &str)> = plan
        .annotations
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    if let Some(mode) = plan.deployment_mode_annotation {
        desired.push((crate::plan::DEPLOYMENT_MODE_ANNOTATION, mode));
    }
    let mut operations = Vec::new();
    if !has_annotations {
        let map: Map<String, Value> = desired
            .iter()
            .map(|(key, value)| (key.to_string(), Value::String(value.to_string())))
            .collect();
        operations.push(add(
            PointerBuf::from_tokens(["metadata", "annotations"]),
            Value::Object(map),
        ));
        return Patch(operations);
    }
    for (key, value) in &desired {
        let pointer = PointerBuf::from_tokens(["metadata", "annotations", key]);
        match current.get(*key) {
            Some(existing) if existing == value => {}
            Some(_) => operations.push(replace(pointer, Value::String(value.to_string()))),
            None => operations.push(add(pointer, Value::String(value.to_string()))),
        }
    }
    for key in OUTPUT_KEYS {
        if current.contains_key(key) && !desired.iter().any(|(wanted, _)| *wanted == key) {
            operations.push(remove(PointerBuf::from_tokens([
                "metadata",
                "annotations",
                key,
            ])));
        }
    }
    Patch(operations)
}

/// Sets `status.url`, `status.address.url` and each planned component's `url`, `restUrl` and
/// `grpcUrl` (removing a `grpcUrl` the plan does not have); every other status field is left
/// alone. A URL the plan only predicts never replaces one the platform wrote, and no URL is
/// downgraded to `http` ([`crate::plan::status`]); the disagreements come back beside the
/// patch. The patch is empty when the status already says what is to be written.
pub fn status(object: &Value, plan: &RoutePlan) -> (Patch, Vec<Disagreement>) {
    let mut operations = Vec::new();
    if plan.url.is_none() {
        return (Patch(operations), Vec::new());
    }
    let current = object.get("status");
    let own = crate::plan::status::OwnUrls::of_object(object);
    let (urls, disagreements) = crate::plan::status::resolve(plan, current, own);
    let mut desired = Map::new();
    if let Some(url) = &urls.url {
        desired.insert("url".into(), Value::String(url.clone()));
    }
    if let Some(address) = &urls.address {
        let mut address_map = Map::new();
        address_map.insert("url".into(), Value::String(address.clone()));
        desired.insert("address".into(), Value::Object(address_map));
    }
    let mut components = Map::new();
    for (kind, component) in &urls.components {
        let mut fields = Map::new();
        fields.insert("url".into(), Value::String(component.url.clone()));
        fields.insert("restUrl".into(), Value::String(component.rest_url.clone()));
        if let Some(grpc_url) = &component.grpc_url {
            fields.insert("grpcUrl".into(), Value::String(grpc_url.clone()));
        }
        components.insert(kind.key().into(), Value::Object(fields));
    }
    if !components.is_empty() {
        desired.insert("components".into(), Value::Object(components));
    }
    let desired = Value::Object(desired);
    merge_into(
        &mut operations,
        current,
        PointerBuf::from_tokens(["status"]),
        &desired,
    );
    if let Some(current_components) = current
        .and_then(|status| status.get("components"))
        .and_then(Value::as_object)
    {
        for (key, component) in current_components {
            let planned = urls.components.iter().find(|(kind, _)| kind.key() == key);
            let keeps_grpc = planned.is_some_and(|(_, planned)| planned.grpc_url.is_some());
            if planned.is_some() && !keeps_grpc && component.get("grpcUrl").is_some() {
                operations.push(remove(PointerBuf::from_tokens([
                    "status",
                    "components",
                    key,
                    "grpcUrl",
                ])));
            }
        }
    }
    (Patch(operations), disagreements)
}

/// `IngressReady` as isvc-ingress last wrote it, kept through another writer's status write
/// (`--route-owner isvc-ingress`): the operations that put the old object's `IngressReady`
/// back into `status.conditions` of the new one where the writer changed it, and, when it is
/// False, make `Ready` False with its reason and message (Knative's condition sets: `Ready` is
/// True only when every dependent condition is).
///
/// Why: with its routes disabled, KServe's controller says `IngressReady=True` on every
/// reconcile, while isvc-ingress says False for a route its Gateway refused. Each write woke the
/// other controller: against KServe v0.19.0, 101 status writes in 30 s, alternating
/// (tests/kserve_alongside, `takeover::isvc_ingress_writes_every_httproute...`). Kept here, the
/// other writer's update changes nothing, so no watch event wakes anyone.
pub fn keep_ingress_ready(old_status: Option<&Value>, new_status: Option<&Value>) -> Patch {
    const INGRESS_READY: &str = "IngressReady";
    let conditions = |status: Option<&Value>| {
        status
            .and_then(|status| status.get("conditions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let position = |conditions: &[Value], kind: &str| {
        conditions
            .iter()
            .position(|condition| condition.get("type").and_then(Value::as_str) == Some(kind))
    };
    let old = conditions(old_status);
    let Some(kept) = position(&old, INGRESS_READY).map(|index| old[index].clone()) else {
        return Patch(Vec::new());
    };
    let new = conditions(new_status);
    let same = |condition: &Value| {
        ["status", "reason", "message"]
            .iter()
            .all(|field| condition.get(*field) == kept.get(*field))
    };
    let pointer = |index: usize| {
        PointerBuf::from_tokens(["status", "conditions", index.to_string().as_str()])
    };
    let mut operations = Vec::new();
    match position(&new, INGRESS_READY) {
        Some(index) if same(&new[index]) => return Patch(Vec::new()),
        Some(index) => operations.push(replace(pointer(index), kept.clone())),
        None if new_status
            .and_then(|status| status.get("conditions"))
            .is_some() =>
        {
            operations.push(add(pointer(new.len()), kept.clone()));
        }
        None if new_status.is_some() => operations.push(add(
            PointerBuf::from_tokens(["status", "conditions"]),
            Value::Array(vec![kept.clone()]),
        )),
        None => operations.push(add(
            PointerBuf::from_tokens(["status"]),
            serde_json::json!({ "conditions": [kept.clone()] }),
        )),
    }
    if kept.get("status").and_then(Value::as_str) == Some("False")
        && let Some(index) = position(&new, "Ready")
        && new[index].get("status").and_then(Value::as_str) != Some("False")
    {
        let mut ready = new[index].clone();
        ready["status"] = Value::String("False".into());
        for field in ["reason", "message", "lastTransitionTime"] {
            match kept.get(field) {
                Some(value) => ready[field] = value.clone(),
                None => {
                    ready.as_object_mut().map(|ready| ready.remove(field));
                }
            }
        }
        operations.push(replace(pointer(index), ready));
    }
    Patch(operations)
}

/// Makes the leaves of `desired` (a tree of objects with string leaves) present in `current`
/// at `pointer`, adding whole subtrees where a parent is missing.
fn merge_into(
    operations: &mut Vec<PatchOperation>,
    current: Option<&Value>,
    pointer: PointerBuf,
    desired: &Value,
) {
    match (current, desired) {
        (Some(Value::Object(current)), Value::Object(desired)) => {
            for (key, wanted) in desired {
                let mut child = pointer.clone();
                child.push_back(key.as_str());
                merge_into(operations, current.get(key), child, wanted);
            }
        }
        (Some(current), _) if current == desired => {}
        (None, _) => operations.push(add(pointer, desired.clone())),
        (Some(_), _) => operations.push(replace(pointer, desired.clone())),
    }
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}

fn remove(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

#[cfg(test)]
mod tests {
    use super::keep_ingress_ready;
    use serde_json::{Value, json};

    fn condition(kind: &str, status: &str, reason: Option<&str>) -> Value {
        let mut condition = json!({"type": kind, "status": status, "lastTransitionTime": format!("{kind}-{status}")});
        if let Some(reason) = reason {
            condition["reason"] = json!(reason);
            condition["message"] = json!(format!("{reason} message"));
        }
        condition
    }

    /// (case, old status, new status written by another writer, status stored after the patch)
    #[test]
    fn another_writers_ingress_ready_gives_way_to_the_one_isvc_ingress_wrote() {
        let refused = condition("IngressReady", "False", Some("NotAllowedByListeners"));
        let predictor = condition("PredictorReady", "True", None);
        let cases = [
            (
                "KServe's True over our False: False kept, Ready False with its reason",
                json!({"conditions": [refused.clone(), condition("Ready", "False", Some("NotAllowedByListeners"))]}),
                json!({"url": "u", "conditions": [condition("IngressReady", "True", None), predictor.clone(), condition("Ready", "True", None)]}),
                json!({"url": "u", "conditions": [refused.clone(), predictor.clone(),
                    {"type": "Ready", "status": "False", "reason": "NotAllowedByListeners",
                     "message": "NotAllowedByListeners message", "lastTransitionTime": "IngressReady-False"}]}),
            ),
            (
                "the same IngressReady: nothing to do",
                json!({"conditions": [refused.clone()]}),
                json!({"conditions": [refused.clone(), condition("Ready", "True", None)]}),
                json!({"conditions": [refused.clone(), condition("Ready", "True", None)]}),
            ),
            (
                "our True kept over another's False; Ready left to its writer",
                json!({"conditions": [condition("IngressReady", "True", None)]}),
                json!({"conditions": [refused.clone(), condition("Ready", "False", Some("X"))]}),
                json!({"conditions": [condition("IngressReady", "True", None), condition("Ready", "False", Some("X"))]}),
            ),
            (
                "dropped by the writer: put back at the end",
                json!({"conditions": [refused.clone()]}),
                json!({"conditions": [predictor.clone()]}),
                json!({"conditions": [predictor.clone(), refused.clone()]}),
            ),
            (
                "no conditions at all in the write",
                json!({"conditions": [refused.clone()]}),
                json!({"url": "u"}),
                json!({"url": "u", "conditions": [refused.clone()]}),
            ),
            (
                "nothing written before: nothing to keep",
                json!({"url": "u"}),
                json!({"conditions": [condition("IngressReady", "True", None)]}),
                json!({"conditions": [condition("IngressReady", "True", None)]}),
            ),
        ];
        for (case, old, new, stored) in cases {
            let patch = keep_ingress_ready(Some(&old), Some(&new));
            let mut object = json!({ "status": new });
            json_patch::patch(&mut object, &patch)
                .unwrap_or_else(|error| panic!("{case}: {error}"));
            assert_eq!(object["status"], stored, "{case}");
        }
        // No status in the write at all.
        let patch = keep_ingress_ready(Some(&json!({"conditions": [refused.clone()]})), None);
        let mut object = json!({"metadata": {}});
        json_patch::patch(&mut object, &patch).unwrap();
        assert_eq!(object["status"], json!({"conditions": [refused]}));
    }
}
