//! Command-line flags of `isvc-ingress serve`: the server's ([`ServerArgs`]), the reconciler's
//! ([`ReconcilerArgs`]), and those of the config and policy the webhook decides with.
//!
//! Every `serve` flag can also come from an environment variable `ISVC_INGRESS_<FLAG>`, which
//! is how a Deployment usually sets them. Repeatable flags read a comma-separated list from
//! their variable. [`PolicyArgs`] and [`KnativeArgs`] are `serve`'s, and `render` (and
//! `analyze`, for the policy) take the same flags, so their output is what the webhook answers.

use std::path::PathBuf;

use clap::Args;

use crate::config::{
    ConfigError, KNATIVE_DEFAULT_DOMAIN_TEMPLATE, KNATIVE_SERVING_NAMESPACE, KnativeNetwork,
    KserveConfig,
};
use crate::plan::{Policy, RouteOwner};
use crate::reconcile::ReconcilerArgs;
use crate::server::ServerArgs;
use crate::telemetry::LogFormat;

/// Flags of `isvc-ingress serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The webhook server: listeners, serving certificate, timeouts and connection limits.
    #[command(flatten)]
    pub server: ServerArgs,

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
    pub policy: PolicyArgs,

    /// The route reconciler: leader election and reconciles at once (only with a cluster).
    #[command(flatten)]
    pub reconciler: ReconcilerArgs,

    /// Rate limit of the Kubernetes API client (only with a cluster).
    #[command(flatten)]
    pub api_client: crate::api_client::ApiClientArgs,

    /// Namespace of KServe's `inferenceservice-config` ConfigMap.
    #[arg(long, env = "ISVC_INGRESS_CONFIG_NAMESPACE", default_value = "kserve")]
    pub config_namespace: String,

    /// Knative's domain template (used without a cluster, or while `config-network` is absent).
    #[command(flatten)]
    pub knative: KnativeArgs,

    /// Namespace of Knative Serving's `config-network` ConfigMap (watched with a cluster).
    #[arg(
        long,
        env = "ISVC_INGRESS_KNATIVE_NAMESPACE",
        default_value = KNATIVE_SERVING_NAMESPACE
    )]
    pub knative_namespace: String,

    /// Log line format.
    #[arg(long, env = "ISVC_INGRESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// What the platform team decides beyond the KServe config; the same flags for `render` and
/// `serve`, so a `render` shows what the webhook will answer.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// A domain override hosts may use besides ingressDomain and additionalIngressDomains
    /// (repeatable, or comma-separated).
    #[arg(
        long = "allowed-domain",
        env = "ISVC_INGRESS_ALLOWED_DOMAIN",
        value_delimiter = ',',
        value_name = "DOMAIN"
    )]
    pub allowed_domains: Vec<String>,
    /// A gateway `<namespace>/<name>` ISVCs may name besides the configured ones (repeatable, or
    /// comma-separated).
    #[arg(
        long = "allowed-gateway",
        env = "ISVC_INGRESS_ALLOWED_GATEWAY",
        value_delimiter = ',',
        value_name = "GATEWAY"
    )]
    pub allowed_gateways: Vec<String>,
    /// Who writes Ingresses, HTTPRoutes and VirtualServices: `kserve` (KServe's controller; the
    /// reconciler writes only DomainMappings and the status) or `isvc-ingress` (KServe must then
    /// have disableIngressCreation and disableIstioVirtualHost set). See docs/operations.md.
    #[arg(
        long,
        env = "ISVC_INGRESS_ROUTE_OWNER",
        value_enum,
        default_value = "kserve"
    )]
    pub route_owner: RouteOwner,
}

impl PolicyArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            allowed_domains: self.allowed_domains.clone(),
            allowed_gateways: self.allowed_gateways.clone(),
            route_owner: self.route_owner,
        }
    }
}

/// Knative Serving's side of Knative-mode hosts, for `render` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct KnativeArgs {
    /// Knative's `domain-template` (the `config-network` ConfigMap in knative-serving), with
    /// `.Name`, `.Namespace`, `.Domain` (= ingressDomain), `.Annotations`, `.Labels`. Every
    /// Knative-mode host is predicted with it. `serve` with a cluster reads and watches
    /// `config-network` instead, and uses this value only while that ConfigMap does not exist.
    #[arg(
        long,
        env = "ISVC_INGRESS_KNATIVE_DOMAIN_TEMPLATE",
        value_name = "TEMPLATE",
        default_value = KNATIVE_DEFAULT_DOMAIN_TEMPLATE
    )]
    pub knative_domain_template: String,
}

impl KnativeArgs {
    /// `config` with the Knative domain template of the flag.
    ///
    /// # Errors
    ///
    /// The template does not parse or cannot render a valid host.
    pub fn apply(&self, config: KserveConfig) -> Result<KserveConfig, ConfigError> {
        let network = KnativeNetwork::from_domain_template(&self.knative_domain_template).map_err(
            |violation| ConfigError::Invalid {
                violations: vec![violation],
                warnings: Vec::new(),
            },
        )?;
        Ok(config.with_knative_network(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["x", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
        let a = cli.serve;
        assert_eq!(a.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(a.server.admin_listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(a.server.shutdown_grace, Duration::from_secs(15));
        assert_eq!(a.server.tls_reload_interval, Duration::from_secs(10));
        assert_eq!(a.server.handshake_timeout, Duration::from_secs(10));
        assert_eq!(a.server.request_timeout, Duration::from_secs(10));
        assert_eq!(a.config_namespace, "kserve");
        assert_eq!(a.log_format, LogFormat::Plain);
        assert_eq!(
            a.server.handler_execution,
            crate::server::HandlerExecution::Blocking
        );
        assert_eq!(a.server.max_connections, 256);
        assert_eq!(a.server.admin_max_connections, 64);
        assert_eq!(a.server.idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn connection_counts_are_whole_and_positive() {
        let parse = |flag: &str, value: &str| {
            Cli::try_parse_from(["x", "--self-signed", &format!("{flag}={value}")])
                .map(|cli| cli.serve.server)
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
        assert_eq!(cli.serve.server.shutdown_grace, Duration::from_millis(500));
        assert_eq!(
            cli.serve.server.tls_reload_interval,
            Duration::from_secs(90)
        );
        assert!(Cli::try_parse_from(["x", "--self-signed", "--shutdown-grace", "15"]).is_err());
        assert!(Cli::try_parse_from(["x", "--self-signed", "--shutdown-grace", "0s"]).is_ok());
        assert!(
            Cli::try_parse_from(["x", "--self-signed", "--tls-reload-interval", "0s"]).is_err()
        );
        assert!(Cli::try_parse_from(["x", "--self-signed", "--request-timeout", "0"]).is_err());
    }
}
