//! End-to-end tests against a real Kubernetes control plane: kube-apiserver and etcd built from
//! their Go modules (`scripts/control-plane.sh`, `tests/control-plane/`), isvc-ingress installed
//! from its manifests and run as its ServiceAccount. What the API server does at our boundary
//! (calling the webhook with a caBundle, applying our JSON Patch, the status subresource, CRD
//! schemas and CEL rules, RBAC, watches, Leases) is checked against the real thing here, not
//! against a mock. docs/testing.md says what runs where and how long it takes.
//!
//! Each test starts its own control plane (a few seconds), so tests are independent and can run
//! in parallel.

mod admission;
mod analyze;
#[path = "../analyze_fixtures/mod.rs"]
mod analyze_fixtures;
mod control_plane;
mod fleet;
mod inputs;
mod install;
mod reconciler;
mod render;
mod restart;
mod scale;
