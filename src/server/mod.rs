//! The webhook server: TLS listener for `/mutate` and `/validate`, admin listener, certificate
//! rotation and graceful shutdown, around an [`AdmissionHandler`] supplied by the admission
//! layer.
//!
//! # Tracing contract with the admission layer
//!
//! For every review the server opens one span named `review` with the fields `uid`, `kind`,
//! `namespace`, `name`, `operation` and `outcome` declared [`tracing::field::Empty`] (plus
//! `endpoint`, set), and enters it around [`AdmissionHandler::handle`] — on whichever thread
//! runs the handler. The handler fills what only it can parse:
//!
//! ```
//! fn record_identity(uid: &str, namespace: &str, name: &str) {
//!     let span = tracing::Span::current();
//!     span.record("uid", uid);
//!     span.record("namespace", namespace);
//!     span.record("name", name);
//! }
//! ```
//!
//! and the server records `kind`, `operation` and `outcome` from the [`AdmissionReply`]. Any
//! event the handler logs inside `handle` carries those fields.
//!
//! # Lifecycle
//!
//! [`start_server`] binds both listeners, serves the admin port at once (not ready), loads the
//! certificate, marks it loaded in [`Readiness`], then serves the webhook port. When the
//! shutdown token is cancelled it marks the process unready, stops accepting connections,
//! lets in-flight requests finish within `--shutdown-grace`, and then stops the admin port.

