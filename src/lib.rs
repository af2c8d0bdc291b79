//! isvc-ingress: correct, validated, predictable routing for KServe InferenceServices.
//!
//! One planning core ([`plan`]) that every shell calls: the admission webhook, the status
//! mutator, the route reconciler and the offline [`cli`] commands.

pub mod admission;
pub mod cli;
pub mod config;
pub mod config_watch;
pub mod dns;
pub mod hash;
pub mod isvc;
pub mod plan;
pub mod reconcile;
pub mod template;
pub mod violation;
