//! Misbehaving clients, for the fault suite and `isvc-ingress-load --attack` (issue 12): what
//! an in-cluster client that can reach the webhook or admin port could do to make the server
//! grow or stall, each over many connections at once. Loopback use only: the load tool checks
//! its target; the tests start their own server.
//!
//! A [`Siege`] keeps `connections` attackers running; each connects, misbehaves, and when the
//! server closes its connection, connects again after the siege's reconnect pause (if it has
//! one), so the pressure lasts as long as the siege.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the webhook's largest body is declared as by the attacks that declare one (3 MiB).
pub const DECLARED_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How much of a header line the unfinished-headers attack sends (what issue 12 saw: 390 KB).
pub const UNFINISHED_HEADER_BYTES: usize = 390 * 1024;

/// How much of its declared body the partial-HTTP/2 attack sends before stopping (1 MiB).
pub const PARTIAL_BODY_BYTES: usize = 1024 * 1024;

/// HTTP/2 streams the declared-body attack opens per connection (the server takes as many as
/// it allows; the rest wait in the client).
pub const DECLARED_STREAMS: usize = 32;

/// The ways to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// An HTTP/1.1 request line and a header line of [`UNFINISHED_HEADER_BYTES`] that never
    /// ends.
    UnfinishedHeaders,
    /// `GET /livez HTTP/1.1\r\nX: a` and then nothing, the connection held open.
    IdleHeaders,
    /// A complete HTTP/1.1 head declaring `Content-Length:` [`DECLARED_BODY_BYTES`], then no
    /// body byte.
    DeclaredLength,
    /// A complete HTTP/1.1 head with `Transfer-Encoding: chunked`, then no chunk.
    DeclaredChunked,
    /// [`DECLARED_STREAMS`] HTTP/2 streams per connection, each declaring
    /// [`DECLARED_BODY_BYTES`] and sending no DATA.
    DeclaredHttp2,
    /// One HTTP/2 stream declaring [`DECLARED_BODY_BYTES`] that sends [`PARTIAL_BODY_BYTES`]
    /// and stops.
    PartialHttp2,
}

impl Attack {
    /// Every attack, in the order of the report.
    pub const ALL: [Attack; 6] = [
        Attack::UnfinishedHeaders,
        Attack::IdleHeaders,
        Attack::DeclaredLength,
        Attack::DeclaredChunked,
        Attack::DeclaredHttp2,
        Attack::PartialHttp2,
    ];

    /// The name used on the load tool's command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Attack::UnfinishedHeaders => "unfinished-headers",
            Attack::IdleHeaders => "idle-headers",
            Attack::DeclaredLength => "declared-length",
            Attack::DeclaredChunked => "declared-chunked",
            Attack::DeclaredHttp2 => "declared-http2",
            Attack::PartialHttp2 => "partial-http2",
        }
    }

    /// The attack of `name`, if any.
    pub fn from_name(name: &str) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the attack speaks HTTP/2 (and so needs the webhook port's TLS with ALPN `h2`).
    pub fn is_http2(self) -> bool {
        matches!(self, Attack::DeclaredHttp2 | Attack::PartialHttp2)
    }
}

/// Where the attackers connect: the webhook port (TLS, with configurations offering ALPN
/// `http/1.1` and `h2`) or the admin port (plain TCP).
#[derive(Clone)]
pub enum Target {
    /// The TLS webhook port.
    Webhook {
        /// Its address.
        addr: SocketAddr,
        /// The name to verify its certificate for.
        server_name: ServerName<'static>,
        /// Client configuration offering `http/1.1`.
        http1: Arc<ClientConfig>,
        /// Client configuration offering `h2`.
        http2: Arc<ClientConfig>,
    },
    /// The plain-HTTP admin port.
    Admin(SocketAddr),
}

/// What the attackers of a siege have seen.
#[derive(Debug, Default)]
pub struct SiegeStats {
    /// Connections opened (TCP, and TLS where it applies).
    pub opened: AtomicUsize,
    /// Connections open now.
    pub holding: AtomicUsize,
    /// Connections the server closed.
    pub closed: AtomicUsize,
    /// Connection attempts that failed.
    pub refused: AtomicUsize,
    /// HTTP/2 requests the server cut, answering 408 (the request-bytes budget shed them).
    pub requests_cut: AtomicUsize,
}

/// Attackers at work until [`Siege::stop`].
pub struct Siege {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<SiegeStats>,
}

impl Siege {
    /// Starts `connections` attackers of `attack` on `target`. With `reconnect`, an attacker
    /// whose connection is closed (or refused) connects again after that pause, lengthened by
    /// up to 7/8 of it depending on the attacker (so that attackers cut together do not all
    /// come back at once); without, it gives up.
    pub fn start(
        target: &Target,
        attack: Attack,
        connections: usize,
        reconnect: Option<Duration>,
    ) -> Self {
        let stop = CancellationToken::new();
        let stats = Arc::new(SiegeStats::default());
        let tasks = (0..connections)
            .map(|n| {
                let spread = u32::try_from(n % 8).expect("under 8");
                tokio::spawn(attacker(
                    target.clone(),
                    attack,
                    reconnect.map(|pause| pause + pause * spread / 8),
                    Arc::clone(&stats),
                    stop.clone(),
                ))
            })
            .collect();
        Self { stop, tasks, stats }
    }

