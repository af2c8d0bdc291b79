//! What `/readyz` reports.
//!
//! Ready means "send me admission traffic": the serving certificate is loaded, the caller's
//! caches (the reconciler's reflectors) have synced, and shutdown has not started. Each part
//! is set by the component that knows it, through a cloned [`Readiness`] handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
struct State {
    certificate_loaded: AtomicBool,
    caches_synced: AtomicBool,
    api_server_unreachable: AtomicBool,
    shutting_down: AtomicBool,
}

/// Shared readiness state. Clones observe and change the same state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    state: Arc<State>,
}

impl Readiness {
    /// Not ready: no certificate, caches not synced.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called by whoever owns the reflector caches once they have synced (and with `false`
    /// if they are lost). Without a cluster, the caller sets `true` at start.
    pub fn set_caches_synced(&self, synced: bool) {
        self.state.caches_synced.store(synced, Ordering::SeqCst);
    }

    /// Called by the API server probe of `serve` (with a cluster): while the API server does
    /// not answer, the watches behind the caches are broken and the caches go stale, so the
    /// replica is unready until it answers again. Without a cluster it is never called.
    pub fn set_api_server_reachable(&self, reachable: bool) {
        self.state
            .api_server_unreachable
            .store(!reachable, Ordering::SeqCst);
    }

    /// Called by the server once a certificate is in service.
    pub(crate) fn set_certificate_loaded(&self) {
        self.state.certificate_loaded.store(true, Ordering::SeqCst);
    }

    /// Called when shutdown begins; readiness never comes back afterwards.
    pub fn mark_shutting_down(&self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True when admission traffic should be sent here.
    pub fn is_ready(&self) -> bool {
        self.unready_reasons().is_empty()
    }

    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.state.shutting_down.load(Ordering::SeqCst)
    }

    /// Why the process is not ready, for the `/readyz` body. Empty when ready.
    pub fn unready_reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.is_shutting_down() {
            reasons.push("shutting down");
        }
        if !self.state.certificate_loaded.load(Ordering::SeqCst) {
            reasons.push("serving certificate not loaded");
        }
        if !self.state.caches_synced.load(Ordering::SeqCst) {
            reasons.push("caches not synced");
        }
        if self.state.api_server_unreachable.load(Ordering::SeqCst) {
            reasons.push("the Kubernetes API server does not answer");
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_certificate_and_caches_and_no_shutdown() {
        let r = Readiness::new();
        assert!(!r.is_ready());
        r.set_caches_synced(true);
        assert_eq!(r.unready_reasons(), ["serving certificate not loaded"]);
        r.clone().set_certificate_loaded();
        assert!(r.is_ready());
        r.set_caches_synced(false);
        assert!(!r.is_ready());
        r.set_caches_synced(true);
        r.mark_shutting_down();
        assert!(!r.is_ready());
        assert_eq!(r.unready_reasons(), ["shutting down"]);
    }

    #[test]
    fn an_unreachable_api_server_makes_the_replica_unready_until_it_answers() {
        let r = Readiness::new();
        r.set_caches_synced(true);
        r.set_certificate_loaded();
        assert!(r.is_ready());
        r.set_api_server_reachable(false);
        assert_eq!(
            r.unready_reasons(),
            ["the Kubernetes API server does not answer"]
        );
        r.set_api_server_reachable(true);
        assert!(r.is_ready());
    }
}
