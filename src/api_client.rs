//! The Kubernetes API client of `serve`, with a client-side rate limit.
//!
//! After a config change at 10,000 ISVCs, or on a start where routes are missing, the reconciler
//! has thousands of writes to make, and each costs the API server processor time (an ISVC
//! status patch about 11 ms, most of it `managedFields` bookkeeping over KServe's large CRD
//! schema) that its calls to our admission webhook then wait for. The API server's priority and
//! fairness limits how many requests run at once, not their processor time, and with one write
//! in flight ours never queue there. So the client bounds its own rate, as client-go's `QPS`
//! and `Burst` do for controllers written in Go (client-go defaults to 5 and 10,
//! controller-runtime to 20 and 30, cert-manager to 20 and 50). The limit
//! is a token bucket (GCRA, from the `governor` crate): `--kube-api-burst` requests may start at
//! once, then `--kube-api-qps` per second. A watch counts once, when it starts.
//!
//! How long each request waited for its token is the histogram
//! `isvc_ingress_api_client_rate_limit_wait_seconds` ([`RateLimitMetrics`]), the counterpart of
//! client-go's `rest_client_rate_limiter_duration_seconds`: it tells an operator whether the
//! limit is what makes a config change slow.

use clap::Args;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Flags of the client `serve` uses for the Kubernetes API.
#[derive(Debug, Clone, Args)]
pub struct ApiClientArgs {
    /// Requests per second the replica sends to the Kubernetes API server, sustained (watches
    /// count once, when they start); like client-go's QPS. On the scale benchmark's 2-core
    /// control plane, an `ingressDomain` change at 10,000 ISVCs (19,400 writes) took 34 minutes
    /// at 10 and raised kube-apiserver's p99 for our webhook's calls 3.2–3.7 ms above quiet (the
    /// target is at most 5); at 20 (cert-manager's default) 17 minutes and about 7 ms. Raise it
    /// on a bigger control plane (docs/operations.md).
    #[arg(
        long,
        env = "ISVC_INGRESS_KUBE_API_QPS",
        default_value = "10",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kube_api_qps: u32,

    /// Requests that may start at once above the sustained rate (the bucket's size), so the few
    /// writes of an edited ISVC or two go out at once. Like client-go's Burst.
    #[arg(
        long,
        env = "ISVC_INGRESS_KUBE_API_BURST",
        default_value = "50",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kube_api_burst: u32,
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading the Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client: {0}")]
    Build(#[from] kube::Error),
}

/// A client from the in-cluster configuration or the kubeconfig (as `kube::Client::try_default`),
/// whose every request first waits for the rate limit of `args`, its wait observed in `metrics`.
///
/// # Errors
/// No configuration, or one that cannot make a client ([`ClientError`]).
pub async fn client(
    args: &ApiClientArgs,
    metrics: RateLimitMetrics,
) -> Result<kube::Client, ClientError> {
    let config = kube::Config::infer().await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&RateLimitLayer::new(args, metrics))
        .build())
}

/// Upper bounds of the rate-limit wait buckets, in seconds. A token is free (a wait of
/// microseconds) unless a backlog of writes is draining, when each request waits up to
/// 1 / `--kube-api-qps` (100 ms at the default) for its turn; waits of seconds mean several
/// tasks (reconciles, the Lease, readiness checks) queue for the same tokens.
pub const WAIT_BUCKETS: [f64; 9] = [0.0001, 0.001, 0.005, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The rate limit's metric: how long each request waited for its token, from the first time
/// the client asked for one to the token (`isvc_ingress_api_client_rate_limit_wait_seconds`
/// once registered under the process's `isvc_ingress` registry). Its `_sum` rising by close to
/// one second a second (N with `--concurrent-reconciles N`) means a request was waiting for the
/// limit all the time: the limit, not the API server, sets the pace (`docs/operations.md`).
#[derive(Debug, Clone)]
pub struct RateLimitMetrics {
    waited: Histogram,
}

impl RateLimitMetrics {
    /// A histogram registered nowhere (tests, or a client nobody scrapes).
    pub fn unregistered() -> Self {
        Self {
            waited: Histogram::new(WAIT_BUCKETS),
        }
    }

    /// Creates the histogram and registers it as `api_client_rate_limit_wait_seconds` under
    /// `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry
            .sub_registry_with_prefix("api_client")
            .register_with_unit(
                "rate_limit_wait",
                "Time each request to the Kubernetes API server waited for a token of the \
                 client-side rate limit (--kube-api-qps, --kube-api-burst)",
                Unit::Seconds,
                metrics.waited.clone(),
            );
        metrics
    }
}

/// A tower layer that admits requests at the rate of a shared token bucket.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
    metrics: RateLimitMetrics,
}

