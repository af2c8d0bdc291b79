//! The request-bytes budget of the webhook port: how many bytes of requests the server holds at
//! once, charged for what has actually arrived.
//!
//! Every request is charged for its headers (plus a fixed overhead for its state) as soon as
//! it reaches the router, and then for each body chunk as it is received, until its handler
//! returns. A client that declares a large `Content-Length` and sends nothing holds a few
//! hundred bytes, not what it declared.
//!
//! When a charge does not fit, the server sheds the slowest request instead of making
//! everybody wait: the requests still receiving their body whose last chunk came longest ago
//! are cut (answered 408) and their bytes handed to the newcomer at once. Only when every
//! holder is past its body (in the handler) or itself waiting for room does a charge wait,
//! within the request's deadline, until bytes are given back. So a client that stops half-way
//! through a body holds its bytes only until someone else needs them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::http::HeaderMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a request costs besides its header fields and body, in bytes: an estimate of what
/// hyper, the router and the request's task keep for it (its parsed head, stream state and
/// future), rounded up, so that requests that send no body at all are bounded in number too.
pub const REQUEST_OVERHEAD_BYTES: usize = 4 * 1024;

/// The bytes a request's headers are charged: name, value and 32 bytes per field, as HPACK
/// counts a header list (RFC 7541 §4.1; the `SETTINGS_MAX_HEADER_LIST_SIZE` measure).
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// The holders to cut so that `needed` more bytes become free: those still receiving their
/// body (`Some(last progress)`), slowest first, until their bytes cover `needed`. Holders that
/// are in the handler or waiting for room themselves (`None`) are never cut. Returns nothing
/// when even cutting all the candidates would not free `needed` bytes: then the charge waits
/// and nobody is cut for nothing.
pub(crate) fn holders_to_shed(
    holders: impl IntoIterator<Item = (u64, usize, Option<Instant>)>,
    needed: usize,
) -> Vec<u64> {
    let mut candidates: Vec<_> = holders
        .into_iter()
        .filter_map(|(id, bytes, progress)| Some((progress?, id, bytes)))
        .collect();
    // Usually one or two holders cover a newcomer's charge: picking the slowest one at a time
    // (linear each) is cheaper than sorting the thousands that may be waiting.
    let mut freed = 0;
    let mut shed = Vec::new();
    while freed < needed {
        let Some(slowest) = candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, candidate)| **candidate)
            .map(|(index, _)| index)
        else {
            return Vec::new();
        };
        let (_, id, bytes) = candidates.swap_remove(slowest);
        freed += bytes;
        shed.push(id);
    }
    shed
}

/// The budget shared by the requests of one listener.
#[derive(Debug)]
pub(crate) struct RequestBudget {
    total: usize,
    state: Mutex<State>,
    /// Signalled whenever bytes are given back.
    released: Notify,
    next: AtomicU64,
}

#[derive(Debug)]
struct State {
    free: usize,
    holders: HashMap<u64, Holder>,
}

#[derive(Debug)]
struct Holder {
    bytes: usize,
    /// When its last chunk arrived, while it is receiving its body and may be shed.
    progress: Option<Instant>,
    shed: CancellationToken,
}

impl RequestBudget {
    /// A budget of `total` bytes.
    pub(crate) fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            state: Mutex::new(State {
                free: total,
                holders: HashMap::new(),
            }),
            released: Notify::new(),
            next: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the account of a new request, holding nothing yet.
    pub(crate) fn open(self: &Arc<Self>) -> Charge {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let shed = CancellationToken::new();
        self.state().holders.insert(
            id,
            Holder {
                bytes: 0,
                progress: Some(Instant::now()),
                shed: shed.clone(),
            },
        );
        Charge {
            budget: Arc::clone(self),
            id,
            shed,
        }
    }
}

impl State {
    /// Takes `bytes` for holder `id`, cutting the slowest other receivers if that is what it
    /// takes; whether it could. A holder cut gives its bytes to the budget at once (its memory
    /// follows when its task sees the cut, which it is woken for).
    fn take(&mut self, id: u64, bytes: usize) -> bool {
        if self.free < bytes {
            let victims = holders_to_shed(
                self.holders
                    .iter()
                    .filter(|(holder, _)| **holder != id)
                    .map(|(id, holder)| (*id, holder.bytes, holder.progress)),
                bytes - self.free,
            );
            for victim in victims {
                if let Some(holder) = self.holders.get_mut(&victim) {
                    self.free += std::mem::take(&mut holder.bytes);
                    holder.progress = None;
                    holder.shed.cancel();
                }
            }
        }
        let Some(holder) = self.holders.get_mut(&id) else {
            return false;
        };
        if self.free < bytes {
            // Waiting for room is the server's doing, not the client's: not sheddable.
            holder.progress = None;
            return false;
        }
        self.free -= bytes;
        holder.bytes += bytes;
        holder.progress = Some(Instant::now());
        true
    }
}

