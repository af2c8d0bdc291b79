//! The RBAC the process needs, in one place: the union of the API calls of every part that talks
//! to the API server — the reconciler ([`crate::reconcile::API_PERMISSIONS`]) and the webhook's
//! ConfigMap watch ([`crate::config_watch::API_PERMISSIONS`]). Each list sits next to the code
//! that makes the calls; this module only splits them by scope.
//!
//! `manifests/base/rbac.yaml` grants exactly these rules (`tests/manifests.rs` fails on any verb
//! more or less), and `docs/operations.md` shows them (`tests/reconcile_docs.rs`).
//!
//! Not listed because no rule is needed: API discovery (`/apis/...`) and `/version`, which every
//! authenticated client may read.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// Resources granted by the namespaced Role in the webhook's own namespace rather than the
/// ClusterRole: the leader-election Lease lives there (`--lease-namespace`, by default
/// `$POD_NAMESPACE`), so no cluster-wide access to Leases is needed.
pub const NAMESPACED_RESOURCES: &[(&str, &str)] = &[("coordination.k8s.io", "leases")];

/// One RBAC rule: one API group, one resource, the verbs in the order the code lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// API group, `""` for the core group.
    pub api_group: &'static str,
    /// Resource (plural), or `resource/subresource`.
    pub resource: &'static str,
    pub verbs: Vec<&'static str>,
}

impl Rule {
    /// The rule as the RBAC API spells it.
    pub fn to_policy_rule(&self) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![self.api_group.to_string()]),
            resources: Some(vec![self.resource.to_string()]),
            verbs: self.verbs.iter().map(|verb| verb.to_string()).collect(),
            ..PolicyRule::default()
        }
    }
}

/// Every permission of the process, merged by (group, resource), in the order first listed.
pub fn all_rules() -> Vec<Rule> {
    merged(&[
        crate::reconcile::API_PERMISSIONS,
        crate::config_watch::API_PERMISSIONS,
    ])
}

/// The read-only permissions of `isvc-ingress analyze` on a live cluster
/// ([`crate::cluster_snapshot::API_PERMISSIONS`]): the rules of
/// `manifests/analyze/clusterrole.yaml`, a ClusterRole users bind to themselves.
pub fn analyze_rules() -> Vec<Rule> {
    merged(&[crate::cluster_snapshot::API_PERMISSIONS])
}

/// Permission lists merged by (group, resource), verbs in the order first listed.
fn merged(lists: &[&[(&'static str, &'static str, &'static [&'static str])]]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for &(api_group, resource, verbs) in lists.iter().copied().flatten() {
        let index = match rules
            .iter()
            .position(|rule| rule.api_group == api_group && rule.resource == resource)
        {
            Some(index) => index,
            None => {
                rules.push(Rule {
                    api_group,
                    resource,
                    verbs: Vec::new(),
                });
                rules.len() - 1
            }
        };
        for verb in verbs {
            if !rules[index].verbs.contains(verb) {
                rules[index].verbs.push(verb);
            }
        }
    }
    rules
}

fn is_namespaced(rule: &Rule) -> bool {
    NAMESPACED_RESOURCES.contains(&(rule.api_group, rule.resource))
}

/// The ClusterRole's rules: everything but [`NAMESPACED_RESOURCES`].
pub fn cluster_rules() -> Vec<Rule> {
    all_rules()
        .into_iter()
        .filter(|rule| !is_namespaced(rule))
        .collect()
}

/// The Role's rules, in the webhook's own namespace: [`NAMESPACED_RESOURCES`] only.
pub fn namespaced_rules() -> Vec<Rule> {
    all_rules().into_iter().filter(is_namespaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_and_namespaced_rules_split_every_permission() {
        let all = all_rules();
        let (cluster, namespaced) = (cluster_rules(), namespaced_rules());
        assert_eq!(cluster.len() + namespaced.len(), all.len());
        assert!(all.iter().all(|rule| !rule.verbs.is_empty()));
        assert_eq!(
            namespaced,
            [Rule {
                api_group: "coordination.k8s.io",
                resource: "leases",
                verbs: vec!["get", "create", "patch"],
            }]
        );
        let configmaps = cluster
            .iter()
            .find(|rule| rule.api_group.is_empty() && rule.resource == "configmaps")
            .expect("the ConfigMap watch is in the ClusterRole");
        assert_eq!(configmaps.verbs, ["list", "watch"]);
    }

    #[test]
    fn analyze_only_reads() {
        let rules = analyze_rules();
        assert!(!rules.is_empty());
        for rule in &rules {
            assert!(
                rule.verbs
                    .iter()
                    .all(|verb| ["get", "list", "watch"].contains(verb)),
                "{rule:?}"
            );
            assert_ne!(rule.resource, "secrets");
        }
    }

    #[test]
    fn a_policy_rule_has_one_group_and_resource() {
        let rule = Rule {
            api_group: "",
            resource: "services",
            verbs: vec!["list", "watch"],
        }
        .to_policy_rule();
        assert_eq!(rule.api_groups.as_deref(), Some(&[String::new()][..]));
        assert_eq!(
            rule.resources.as_deref(),
            Some(&["services".to_string()][..])
        );
        assert_eq!(rule.verbs, ["list", "watch"]);
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
    }
}
