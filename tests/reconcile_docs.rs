//! `docs/operations.md` tells operators which RBAC rules the reconciler needs; its ClusterRole
//! must be exactly `API_PERMISSIONS`, the list of every call the reconciler makes.

use isvc_ingress::reconcile::API_PERMISSIONS;
use serde_json::Value;

#[test]
fn the_documented_cluster_role_is_the_reconcilers_api_permissions() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .expect("docs/operations.md");
    let start = text.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
    let end = start + text[start..].find("```").expect("the block ends");
    let role: Value = serde_yaml_ng::from_str(&text[start..end]).expect("valid YAML");
    assert_eq!(role["kind"], "ClusterRole");
    let documented: Vec<(String, String, Vec<String>)> = role["rules"]
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
        .collect();
    let expected: Vec<(String, String, Vec<String>)> = API_PERMISSIONS
        .iter()
        .map(|(group, resource, verbs)| {
            (
                group.to_string(),
                resource.to_string(),
                verbs.iter().map(|verb| verb.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(documented, expected);
}
