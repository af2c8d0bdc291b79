//! Which fields of a desired Kubernetes object a live object lacks or holds with another value.
//!
//! "Desired is a subset of live" is how both the reconciler (is a write needed?) and `analyze`
//! (does the route match the plan?) compare objects: fields the API server or another writer
//! added to the live object (defaults such as an HTTPRoute backendRef's `weight: 1`, `status`,
//! `managedFields`) do not count; lists are compared element by element and must have the same
//! length; a desired `null` matches an absent field.

use serde_json::Value;
use std::fmt;

/// One field where live differs from desired.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Dotted path with list indexes, such as `spec.rules[0].backendRefs[0].port`.
    pub path: String,
    pub expected: Value,
    /// The live value, or None when the field is absent.
    pub found: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            Some(found) => write!(
                formatter,
                "{}: expected {}, found {found}",
                self.path, self.expected
            ),
            None => write!(
                formatter,
                "{}: expected {}, absent",
                self.path, self.expected
            ),
        }
    }
}

/// Every difference between `desired` and `live`, by key order within each object and index
/// order within each list; `prefix` names the path
/// of both values (empty for whole objects).
pub fn differences(prefix: &str, desired: &Value, live: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    collect(prefix, desired, Some(live), &mut found);
    found
}

/// Whether `live` holds every field of `desired` with the same value.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    differences("", desired, live).is_empty()
}

fn collect(path: &str, desired: &Value, live: Option<&Value>, found: &mut Vec<Difference>) {
    let differ = |found: &mut Vec<Difference>| {
        found.push(Difference {
            path: path.to_string(),
            expected: desired.clone(),
            found: live.cloned(),
        });
    };
    let Some(live) = live else {
        if !desired.is_null() {
            differ(found);
        }
        return;
    };
    match (desired, live) {
        (Value::Object(desired), Value::Object(live)) => {
            for (key, value) in desired {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect(&child, value, live.get(key), found);
            }
        }
        (Value::Array(desired_items), Value::Array(live_items)) => {
            if desired_items.len() != live_items.len() {
                differ(found);
                return;
            }
            for (index, (desired, live)) in desired_items.iter().zip(live_items).enumerate() {
                collect(&format!("{path}[{index}]"), desired, Some(live), found);
            }
        }
        (Value::Number(desired_number), Value::Number(live_number)) => {
            if desired_number != live_number && desired_number.as_f64() != live_number.as_f64() {
                differ(found);
            }
        }
        _ => {
            if desired != live {
                differ(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn added_fields_do_not_count_changed_and_missing_ones_do() {
        let desired = json!({"spec": {"port": 80, "hosts": ["a"], "optional": null}});
        let live = json!({"spec": {"port": 80.0, "hosts": ["a"], "weight": 1}, "status": {}});
        assert!(is_subset(&desired, &live));
        let live = json!({"spec": {"port": 8080, "hosts": ["a", "b"]}});
        let found = differences("", &desired, &live);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"spec.hosts: expected ["a"], found ["a","b"]"#,
                "spec.port: expected 80, found 8080",
            ]
        );
        let found = differences(
            "spec",
            &json!({"rules": [{"x": 1}]}),
            &json!({"rules": [{}]}),
        );
        assert_eq!(found[0].to_string(), "spec.rules[0].x: expected 1, absent");
    }
}
