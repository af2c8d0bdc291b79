//! Leader election: every replica serves the webhook and keeps its caches warm; only the holder
//! of a `coordination.k8s.io/v1` Lease writes routes and status (the linkerd pattern, reference
//! §2.7). Two writers with different caches would undo each other's deletes.

use super::Error;
use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Flags of `serve`'s route reconciler: leader election and how many ISVCs it reconciles at once.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconcilerArgs {
    /// Name of the Lease that elects the replica writing routes and status.
    #[arg(
        long = "lease-name",
        env = "ISVC_INGRESS_LEASE_NAME",
        default_value = "isvc-ingress"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `isvc-ingress`).
    #[arg(long = "lease-namespace", env = "ISVC_INGRESS_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a lease is valid after its last renewal; a crashed leader is replaced after this.
    #[arg(
        long = "lease-duration",
        env = "ISVC_INGRESS_LEASE_DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub lease_duration: Duration,
    /// How often the holder renews the lease; must be shorter than the duration.
    #[arg(
        long = "lease-renew",
        env = "ISVC_INGRESS_LEASE_RENEW",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub lease_renew: Duration,
    /// ISVCs reconciled at once. A reconcile waits for the API server's answer to each of its
    /// writes, so this is also the most writes the replica has in flight: at 1 a slower API
    /// server slows the writes down (at most `--kube-api-qps` a second, fewer when one write
    /// takes longer than 1 / qps). Like controller-runtime's `MaxConcurrentReconciles`, whose
    /// default is 1. On the scale benchmark (`docs/performance.md`), a config change at 10,000
    /// ISVCs at `--kube-api-qps 20` (the default then) wrote 20 a second either way, and the
    /// API server's p99 for our webhook's calls meanwhile was 9.0–9.3 ms with 1 at once and
    /// 14.1 ms with 8. At the default 10 a second, more than 1 at once helps only when a write
    /// takes over 100 ms.
    #[arg(
        long = "concurrent-reconciles",
        env = "ISVC_INGRESS_CONCURRENT_RECONCILES",
        default_value = "1",
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub concurrent_reconciles: u16,
}

impl Default for ReconcilerArgs {
    fn default() -> Self {
        Self {
            lease_name: "isvc-ingress".into(),
            lease_namespace: None,
            lease_duration: Duration::from_secs(15),
            lease_renew: Duration::from_secs(5),
            concurrent_reconciles: 1,
        }
    }
}

impl ReconcilerArgs {
    /// The lease settings, with the namespace defaulted from `POD_NAMESPACE` and the identity
    /// from `POD_NAME` (unique per replica), else the host name.
    pub fn leader_config(&self) -> Result<LeaderConfig, Error> {
        let lease_namespace = self
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| "isvc-ingress".to_string());
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|identity| !identity.is_empty())
            .unwrap_or_else(|| format!("isvc-ingress-{}", std::process::id()));
        LeaderConfig::new(
            self.lease_name.clone(),
            lease_namespace,
            self.lease_duration,
            self.lease_renew,
            identity,
        )
    }
}

/// A validated lease configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
    pub renew_interval: Duration,
    /// This replica's name in the Lease's `holderIdentity`.
    pub identity: String,
}

impl LeaderConfig {
    /// Checks what kube-lease-manager would otherwise panic on: whole seconds, renewal shorter
    /// than the duration.
    pub fn new(
        lease_name: String,
        lease_namespace: String,
        lease_duration: Duration,
        renew_interval: Duration,
        identity: String,
    ) -> Result<Self, Error> {
        let whole = |duration: Duration| duration.subsec_nanos() == 0 && duration.as_secs() > 0;
        if !whole(lease_duration) || !whole(renew_interval) {
            return Err(Error::Config(
                "--lease-duration and --lease-renew must be whole seconds, at least 1s".into(),
            ));
        }
        if renew_interval >= lease_duration {
            return Err(Error::Config(format!(
                "--lease-renew ({}s) must be shorter than --lease-duration ({}s)",
                renew_interval.as_secs(),
                lease_duration.as_secs()
            )));
        }
        Ok(Self {
            lease_name,
            lease_namespace,
            lease_duration,
            renew_interval,
            identity,
        })
    }

    /// kube-lease-manager's grace: how long before expiry the holder renews. Renewing every
    /// `renew_interval` means renewing `duration - renew_interval` before expiry.
    pub fn grace(&self) -> Duration {
        self.lease_duration - self.renew_interval
    }
}

