//! The route links of the chain: each route the plan needs exists, is owned as expected and
//! matches the plan; its controller accepts it; its Gateway listener admits its host and
//! namespace; its backend Service has the port it names. Then the URLs in the status.

use super::live::{self, CLUSTER_LOCAL_SUFFIX, array, text};
use super::snapshot::{Kind, object_namespace};
use super::{Code, Context, Findings, ObjectRef, PlanOutcome, Planned};
use crate::field_diff;
use crate::plan::objects::RouteObject;
use serde_json::Value;

/// Most differences IA0303 lists before "and N more".
const SHOWN_DIFFERENCES: usize = 4;

pub(super) fn check_routes(
    context: &Context,
    entry: &Planned,
    outcome: &PlanOutcome,
    findings: &mut Findings,
) {
    for route in &outcome.routes {
        let Some(kind) = live::kind_of(route) else {
            continue;
        };
        let metadata = route.metadata();
        let reference = ObjectRef::new(kind, &metadata.namespace, &metadata.name);
        let Some(object) = context
            .snapshot
            .get(kind, &metadata.namespace, &metadata.name)
        else {
            missing(context, entry, kind, route, reference, findings);
            continue;
        };
        check_owner(context, entry, outcome, kind, object, &reference, findings);
        check_spec(route, object, &reference, findings);
        match kind {
            Kind::HttpRoute => {
                check_parents(object, &reference, findings);
                check_gateways(context, object, &reference, findings);
            }
            Kind::VirtualService => check_istio_gateways(context, object, &reference, findings),
            Kind::Ingress => check_ingress(context, object, &reference, findings),
            Kind::DomainMapping => check_domain_mapping(object, &reference, findings),
            _ => {}
        }
        check_backends(context, kind, object, &reference, findings);
    }
}

fn missing(
    context: &Context,
    entry: &Planned,
    kind: Kind,
    route: &RouteObject,
    reference: ObjectRef,
    findings: &mut Findings,
) {
    let isvc = entry.key();
    let (message, fix) = if context.snapshot.absent.contains(&kind) {
        (
            format!(
                "the plan needs {reference}, and the cluster does not serve {}.{} (its CRD is \
                 not installed)",
                kind.plural(),
                kind.group()
            ),
            match kind {
                Kind::HttpRoute => "install the Gateway API CRDs (standard channel)",
                Kind::VirtualService => "install Istio, or set disableIstioVirtualHost",
                Kind::DomainMapping => "install Knative Serving",
                _ => "use a cluster that serves this kind",
            }
            .to_string(),
        )
    } else if context.policy.route_owner.writes(route.kind()) {
        (
            format!("the plan needs {reference}, and it does not exist"),
            format!(
                "isvc-ingress's reconciler writes it: check that it runs and holds its Lease \
                 (`kubectl -n isvc-ingress logs deploy/isvc-ingress`) and read the IngressReady \
                 condition of {isvc}"
            ),
        )
    } else {
        (
            format!("the plan needs {reference}, and it does not exist"),
            format!(
                "KServe's controller writes it once the components are Ready: read the \
                 conditions of {isvc} (`kubectl get isvc -n {} {} -o yaml`) and KServe's \
                 controller log",
                entry.namespace, entry.name
            ),
        )
    };
    findings.push(
        Code::RouteMissing,
        vec![
            reference,
            ObjectRef::of(Kind::InferenceService, entry.object),
        ],
        message,
        fix,
    );
}

