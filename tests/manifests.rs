//! The shipped manifests, as `kubectl kustomize` renders them, agree with the code: every object
//! is a valid Kubernetes object, names/ports/paths line up from the webhook configurations to
//! the Service to the container to the server's routes and flag defaults, RBAC is exactly
//! `permissions::cluster_rules()` / `namespaced_rules()`, the pod is hardened, the webhooks see
//! exactly ISVCs, ISVC status and the config ConfigMap, and each overlay wires its certificate.
//!
//! Every test is skipped, with a message, where `kubectl` is not installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use isvc_ingress::certs;
use isvc_ingress::cli::{Cli, Command as CliCommand};
use isvc_ingress::config::{CONFIG_MAP_NAME, KserveConfig};
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::permissions::{self, Rule};
use isvc_ingress::plan::{self, Policy, RouteKind, RouteOwner, annotations};
use isvc_ingress::reconcile::isvc_api_resource;
use isvc_ingress::serve::ServeArgs;
use isvc_ingress::server::admin::{LIVEZ_PATH, READYZ_PATH};
use isvc_ingress::server::webhook::{MUTATE_PATH, VALIDATE_PATH};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The names `isvc-ingress certs` is run with (certs/README.md, scripts/e2e-kind.sh); the
/// rendered Service must be this one.
const SERVICE: &str = "isvc-ingress";
const NAMESPACE: &str = "isvc-ingress";
const INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("kubectl is not installed: skipping the kustomize manifest test");
    }
    found
}

/// `kubectl kustomize DIR`, one JSON value per document.
fn kustomize(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .filter(|document| !document.is_null())
        .map(unwrap_base64)
        .collect()
}

/// Deserialises into the k8s-openapi type and serialises back: a field the type does not know
/// (a misspelling, a field at the wrong level) would be dropped silently, so the round trip
/// must give the object back unchanged.
fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> T {
    let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
    let parsed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|error| panic!("{what} does not parse: {error}"));
    let back = serde_json::to_value(&parsed).expect("serialise");
    assert_eq!(
        &back, object,
        "{what}: a field is unknown to the k8s-openapi type (misspelled or misplaced)"
    );
    parsed
}

/// kustomize writes generated Secret data, and so the caBundle the self-signed overlay copies
/// from it, as base64 wrapped in lines. The API server decodes with Go's base64, which skips line
/// breaks; k8s-openapi does not, so the line breaks are removed before parsing.
fn unwrap_base64(mut object: Value) -> Value {
    let unwrap = |value: &mut Value| {
        if let Some(text) = value.as_str() {
            *value = Value::String(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
        }
    };
    if object["kind"] == "Secret"
        && let Some(data) = object.get_mut("data").and_then(Value::as_object_mut)
    {
        data.values_mut().for_each(unwrap);
    }
    if let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) {
        for webhook in webhooks {
            if let Some(ca_bundle) = webhook.pointer_mut("/clientConfig/caBundle") {
                unwrap(ca_bundle);
            }
        }
    }
    object
}

/// An overlay's objects, each parsed into its type.
#[derive(Default)]
struct Rendered {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    deployments: Vec<Deployment>,
    disruption_budgets: Vec<PodDisruptionBudget>,
    services: Vec<Service>,
    secrets: Vec<Secret>,
    mutating: Vec<MutatingWebhookConfiguration>,
    validating: Vec<ValidatingWebhookConfiguration>,
    /// cert-manager objects, checked by apiVersion and kind only.
    cert_manager: Vec<Value>,
}