    /// What the attackers have seen so far.
    pub fn stats(&self) -> &SiegeStats {
        &self.stats
    }

    /// Stops the attackers and closes their connections.
    pub async fn stop(self) -> Arc<SiegeStats> {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.stats
    }
}

async fn attacker(
    target: Target,
    attack: Attack,
    reconnect: Option<Duration>,
    stats: Arc<SiegeStats>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let attempt = async {
            match &target {
                Target::Admin(addr) => {
                    let tcp = TcpStream::connect(addr).await?;
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                    stats.holding.fetch_add(1, Ordering::Relaxed);
                    misbehave_http1(tcp, attack).await;
                    Ok::<_, std::io::Error>(())
                }
                Target::Webhook {
                    addr,
                    server_name,
                    http1,
                    http2,
                } => {
                    let config = if attack.is_http2() { http2 } else { http1 };
                    let tcp = TcpStream::connect(addr).await?;
                    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                        .connect(server_name.clone(), tcp)
                        .await?;
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                    stats.holding.fetch_add(1, Ordering::Relaxed);
                    if attack.is_http2() {
                        misbehave_http2(tls, attack, &stats).await;
                    } else {
                        misbehave_http1(tls, attack).await;
                    }
                    Ok(())
                }
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            outcome = attempt => match outcome {
                Ok(()) => {
                    stats.holding.fetch_sub(1, Ordering::Relaxed);
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
        let Some(pause) = reconnect else { return };
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Runs an HTTP/1 attack on `stream`; returns when the server has closed it.
async fn misbehave_http1<S: AsyncRead + AsyncWrite + Unpin>(stream: S, attack: Attack) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = match attack {
        Attack::UnfinishedHeaders => "POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Filler: ",
        Attack::IdleHeaders => "GET /livez HTTP/1.1\r\nX: a",
        Attack::DeclaredLength => {
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: 3145728\r\n\r\n"
        }
        Attack::DeclaredChunked => {
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        }
        Attack::DeclaredHttp2 | Attack::PartialHttp2 => unreachable!("HTTP/2 attacks"),
    };
    let send = async {
        writer.write_all(head.as_bytes()).await?;
        if attack == Attack::UnfinishedHeaders {
            let filler = [b'a'; 16 * 1024];
            for _ in 0..UNFINISHED_HEADER_BYTES / filler.len() {
                writer.write_all(&filler).await?;
            }
        }
        writer.flush().await?;
        std::future::pending::<std::io::Result<()>>().await
    };
    let closed = async {
        let mut buffer = [0u8; 4096];
        while let Ok(1..) = reader.read(&mut buffer).await {}
    };
    tokio::select! {
        _ = send => {}
        () = closed => {}
    }
}

type HeldBody =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// A body that yields `sent` bytes in 16 KiB frames and then never ends.
fn held_body(sent: usize) -> HeldBody {
    let chunk = Bytes::from(vec![b' '; 16 * 1024]);
    let frames = futures_util::stream::iter((0..sent / chunk.len()).map(move |_| chunk.clone()))
        .map(|data| Ok(Frame::data(data)))
        .chain(futures_util::stream::pending());
    StreamBody::new(frames.boxed())
}

/// Runs an HTTP/2 attack on `stream`; returns when the server has closed it.
async fn misbehave_http2<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    attack: Attack,
    stats: &SiegeStats,
) {
    let Ok((sender, connection)) =
        http2::handshake::<_, _, HeldBody>(TokioExecutor::new(), TokioIo::new(stream)).await
    else {
        return;
    };
    let (streams, sent) = match attack {
        Attack::DeclaredHttp2 => (DECLARED_STREAMS, 0),
        _ => (1, PARTIAL_BODY_BYTES),
    };
    let requests = (0..streams).map(|_| {
        let mut sender = sender.clone();
        async move {
            let request = http::Request::post("https://localhost/validate")
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CONTENT_LENGTH, DECLARED_BODY_BYTES)
                .body(held_body(sent))
                .expect("a valid request");
            if sender.ready().await.is_ok()
                && let Ok(response) = sender.send_request(request).await
                && response.status() == http::StatusCode::REQUEST_TIMEOUT
            {
                stats.requests_cut.fetch_add(1, Ordering::Relaxed);
            }
            // The stream is over, one way or another; keep the others and the connection.
            std::future::pending::<()>().await;
        }
    });
    let requests = futures_util::future::join_all(requests);
    tokio::select! {
        _ = connection => {}
        _ = requests => {}
    }
}