/// IA0302: the ISVC must be the route's controller (KServe and isvc-ingress both set the
/// ownerReference), and the managed-by label must say isvc-ingress exactly when isvc-ingress
/// writes routes of this kind (`--route-owner`).
fn check_owner(
    context: &Context,
    entry: &Planned,
    outcome: &PlanOutcome,
    kind: Kind,
    object: &Value,
    reference: &ObjectRef,
    findings: &mut Findings,
) {
    let isvc_ref = ObjectRef::of(Kind::InferenceService, entry.object);
    let controller_problem = match live::controller(object) {
        Some(("InferenceService", name, uid))
            if name == outcome.isvc.name
                && uid
                    .zip(outcome.isvc.uid.as_deref())
                    .is_none_or(|(live, isvc)| live == isvc) =>
        {
            None
        }
        Some(("InferenceService", name, Some(uid))) if name == outcome.isvc.name => Some(format!(
            "{reference} is controlled by an earlier InferenceService {} (uid {uid}; the \
             current one is {}): KServe does not update it",
            entry.key(),
            outcome.isvc.uid.as_deref().unwrap_or_default()
        )),
        Some((owner_kind, name, _)) => Some(format!(
            "{reference} is controlled by {owner_kind} {name}, not by {}",
            entry.key()
        )),
        None => Some(format!(
            "{reference} has no controller ownerReference: nobody keeps it in line with the \
             plan, and it outlives {}",
            entry.key()
        )),
    };
    if let Some(message) = controller_problem {
        findings.push(
            Code::RouteOwnership,
            vec![reference.clone(), isvc_ref.clone()],
            message,
            format!(
                "delete it ({}); its writer recreates it with the right owner",
                live::delete_command(kind, object)
            ),
        );
        return;
    }
    let ours = live::managed_by_us(object);
    let writes = context.policy.route_owner.writes(kind.name());
    if writes && !ours {
        findings.push(
            Code::RouteOwnership,
            vec![reference.clone(), isvc_ref],
            format!(
                "isvc-ingress writes the {} objects (--route-owner isvc-ingress), and \
                 {reference} lacks its label app.kubernetes.io/managed-by=isvc-ingress: another \
                 writer (KServe) made it",
                kind.name()
            ),
            "keep KServe away (disableIngressCreation and disableIstioVirtualHost true) and \
             delete the route: isvc-ingress recreates it",
        );
    } else if !writes && ours {
        findings.push(
            Code::RouteOwnership,
            vec![reference.clone(), isvc_ref],
            format!(
                "KServe writes the {} objects (--route-owner kserve), and {reference} \
                 carries app.kubernetes.io/managed-by=isvc-ingress: two controllers write it",
                kind.name()
            ),
            "run every isvc-ingress replica with the same --route-owner; with kserve, delete \
             the route and let KServe recreate it",
        );
    }
}

/// IA0303: the planned spec against the live one (fields the API server defaults are not
/// differences; see [`field_diff`]).
fn check_spec(route: &RouteObject, object: &Value, reference: &ObjectRef, findings: &mut Findings) {
    let planned = route.to_value();
    let differences = field_diff::differences(
        "spec",
        &planned["spec"],
        object.get("spec").unwrap_or(&Value::Null),
    );
    if differences.is_empty() {
        return;
    }
    let mut shown: Vec<String> = differences
        .iter()
        .take(SHOWN_DIFFERENCES)
        .map(ToString::to_string)
        .collect();
    if differences.len() > SHOWN_DIFFERENCES {
        shown.push(format!(
            "and {} more",
            differences.len() - SHOWN_DIFFERENCES
        ));
    }
    findings.push(
        Code::RouteDiffers,
        vec![reference.clone()],
        format!("{reference} differs from the plan: {}", shown.join("; ")),
        "undo the manual edit (its writer restores the plan on its next reconcile); \
         `isvc-ingress render -o yaml` prints the planned object",
    );
}

/// A Gateway API parentRef with its defaults filled in: `(namespace, name, sectionName)`.
fn parent_refs(route: &Value) -> Vec<(String, String, Option<String>)> {
    let route_namespace = object_namespace(route);
    array(route, "/spec/parentRefs")
        .iter()
        .filter(|parent| {
            text(parent, "/group").unwrap_or("gateway.networking.k8s.io")
                == "gateway.networking.k8s.io"
                && text(parent, "/kind").unwrap_or("Gateway") == "Gateway"
        })
        .map(|parent| {
            (
                text(parent, "/namespace")
                    .unwrap_or(route_namespace)
                    .to_string(),
                text(parent, "/name").unwrap_or("").to_string(),
                text(parent, "/sectionName").map(str::to_string),
            )
        })
        .collect()
}

