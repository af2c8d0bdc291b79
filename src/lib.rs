//! isvc-ingress: correct, validated, predictable routing for KServe InferenceServices.
//!
//! One planning core ([`plan`]) that every shell calls: the admission webhook ([`admission`]
//! behind [`server`]), the route reconciler ([`reconcile`]) and the offline [`cli`] commands.

pub mod admission;
pub mod analyze;
pub mod api_client;
pub mod certs;
pub mod cli;
pub mod cluster_snapshot;
pub mod cluster_view;
pub mod config;
pub mod config_watch;
pub mod dns;
pub mod duration;
pub mod field_diff;
pub mod hash;
pub mod isvc;
pub mod metrics;
pub mod permissions;
pub mod plan;
pub mod reconcile;
pub mod serve;
pub mod server;
pub mod telemetry;
pub mod template;
pub mod violation;
pub mod watch;
