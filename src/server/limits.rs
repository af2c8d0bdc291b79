//! What one client can hold on a listener, whatever it sends or withholds: a connection slot
//! out of `--max-connections` (`--admin-max-connections` on the admin port), for at most
//! `--idle-timeout` without sending a byte, with HTTP/1 heads and HTTP/2 streams, windows and
//! header lists sized to what an AdmissionReview needs ([`configure_http`]).
//!
//! A listener at its cap still accepts: each new connection takes the slot of another, chosen
//! by [`eviction_victim`]: connections that have never had a request answered with success
//! go before those that have, idle ones (no request in flight that started within
//! [`BUSY_PROTECTION`]) before busy ones, and among equals the one that has gone longest
//! without sending anything. So a flood of idle or slow connections ends up evicting its own
//! members, while the apiserver, which sends reviews (and HTTP/2 pings) and gets them
//! answered, keeps its connections; and a new connection of the apiserver or of kubelet still
//! gets a slot, and once its request has started it goes after every idle newcomer. Evicted
//! and idle connections are closed by failing their next read or write, which makes hyper drop
//! them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::Response;
use axum_server::accept::Accept;
use futures_util::task::AtomicWaker;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Largest HTTP/1 request head, and largest HTTP/2 header list, in bytes. kube-apiserver's
/// review requests carry a handful of short headers (a few hundred bytes); kubelet's probes
/// fewer. hyper's own default (about 400 KB of buffer per HTTP/1 connection) let a client hold
/// that much by never finishing its head (issue 12). hyper's floor for the HTTP/1 buffer is
/// 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// HTTP/2 streams one connection may have open. kube-apiserver multiplexes its calls over few
/// connections and opens another when a connection's streams are all in use (Go's
/// `http2.Transport`), so a small number costs it a handshake now and then; each open stream
/// holds a request and its task, and streams opened only to be cut cost CPU: with 32, 2,000
/// connections opening streams that never send a body took review p99 to ~60 ms on 2 cores,
/// with 16 to ~40 ms (`scripts/measure-hostile.sh`, `declared-http2`).
pub const MAX_CONCURRENT_STREAMS: u32 = 16;

/// HTTP/2 receive window of a stream, in bytes: a typical review (3-20 KB) arrives in one
/// flight; a 3 MiB one needs 48 window updates, which on a cluster network cost well under a
/// millisecond each. hyper's default (1 MiB) let a client park 1 MiB per stream unread.
pub const STREAM_WINDOW_BYTES: u32 = 64 * 1024;

/// HTTP/2 receive window of a connection, in bytes: two streams receiving at full speed.
pub const CONNECTION_WINDOW_BYTES: u32 = 128 * 1024;

/// HTTP/2 bytes queued for sending per stream: an answer is a few KB; hyper's default is 400 KB.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How long a connection counts as busy, and goes after idle ones for eviction, after a
/// request on it starts (while it has requests in flight). A review is answered in milliseconds; a request held open longer,
/// like one whose declared body never comes, no longer protects its connection.
pub const BUSY_PROTECTION: Duration = Duration::from_secs(1);

/// Sets the limits of both listeners on their hyper builder. `header_read_timeout` bounds an
/// HTTP/1 head (and so an idle HTTP/1 keep-alive connection); HTTP/2 connections are bounded by
/// the idle timeout of [`Connections::sweep`].
pub(crate) fn configure_http(builder: &mut Builder<TokioExecutor>, header_read_timeout: Duration) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_send_buf_size(SEND_BUFFER_BYTES);
}

/// How a connection looks to the eviction choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    /// Whether it has had a request answered with success.
    pub(crate) proven: bool,
    /// When it last sent a byte, in milliseconds since the listener's epoch.
    pub(crate) last_read_ms: u64,
    /// Whether it has a request in flight that started within [`BUSY_PROTECTION`], or was
    /// accepted within [`BUSY_PROTECTION`] and has not started a request yet.
    pub(crate) busy: bool,
}

/// The connection to evict for a newcomer: an unproven one before any proven one; then an
/// idle one before a busy one; among equals, the one that has gone longest without sending
/// anything, then the oldest. `None` only when there is no connection.
pub(crate) fn eviction_victim(
    connections: impl IntoIterator<Item = (u64, Standing)>,
) -> Option<u64> {
    connections
        .into_iter()
        .min_by_key(|(id, standing)| (standing.proven, standing.busy, standing.last_read_ms, *id))
        .map(|(id, _)| id)
}

/// Whether a connection that last sent a byte at `last_read_ms` is idle for `timeout` at
/// `now_ms`.
pub(crate) fn is_idle(now_ms: u64, last_read_ms: u64, timeout: Duration) -> bool {
    u128::from(now_ms.saturating_sub(last_read_ms)) >= timeout.as_millis()
}