/// IA0401 / IA0402: KServe's readiness rule (reference §5.5): every parent has a status entry,
/// and no condition of it is False.
fn check_parents(route: &Value, reference: &ObjectRef, findings: &mut Findings) {
    let route_namespace = object_namespace(route);
    let statuses = array(route, "/status/parents");
    for (namespace, name, _) in parent_refs(route) {
        let gateway = ObjectRef::new(Kind::Gateway, &namespace, &name);
        let entries: Vec<&Value> = statuses
            .iter()
            .filter(|entry| {
                text(entry, "/parentRef/name") == Some(name.as_str())
                    && text(entry, "/parentRef/namespace").unwrap_or(route_namespace) == namespace
            })
            .collect();
        if entries.is_empty() {
            findings.push(
                Code::RouteNotSeen,
                vec![reference.clone(), gateway.clone()],
                format!(
                    "{reference} has no status for {gateway}: no Gateway controller has accepted \
                     or refused it"
                ),
                format!(
                    "check that the controller of {gateway}'s GatewayClass runs and that the \
                     GatewayClass is Accepted (kubectl get gatewayclass)"
                ),
            );
            continue;
        }
        let failed = entries
            .iter()
            .flat_map(|entry| array(entry, "/conditions"))
            .find(|condition| text(condition, "/status") == Some("False"));
        if let Some(condition) = failed {
            let field = |key: &str| text(condition, key).unwrap_or("");
            findings.push(
                Code::RouteNotAccepted,
                vec![reference.clone(), gateway.clone()],
                format!(
                    "{gateway} reports {}=False ({}) on {reference}: {}",
                    field("/type"),
                    field("/reason"),
                    field("/message")
                ),
                "fix what the reason names: NotAllowedByListeners and NoMatchingListenerHostname \
                 are the Gateway's listeners (IA0502, IA0503), BackendNotFound and \
                 RefNotPermitted the backend Service (IA0601)",
            );
        }
    }
}

/// IA0501-IA0503: the Gateway exists, a listener admits each hostname, and that listener
/// allows routes from the route's namespace.
fn check_gateways(
    context: &Context,
    route: &Value,
    reference: &ObjectRef,
    findings: &mut Findings,
) {
    let route_namespace = object_namespace(route);
    let hostnames: Vec<&str> = array(route, "/spec/hostnames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (namespace, name, section) in parent_refs(route) {
        let gateway_ref = ObjectRef::new(Kind::Gateway, &namespace, &name);
        let Some(gateway) = context.snapshot.get(Kind::Gateway, &namespace, &name) else {
            findings.push(
                Code::GatewayMissing,
                vec![gateway_ref.clone(), reference.clone()],
                format!("{reference} attaches to {gateway_ref}, which does not exist"),
                "create the Gateway, or set kserveIngressGateway (or the isvc-ingress.io/gateway \
                 annotation) to a Gateway that exists",
            );
            continue;
        };
        check_programmed(gateway, &gateway_ref, findings);
        let listeners: Vec<&Value> = array(gateway, "/spec/listeners")
            .iter()
            .filter(|listener| {
                section
                    .as_deref()
                    .is_none_or(|section| text(listener, "/name") == Some(section))
                    && matches!(text(listener, "/protocol"), Some("HTTP" | "HTTPS"))
            })
            .collect();
        let hosts: Vec<Option<&str>> = if hostnames.is_empty() {
            vec![None]
        } else {
            hostnames.iter().copied().map(Some).collect()
        };
        for host in hosts {
            let admitting: Vec<&&Value> = listeners
                .iter()
                .filter(|listener| {
                    host.is_none_or(|host| listener_admits_host(text(listener, "/hostname"), host))
                })
                .collect();
            let shown_host = host.unwrap_or("any host");
            if admitting.is_empty() {
                findings.push(
                    Code::ListenerHostMismatch,
                    vec![gateway_ref.clone(), reference.clone()],
                    format!(
                        "no HTTP or HTTPS listener of {gateway_ref}{} accepts {shown_host} \
                         (listener hostnames: {})",
                        section
                            .as_deref()
                            .map(|section| format!(" named {section}"))
                            .unwrap_or_default(),
                        listener_hostnames(&listeners)
                    ),
                    "add a listener whose hostname is empty, the host, or a wildcard above it \
                     (*.<domain>), or change ingressDomain / domainTemplate to hosts the \
                     Gateway serves",
                );
                continue;
            }
            let allowed = admitting.iter().any(|listener| {
                listener_allows(
                    context,
                    listener,
                    object_namespace(gateway),
                    route_namespace,
                )
            });
            if !allowed {
                findings.push(
                    Code::ListenerNamespaceRefused,
                    vec![gateway_ref.clone(), reference.clone()],
                    format!(
                        "the listeners of {gateway_ref} that accept {shown_host} do not allow \
                         HTTPRoutes from namespace {route_namespace} (allowedRoutes)"
                    ),
                    format!(
                        "set allowedRoutes.namespaces.from: All on the listener, or Selector with \
                         a label namespace {route_namespace} carries"
                    ),
                );
            }
        }
    }
}