/// Parses `15s`, `2m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (e.g. 15s, 2m)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(value)),
        "ms" => Ok(Duration::from_millis(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        "h" => Ok(Duration::from_secs(value * 3600)),
        _ => Err(format!(
            "\"{text}\" has unknown unit \"{unit}\" (use ms, s, m or h)"
        )),
    }
}

/// Whether this replica may write, read before every write. Cloned into each reconcile.
#[derive(Debug, Clone)]
pub struct Leadership {
    holder: watch::Receiver<bool>,
}

impl Leadership {
    /// Leadership from a watch channel (kube-lease-manager's, or a test's).
    pub fn from_receiver(holder: watch::Receiver<bool>) -> Self {
        Self { holder }
    }

    /// Always the leader: a single replica that needs no election.
    pub fn always() -> Self {
        let (_sender, holder) = watch::channel(true);
        Self { holder }
    }

    pub fn is_leader(&self) -> bool {
        *self.holder.borrow()
    }

    /// The underlying channel, to react to changes.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.holder.clone()
    }
}

/// Starts the election. The returned task ends only with an error (or when every receiver is
/// dropped, after releasing the lease); the caller treats its end as fatal so Kubernetes
/// restarts the replica, since a replica that cannot renew must not keep believing it leads.
pub async fn elect(
    client: Client,
    config: &LeaderConfig,
) -> Result<(Leadership, JoinHandle<Result<(), LeaseManagerError>>), Error> {
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_field_manager(format!("isvc-ingress-lease-{}", config.identity))
        .with_duration(config.lease_duration.as_secs())
        .with_grace(config.grace().as_secs())
        .build()
        .await
        .map_err(Error::Lease)?;
    let (holder, task) = manager.watch().await;
    let task = tokio::spawn(async move {
        match task.await {
            Ok(Ok(_manager)) => Ok(()),
            Ok(Err(error)) => Err(error),
            Err(join) => Err(LeaseManagerError::InconsistentState(format!(
                "the lease task ended abnormally: {join}"
            ))),
        }
    });
    Ok((Leadership::from_receiver(holder), task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ReconcilerArgs,
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn flags_have_defaults_and_validate() {
        let parsed = Wrapper::try_parse_from(["x"]).unwrap().args;
        assert_eq!(parsed.lease_name, "isvc-ingress");
        assert_eq!(parsed.lease_duration, Duration::from_secs(15));
        assert_eq!(parsed.lease_renew, Duration::from_secs(5));
        assert_eq!(parsed.concurrent_reconciles, 1);
        assert_eq!(
            parsed.concurrent_reconciles,
            ReconcilerArgs::default().concurrent_reconciles
        );
        let parsed = Wrapper::try_parse_from(["x", "--concurrent-reconciles", "4"]).unwrap();
        assert_eq!(parsed.args.concurrent_reconciles, 4);
        for refused in ["0", "65", "-1", "many"] {
            let flag = format!("--concurrent-reconciles={refused}");
            let error = Wrapper::try_parse_from(["x", flag.as_str()])
                .expect_err(refused)
                .to_string();
            assert!(error.contains("--concurrent-reconciles"), "{error}");
        }
        let parsed = Wrapper::try_parse_from([
            "x",
            "--lease-name",
            "l",
            "--lease-namespace",
            "ops",
            "--lease-duration",
            "30s",
            "--lease-renew",
            "10s",
        ])
        .unwrap()
        .args;
        let config = parsed.leader_config().unwrap();
        assert_eq!(config.lease_namespace, "ops");
        assert_eq!(config.grace(), Duration::from_secs(20));
        let backwards = ReconcilerArgs {
            lease_renew: Duration::from_secs(20),
            ..ReconcilerArgs::default()
        };
        assert!(backwards.leader_config().is_err());
        let fractional = ReconcilerArgs {
            lease_renew: Duration::from_millis(500),
            ..ReconcilerArgs::default()
        };
        assert!(fractional.leader_config().is_err());
    }

    #[test]
    fn leadership_follows_the_channel() {
        let (sender, receiver) = watch::channel(true);
        let leadership = Leadership::from_receiver(receiver);
        assert!(leadership.is_leader());
        sender.send(false).unwrap();
        assert!(!leadership.is_leader());
        assert!(Leadership::always().is_leader());
    }
}