/// The share of the budget one request holds; returned when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<RequestBudget>,
    id: u64,
    shed: CancellationToken,
}

/// The request was cut to make room for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shed;

impl Charge {
    /// The bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.budget
            .state()
            .holders
            .get(&self.id)
            .map_or(0, |holder| holder.bytes)
    }

    /// Ends when this request has been chosen to be cut.
    pub(crate) async fn shed(&self) {
        self.shed.cancelled().await;
    }

    /// Charges `bytes` more that have just arrived: at once when they fit, else by cutting
    /// slower requests, else when room comes. Fails when this request is cut meanwhile.
    pub(crate) async fn add(&mut self, bytes: usize) -> Result<(), Shed> {
        // A single request never needs more than the whole budget; clamping keeps a
        // misconfigured caller waiting for its deadline instead of for ever.
        let bytes = bytes.min(self.budget.total);
        loop {
            let released = self.budget.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.shed.is_cancelled() {
                return Err(Shed);
            }
            if self.budget.state().take(self.id, bytes) {
                return Ok(());
            }
            tokio::select! {
                () = released => {}
                () = self.shed.cancelled() => return Err(Shed),
            }
        }
    }

    /// The body is complete: the request is no longer cut for others.
    pub(crate) fn received(&self) {
        if let Some(holder) = self.budget.state().holders.get_mut(&self.id) {
            holder.progress = None;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut state = self.budget.state();
        if let Some(holder) = state.holders.remove(&self.id) {
            state.free += holder.bytes;
        }
        drop(state);
        self.budget.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_slowest_receivers_are_shed_first_and_only_enough_of_them() {
        let start = Instant::now();
        let at = |ms| Some(start + Duration::from_millis(ms));
        let holders = [
            (1, 100, at(30)),
            (2, 100, at(10)),
            (3, 1_000, None),
            (4, 100, at(20)),
        ];
        for (needed, shed) in [
            (0, vec![]),
            (1, vec![2]),
            (100, vec![2]),
            (101, vec![2, 4]),
            (300, vec![2, 4, 1]),
            // Holder 3 is in its handler: the 1,000 bytes cannot be had, so nobody is cut.
            (301, vec![]),
        ] {
            assert_eq!(holders_to_shed(holders, needed), shed, "needed {needed}");
        }
    }

    #[test]
    fn headers_are_counted_as_hpack_does() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("content-length", "3145728".parse().unwrap());
        assert_eq!(header_bytes(&headers), (12 + 16 + 32) + (14 + 7 + 32));
    }

    #[tokio::test]
    async fn a_stalled_receiver_is_shed_for_a_new_request() {
        let budget = RequestBudget::new(1_000);
        let mut stalled = budget.open();
        stalled.add(900).await.unwrap();
        let mut finished = budget.open();
        finished.add(50).await.unwrap();
        finished.received();
        let mut newcomer = budget.open();
        let added = tokio::spawn(async move { newcomer.add(100).await.map(|()| newcomer.bytes()) });
        tokio::time::timeout(Duration::from_secs(5), stalled.shed())
            .await
            .expect("the stalled request is cut");
        assert_eq!(stalled.add(1).await, Err(Shed));
        drop(stalled);
        assert_eq!(added.await.unwrap(), Ok(100));
        assert_eq!(finished.bytes(), 50, "the finished body was not touched");
    }

    #[tokio::test]
    async fn with_nobody_to_shed_a_charge_waits_for_room() {
        let budget = RequestBudget::new(1_000);
        let mut in_handler = budget.open();
        in_handler.add(1_000).await.unwrap();
        in_handler.received();
        let mut waiting = budget.open();
        let added = tokio::spawn(async move { waiting.add(10).await.map(|()| waiting) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!added.is_finished(), "the charge waits");
        drop(in_handler);
        let waiting = added.await.unwrap().unwrap();
        assert_eq!(waiting.bytes(), 10);
    }
}