/// IA0504, once per Gateway and ISVC: the Gateway's controller reports it `Programmed` (the
/// Gateway API condition saying a data plane serves it) and gives it an address.
fn check_programmed(gateway: &Value, gateway_ref: &ObjectRef, findings: &mut Findings) {
    let already = findings.list.iter().any(|finding| {
        finding.code == Code::GatewayNotProgrammed
            && finding.inference_service == findings.isvc
            && finding.objects.first() == Some(gateway_ref)
    });
    if already {
        return;
    }
    let programmed = array(gateway, "/status/conditions")
        .iter()
        .find(|condition| text(condition, "/type") == Some("Programmed"));
    let problem = match programmed {
        None => Some("has no Programmed condition: no Gateway controller has taken it".to_string()),
        Some(condition) if text(condition, "/status") != Some("True") => Some(format!(
            "is not Programmed ({}): {}",
            text(condition, "/reason").unwrap_or(""),
            text(condition, "/message").unwrap_or("")
        )),
        Some(_) if array(gateway, "/status/addresses").is_empty() => {
            Some("has no address (status.addresses is empty)".to_string())
        }
        Some(_) => None,
    };
    if let Some(problem) = problem {
        findings.push(
            Code::GatewayNotProgrammed,
            vec![gateway_ref.clone()],
            format!("{gateway_ref} {problem}"),
            "check its GatewayClass (kubectl get gatewayclass), the controller's log, and the \
             controller's Service of type LoadBalancer",
        );
    }
}

