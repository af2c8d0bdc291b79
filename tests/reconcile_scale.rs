//! The counts of the scale benchmark (`benches/reconcile_scale.rs`, docs/performance.md "Scale")
//! on a smaller synthetic store, in debug: after a config change, the re-plan of every ISVC
//! writes exactly the route objects and statuses the change affects and nothing for the others;
//! and the real reconcile, against the mock API server, makes exactly the requests the
//! benchmark counts. Timings belong to the benchmark and are never asserted.
// `stored_routes` reaches this crate through both `reconcile_mock` and `scale_store`: one file,
// included by each so that the benchmark can use `scale_store` alone.
#![allow(clippy::duplicate_mod)]

mod reconcile_mock;
mod scale_store;
mod support;

use isvc_ingress::reconcile::metrics::{Outcome, Verb};
use kube::Resource;
use reconcile_mock::{Harness, Step, apply, event_on, patch_status};
use scale_store::{ConfigChange, Counts, Shape, Store, base_config, components_of};
use serde_json::Value;

const ISVCS: usize = 300;
const NAMESPACES: usize = 20;

/// Route objects the store holds, per shape (components + top-level for HTTPRoute; the
/// VirtualService and its Service for Knative; one Ingress).
fn routes_of(index: usize) -> usize {
    match Shape::of(index) {
        Shape::HttpRoute => components_of(index) + 1,
        Shape::Knative => 2,
        Shape::Ingress => 1,
    }
}

#[test]
fn the_synthetic_store_is_the_advertised_mix() {
    let store = Store::build(ISVCS, NAMESPACES);
    let objects = store.objects();
    assert_eq!(objects.len(), ISVCS);
    let namespaces: std::collections::BTreeSet<_> = objects
        .iter()
        .map(|object| object.meta().namespace.clone())
        .collect();
    assert_eq!(namespaces.len(), NAMESPACES);
    assert_eq!(store.routes.len(), (0..ISVCS).map(routes_of).sum::<usize>());
    let shares = |shape| (0..ISVCS).filter(|&i| Shape::of(i) == shape).count();
    assert_eq!(shares(Shape::HttpRoute), ISVCS / 10);
    assert_eq!(shares(Shape::Knative), ISVCS * 4 / 10);
    assert_eq!(shares(Shape::Ingress), ISVCS / 2);
    assert!((0..ISVCS).any(|i| components_of(i) == 3));
    // One external host per ISVC and component, none contested.
    assert!(store.hosts.len() >= ISVCS);
    // The store's routes are valid objects, and its clock is the mock API server's.
    for object in objects.iter().take(20) {
        let value = object.to_value().unwrap();
        for route in scale_store::plan_of(&value, &base_config()).1 {
            support::assert_valid_object(&route);
        }
    }
    assert_eq!(scale_store::NOW, reconcile_mock::NOW);
}

#[test]
fn a_replan_under_the_settled_config_writes_nothing() {
    let store = Store::build(ISVCS, NAMESPACES);
    let counts = store.replan();
    assert_eq!(
        counts,
        Counts {
            isvcs: ISVCS,
            ..Counts::default()
        }
    );
}

#[test]
fn a_replan_writes_exactly_the_objects_the_config_change_changes() {
    let store = Store::build(ISVCS, NAMESPACES);
    let objects = store.objects();
    let httproute_objects: usize = (0..ISVCS)
        .filter(|&i| Shape::of(i) == Shape::HttpRoute)
        .map(routes_of)
        .sum();
    for change in ConfigChange::ALL {
        let config = change.config();
        let (changed, removed, statuses, isvcs) =
            scale_store::expected_changes(&objects, &base_config(), &config);
        store.state.replace_config(config);
        let counts = store.replan();
        assert_eq!(counts.isvcs, ISVCS, "{change:?}");
        assert_eq!(
            counts.applies, changed,
            "{change:?}: one apply per changed route"
        );
        assert_eq!(counts.deletes, removed, "{change:?}");
        assert_eq!(counts.status_patches, statuses, "{change:?}");
        assert_eq!(counts.events, 0, "{change:?}");
        assert_eq!(counts.not_written, 0, "{change:?}");
        assert_eq!(
            counts.isvcs_written, isvcs,
            "{change:?}: nothing for the others"
        );
        match change {
            ConfigChange::Unrelated => assert_eq!(counts.calls(), 0),
            ConfigChange::GatewayMoved => {
                // Every HTTPRoute and nothing else: 10% of the ISVCs.
                assert_eq!(counts.applies, httproute_objects);
                assert_eq!(counts.isvcs_written, ISVCS / 10);
                assert_eq!(counts.status_patches, 0);
            }
            ConfigChange::DomainChanged => {
                // Every URL moves; the Knative ExternalName Services do not name a host.
                assert_eq!(counts.status_patches, ISVCS);
                assert_eq!(counts.isvcs_written, ISVCS);
                assert_eq!(
                    counts.applies,
                    store.routes.len()
                        - (0..ISVCS)
                            .filter(|&i| Shape::of(i) == Shape::Knative)
                            .count()
                );
            }
        }
        store.state.replace_config(base_config());
    }
    assert_eq!(store.replan().calls(), 0, "back to the settled config");
}

