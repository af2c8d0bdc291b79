//! Command-line flags of `isvc-ingress serve`.
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

/// Flags of `isvc-ingress serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
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

    /// KServe ingress configuration (ConfigMap YAML or bare ingress JSON). Used by the
    /// admission layer.
    #[arg(long, env = "ISVC_INGRESS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Never contact a Kubernetes API server: serve the webhook alone on --config or the
    /// built-in KServe default (local trials). Without it, the cluster of the in-cluster config
    /// or kubeconfig is used for the ConfigMap watch and the reconciler; an API server that does
    /// not answer is retried with backoff while the replica stays unready. Only when there is no
    /// configuration at all does the webhook run alone.
    #[arg(long, env = "ISVC_INGRESS_STANDALONE")]
    pub standalone: bool,

    /// Domain and gateway policy, and who writes the routes.
    #[command(flatten)]
    pub policy: crate::cli::PolicyArgs,

    /// Leader election of the route reconciler (only with a cluster).
    #[command(flatten)]
    pub reconciler: crate::reconcile::ReconcilerArgs,

    /// Namespace of KServe's `inferenceservice-config` ConfigMap.
    #[arg(long, env = "ISVC_INGRESS_CONFIG_NAMESPACE", default_value = "kserve")]
    pub config_namespace: String,

    /// Knative's domain template (used without a cluster, or while `config-network` is absent).
    #[command(flatten)]
    pub knative: crate::cli::KnativeArgs,

    /// Namespace of Knative Serving's `config-network` ConfigMap (watched with a cluster).
    #[arg(
        long,
        env = "ISVC_INGRESS_KNATIVE_NAMESPACE",
        default_value = crate::config::KNATIVE_SERVING_NAMESPACE
    )]
    pub knative_namespace: String,

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

    /// Log line format.
    #[arg(long, env = "ISVC_INGRESS_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Plain)]
    pub log_format: crate::telemetry::LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["x", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
        let a = cli.serve;
        assert_eq!(a.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(a.admin_listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(a.shutdown_grace, Duration::from_secs(15));
        assert_eq!(a.tls_reload_interval, Duration::from_secs(10));
        assert_eq!(a.handshake_timeout, Duration::from_secs(10));
        assert_eq!(a.request_timeout, Duration::from_secs(10));
        assert_eq!(a.config_namespace, "kserve");
        assert_eq!(a.log_format, crate::telemetry::LogFormat::Plain);
        assert_eq!(a.handler_execution, HandlerExecution::Blocking);
        assert_eq!(a.max_connections, 256);
        assert_eq!(a.admin_max_connections, 64);
        assert_eq!(a.idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn connection_counts_are_whole_and_positive() {
        let parse = |flag: &str, value: &str| {
            Cli::try_parse_from(["x", "--self-signed", &format!("{flag}={value}")])
                .map(|cli| cli.serve)
        };
        assert_eq!(
            parse("--max-connections", "1000").unwrap().max_connections,
            1000
        );
        assert_eq!(
            parse("--admin-max-connections", "8")
                .unwrap()
                .admin_max_connections,
            8
        );
        for bad in ["0", "-1", "many", "2000000"] {
            for flag in ["--max-connections", "--admin-max-connections"] {
                let error = parse(flag, bad).expect_err(bad).to_string();
                assert!(error.contains(flag), "{error}");
            }
        }
        assert!(parse("--idle-timeout", "0s").is_err());
    }

    #[test]
    fn cert_flags_and_self_signed_are_exclusive() {
        // No certificate at all parses: `cli::main` then says to use --self-signed (tests/cli.rs).
        assert!(Cli::try_parse_from(["x"]).is_ok());
        assert!(Cli::try_parse_from(["x", "--tls-cert", "c.pem"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "--self-signed", "--tls-cert", "c", "--tls-key", "k"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["x", "--self-signed"]).is_ok());
    }

    #[test]
    fn repeatable_and_duration_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "--self-signed",
            "--allowed-domain",
            "a.example.com",
            "--allowed-domain",
            "b.example.com,c.example.com",
            "--allowed-gateway",
            "istio-system/gw",
            "--shutdown-grace",
            "500ms",
            "--tls-reload-interval",
            "1m30s",
        ])
        .unwrap();
        assert_eq!(
            cli.serve.policy.allowed_domains,
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(cli.serve.policy.allowed_gateways, ["istio-system/gw"]);
        assert_eq!(cli.serve.shutdown_grace, Duration::from_millis(500));
        assert_eq!(cli.serve.tls_reload_interval, Duration::from_secs(90));
        assert!(Cli::try_parse_from(["x", "--self-signed", "--shutdown-grace", "15"]).is_err());
        assert!(Cli::try_parse_from(["x", "--self-signed", "--shutdown-grace", "0s"]).is_ok());
        assert!(
            Cli::try_parse_from(["x", "--self-signed", "--tls-reload-interval", "0s"]).is_err()
        );
        assert!(Cli::try_parse_from(["x", "--self-signed", "--request-timeout", "0"]).is_err());
    }
}
