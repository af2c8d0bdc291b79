//! Counts, not times (the times are `benches/control_plane_scale.rs`'s): with a fleet of
//! [`ISVCS`] InferenceServices of the synthetic mix (`fleet.rs`) settled on the real API server,
//! a restarted `serve` writes nothing; after every managed route is deleted, the catch-up applies
//! each missing route exactly once and writes no status that was already right; an
//! `ingressDomain` change writes exactly the routes and statuses that change and nothing of the
//! cluster-local ISVCs. Every count is read twice: from the API server's own
//! `apiserver_request_total` and from `serve`'s `isvc_ingress_reconcile_api_writes_total`.

use isvc_ingress::field_diff::is_subset;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::control_plane::ControlPlane;
use crate::fleet::{
    self, ApiRequests, Identity, Reconciler, identity, is_cluster_local, namespace_of,
    resource_versions,
};
use crate::install::{Installation, NAMESPACE, install};

/// 15 Standard/HTTPRoute, 60 Knative/VirtualService, 60 Standard/Ingress and 15 cluster-local
/// ISVCs in three namespaces.
const ISVCS: usize = 150;
const ARGS: &[&str] = &["--route-owner", "isvc-ingress"];
/// The status mutator's webhook (manifests/base/webhooks.yaml).
const STATUS_WEBHOOK: &str = "status.inferenceservices.isvc-ingress.io";
/// No counter moved for this long: no reconcile is pending.
const QUIET: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(120);

/// Stops the running replica (SIGTERM, as the kubelet does) and checks that it released the
/// Lease on its way out, so the next replica need not wait for it to expire; then runs
/// `meanwhile`, and starts a fresh replica on the same ports (the webhooks stay registered on
/// them). What `meanwhile` returns comes back.
fn restart<T>(
    plane: &ControlPlane,
    installation: &mut Installation,
    meanwhile: impl FnOnce() -> T,
) -> T {
    let old = installation.replicas.pop().expect("a replica runs");
    let (webhook_port, admin_port) = (old.webhook_port, old.admin_port);
    drop(old);
    let lease = plane
        .get("lease", Some(NAMESPACE), "isvc-ingress")
        .expect("the Lease exists");
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "the stopped replica kept the Lease: {}",
        lease["spec"]
    );
    let result = meanwhile();
    let replica = installation.start_replica_on(plane, webhook_port, admin_port, ARGS);
    installation.replicas.push(replica);
    result
}

/// `count` writes as "VERB resource" (the API server's names) for every kind in `by_kind`.
fn api_applies(by_kind: &BTreeMap<String, usize>) -> BTreeMap<String, f64> {
    by_kind
        .iter()
        .map(|(kind, count)| {
            let resource = match kind.as_str() {
                "Ingress" => "ingresses",
                "HTTPRoute" => "httproutes",
                "VirtualService" => "virtualservices",
                "Service" => "services",
                "DomainMapping" => "domainmappings",
                other => panic!("not a route kind: {other}"),
            };
            (format!("APPLY {resource}"), *count as f64)
        })
        .collect()
}

/// The same counts as `serve` names them: "Apply Kind".
fn serve_applies(by_kind: &BTreeMap<String, usize>) -> BTreeMap<String, f64> {
    by_kind
        .iter()
        .map(|(kind, count)| (format!("Apply {kind}"), *count as f64))
        .collect()
}

