//! `docs/operations.md` tells operators which RBAC rules the process needs; its ClusterRole and
//! Role must be exactly `permissions::cluster_rules()` and `permissions::namespaced_rules()`,
//! which are built from `reconcile::API_PERMISSIONS` (every call the reconciler makes) and
//! `config_watch::API_PERMISSIONS`.

use isvc_ingress::permissions::{self, Rule};
use isvc_ingress::reconcile::API_PERMISSIONS;
use serde::Deserialize as _;
use serde_json::Value;

type Listed = Vec<(String, String, Vec<String>)>;

fn listed(rules: &[Rule]) -> Listed {
    rules
        .iter()
        .map(|rule| {
            (
                rule.api_group.to_string(),
                rule.resource.to_string(),
                rule.verbs.iter().map(|verb| verb.to_string()).collect(),
            )
        })
        .collect()
}

fn documented(role: &Value) -> Listed {
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .expect("a list")
                    .iter()
                    .map(|item| item.as_str().expect("a string").to_string())
                    .collect()
            };
            let (groups, resources) = (strings("apiGroups"), strings("resources"));
            assert_eq!(
                (groups.len(), resources.len()),
                (1, 1),
                "one group and resource per rule"
            );
            (groups[0].clone(), resources[0].clone(), strings("verbs"))
        })
        .collect()
}

#[test]
fn the_documented_cluster_role_is_the_reconcilers_api_permissions() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .expect("docs/operations.md");
    let start = text.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
    let end = start + text[start..].find("```").expect("the block ends");
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text[start..end])
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .collect();
    let [cluster_role, role] = documents.as_slice() else {
        panic!("the block holds a ClusterRole and a Role");
    };
    assert_eq!(cluster_role["kind"], "ClusterRole");
    assert_eq!(role["kind"], "Role");
    assert_eq!(
        documented(cluster_role),
        listed(&permissions::cluster_rules())
    );
    assert_eq!(documented(role), listed(&permissions::namespaced_rules()));

    // Every call the reconciler makes is documented, with every one of its verbs.
    let all: Listed = [documented(cluster_role), documented(role)].concat();
    for (group, resource, verbs) in API_PERMISSIONS {
        let (_, _, granted) = all
            .iter()
            .find(|(g, r, _)| g == group && r == resource)
            .unwrap_or_else(|| panic!("{group}/{resource} is not documented"));
        for verb in *verbs {
            assert!(
                granted.iter().any(|g| g == verb),
                "{group}/{resource} lacks {verb}"
            );
        }
    }
}
