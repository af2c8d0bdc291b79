//! KServe's own controller manager next to isvc-ingress on a real control plane (issue 15):
//! the differential of `render` against the routes and status URLs KServe writes
//! (`differential`), both controllers together with `--route-owner kserve` (`coexistence`), and
//! isvc-ingress taking the routes over (`takeover`). docs/testing.md describes the suite.
//!
//! KServe's manager is built from its Go module by `scripts/kserve-manager.sh` (minutes,
//! once per version), so these tests are `#[ignore]`d: plain `cargo test` and `.ci/run` skip
//! them, and `scripts/kserve-alongside.sh` builds what they need and runs them.

mod audit;
mod coexistence;
#[allow(dead_code)]
#[path = "../e2e/control_plane.rs"]
mod control_plane;
mod differential;
#[allow(dead_code)]
#[path = "../e2e/inputs.rs"]
mod inputs;
#[allow(dead_code)]
#[path = "../e2e/install.rs"]
mod install;
#[allow(dead_code)]
mod kserve;
mod takeover;