impl RateLimitLayer {
    /// One bucket for every service this layer wraps, sized by `args`; each request's wait is
    /// observed in `metrics`.
    pub fn new(args: &ApiClientArgs, metrics: RateLimitMetrics) -> Self {
        let per_second = NonZeroU32::new(args.kube_api_qps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(args.kube_api_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(per_second).allow_burst(burst),
            )),
            metrics,
        }
    }
}

impl<S> tower_layer::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            limiter: self.limiter.clone(),
            metrics: self.metrics.clone(),
            admitted: false,
            asked: None,
            waiting: None,
        }
    }
}

/// The service of [`RateLimitLayer`]: `poll_ready` is Pending until the bucket has a token for
/// the next request (then the inner service's readiness decides), and `call` spends it.
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    metrics: RateLimitMetrics,
    /// A token was taken for the next `call`.
    admitted: bool,
    /// When the next request first asked for a token (`poll_ready`), until it has one.
    asked: Option<Instant>,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S, Request> tower_service::Service<Request> for RateLimited<S>
where
    S: tower_service::Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.admitted {
            let asked = *self.asked.get_or_insert_with(Instant::now);
            if let Some(waiting) = self.waiting.as_mut() {
                if waiting.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                self.waiting = None;
            }
            match self.limiter.check() {
                Ok(()) => {
                    self.admitted = true;
                    self.asked = None;
                    self.metrics.waited.observe(asked.elapsed().as_secs_f64());
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    self.waiting = Some(Box::pin(tokio::time::sleep(wait)));
                }
            }
        }
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> S::Future {
        self.admitted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_layer::Layer;
    use tower_service::Service;

    struct Echo;

    impl Service<u32> for Echo {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<u32, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: u32) -> Self::Future {
            std::future::ready(Ok(request))
        }
    }

    fn ready_now(service: &mut RateLimited<Echo>) -> bool {
        let waker = futures_util::task::noop_waker();
        service
            .poll_ready(&mut Context::from_waker(&waker))
            .is_ready()
    }

    #[tokio::test]
    async fn the_burst_passes_at_once_and_the_next_request_waits_for_a_token() {
        let args = ApiClientArgs {
            kube_api_qps: 1,
            kube_api_burst: 3,
        };
        let mut service = RateLimitLayer::new(&args, RateLimitMetrics::unregistered()).layer(Echo);
        for request in 0..3 {
            assert!(ready_now(&mut service), "request {request} of the burst");
            assert_eq!(service.call(request).await, Ok(request));
        }
        // One token per second: the fourth request is not admitted now, and polling again
        // without a call does not spend another token.
        assert!(!ready_now(&mut service));
        assert!(!ready_now(&mut service));
    }

    /// The histogram counts every request once, and a request that waited for its token adds
    /// that wait (at 100 a second with no burst, the second request waits about 10 ms).
    #[tokio::test]
    async fn each_request_s_wait_for_its_token_is_observed() {
        let mut registry = Registry::with_prefix("isvc_ingress");
        let metrics = RateLimitMetrics::register(&mut registry);
        let args = ApiClientArgs {
            kube_api_qps: 100,
            kube_api_burst: 1,
        };
        let mut service = RateLimitLayer::new(&args, metrics).layer(Echo);
        for request in 0..2 {
            std::future::poll_fn(|context| service.poll_ready(context))
                .await
                .unwrap();
            assert_eq!(service.call(request).await, Ok(request));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        };
        assert_eq!(
            value("isvc_ingress_api_client_rate_limit_wait_seconds_count"),
            2.0
        );
        let waited = value("isvc_ingress_api_client_rate_limit_wait_seconds_sum");
        assert!(
            (0.005..1.0).contains(&waited),
            "the second request waits about 10 ms for its token: {waited} s in all"
        );
    }

    #[tokio::test]
    async fn an_admitted_request_keeps_its_token_until_called() {
        let args = ApiClientArgs {
            kube_api_qps: 1,
            kube_api_burst: 1,
        };
        let mut service = RateLimitLayer::new(&args, RateLimitMetrics::unregistered()).layer(Echo);
        assert!(ready_now(&mut service));
        assert!(ready_now(&mut service), "ready twice on one token");
        assert_eq!(service.call(7).await, Ok(7));
        assert!(!ready_now(&mut service));
    }

    #[test]
    fn the_flags_refuse_zero() {
        use clap::Parser;
        #[derive(Parser)]
        struct Command {
            #[command(flatten)]
            client: ApiClientArgs,
        }
        let defaults = Command::try_parse_from(["x"]).unwrap().client;
        assert_eq!((defaults.kube_api_qps, defaults.kube_api_burst), (10, 50));
        for flag in ["--kube-api-qps=0", "--kube-api-burst=0"] {
            let error = Command::try_parse_from(["x", flag])
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("0 is not in 1.."), "{flag}: {error}");
        }
    }
}