#[test]
fn a_fleet_restarts_catches_up_and_follows_a_config_change_with_exactly_the_needed_writes() {
    let plane = ControlPlane::start();
    let mut installation = install(&plane, ARGS);
    let before = fleet::config("example.com");
    let after = fleet::config("example.org");
    fleet::load(&plane, 0..ISVCS);
    let (isvcs, routes) =
        fleet::wait_converged(&plane, &installation.replicas[0], ISVCS, &before, LIMIT);
    let kinds: BTreeSet<String> = routes.iter().map(fleet::kind_of).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["HTTPRoute", "Ingress", "Service", "VirtualService"].map(str::to_owned)),
        "the mix writes every kind of manifests/dev's config"
    );
    eprintln!(
        "scale: {} ISVCs in {} namespaces, {} routes",
        isvcs.len(),
        namespace_of(ISVCS - 1),
        routes.len()
    );

    // 1. A restart over settled ISVCs writes nothing.
    let versions = resource_versions(&[isvcs.clone(), routes.clone()].concat());
    let requests = restart(&plane, &mut installation, || ApiRequests::read(&plane));
    let replica = &installation.replicas[0];
    let settled = fleet::settle(replica, ISVCS as f64, QUIET, LIMIT).reading;
    let written = ApiRequests::read(&plane).since(&requests);
    assert_eq!(
        written.reconciler_writes(),
        BTreeMap::new(),
        "the API server counted writes during a restart over settled ISVCs"
    );
    assert_eq!(settled.writes, BTreeMap::new(), "serve counted writes");
    assert_eq!(settled.errors, 0.0);
    let now = [fleet::stored_isvcs(&plane), fleet::managed_routes(&plane)].concat();
    assert_eq!(resource_versions(&now), versions, "an object changed");

    // 2. Every route missing: exactly one apply per missing route, no status write.
    let (deleted, requests) = restart(&plane, &mut installation, || {
        let deleted = fleet::delete_managed_routes(&plane);
        (deleted, ApiRequests::read(&plane))
    });
    assert_eq!(deleted.values().sum::<usize>(), routes.len());
    let replica = &installation.replicas[0];
    let settled = fleet::settle(replica, ISVCS as f64, QUIET, LIMIT).reading;
    let written = ApiRequests::read(&plane).since(&requests);
    assert_eq!(
        written.reconciler_writes(),
        api_applies(&deleted),
        "the API server's count of the catch-up: one apply per deleted route, nothing else"
    );
    assert_eq!(settled.writes, serve_applies(&deleted), "serve's count");
    // Every request of this replica waited for the client-side rate limit and was timed; more
    // writes than the burst (50) at 10 a second cannot all have found a token free.
    let metrics = replica.metrics();
    let wait = "isvc_ingress_api_client_rate_limit_wait_seconds";
    let timed = fleet::sum(&metrics, &format!("{wait}_count"), |_| true);
    let applies = routes.len() as f64;
    assert!(
        applies > 50.0,
        "the catch-up needs more writes than the burst"
    );
    assert!(
        timed >= applies,
        "{timed} requests timed by the rate limit, fewer than the {applies} applies"
    );
    let without_waiting = fleet::sum(&metrics, &format!("{wait}_bucket"), |labels| {
        labels.get("le") == Some(&"0.001")
    });
    assert!(
        without_waiting < timed,
        "no request waited 1 ms or more for a token in {timed} requests"
    );
    let live: BTreeSet<Identity> = fleet::managed_routes(&plane).iter().map(identity).collect();
    let expected: BTreeSet<Identity> = routes.iter().map(identity).collect();
    assert_eq!(live, expected, "every route is back");
    let isvcs_now = fleet::stored_isvcs(&plane);
    assert_eq!(
        resource_versions(&isvcs_now),
        resource_versions(&isvcs),
        "an ISVC (its status) was written"
    );

    // 3. ingressDomain changed: exactly the routes and statuses that change.
    let routes = fleet::managed_routes(&plane);
    let changes = fleet::changes(&isvcs_now, &before, &after);
    let cluster_local: BTreeSet<Identity> = (0..ISVCS)
        .filter(|index| is_cluster_local(*index))
        .map(|index| {
            (
                "InferenceService".to_owned(),
                namespace_of(index),
                format!("model-{index:05}"),
            )
        })
        .collect();
    assert!(
        !changes.routes.is_empty()
            && !changes.statuses.is_empty()
            && changes.routes.len() < routes.len()
            && changes.statuses.len() + cluster_local.len() == ISVCS
            && changes.statuses.is_disjoint(&cluster_local),
        "the change touches some routes and every ISVC but the cluster-local ones: {changes:?}"
    );
    let events = fleet::events(&plane);
    let requests = ApiRequests::read(&plane);
    let reading = Reconciler::read(replica);
    let status_calls = fleet::webhook_calls(&plane, STATUS_WEBHOOK);
    plane.apply(&fleet::config_map("example.org").to_string());
    let settled = fleet::settle(replica, reading.runs + ISVCS as f64, QUIET, LIMIT).reading;
    let written = ApiRequests::read(&plane).since(&requests);
    // The status mutator's matchCondition leaves out isvc-ingress's own status patches: none
    // of them called it (manifests/base/webhooks.yaml).
    assert_eq!(
        fleet::webhook_calls(&plane, STATUS_WEBHOOK) - status_calls,
        0.0,
        "calls to {STATUS_WEBHOOK} for isvc-ingress's own {} status patches",
        changes.statuses.len()
    );
    let mut writes = written.reconciler_writes();
    let event_writes: f64 = ["POST events", "PATCH events"]
        .iter()
        .filter_map(|key| writes.remove(*key))
        .sum();
    let mut expected = api_applies(&changes.routes_by_kind);
    expected.insert(
        "PATCH inferenceservices/status".into(),
        changes.statuses.len() as f64,
    );
    assert_eq!(
        writes, expected,
        "the API server's count of the config change (Events aside, below)"
    );
    // A reconcile that reads its ISVC from the cache before the cache holds that ISVC's own
    // status write (an owned route's event triggers it) leaves the status alone
    // (`RecentStatusWrites`); before, its patch carried the old resourceVersion and was refused
    // with 409. Nothing is refused now.
    let refused = written.refused_writes();
    assert!(refused.is_empty(), "refused writes: {refused:?}");
    let mut expected = serve_applies(&changes.routes_by_kind);
    expected.insert(
        "PatchStatus InferenceService".into(),
        changes.statuses.len() as f64,
    );
    let mut serve_writes = settled.writes_since(&reading);
    let serve_events = serve_writes.remove("Event Event").unwrap_or(0.0);
    assert_eq!(serve_writes, expected, "serve's count");
    assert_eq!(
        serve_events, event_writes,
        "serve's and the API server's Events"
    );
    // No Event: the status URLs isvc-ingress wrote before the change are its own predictions
    // (managedFields), so the new plan replaces them instead of keeping them as the platform's
    // with a PlatformUrlKept Warning on every reconcile, as it did before.
    let new_events: Vec<_> = fleet::events(&plane)
        .into_iter()
        .filter(|(name, (_, _, version))| {
            events.get(name).map(|(_, _, before)| before) != Some(version)
        })
        .map(|(name, (reason, regarding, _))| format!("{name} ({reason}) on {regarding}"))
        .collect();
    assert!(
        new_events.is_empty(),
        "Events after the config change: {new_events:#?}"
    );
    assert_eq!(event_writes, 0.0, "Event writes in the config change");
    eprintln!(
        "scale: config change: {} route applies, {} status patches, no refused write, no Event",
        changes.routes.len(),
        changes.statuses.len()
    );
    // Which objects: the resourceVersion moved exactly for the changed ones.
    let isvcs_after = fleet::stored_isvcs(&plane);
    let routes_after = fleet::managed_routes(&plane);
    let moved = |before: &[serde_json::Value], after: &[serde_json::Value]| {
        let before = resource_versions(before);
        resource_versions(after)
            .into_iter()
            .filter(|(identity, version)| before.get(identity) != Some(version))
            .map(|(identity, _)| identity)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(moved(&routes, &routes_after), changes.routes);
    assert_eq!(moved(&isvcs_now, &isvcs_after), changes.statuses);
    let planned = fleet::planned_routes(&isvcs_after, &after);
    for route in &routes_after {
        let mut wanted = planned[&identity(route)].clone();
        wanted.as_object_mut().unwrap().remove("apiVersion");
        assert!(
            is_subset(&wanted, route),
            "{:?} is not as planned under the new domain",
            identity(route)
        );
    }

    // Another writer's status write still calls the status mutator (the matchCondition leaves
    // out isvc-ingress's ServiceAccount alone): the admin's dry run of one.
    let calls = fleet::webhook_calls(&plane, STATUS_WEBHOOK);
    plane.kubectl_ok(&[
        "patch",
        "inferenceservice",
        "model-00000",
        "-n",
        &namespace_of(0),
        "--subresource=status",
        "--type=merge",
        "--dry-run=server",
        "-p",
        r#"{"status":{"url":"http://written-by.admin.example"}}"#,
    ]);
    assert_eq!(
        fleet::webhook_calls(&plane, STATUS_WEBHOOK) - calls,
        1.0,
        "calls to {STATUS_WEBHOOK} for the admin's status write"
    );
}