fn listener_hostnames(listeners: &[&Value]) -> String {
    if listeners.is_empty() {
        return "no HTTP listener".to_string();
    }
    listeners
        .iter()
        .map(|listener| text(listener, "/hostname").unwrap_or("(any)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gateway API hostname matching: no listener hostname admits every host; `*.d` admits names
/// below `d` (not `d` itself); otherwise the names are equal.
fn listener_admits_host(listener: Option<&str>, host: &str) -> bool {
    match listener {
        None | Some("") => true,
        Some(pattern) => match pattern.strip_prefix('*') {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => pattern.eq_ignore_ascii_case(host),
        },
    }
}

/// `allowedRoutes` of a listener: the kinds (HTTPRoute by default on HTTP/HTTPS) and the
/// namespaces (`Same` by default, `All`, or a `Selector` on the namespace's labels; a
/// namespace the snapshot lacks is given the benefit of the doubt).
fn listener_allows(
    context: &Context,
    listener: &Value,
    gateway_namespace: &str,
    route_namespace: &str,
) -> bool {
    let kinds = array(listener, "/allowedRoutes/kinds");
    let kind_allowed = kinds.is_empty()
        || kinds.iter().any(|kind| {
            text(kind, "/kind") == Some("HTTPRoute")
                && text(kind, "/group").unwrap_or("gateway.networking.k8s.io")
                    == "gateway.networking.k8s.io"
        });
    if !kind_allowed {
        return false;
    }
    match text(listener, "/allowedRoutes/namespaces/from").unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let Some(namespace) = context.snapshot.get(Kind::Namespace, "", route_namespace) else {
                return true;
            };
            let selector = listener
                .pointer("/allowedRoutes/namespaces/selector")
                .unwrap_or(&Value::Null);
            selector_matches(selector, namespace)
        }
        _ => gateway_namespace == route_namespace,
    }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions` with In, NotIn, Exists,
/// DoesNotExist) against an object's labels.
fn selector_matches(selector: &Value, object: &Value) -> bool {
    let labels = object.pointer("/metadata/labels");
    let label = |key: &str| {
        labels
            .and_then(|labels| labels.get(key))
            .and_then(Value::as_str)
    };
    let labels_match = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|wanted| {
            wanted
                .iter()
                .all(|(key, value)| label(key) == value.as_str())
        });
    let expressions_match = array(selector, "/matchExpressions")
        .iter()
        .all(|expression| {
            let key = text(expression, "/key").unwrap_or("");
            let values: Vec<&str> = array(expression, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match text(expression, "/operator") {
                Some("In") => label(key).is_some_and(|value| values.contains(&value)),
                Some("NotIn") => label(key).is_none_or(|value| !values.contains(&value)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

/// A gateway reference of a VirtualService (`<namespace>/<name>` or `<name>` in the
/// VirtualService's namespace); None for the `mesh` pseudo-gateway.
fn istio_gateway_ref<'a>(reference: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    if reference == "mesh" {
        return None;
    }
    Some(reference.split_once('/').unwrap_or((namespace, reference)))
}

/// IA0403 and IA0502 for a VirtualService: every gateway it names exists, and each external
/// host is in the `hosts` of a server of one of them.
fn check_istio_gateways(
    context: &Context,
    route: &Value,
    reference: &ObjectRef,
    findings: &mut Findings,
) {
    let namespace = object_namespace(route);
    let mut existing = Vec::new();
    for gateway in array(route, "/spec/gateways")
        .iter()
        .filter_map(Value::as_str)
    {
        let Some((gateway_namespace, name)) = istio_gateway_ref(gateway, namespace) else {
            continue;
        };
        let gateway_ref = ObjectRef::new(Kind::IstioGateway, gateway_namespace, name);
        match context
            .snapshot
            .get(Kind::IstioGateway, gateway_namespace, name)
        {
            Some(object) => existing.push(object),
            None => findings.push(
                Code::IstioGatewayMissing,
                vec![gateway_ref.clone(), reference.clone()],
                format!("{reference} is bound to {gateway_ref}, which does not exist"),
                "create the Istio Gateway, or set ingressGateway / localGateway in \
                 inferenceservice-config to gateways that exist",
            ),
        }
    }
    if existing.is_empty() {
        return;
    }
    for host in array(route, "/spec/hosts").iter().filter_map(Value::as_str) {
        if host.ends_with(CLUSTER_LOCAL_SUFFIX) || !host.contains('.') {
            continue;
        }
        let admitted = existing.iter().any(|gateway| {
            array(gateway, "/spec/servers").iter().any(|server| {
                array(server, "/hosts")
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|pattern| {
                        server_admits(pattern, object_namespace(gateway), namespace, host)
                    })
            })
        });
        if !admitted {
            let mut objects: Vec<ObjectRef> = existing
                .iter()
                .map(|gateway| ObjectRef::of(Kind::IstioGateway, gateway))
                .collect();
            objects.insert(0, reference.clone());
            findings.push(
                Code::ListenerHostMismatch,
                objects,
                format!(
                    "no server of the Istio Gateways bound to {reference} lists {host} in \
                     its hosts"
                ),
                "add the host, a wildcard above it (*.<domain>) or * to the hosts of a server \
                 of the ingress gateway",
            );
        }
    }
}

/// An Istio Gateway server host `[<namespace>/]<host>`: the namespace part is `*`, `.` (the
/// Gateway's own) or the VirtualService's; the host part is `*`, `*.<suffix>` or exact.
fn server_admits(
    pattern: &str,
    gateway_namespace: &str,
    route_namespace: &str,
    host: &str,
) -> bool {
    let (namespace, pattern) = pattern.split_once('/').unwrap_or(("*", pattern));
    let namespace_ok = match namespace {
        "*" => true,
        "." => gateway_namespace == route_namespace,
        other => other == route_namespace,
    };
    namespace_ok
        && (pattern == "*"
            || pattern
                .strip_prefix('*')
                .map_or(pattern.eq_ignore_ascii_case(host), |suffix| {
                    host.len() > suffix.len() && host.ends_with(suffix)
                }))
}

/// IA0404 and IA0405 for an Ingress.
fn check_ingress(context: &Context, route: &Value, reference: &ObjectRef, findings: &mut Findings) {
    let class = text(route, "/spec/ingressClassName")
        .or_else(|| text(route, "/metadata/annotations/kubernetes.io~1ingress.class"));
    let class_problem = match class {
        Some(class)
            if context
                .snapshot
                .get(Kind::IngressClass, "", class)
                .is_none() =>
        {
            Some((
                format!("{reference} names IngressClass {class}, which does not exist"),
                vec![
                    reference.clone(),
                    ObjectRef::new(Kind::IngressClass, "", class),
                ],
            ))
        }
        None if !context.snapshot.list(Kind::IngressClass).any(|class| {
            text(
                class,
                "/metadata/annotations/ingressclass.kubernetes.io~1is-default-class",
            ) == Some("true")
        }) =>
        {
            Some((
                format!(
                    "{reference} names no IngressClass and no IngressClass is the default: no \
                     ingress controller serves it"
                ),
                vec![reference.clone()],
            ))
        }
        _ => None,
    };
    if let Some((message, objects)) = class_problem {
        findings.push(
            Code::IngressClassMissing,
            objects,
            message,
            "set ingressClassName in inferenceservice-config (or the isvc-ingress.io/ingress-class \
             annotation) to a class of `kubectl get ingressclass`",
        );
        return;
    }
    if array(route, "/status/loadBalancer/ingress").is_empty() {
        findings.push(
            Code::IngressNoAddress,
            vec![reference.clone()],
            format!(
                "{reference} has no load-balancer address (status.loadBalancer.ingress is \
                 empty): its ingress controller has not admitted it, or has no external address"
            ),
            "check the ingress controller's logs and its Service of type LoadBalancer \
             (`kubectl get svc -A | grep LoadBalancer`)",
        );
    }
}

/// IA0401 / IA0402 for a DomainMapping: Knative reports on it in its Ready condition.
fn check_domain_mapping(route: &Value, reference: &ObjectRef, findings: &mut Findings) {
    let ready = array(route, "/status/conditions")
        .iter()
        .find(|condition| text(condition, "/type") == Some("Ready"));
    match ready {
        None => findings.push(
            Code::RouteNotSeen,
            vec![reference.clone()],
            format!("{reference} has no Ready condition: Knative has not reconciled it"),
            "check that Knative Serving's domain-mapping controller runs \
             (kubectl -n knative-serving get pods)",
        ),
        Some(condition) if text(condition, "/status") != Some("True") => {
            let field = |key: &str| text(condition, key).unwrap_or("");
            findings.push(
                Code::RouteNotAccepted,
                vec![reference.clone()],
                format!(
                    "Knative reports Ready={} ({}) on {reference}: {}",
                    field("/status"),
                    field("/reason"),
                    field("/message")
                ),
                "fix what the reason names (DomainAlreadyClaimed: another DomainMapping holds \
                 the host; CertificateNotReady: the TLS Secret)",
            );
        }
        Some(_) => {}
    }
}

/// A backend a route names: the Service, and its port by number or name (None: any).
struct Backend {
    namespace: String,
    name: String,
    port: Option<PortRef>,
}

enum PortRef {
    Number(u64),
    Name(String),
}

fn backends(kind: Kind, route: &Value) -> Vec<Backend> {
    let namespace = object_namespace(route);
    let mut found: Vec<Backend> = Vec::new();
    let mut add = |backend: Backend| {
        let duplicate = found.iter().any(|seen| {
            seen.namespace == backend.namespace
                && seen.name == backend.name
                && match (&seen.port, &backend.port) {
                    (Some(PortRef::Number(a)), Some(PortRef::Number(b))) => a == b,
                    (Some(PortRef::Name(a)), Some(PortRef::Name(b))) => a == b,
                    (None, None) => true,
                    _ => false,
                }
        });
        if !duplicate {
            found.push(backend);
        }
    };
    match kind {
        Kind::HttpRoute => {
            for rule in array(route, "/spec/rules") {
                for backend in array(rule, "/backendRefs") {
                    if !text(backend, "/group").unwrap_or("").is_empty()
                        || text(backend, "/kind").unwrap_or("Service") != "Service"
                    {
                        continue;
                    }
                    add(Backend {
                        namespace: text(backend, "/namespace").unwrap_or(namespace).to_string(),
                        name: text(backend, "/name").unwrap_or("").to_string(),
                        port: backend
                            .get("port")
                            .and_then(Value::as_u64)
                            .map(PortRef::Number),
                    });
                }
            }
        }
        Kind::Ingress => {
            let default = route.pointer("/spec/defaultBackend/service");
            let paths = array(route, "/spec/rules")
                .iter()
                .flat_map(|rule| array(rule, "/http/paths"))
                .filter_map(|path| path.pointer("/backend/service"));
            for service in default.into_iter().chain(paths) {
                let port = service.get("port").and_then(|port| {
                    port.get("number")
                        .and_then(Value::as_u64)
                        .map(PortRef::Number)
                        .or_else(|| text(port, "/name").map(|name| PortRef::Name(name.into())))
                });
                add(Backend {
                    namespace: namespace.to_string(),
                    name: text(service, "/name").unwrap_or("").to_string(),
                    port,
                });
            }
        }
        Kind::VirtualService => {
            for http in array(route, "/spec/http") {
                for destination in array(http, "/route") {
                    let Some(host) = text(destination, "/destination/host") else {
                        continue;
                    };
                    let Some((name, service_namespace)) = service_of_host(host, namespace) else {
                        continue;
                    };
                    add(Backend {
                        namespace: service_namespace.to_string(),
                        name: name.to_string(),
                        port: destination
                            .pointer("/destination/port/number")
                            .and_then(Value::as_u64)
                            .map(PortRef::Number),
                    });
                }
            }
        }
        Kind::Service => {
            if let Some((name, service_namespace)) = text(route, "/spec/externalName")
                .and_then(|host| host.strip_suffix(CLUSTER_LOCAL_SUFFIX))
                .and_then(|rest| rest.split_once('.'))
            {
                add(Backend {
                    namespace: service_namespace.to_string(),
                    name: name.to_string(),
                    port: None,
                });
            }
        }
        _ => {}
    }
    found
}

/// The Service a mesh host names: `<name>.<namespace>.svc.cluster.local`, or a short `<name>`
/// in the route's namespace. Other hosts are outside the cluster's Services.
fn service_of_host<'a>(host: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    match host.strip_suffix(CLUSTER_LOCAL_SUFFIX) {
        Some(rest) => rest.split_once('.'),
        None if !host.contains('.') => Some((host, namespace)),
        None => None,
    }
}

/// IA0601 / IA0602: each backend Service exists with the port the route names.
fn check_backends(
    context: &Context,
    kind: Kind,
    route: &Value,
    reference: &ObjectRef,
    findings: &mut Findings,
) {
    for backend in backends(kind, route) {
        let service_ref = ObjectRef::new(Kind::Service, &backend.namespace, &backend.name);
        let Some(service) = context
            .snapshot
            .get(Kind::Service, &backend.namespace, &backend.name)
        else {
            findings.push(
                Code::BackendServiceMissing,
                vec![service_ref.clone(), reference.clone()],
                format!("{reference} sends traffic to {service_ref}, which does not exist"),
                "KServe creates the component Services once the model's pods start: read the \
                 InferenceService's PredictorReady condition; a gateway Service (Knative's \
                 local gateway) comes with its install",
            );
            continue;
        };
        let ports = array(service, "/spec/ports");
        let (has_port, wanted) = match &backend.port {
            None => continue,
            Some(PortRef::Number(number)) => (
                ports
                    .iter()
                    .any(|port| port.get("port").and_then(Value::as_u64) == Some(*number)),
                number.to_string(),
            ),
            Some(PortRef::Name(name)) => (
                ports
                    .iter()
                    .any(|port| text(port, "/name") == Some(name.as_str())),
                name.clone(),
            ),
        };
        if !has_port && text(service, "/spec/type") != Some("ExternalName") {
            let available: Vec<String> = ports
                .iter()
                .map(|port| {
                    let number = port.get("port").and_then(Value::as_u64).unwrap_or(0);
                    match text(port, "/name") {
                        Some(name) => format!("{number} ({name})"),
                        None => number.to_string(),
                    }
                })
                .collect();
            findings.push(
                Code::BackendPortMissing,
                vec![service_ref.clone(), reference.clone()],
                format!(
                    "{reference} sends traffic to port {wanted} of {service_ref}, which has \
                     ports: {}",
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available.join(", ")
                    }
                ),
                "KServe's component Services listen on port 80: restore the Service's port (it \
                 was edited), or the route's port",
            );
        }
    }
}

/// IA0701-IA0703: the URLs of the status against the plan.
pub(super) fn check_status(entry: &Planned, outcome: &PlanOutcome, findings: &mut Findings) {
    let plan = &outcome.plan;
    if plan.stopped {
        return;
    }
    let isvc_ref = ObjectRef::of(Kind::InferenceService, entry.object);
    let status = entry.object.get("status").unwrap_or(&Value::Null);
    let mut compare = |code: Code, field: String, expected: &str, found: Option<&str>| {
        if found == Some(expected) {
            return;
        }
        let message = match found {
            Some(found) => format!("{field} is {found}, and the routes serve {expected}"),
            None => format!("{field} is not set; the routes serve {expected}"),
        };
        let fix = match found {
            None => {
                "KServe sets it once the InferenceService is Ready: read its conditions; \
                     with the isvc-ingress status mutator installed the planned URL is written \
                     on the next status update"
            }
            Some(_) => {
                "install the isvc-ingress webhook (its status mutator keeps the URLs \
                        equal to the routes), or use the URL of the routes"
            }
        };
        findings.push(code, vec![isvc_ref.clone()], message, fix);
    };
    if let Some(url) = &plan.url {
        compare(
            Code::StatusUrl,
            "status.url".to_string(),
            url,
            text(status, "/url"),
        );
    }
    if let Some(address) = &plan.address {
        compare(
            Code::StatusAddress,
            "status.address.url".to_string(),
            address,
            text(status, "/address/url"),
        );
    }
    for (kind, component) in &plan.components {
        let key = kind.key();
        compare(
            Code::StatusComponentUrl,
            format!("status.components.{key}.url"),
            &component.url,
            status
                .pointer(&format!("/components/{key}/url"))
                .and_then(Value::as_str),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listener_and_server_hosts_match_like_their_controllers() {
        assert!(listener_admits_host(None, "m.ns.example.com"));
        assert!(listener_admits_host(
            Some("*.example.com"),
            "m.ns.example.com"
        ));
        assert!(!listener_admits_host(Some("*.example.com"), "example.com"));
        assert!(!listener_admits_host(Some("other.com"), "m.ns.example.com"));
        assert!(server_admits(
            "*",
            "istio-system",
            "models",
            "a.example.com"
        ));
        assert!(server_admits(
            "models/*.example.com",
            "istio-system",
            "models",
            "a.example.com"
        ));
        assert!(!server_admits(
            "other/*",
            "istio-system",
            "models",
            "a.example.com"
        ));
        assert!(!server_admits(
            "./*",
            "istio-system",
            "models",
            "a.example.com"
        ));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let namespace = json!({"metadata": {"labels": {"team": "ml", "env": "prod"}}});
        assert!(selector_matches(
            &json!({"matchLabels": {"team": "ml"}}),
            &namespace
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"team": "web"}}),
            &namespace
        ));
        let expressions = json!({"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "legacy", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&expressions, &namespace));
        let refused =
            json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]});
        assert!(!selector_matches(&refused, &namespace));
    }
}