/// The mock API server's script for a decision: one apply per changed route (answered with the
/// object as stored), then the status patch if any.
fn script(decision: &scale_store::Decision) -> Vec<Step> {
    assert!(decision.changes.delete.is_empty() && decision.event.is_none());
    let mut steps: Vec<Step> = decision
        .changes
        .apply
        .iter()
        .zip(&decision.responses)
        .map(|(route, response)| {
            let mut step = apply(&route.object);
            step.response = response.clone();
            step
        })
        .collect();
    if let Some(note) = &decision.kept {
        steps.push(event_on(
            &decision.namespace,
            &decision.name,
            &decision.uid,
            "Warning",
            "PlatformUrlKept",
            // The note is cut at 1024 characters.
            &note.chars().take(200).collect::<String>(),
        ));
    }
    if let Some(body) = &decision.status_patch {
        steps.push(patch_status(
            &decision.namespace,
            &decision.name,
            body.clone(),
        ));
    }
    steps
}

/// Per reconcile: one apply per changed route object plus at most one status patch for a changed
/// ISVC, no request at all for an unchanged one — checked on the real `reconcile` for a sample
/// of every shape under each config change, against the script the benchmark's count implies.
#[tokio::test]
async fn the_real_reconcile_makes_exactly_the_counted_requests() {
    let store = Store::build(ISVCS, NAMESPACES);
    // Every 7th ISVC: all three shapes, all component counts, many namespaces.
    let sample: Vec<_> = store.objects().into_iter().step_by(7).collect();
    let live: Vec<Value> = sample
        .iter()
        .flat_map(|object| {
            let (namespace, name) = (
                object.meta().namespace.clone().unwrap(),
                object.meta().name.clone().unwrap(),
            );
            store.live_routes_of(&namespace, &name)
        })
        .collect();
    for change in ConfigChange::ALL {
        let config = change.config();
        store.state.replace_config(config.clone());
        let mut harness = Harness::new(base_config(), live.clone());
        harness.state.replace_config(config);
        let (mut applies, mut patches, mut unchanged) = (0, 0, 0);
        for object in &sample {
            let decision = store.decide(object);
            let calls = decision.calls();
            applies += decision.changes.apply.len();
            patches += usize::from(decision.status_patch.is_some());
            unchanged += usize::from(calls == 0);
            assert!(decision.status_patch.iter().count() <= 1);
            let isvc = object.to_value().unwrap();
            harness
                .reconcile(&isvc, script(&decision))
                .await
                .unwrap_or_else(|error| panic!("{change:?} {}: {error}", decision.name));
        }
        let metrics = &harness.metrics;
        let applied: u64 = ["Ingress", "HTTPRoute", "VirtualService", "Service"]
            .iter()
            .map(|kind| metrics.writes_of(kind, Verb::Apply))
            .sum();
        assert_eq!(applied, applies as u64, "{change:?}");
        assert_eq!(
            metrics.writes_of("InferenceService", Verb::PatchStatus),
            patches as u64,
            "{change:?}"
        );
        assert_eq!(
            metrics.reconciles_with(Outcome::Unchanged),
            unchanged as u64,
            "{change:?}"
        );
        match change {
            ConfigChange::Unrelated => assert_eq!(unchanged, sample.len()),
            ConfigChange::GatewayMoved => {
                assert!(applies > 0 && patches == 0 && unchanged < sample.len())
            }
            ConfigChange::DomainChanged => assert!(applies > 0 && patches == sample.len()),
        }
        store.state.replace_config(base_config());
    }
}