/// Why a connection was closed by the listener rather than by its client or hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// Its slot went to a new connection.
    Evicted,
    /// It sent nothing for the idle timeout.
    Idle,
}

#[derive(Debug, Default)]
struct Slot {
    last_read_ms: AtomicU64,
    proven: AtomicBool,
    /// Requests in flight, and when the latest started (when the connection was accepted,
    /// until its first request starts).
    in_flight: AtomicUsize,
    last_request_ms: AtomicU64,
    /// No request has started yet.
    fresh: AtomicBool,
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Slot {
    fn standing(&self, now_ms: u64) -> Standing {
        let since_request = now_ms.saturating_sub(self.last_request_ms.load(Ordering::Relaxed));
        Standing {
            proven: self.proven.load(Ordering::Relaxed),
            last_read_ms: self.last_read_ms.load(Ordering::Relaxed),
            busy: (self.in_flight.load(Ordering::Relaxed) > 0
                || self.fresh.load(Ordering::Relaxed))
                && u128::from(since_request) < BUSY_PROTECTION.as_millis(),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The connection slots of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    inner: Arc<Registry>,
}

#[derive(Debug)]
struct Registry {
    listener: &'static str,
    max: usize,
    epoch: Instant,
    next: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Connections {
    /// Slots for `max` connections of the listener named `listener` (for logs).
    pub(crate) fn new(listener: &'static str, max: usize) -> Self {
        Self {
            inner: Arc::new(Registry {
                listener,
                max,
                epoch: Instant::now(),
                next: AtomicU64::new(0),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections holding a slot.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots().len()
    }

    /// A slot for a new connection, evicting a connection first when all are taken.
    fn admit(&self) -> (u64, Arc<Slot>) {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let slot = Arc::new(Slot {
            last_read_ms: AtomicU64::new(now),
            last_request_ms: AtomicU64::new(now),
            fresh: AtomicBool::new(true),
            ..Slot::default()
        });
        let mut slots = self.slots();
        if slots.len() >= self.inner.max {
            let victim = eviction_victim(slots.iter().map(|(id, slot)| (*id, slot.standing(now))));
            if let Some(evicted) = victim.and_then(|victim| slots.remove(&victim)) {
                evicted.close();
                tracing::debug!(listener = self.inner.listener, reason = ?Eviction::Evicted, "connection closed");
            }
        }
        slots.insert(id, Arc::clone(&slot));
        (id, slot)
    }

    /// Closes connections that have sent nothing for `timeout`, checking a few times per
    /// timeout, until `stop` is cancelled.
    pub(crate) async fn sweep(self, timeout: Duration, stop: CancellationToken) {
        let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let now = self.now_ms();
            self.slots().retain(|_, slot| {
                let idle = is_idle(now, slot.last_read_ms.load(Ordering::Relaxed), timeout);
                if idle {
                    slot.close();
                    tracing::debug!(listener = self.inner.listener, reason = ?Eviction::Idle, "connection closed");
                }
                !idle
            });
        }
    }
}

/// The innermost acceptor of both listeners: sets `TCP_NODELAY` (an answer is one small write;
/// without it, Nagle's algorithm meeting the client's delayed ACK adds ~40ms to some responses,
/// seen at p99.9 in the load runs) and gives the connection a slot.
#[derive(Debug, Clone)]
pub(crate) struct SlotAcceptor {
    connections: Connections,
}

impl SlotAcceptor {
    pub(crate) fn new(connections: Connections) -> Self {
        Self { connections }
    }
}

impl<S> Accept<TcpStream, S> for SlotAcceptor {
    type Stream = Tracked<TcpStream>;
    type Service = Proving<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let (id, slot) = self.connections.admit();
        // Only fails on a socket already closed, which the first read reports anyway.
        let _ = stream.set_nodelay(true);
        std::future::ready(Ok((
            Tracked {
                stream,
                slot: Arc::clone(&slot),
                id,
                connections: self.connections.clone(),
            },
            Proving {
                service,
                slot,
                connections: self.connections.clone(),
            },
        )))
    }
}

/// A connection holding a slot: records when it last sent a byte, fails its reads once closed
/// by the listener, and gives the slot back when dropped.
#[derive(Debug)]
pub(crate) struct Tracked<T> {
    stream: T,
    slot: Arc<Slot>,
    id: u64,
    connections: Connections,
}

impl<T> Tracked<T> {
    fn check_open(&self) -> io::Result<()> {
        if self.slot.closed.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the listener's limits",
            ))
        } else {
            Ok(())
        }
    }
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        // Ids are never reused: an evicted connection's slot is already gone.
        self.connections.slots().remove(&self.id);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.slot.waker.register(cx.waker());
        self.check_open()?;
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.connections.now_ms();
            self.slot.last_read_ms.store(now, Ordering::Relaxed);
        }
        polled
    }
}

