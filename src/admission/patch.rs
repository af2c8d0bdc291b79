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
