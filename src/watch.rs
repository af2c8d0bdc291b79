//! How every watch of isvc-ingress (the `inferenceservice-config` ConfigMap, ISVCs, routes)
//! retries after an error.
//!
//! kube-runtime's default backoff grows to 30 s. Against a real kube-apiserver that restarts,
//! the first seconds after `/readyz` answers bring `403 Forbidden` on every watch (its RBAC
//! authorizer has not loaded the roles yet), so a watch that failed a few times then waited up
//! to 30 s more before it resumed, while the replica already looked ready. The webhook and the
//! reconciler both read through these watches, so they retry sooner: from 500 ms, doubling, at
//! most 5 s apart. One replica's watches are a handful of requests; retrying them every 5 s
//! costs the API server nothing it would notice.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// First delay after a watch error.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// Longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff for watches: 500 ms doubling to 5 s; reset by kube-runtime once the watch
/// works again.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    pub fn new() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_seconds_and_resets() {
        let mut backoff = WatchBackoff::new();
        let delays: Vec<u64> = backoff
            .by_ref()
            .take(6)
            .map(|delay| delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_DELAY));
    }
}