// Writes go straight to the connection: a connection closed by the limits fails its next
// read (its task is woken for it) and is dropped then.
delegate_async_write!(Tracked, stream);

/// The connection's service: counts its requests in flight, and marks the connection proven
/// when a request is answered with a success status.
#[derive(Debug, Clone)]
pub(crate) struct Proving<S> {
    service: S,
    slot: Arc<Slot>,
    connections: Connections,
}

impl<S, R, B> tower_service::Service<R> for Proving<S>
where
    S: tower_service::Service<R, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let answered = self.service.call(request);
        let in_flight = InFlight::start(Arc::clone(&self.slot), &self.connections);
        Box::pin(async move {
            let response = answered.await?;
            if response.status().is_success() {
                in_flight.slot.proven.store(true, Ordering::Relaxed);
            }
            Ok(response)
        })
    }
}

/// One request in flight on a connection, until dropped (answered or abandoned).
struct InFlight {
    slot: Arc<Slot>,
}

impl InFlight {
    fn start(slot: Arc<Slot>, connections: &Connections) -> Self {
        slot.last_request_ms
            .store(connections.now_ms(), Ordering::Relaxed);
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        slot.fresh.store(false, Ordering::Relaxed);
        Self { slot }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(proven: bool, last_read_ms: u64) -> Standing {
        Standing {
            proven,
            last_read_ms,
            busy: false,
        }
    }

    fn busy(proven: bool, last_read_ms: u64) -> Standing {
        Standing {
            busy: true,
            ..standing(proven, last_read_ms)
        }
    }

    #[test]
    fn the_victim_is_the_quietest_unproven_connection_else_the_quietest() {
        for (connections, victim) in [
            (vec![], None),
            (vec![(1, standing(true, 5))], Some(1)),
            (
                vec![
                    (1, standing(false, 50)),
                    (2, standing(false, 10)),
                    (3, standing(true, 0)),
                ],
                Some(2),
            ),
            (
                vec![(1, standing(true, 50)), (2, standing(true, 10))],
                Some(2),
            ),
            // Ties go to the older connection.
            (
                vec![(7, standing(false, 10)), (4, standing(false, 10))],
                Some(4),
            ),
            // A busy connection goes after idle ones, however quiet, but before proven ones.
            (vec![(1, busy(false, 0)), (2, standing(false, 50))], Some(2)),
            (vec![(1, busy(false, 0)), (2, standing(true, 50))], Some(1)),
            (vec![(1, busy(true, 0)), (2, standing(true, 50))], Some(2)),
        ] {
            assert_eq!(
                eviction_victim(connections.clone()),
                victim,
                "{connections:?}"
            );
        }
    }

    #[test]
    fn idleness_is_measured_from_the_last_byte() {
        let timeout = Duration::from_secs(60);
        assert!(!is_idle(59_999, 0, timeout));
        assert!(is_idle(60_000, 0, timeout));
        assert!(!is_idle(100_000, 50_000, timeout));
        // A clock read before a concurrent update does not underflow.
        assert!(!is_idle(10, 20, timeout));
    }

    #[tokio::test]
    async fn a_full_listener_evicts_for_a_newcomer_and_sweeps_the_idle() {
        let closed = |slot: &Arc<Slot>| slot.closed.load(Ordering::Acquire);
        // A new connection is busy until its first request or BUSY_PROTECTION; this marks
        // it as having outlived that without a request.
        let quiet = |slot: &Arc<Slot>| slot.fresh.store(false, Ordering::Relaxed);
        let connections = Connections::new("test", 2);
        let (a_id, a) = connections.admit();
        let (_, b) = connections.admit();
        quiet(&a);
        let b_request = InFlight::start(Arc::clone(&b), &connections);
        // Full: the idle one goes, not the busy one nor the newcomer.
        let (_, c) = connections.admit();
        assert!(closed(&a) && !closed(&b) && !closed(&c));
        assert!(!connections.slots().contains_key(&a_id));
        quiet(&c);
        let (_, d) = connections.admit();
        assert!(
            closed(&c) && !closed(&b),
            "the idle connection went before the busy one"
        );
        // Its request over, b is idle: it goes before the newcomer d.
        drop(b_request);
        let (_, e) = connections.admit();
        assert!(closed(&b) && !closed(&d));
        // A proven connection goes after every unproven one.
        d.proven.store(true, Ordering::Relaxed);
        let (_, f) = connections.admit();
        assert!(closed(&e) && !closed(&d) && !closed(&f));
        assert_eq!(connections.len(), 2);

        let stop = CancellationToken::new();
        let sweep = tokio::spawn(
            connections
                .clone()
                .sweep(Duration::from_millis(40), stop.clone()),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        sweep.await.unwrap();
        assert!(
            closed(&d) && closed(&f),
            "idle connections are swept, proven or not"
        );
        assert_eq!(connections.len(), 0);
    }
}