impl Rendered {
    fn parse(objects: &[Value]) -> Self {
        let mut rendered = Rendered::default();
        for object in objects {
            let api_version = object["apiVersion"].as_str().expect("apiVersion");
            let kind = object["kind"].as_str().expect("kind");
            match (api_version, kind) {
                ("v1", "Namespace") => rendered.namespaces.push(typed(object)),
                ("v1", "ServiceAccount") => rendered.service_accounts.push(typed(object)),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    rendered.cluster_roles.push(typed(object))
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    rendered.cluster_role_bindings.push(typed(object))
                }
                ("rbac.authorization.k8s.io/v1", "Role") => rendered.roles.push(typed(object)),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    rendered.role_bindings.push(typed(object))
                }
                ("apps/v1", "Deployment") => rendered.deployments.push(typed(object)),
                ("policy/v1", "PodDisruptionBudget") => {
                    rendered.disruption_budgets.push(typed(object))
                }
                ("v1", "Service") => rendered.services.push(typed(object)),
                ("v1", "Secret") => rendered.secrets.push(typed(object)),
                ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                    rendered.mutating.push(typed(object))
                }
                ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                    rendered.validating.push(typed(object))
                }
                ("cert-manager.io/v1", "Issuer" | "Certificate") => {
                    assert!(object["metadata"]["name"].is_string(), "{kind} has a name");
                    rendered.cert_manager.push(object.clone())
                }
                other => panic!("unexpected object {other:?}"),
            }
        }
        rendered
    }

    fn cert_manager_kind(&self, kind: &str) -> Vec<&Value> {
        self.cert_manager
            .iter()
            .filter(|object| object["kind"] == kind)
            .collect()
    }
}

fn only<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "exactly one {what}");
    &items[0]
}

/// The one object of `kind` among `objects`.
fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    only::<&Value>(&found, kind)
}

fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().expect("a name")
}

fn namespace_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.namespace.as_deref().expect("a namespace")
}

/// `serve`'s flags as the container's args set them (the image's ENTRYPOINT is the binary).
fn serve_args(container: &Container) -> ServeArgs {
    assert!(
        container.command.is_none(),
        "the image's ENTRYPOINT runs the binary"
    );
    for env in container.env.iter().flatten() {
        assert!(
            !env.name.starts_with("ISVC_INGRESS_"),
            "{} configures serve through the environment; the test reads only the args",
            env.name
        );
    }
    let args = container.args.clone().unwrap_or_default();
    let cli = Cli::try_parse_from(std::iter::once("isvc-ingress".to_string()).chain(args))
        .unwrap_or_else(|error| panic!("the container args are not a valid command: {error}"));
    match cli.command {
        CliCommand::Serve(args) => *args,
        other => panic!("the container runs {other:?}, not serve"),
    }
}

/// `serve`'s defaults.
fn default_serve_args() -> ServeArgs {
    match Cli::try_parse_from(["isvc-ingress", "serve", "--self-signed"])
        .expect("serve parses")
        .command
    {
        CliCommand::Serve(args) => *args,
        _ => unreachable!(),
    }
}

/// The container port a probe or Service targets (by number or by name).
fn container_port(container: &Container, port: &IntOrString) -> i32 {
    let ports = container.ports.as_deref().unwrap_or_default();
    match port {
        IntOrString::Int(number) => {
            assert!(
                ports.iter().any(|p| p.container_port == *number),
                "port {number} is not a container port"
            );
            *number
        }
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port named {name}"))
                .container_port
        }
    }
}

fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(
        selector.match_expressions.is_none(),
        "selectors use matchLabels"
    );
    let wanted = selector.match_labels.as_ref().expect("matchLabels");
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

/// (group, resource, verb) for every verb a rule grants; wildcards and narrowing fields
/// (which the code's list never needs) fail.
fn grants(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut granted = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{rule:?}: the code's permissions have no resourceNames or nonResourceURLs"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for value in [group, resource, verb] {
                        assert_ne!(value, "*", "{rule:?}: no wildcards");
                    }
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    granted
}

fn expected_grants(rules: &[Rule]) -> BTreeSet<(String, String, String)> {
    grants(&rules.iter().map(Rule::to_policy_rule).collect::<Vec<_>>())
}

/// What one webhook sees: (path, group, version, resource, operation).
type Coverage = BTreeSet<(String, String, String, String, String)>;

fn coverage(path: &str, rules: &[RuleWithOperations]) -> Coverage {
    let mut covered = Coverage::new();
    for rule in rules {
        assert_eq!(rule.scope.as_deref(), Some("Namespaced"), "{rule:?}");
        for group in rule.api_groups.iter().flatten() {
            for version in rule.api_versions.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for operation in rule.operations.iter().flatten() {
                        for value in [group, version, resource, operation] {
                            assert_ne!(value, "*", "{rule:?}: no wildcards");
                        }
                        covered.insert((
                            path.to_string(),
                            group.clone(),
                            version.clone(),
                            resource.clone(),
                            operation.clone(),
                        ));
                    }
                }
            }
        }
    }
    covered
}

