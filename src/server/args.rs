//! Command-line flags of the webhook server, part of `isvc-ingress serve`'s.
//!
//! Every `serve` flag can also come from an environment variable `ISVC_INGRESS_<FLAG>`, which
//! is how a Deployment usually sets them. Repeatable flags read a comma-separated list from
//! their variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration::parse_duration;

/// Where the synchronous admission handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HandlerExecution {
    /// On tokio's blocking pool. The server can answer 504 when the handler overruns the
    /// deadline, because the async task stops waiting while the thread finishes on its own.
    #[default]
    Blocking,
    /// Directly on the async worker thread. Saves the thread hand-off (see
    /// PERFORMANCE-NOTES.md), but a handler that overruns cannot be interrupted: it occupies a
    /// runtime worker until it returns, and its answer is sent late instead of a 504.
    Inline,
}

/// A duration that must not be zero: a zero poll interval or timeout is never what was meant.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Most connections a listener can be given: what a process's file descriptors allow.
const MAX_CONNECTION_COUNT: usize = 1 << 20;

/// A connection count between 1 and [`MAX_CONNECTION_COUNT`].
fn parse_connection_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTION_COUNT).contains(&n) => Ok(n),
        Ok(_) => Err(format!("must be between 1 and {MAX_CONNECTION_COUNT}")),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// Flags of the webhook server: its listeners, serving certificate, timeouts and connection
/// limits. `isvc-ingress serve` flattens them into its own flags.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address of the TLS webhook listener.
    #[arg(long, env = "ISVC_INGRESS_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Address of the plain-HTTP admin listener (/livez, /readyz, /metrics).
    #[arg(
        long,
        env = "ISVC_INGRESS_ADMIN_LISTEN",
        default_value = "0.0.0.0:8081"
    )]
    pub admin_listen: SocketAddr,

    /// PEM file with the serving certificate chain (leaf first). Re-read every
    /// --tls-reload-interval. Required, with --tls-key, unless --self-signed is given.
    #[arg(
        long,
        env = "ISVC_INGRESS_TLS_CERT",
        conflicts_with = "self_signed",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "ISVC_INGRESS_TLS_KEY",
        conflicts_with = "self_signed",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve with an in-memory CA and certificate (SANs localhost, 127.0.0.1, ::1 and the host
    /// name) and print the CA PEM to stdout. For local trials only: implies --standalone.
    #[arg(long, env = "ISVC_INGRESS_SELF_SIGNED")]
    pub self_signed: bool,

    /// PEM file of a CA: when set, clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = "ISVC_INGRESS_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,

    /// On SIGTERM/SIGINT, how long in-flight requests may take before connections are closed.
    #[arg(long, env = "ISVC_INGRESS_SHUTDOWN_GRACE", default_value = "15s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How often --tls-cert and --tls-key are re-read and compared with what is in service.
    #[arg(long, env = "ISVC_INGRESS_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_positive_duration)]
    pub tls_reload_interval: Duration,

    /// A TCP connection that has not completed the TLS handshake after this long is closed.
    #[arg(long, env = "ISVC_INGRESS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub handshake_timeout: Duration,

    /// Upper bound for answering one admission request; the apiserver's `?timeout=` can only
    /// shorten it.
    #[arg(long, env = "ISVC_INGRESS_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub request_timeout: Duration,

    /// HTTP/1: a request's headers must arrive within this long of the connection becoming
    /// idle; this also closes HTTP/1 keep-alive connections idle for this long (hyper
    /// semantics). Any protocol: a new connection's first bytes must arrive within this long of
    /// the TLS handshake. Idle HTTP/2 connections are not affected.
    #[arg(long, env = "ISVC_INGRESS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration, hide = true)]
    pub header_read_timeout: Duration,

    /// Most connections the webhook port holds at once. When all are taken, a new connection
    /// takes the slot of the one that has sent nothing for longest (connections that have
    /// never had a request answered go first), so a flood of idle or slow clients evicts its
    /// own members and the apiserver still gets in. kube-apiserver needs a few per replica.
    #[arg(long, env = "ISVC_INGRESS_MAX_CONNECTIONS", default_value_t = 256, value_parser = parse_connection_count)]
    pub max_connections: usize,

    /// Most connections the admin port holds at once, with the same eviction as
    /// --max-connections (kubelet opens one per probe; Prometheus keeps one).
    #[arg(long, env = "ISVC_INGRESS_ADMIN_MAX_CONNECTIONS", default_value_t = 64, value_parser = parse_connection_count)]
    pub admin_max_connections: usize,

    /// A connection of either port that sends nothing for this long is closed (HTTP/2
    /// included; kube-apiserver pings its idle HTTP/2 connections every 30s). Must be longer
    /// than --request-timeout, during which a request's connection may be quiet.
    #[arg(long, env = "ISVC_INGRESS_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,

    /// Where the admission handler runs (blocking pool or inline on the async worker).
    #[arg(long, env = "ISVC_INGRESS_HANDLER_EXECUTION", value_enum, default_value_t = HandlerExecution::Blocking, hide = true)]
    pub handler_execution: HandlerExecution,
}
