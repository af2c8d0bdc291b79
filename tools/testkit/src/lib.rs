//! Clients of the isvc-ingress webhook, for its integration tests and its load tool
//! (`tools/load`): [`client`], an HTTPS client that controls each connection, and [`hostile`],
//! the misbehaving clients of the fault suite and `isvc-ingress-load --attack`.
//!
//! They live outside the product's crate because the product never runs them: the webhook's
//! library holds only what `isvc-ingress` runs. Loopback use only.

pub mod client;
pub mod hostile;