fn expect_coverage(entries: &[(&str, &str, &str, &str, &[&str])]) -> Coverage {
    let mut covered = Coverage::new();
    for (path, group, version, resource, operations) in entries {
        for operation in *operations {
            covered.insert((
                path.to_string(),
                group.to_string(),
                version.to_string(),
                resource.to_string(),
                operation.to_string(),
            ));
        }
    }
    covered
}

/// The common parts of a mutating or validating webhook, for the checks they share.
struct Hook<'a> {
    name: &'a str,
    service: &'a ServiceReference,
    ca_bundle: Option<&'a [u8]>,
    rules: &'a [RuleWithOperations],
    namespace_selector: Option<&'a LabelSelector>,
    match_conditions: Vec<(String, String)>,
    admission_review_versions: &'a [String],
    side_effects: &'a str,
    timeout_seconds: Option<i32>,
    failure_policy: Option<&'a str>,
}

fn mutating_hooks(config: &MutatingWebhookConfiguration) -> Vec<Hook<'_>> {
    let webhooks = config.webhooks.as_deref().expect("webhooks");
    webhooks
        .iter()
        .map(|webhook| {
            assert_eq!(
                webhook.reinvocation_policy.as_deref(),
                Some("IfNeeded"),
                "{}: another mutating webhook may change the mode annotation after us",
                webhook.name
            );
            Hook {
                name: &webhook.name,
                service: webhook.client_config.service.as_ref().expect("a service"),
                ca_bundle: webhook.client_config.ca_bundle.as_ref().map(|b| &b.0[..]),
                rules: webhook.rules.as_deref().unwrap_or_default(),
                namespace_selector: webhook.namespace_selector.as_ref(),
                match_conditions: webhook
                    .match_conditions
                    .iter()
                    .flatten()
                    .map(|c| (c.name.clone(), c.expression.clone()))
                    .collect(),
                admission_review_versions: &webhook.admission_review_versions,
                side_effects: &webhook.side_effects,
                timeout_seconds: webhook.timeout_seconds,
                failure_policy: webhook.failure_policy.as_deref(),
            }
        })
        .collect()
}

fn validating_hooks(config: &ValidatingWebhookConfiguration) -> Vec<Hook<'_>> {
    let webhooks = config.webhooks.as_deref().expect("webhooks");
    webhooks
        .iter()
        .map(|webhook| Hook {
            name: &webhook.name,
            service: webhook.client_config.service.as_ref().expect("a service"),
            ca_bundle: webhook.client_config.ca_bundle.as_ref().map(|b| &b.0[..]),
            rules: webhook.rules.as_deref().unwrap_or_default(),
            namespace_selector: webhook.namespace_selector.as_ref(),
            match_conditions: webhook
                .match_conditions
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.expression.clone()))
                .collect(),
            admission_review_versions: &webhook.admission_review_versions,
            side_effects: &webhook.side_effects,
            timeout_seconds: webhook.timeout_seconds,
            failure_policy: webhook.failure_policy.as_deref(),
        })
        .collect()
}

/// The namespace-name selector of a webhook: (operator, values).
fn namespace_names(selector: Option<&LabelSelector>) -> (String, BTreeSet<String>) {
    let selector = selector.expect("a namespaceSelector");
    assert!(selector.match_labels.is_none());
    let [expression] = selector.match_expressions.as_deref().unwrap_or_default() else {
        panic!("one namespaceSelector expression");
    };
    assert_eq!(expression.key, "kubernetes.io/metadata.name");
    (
        expression.operator.clone(),
        expression.values.iter().flatten().cloned().collect(),
    )
}

/// What the checks of both overlays found out, for the overlay-specific checks.
struct Wiring {
    /// The Secret the Deployment mounts the serving certificate from.
    tls_secret: String,
    /// Every webhook's caBundle (None when absent).
    ca_bundles: Vec<Option<Vec<u8>>>,
    namespace: String,
}