/// Implements `tokio::io::AsyncWrite` for `$wrapper<T>` by passing every call to its field
/// `$field` (for the stream wrappers of `limits` and `preface`, which only act on reads).
macro_rules! delegate_async_write {
    ($wrapper:ident, $field:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<T> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}

pub mod admin;
pub mod args;
mod budget;
pub mod echo;
pub mod limits;
mod preface;
pub mod readiness;
pub mod shutdown;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::task::JoinHandle;

pub use self::args::{HandlerExecution, ServerArgs};
pub use self::readiness::Readiness;
pub use self::tls::TlsError;
pub use tokio_util::sync::CancellationToken;

use crate::certs::{self, CertsError};
use crate::metrics::Metrics;

/// The interface between the server and the admission layer lives with the admission layer;
/// the server runs any [`AdmissionHandler`] (the echo handlers of the load tool too).
pub use crate::admission::{AdmissionHandler, AdmissionReply, Endpoint, Outcome};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The serving certificate, its key or the client CA is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The self-signed certificate could not be generated.
    #[error(transparent)]
    Certs(#[from] CertsError),
    /// Two flags contradict each other.
    #[error("{flag} ({value}) must be longer than {other} ({other_value})")]
    Flags {
        /// The flag at fault.
        flag: &'static str,
        /// Its value.
        value: String,
        /// The flag it must exceed.
        other: &'static str,
        /// That flag's value.
        other_value: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// `webhook` or `admin`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("{what} listener failed: {source}")]
    Serve {
        /// `webhook` or `admin`.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A server task panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        /// Which task.
        what: &'static str,
        /// The join error.
        source: tokio::task::JoinError,
    },
}

/// A started server: its bound addresses, and a future that ends when it has shut down.
#[derive(Debug)]
pub struct RunningServer {
    webhook_addr: SocketAddr,
    admin_addr: SocketAddr,
    self_signed_ca_pem: Option<String>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// The TLS webhook address actually bound (useful with port 0).
    pub fn webhook_addr(&self) -> SocketAddr {
        self.webhook_addr
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// With `--self-signed`, the generated CA (PEM) that clients must trust.
    pub fn self_signed_ca_pem(&self) -> Option<&str> {
        self.self_signed_ca_pem.as_deref()
    }

    /// Waits until the server has drained and both listeners are closed.
    pub async fn wait(self) -> Result<(), ServerError> {
        self.task.await.map_err(|source| ServerError::Task {
            what: "server",
            source,
        })?
    }
}

/// Starts the webhook and admin listeners and returns once both are bound and the certificate
/// is in service.
///
/// The server stops when `shutdown` is cancelled (see the [module docs](self)). It never
/// cancels `shutdown` itself; call [`shutdown::cancel_on_signals`] for SIGTERM/SIGINT.
pub async fn start_server(
    args: &ServerArgs,
    handler: Arc<dyn AdmissionHandler>,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<RunningServer, ServerError> {
    check_flags(args)?;
    // Admin first, so probes get an honest "not ready" while the certificate loads.
    let admin_listener = bind_listener(args.admin_listen).map_err(|source| ServerError::Bind {
        what: "admin",
        addr: args.admin_listen,
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            what: "admin",
            addr: args.admin_listen,
            source,
        })?;
    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(
        admin::serve_admin(
            admin_listener,
            admin::AdminLimits {
                max_connections: args.admin_max_connections,
                idle_timeout: args.idle_timeout,
                header_read_timeout: args.header_read_timeout,
            },
            metrics.clone(),
            readiness.clone(),
            admin_stop.clone(),
        )
        .map_err(|source| ServerError::Bind {
            what: "admin",
            addr: args.admin_listen,
            source,
        })?,
    );

    let started = start_webhook(args, handler, &metrics, &readiness).await;
    let (webhook_addr, self_signed_ca_pem, webhook_task, handle, watch_stop) = match started {
        Ok(started) => started,
        Err(error) => {
            admin_stop.cancel();
            return Err(error);
        }
    };
    tracing::info!(webhook = %webhook_addr, admin = %admin_addr, "listening");

    let grace = args.shutdown_grace;
    let task = tokio::spawn(async move {
        let mut webhook_task = webhook_task;
        let webhook_result = tokio::select! {
            () = shutdown.cancelled() => {
                readiness.mark_shutting_down();
                tracing::info!(grace = %crate::duration::format_duration(grace), "draining webhook connections");
                handle.graceful_shutdown(Some(grace));
                webhook_task.await
            }
            result = &mut webhook_task => result,
        };
        readiness.mark_shutting_down();
        watch_stop.cancel();
        admin_stop.cancel();
        let admin_result = admin_task.await;
        tracing::info!("server stopped");
        webhook_result
            .map_err(|source| ServerError::Task {
                what: "webhook",
                source,
            })?
            .map_err(|source| ServerError::Serve {
                what: "webhook",
                source,
            })?;
        admin_result
            .map_err(|source| ServerError::Task {
                what: "admin",
                source,
            })?
            .map_err(|source| ServerError::Serve {
                what: "admin",
                source,
            })
    });
    Ok(RunningServer {
        webhook_addr,
        admin_addr,
        self_signed_ca_pem,
        task,
    })
}

type StartedWebhook = (
    SocketAddr,
    Option<String>,
    JoinHandle<std::io::Result<()>>,
    Handle<SocketAddr>,
    CancellationToken,
);

async fn start_webhook(
    args: &ServerArgs,
    handler: Arc<dyn AdmissionHandler>,
    metrics: &Metrics,
    readiness: &Readiness,
) -> Result<StartedWebhook, ServerError> {
    let client_verifier = args
        .client_ca
        .as_deref()
        .map(tls::client_verifier)
        .transpose()?;
    let watch_stop = CancellationToken::new();
    let (rustls, self_signed_ca_pem) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) if !args.self_signed => {
            let (rustls, files) = tls::load_from_files(cert, key, client_verifier).await?;
            tokio::spawn(files.watch(
                args.tls_reload_interval,
                metrics.clone(),
                watch_stop.clone(),
            ));
            (rustls, None)
        }
        _ => {
            let (config, ca_pem) = self_signed_config(client_verifier)?;
            (RustlsConfig::from_config(Arc::new(config)), Some(ca_pem))
        }
    };
    readiness.set_certificate_loaded();

    let bind_err = |source| ServerError::Bind {
        what: "webhook",
        addr: args.listen,
        source,
    };
    let listener = bind_listener(args.listen).map_err(bind_err)?;
    let webhook_addr = listener.local_addr().map_err(bind_err)?;

    let handle = Handle::new();
    let connections = limits::Connections::new("webhook", args.max_connections);
    tokio::spawn(
        connections
            .clone()
            .sweep(args.idle_timeout, watch_stop.clone()),
    );
    let mut server = axum_server::from_tcp(listener)
        .map_err(bind_err)?
        // The client's first bytes after the handshake must come within the header-read
        // timeout: see `preface` for the wait that no other timeout covers.
        .acceptor(preface::PrefaceAcceptor::new(
            RustlsAcceptor::new(rustls)
                .handshake_timeout(args.handshake_timeout)
                .acceptor(limits::SlotAcceptor::new(connections)),
            args.header_read_timeout,
        ))
        .handle(handle.clone());
    // hyper starts the header-read timer whenever an HTTP/1 connection waits for a request
    // head, so it bounds slowloris clients and also closes HTTP/1 keep-alive connections idle
    // for that long. At 10s this is safe for the apiserver: it speaks HTTP/2 to webhooks
    // (ALPN h2), where this setting does not apply; and an HTTP/1 client reusing a connection
    // races the close only if it sends exactly as the 10s idle period ends, instead of on
    // most reuses as with kubert's 2s (linkerd #14096).
    limits::configure_http(server.http_builder(), args.header_read_timeout);

    let state = Arc::new(webhook::WebhookState::new(
        handler,
        metrics.clone(),
        args.request_timeout,
        args.handler_execution,
    ));
    let app = webhook::router(state);
    let task = tokio::spawn(server.serve(app.into_make_service()));
    Ok((webhook_addr, self_signed_ca_pem, task, handle, watch_stop))
}

/// Accept-queue length of both listeners. Rust's std default (128) overflows when
/// many clients connect at once (e.g. every apiserver replica reconnecting after a rollout):
/// dropped SYNs are retried only after 1s. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// Rejects flag combinations that cannot work.
fn check_flags(args: &ServerArgs) -> Result<(), ServerError> {
    if args.idle_timeout <= args.request_timeout {
        return Err(ServerError::Flags {
            flag: "--idle-timeout",
            value: crate::duration::format_duration(args.idle_timeout),
            other: "--request-timeout",
            other_value: crate::duration::format_duration(args.request_timeout),
        });
    }
    Ok(())
}

fn bind_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// An in-memory CA and serving certificate for localhost, 127.0.0.1, ::1 and the host name.
fn self_signed_config(
    client_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<(rustls::ServerConfig, String), ServerError> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h != "localhost");
    let mut hosts = vec!["localhost", "127.0.0.1", "::1"];
    if let Some(h) = hostname.as_deref() {
        hosts.push(h);
    }
    let bundle = certs::generate_for_hosts(&hosts)?;
    let config = tls::server_config(
        bundle.cert_pem.as_bytes(),
        bundle.key_pem.as_bytes(),
        client_verifier,
    )?;
    Ok((config, bundle.ca_pem))
}

/// Runs the server until `shutdown` is cancelled and the connections have drained.
///
/// With `--self-signed`, prints the generated CA PEM to stdout first, so that
/// `curl --cacert` can trust it. `--config`, `--config-namespace` and `--allowed-*` are not
/// read here; the admission layer consumes them when it builds `handler`.
pub async fn run_server(
    args: &ServerArgs,
    handler: Arc<dyn AdmissionHandler>,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let running = start_server(args, handler, metrics, readiness, shutdown).await?;
    if let Some(ca) = running.self_signed_ca_pem() {
        println!("{}", ca.trim_end());
    }
    running.wait().await
}