/// Everything that must hold in every overlay.
fn check_common(rendered: &Rendered) -> Wiring {
    // One namespace holds everything namespaced.
    let namespace = name_of(&only(&rendered.namespaces, "Namespace").metadata).to_string();
    assert_eq!(namespace, NAMESPACE);

    // The Deployment and its serve flags.
    let deployment = only(&rendered.deployments, "Deployment");
    assert_eq!(namespace_of(&deployment.metadata), namespace);
    let spec = deployment.spec.as_ref().expect("a Deployment spec");
    assert!(spec.replicas.unwrap_or(1) >= 2, "at least two replicas");
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .expect("pod labels");
    assert!(selects(&spec.selector, &template_labels));
    let pod: &PodSpec = spec.template.spec.as_ref().expect("a pod spec");
    let container = only(&pod.containers, "container");
    let args = serve_args(container);
    let defaults = default_serve_args();
    assert_eq!(
        (args.server.listen, args.server.admin_listen),
        (defaults.server.listen, defaults.server.admin_listen),
        "the manifests assume the default ports"
    );
    let webhook_port = i32::from(args.server.listen.port());
    let admin_port = i32::from(args.server.admin_listen.port());
    assert_eq!((webhook_port, admin_port), (8443, 8081));

    // Anti-affinity, disruption budget, drain, resources.
    let anti_affinity = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .expect("pod anti-affinity");
    let terms = anti_affinity
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .map(|weighted| &weighted.pod_affinity_term)
        .chain(
            anti_affinity
                .required_during_scheduling_ignored_during_execution
                .iter()
                .flatten(),
        )
        .collect::<Vec<_>>();
    assert!(terms.iter().any(|term| {
        term.topology_key == "kubernetes.io/hostname"
            && term
                .label_selector
                .as_ref()
                .is_some_and(|s| selects(s, &template_labels))
    }));
    let budget = only(&rendered.disruption_budgets, "PodDisruptionBudget");
    assert_eq!(namespace_of(&budget.metadata), namespace);
    let budget_spec = budget.spec.as_ref().expect("a PDB spec");
    assert!(selects(
        budget_spec.selector.as_ref().expect("a PDB selector"),
        &template_labels
    ));
    assert_eq!(budget_spec.min_available, Some(IntOrString::Int(1)));
    assert!(
        container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .is_some(),
        "a preStop delay lets endpoints drain"
    );
    let resources = container.resources.as_ref().expect("resources");
    assert!(resources.requests.as_ref().is_some_and(|r| !r.is_empty()));
    assert!(
        resources
            .limits
            .as_ref()
            .is_some_and(|l| l.contains_key("memory"))
    );

    // Probes: the admin port's paths.
    for (probe, path) in [
        (&container.liveness_probe, LIVEZ_PATH),
        (&container.readiness_probe, READYZ_PATH),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an httpGet probe");
        assert_eq!(
            get.path.as_deref(),
            Some(path),
            "a probe path of the admin server"
        );
        assert_eq!(
            container_port(container, &get.port),
            admin_port,
            "probes go to the admin port"
        );
        assert!(get.scheme.as_deref().is_none_or(|s| s == "HTTP"));
    }

    // Hardened: pod-level settings apply unless the container overrides them.
    let pod_security = pod.security_context.clone().unwrap_or_default();
    let security = container.security_context.clone().unwrap_or_default();
    assert_eq!(
        security.run_as_non_root.or(pod_security.run_as_non_root),
        Some(true)
    );
    let user = security.run_as_user.or(pod_security.run_as_user);
    assert!(
        user.is_some_and(|uid| uid > 0),
        "a numeric non-root user, so runAsNonRoot can be checked without the image"
    );
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_ne!(security.privileged, Some(true));
    let capabilities = security.capabilities.clone().unwrap_or_default();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert!(capabilities.add.is_none_or(|add| add.is_empty()));
    let seccomp = security
        .seccomp_profile
        .or(pod_security.seccomp_profile)
        .expect("a seccomp profile");
    assert_eq!(seccomp.type_, "RuntimeDefault");
    assert_ne!(pod.host_network, Some(true));

    // Hostile clients (issue 12): the connection caps are at most those whose peak memory
    // docs/performance.md measured (under 64 MiB, a quarter of the memory limit), and a
    // request's connection may stay quiet for the whole request timeout.
    assert!(
        args.server.max_connections <= 256 && args.server.admin_max_connections <= 64,
        "caps above those measured: {} and {}",
        args.server.max_connections,
        args.server.admin_max_connections
    );
    assert!(args.server.idle_timeout > args.server.request_timeout);

    // The certificate: --tls-cert and --tls-key are files of one mounted Secret.
    let cert = args.server.tls_cert.clone().expect("--tls-cert");
    let key = args.server.tls_key.clone().expect("--tls-key");
    assert_eq!(cert.parent(), key.parent());
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(&m.mount_path) == cert.parent().unwrap())
        .expect("the certificate directory is a volume mount");
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume");
    let secret = volume.secret.as_ref().expect("a Secret volume");
    assert!(
        secret.items.is_none(),
        "the Secret's keys are the file names"
    );
    let tls_secret = secret.secret_name.clone().expect("a Secret name");
    assert_eq!(
        (
            cert.file_name().unwrap().to_str(),
            key.file_name().unwrap().to_str()
        ),
        (Some("tls.crt"), Some("tls.key")),
        "the keys of a kubernetes.io/tls Secret"
    );

    // The lease lives in the pod's namespace, where the Role is.
    let lease_namespace = args.reconciler.lease_namespace.clone();
    assert!(lease_namespace.is_none_or(|n| n == namespace));
    let pod_namespace = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAMESPACE")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .expect("POD_NAMESPACE from the downward API");
    assert_eq!(pod_namespace.field_path, "metadata.namespace");

    // Service 443 → targetPort (by name) → the container's webhook port.
    let service = only(&rendered.services, "Service");
    assert_eq!(
        (name_of(&service.metadata), namespace_of(&service.metadata)),
        (SERVICE, namespace.as_str())
    );
    let service_spec = service.spec.as_ref().expect("a Service spec");
    assert!(
        service_spec
            .type_
            .as_deref()
            .is_none_or(|t| t == "ClusterIP")
    );
    let service_selector = service_spec.selector.as_ref().expect("a selector");
    assert!(
        service_selector
            .iter()
            .all(|(k, v)| template_labels.get(k) == Some(v))
    );
    let service_port = only(service_spec.ports.as_deref().unwrap_or_default(), "port");
    assert_eq!(service_port.port, 443);
    let target = service_port.target_port.as_ref().expect("a targetPort");
    assert!(
        matches!(target, IntOrString::String(_)),
        "targetPort by name"
    );
    assert_eq!(
        container_port(container, target),
        webhook_port,
        "the Service's targetPort is the container's webhook port (--listen)"
    );

    // RBAC: exactly the code's permissions, bound to the Deployment's ServiceAccount.
    let account = only(&rendered.service_accounts, "ServiceAccount");
    let account_name = name_of(&account.metadata);
    assert_eq!(namespace_of(&account.metadata), namespace);
    assert_eq!(pod.service_account_name.as_deref(), Some(account_name));
    let cluster_role = only(&rendered.cluster_roles, "ClusterRole");
    assert!(cluster_role.aggregation_rule.is_none());
    assert_eq!(
        grants(cluster_role.rules.as_deref().unwrap_or_default()),
        expected_grants(&permissions::cluster_rules()),
        "the ClusterRole must grant exactly permissions::cluster_rules()"
    );
    let role = only(&rendered.roles, "Role");
    assert_eq!(namespace_of(&role.metadata), namespace);
    assert_eq!(
        grants(role.rules.as_deref().unwrap_or_default()),
        expected_grants(&permissions::namespaced_rules()),
        "the Role must grant exactly permissions::namespaced_rules()"
    );
    let binds_account = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        let [subject] = subjects.as_deref().unwrap_or_default() else {
            panic!("one subject");
        };
        subject.kind == "ServiceAccount"
            && subject.name == account_name
            && subject.namespace.as_deref() == Some(namespace.as_str())
    };
    let cluster_binding = only(&rendered.cluster_role_bindings, "ClusterRoleBinding");
    assert_eq!(
        (
            cluster_binding.role_ref.kind.as_str(),
            cluster_binding.role_ref.name.as_str()
        ),
        ("ClusterRole", name_of(&cluster_role.metadata))
    );
    assert!(binds_account(&cluster_binding.subjects));
    let binding = only(&rendered.role_bindings, "RoleBinding");
    assert_eq!(namespace_of(&binding.metadata), namespace);
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", name_of(&role.metadata))
    );
    assert!(binds_account(&binding.subjects));

    // Webhooks: the Service, its port and the server's paths; exactly ISVCs, ISVC status and
    // the config ConfigMap.
    let mutating = only(&rendered.mutating, "MutatingWebhookConfiguration");
    let validating = only(&rendered.validating, "ValidatingWebhookConfiguration");
    let isvc = isvc_api_resource();
    let (group, version) = (isvc.group.as_str(), isvc.version.as_str());
    let status = format!("{}/status", isvc.plural);
    let isvcs = isvc.plural.as_str();
    let config_namespace = args.config_namespace.clone();
    let mut ca_bundles = Vec::new();
    let mut covered = Coverage::new();
    for (path, hooks) in [
        (MUTATE_PATH, mutating_hooks(mutating)),
        (VALIDATE_PATH, validating_hooks(validating)),
    ] {
        let names: BTreeSet<&str> = hooks.iter().map(|hook| hook.name).collect();
        assert_eq!(names.len(), hooks.len(), "webhook names are unique");
        for hook in hooks {
            let name = hook.name;
            assert_eq!(
                (
                    hook.service.name.as_str(),
                    hook.service.namespace.as_str(),
                    hook.service.port,
                    hook.service.path.as_deref()
                ),
                (SERVICE, namespace.as_str(), Some(443), Some(path)),
                "{name}: the Service, its port and the server's route"
            );
            assert_eq!(hook.admission_review_versions, ["v1"], "{name}");
            assert_eq!(hook.side_effects, "None", "{name}");
            assert_eq!(hook.timeout_seconds, Some(5), "{name}");
            assert_eq!(hook.failure_policy, Some("Fail"), "{name}");
            ca_bundles.push(hook.ca_bundle.map(<[u8]>::to_vec));
            let seen = coverage(path, hook.rules);
            let config_maps = seen
                .iter()
                .filter(|(_, _, _, r, _)| r == "configmaps")
                .count();
            if config_maps > 0 {
                assert_eq!(
                    config_maps,
                    seen.len(),
                    "{name}: the ConfigMap rule has a webhook of its own (its matchCondition \
                     must not filter anything else)"
                );
                assert_eq!(
                    namespace_names(hook.namespace_selector),
                    ("In".to_string(), BTreeSet::from([config_namespace.clone()])),
                    "{name}: only --config-namespace"
                );
                assert_eq!(
                    hook.match_conditions
                        .iter()
                        .map(|(_, e)| e.as_str())
                        .collect::<Vec<_>>(),
                    [format!("object.metadata.name == '{CONFIG_MAP_NAME}'")],
                    "{name}: only the {CONFIG_MAP_NAME} ConfigMap"
                );
            } else {
                assert_eq!(
                    namespace_names(hook.namespace_selector),
                    (
                        "NotIn".to_string(),
                        BTreeSet::from([namespace.clone(), "kube-system".to_string()])
                    ),
                    "{name}: never its own namespace (a broken webhook cannot block its own \
                     repair) nor kube-system"
                );
                let status_rule = seen
                    .iter()
                    .any(|(_, _, _, resource, _)| *resource == status);
                assert!(
                    !status_rule
                        || seen
                            .iter()
                            .all(|(_, _, _, resource, _)| *resource == status),
                    "{name}: the status rule has a webhook of its own (its matchCondition must \
                     not filter anything else)"
                );
                let expected: Vec<String> = if status_rule {
                    // The status mutator leaves out the replica's own status patches.
                    vec![format!(
                        "request.userInfo.username != \
                         'system:serviceaccount:{namespace}:{account_name}'"
                    )]
                } else {
                    Vec::new()
                };
                assert_eq!(
                    hook.match_conditions
                        .iter()
                        .map(|(_, e)| e.clone())
                        .collect::<Vec<_>>(),
                    expected,
                    "{name}"
                );
            }
            covered.extend(seen);
        }
    }
    assert_eq!(
        covered,
        expect_coverage(&[
            (MUTATE_PATH, group, version, isvcs, &["CREATE", "UPDATE"]),
            (MUTATE_PATH, group, version, &status, &["UPDATE"]),
            (VALIDATE_PATH, group, version, isvcs, &["CREATE", "UPDATE"]),
            (VALIDATE_PATH, "", "v1", "configmaps", &["CREATE", "UPDATE"]),
        ]),
        "the webhooks see exactly ISVCs, ISVC status and the config ConfigMap"
    );

    Wiring {
        tls_secret,
        ca_bundles,
        namespace,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_cert_manager_overlay_agrees_with_the_code() {
    if !kubectl_available() {
        return;
    }
    let rendered = Rendered::parse(&kustomize(&repo().join("manifests/cert-manager")));
    let wiring = check_common(&rendered);
    assert!(
        rendered.secrets.is_empty(),
        "cert-manager writes the Secret"
    );
    assert!(
        wiring.ca_bundles.iter().all(Option::is_none),
        "the CA injector fills every caBundle"
    );

    let certificate = *only(&rendered.cert_manager_kind("Certificate"), "Certificate");
    let issuer = *only(&rendered.cert_manager_kind("Issuer"), "Issuer");
    for object in [certificate, issuer] {
        assert_eq!(object["metadata"]["namespace"], wiring.namespace.as_str());
    }
    let certificate_name = certificate["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        certificate["spec"]["secretName"], wiring.tls_secret,
        "the Certificate fills the Secret the Deployment mounts"
    );
    assert_eq!(
        certificate["spec"]["issuerRef"],
        serde_json::json!({"kind": "Issuer", "name": issuer["metadata"]["name"]})
    );
    let dns_names: Vec<String> =
        serde_json::from_value(certificate["spec"]["dnsNames"].clone()).expect("dnsNames");
    assert_eq!(
        dns_names,
        certs::service_dns_names(SERVICE, &wiring.namespace)
    );

    let inject = format!("{}/{certificate_name}", wiring.namespace);
    let annotations = [
        &only(&rendered.mutating, "mutating").metadata.annotations,
        &only(&rendered.validating, "validating")
            .metadata
            .annotations,
    ];
    for annotations in annotations {
        assert_eq!(
            annotations.as_ref().and_then(|a| a.get(INJECT_CA_FROM)),
            Some(&inject),
            "{INJECT_CA_FROM} on both webhook configurations"
        );
    }
}

#[test]
fn the_self_signed_overlay_agrees_with_the_code() {
    if !kubectl_available() {
        return;
    }
    // The overlay reads certs/: render a copy, never the repository's own certs/.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("manifests/base"),
        &dir.path().join("manifests/base"),
    );
    copy_dir(
        &repo().join("manifests/self-signed"),
        &dir.path().join("manifests/self-signed"),
    );
    let certs_dir: PathBuf = dir.path().join("certs");
    std::fs::create_dir_all(&certs_dir).unwrap();
    std::fs::copy(
        repo().join("certs/kustomization.yaml"),
        certs_dir.join("kustomization.yaml"),
    )
    .unwrap();
    let bundle = certs::generate(SERVICE, NAMESPACE, &[], 1).unwrap();
    certs::write_bundle(&certs_dir, &bundle).unwrap();

    let rendered = Rendered::parse(&kustomize(&dir.path().join("manifests/self-signed")));
    let wiring = check_common(&rendered);
    assert!(rendered.cert_manager.is_empty());

    let secret = only(&rendered.secrets, "Secret");
    assert_eq!(
        (name_of(&secret.metadata), namespace_of(&secret.metadata)),
        (wiring.tls_secret.as_str(), wiring.namespace.as_str()),
        "the generated Secret is the one the Deployment mounts"
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.as_ref().expect("Secret data");
    let file = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    assert_eq!(file("ca.crt"), bundle.ca_pem);
    assert_eq!(file("tls.crt"), bundle.cert_pem);
    assert_eq!(file("tls.key"), bundle.key_pem);

    // Every caBundle is the generated CA: base64 of ca.crt on the wire.
    assert!(!wiring.ca_bundles.is_empty());
    for ca_bundle in &wiring.ca_bundles {
        assert_eq!(ca_bundle.as_deref(), Some(bundle.ca_pem.as_bytes()));
    }
    let raw = kustomize(&dir.path().join("manifests/self-signed"));
    let expected = certs::ca_bundle(&bundle);
    let mut seen = 0;
    for object in raw.iter().filter(|o| {
        o["kind"]
            .as_str()
            .is_some_and(|k| k.ends_with("WebhookConfiguration"))
    }) {
        for webhook in object["webhooks"].as_array().unwrap() {
            assert_eq!(webhook["clientConfig"]["caBundle"], expected.as_str());
            seen += 1;
        }
    }
    assert_eq!(seen, wiring.ca_bundles.len());
    for config in [
        &only(&rendered.mutating, "mutating").metadata.annotations,
        &only(&rendered.validating, "validating")
            .metadata
            .annotations,
    ] {
        assert!(
            config
                .as_ref()
                .is_none_or(|a| !a.contains_key(INJECT_CA_FROM))
        );
    }
}

/// `manifests/dev`: the CRD the webhook rules name, KServe's namespace and a config the webhook
/// accepts; the example ISVC plans to an Ingress with `--route-owner isvc-ingress`, as
/// `scripts/e2e-kind.sh` runs it.
#[test]
fn the_dev_manifests_serve_the_example() {
    if !kubectl_available() {
        return;
    }
    let objects = kustomize(&repo().join("manifests/dev"));
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "CustomResourceDefinition", "Namespace"])
    );

    let isvc = isvc_api_resource();
    let crd: CustomResourceDefinition =
        serde_json::from_value(find(&objects, "CustomResourceDefinition").clone()).expect("a CRD");
    assert_eq!(crd.spec.group, isvc.group);
    assert_eq!(crd.spec.names.plural, isvc.plural);
    assert_eq!(crd.spec.names.kind, isvc.kind);
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == isvc.version)
        .expect("the version the webhooks and the reconciler use");
    assert!(version.served && version.storage);
    assert!(
        version
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some()),
        "a status subresource (the status mutator's rule)"
    );

    let defaults = default_serve_args();
    let namespace: Namespace = typed(find(&objects, "Namespace"));
    assert_eq!(name_of(&namespace.metadata), defaults.config_namespace);
    let config_map: k8s_openapi::api::core::v1::ConfigMap = typed(find(&objects, "ConfigMap"));
    assert_eq!(
        (
            name_of(&config_map.metadata),
            namespace_of(&config_map.metadata)
        ),
        (CONFIG_MAP_NAME, defaults.config_namespace.as_str())
    );
    let config = KserveConfig::from_config_map_data(&config_map.data.unwrap_or_default())
        .unwrap_or_else(|error| panic!("the dev config is invalid: {error}"));
    let owner = RouteOwner::IsvcIngress;
    assert_eq!(owner.conflicts_with(&config), Vec::<String>::new());

    let text = std::fs::read_to_string(repo().join("manifests/dev/inferenceservice.yaml")).unwrap();
    let object: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        object["apiVersion"],
        format!("{}/{}", isvc.group, isvc.version)
    );
    let example = InferenceService::from_json(&object, "default").expect("a readable ISVC");
    let policy = Policy {
        route_owner: owner,
        ..Policy::default()
    };
    let planned = plan::plan(&example, &config, &policy).expect("the example is valid");
    assert_eq!(planned.route_kind, RouteKind::Ingress);
    assert!(planned.annotations.contains_key(annotations::URL));
}

/// `manifests/analyze`: one ClusterRole granting exactly the read-only calls of `analyze`
/// (`permissions::analyze_rules()`), and nothing else to apply.
#[test]
fn the_analyze_cluster_role_grants_exactly_what_analyze_reads() {
    let text = std::fs::read_to_string(repo().join("manifests/analyze/clusterrole.yaml"))
        .expect("manifests/analyze/clusterrole.yaml");
    let object: Value = serde_yaml_ng::from_str(&text).expect("YAML");
    let role: ClusterRole = typed(&object);
    assert_eq!(name_of(&role.metadata), "isvc-ingress-analyze");
    assert!(role.aggregation_rule.is_none());
    let granted = grants(role.rules.as_deref().unwrap_or_default());
    assert_eq!(
        granted,
        expected_grants(&permissions::analyze_rules()),
        "the ClusterRole must grant exactly permissions::analyze_rules()"
    );
    assert!(
        granted
            .iter()
            .all(|(_, _, verb)| ["get", "list", "watch"].contains(&verb.as_str())),
        "read-only"
    );
    if kubectl_available() {
        let objects = kustomize(&repo().join("manifests/analyze"));
        assert_eq!(
            objects,
            [object],
            "the kustomization applies the ClusterRole alone"
        );
    }
}
