//! The Kubernetes API client of `serve`, with a client-side rate limit.
//!
//! After a config change at 10,000 ISVCs, or on a start where routes are missing, the reconciler
//! has thousands of writes to make. The API server's priority and fairness would queue them,
//! but a client-side limit keeps one replica from crowding out the other controllers of the
//! cluster, as client-go's `QPS` and `Burst` do for controllers written in Go (client-go
//! defaults to 5 and 10, controller-runtime to 20 and 30, cert-manager to 20 and 50). The limit
//! is a token bucket (GCRA, from the `governor` crate): `--kube-api-burst` requests may start at
//! once, then `--kube-api-qps` per second. A watch counts once, when it starts.

use clap::Args;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Flags of the client `serve` uses for the Kubernetes API.
#[derive(Debug, Clone, Args)]
pub struct ApiClientArgs {
    /// Requests per second the replica sends to the Kubernetes API server, sustained (watches
    /// count once, when they start). Like client-go's QPS. Every write is work for the API
    /// server that also admits users' ISVCs through our webhook: on the scale benchmark's
    /// 2-core control plane (`docs/performance.md`), a config change at 10,000 ISVCs pushed
    /// kube-apiserver's p99 for our webhook's calls about 7 ms above its quiet p99 at 20 writes
    /// a second (cert-manager's and Kyverno's default) and 3.7 ms above at 10, the default,
    /// within the 5 ms the webhook is allowed; the change then takes 34 minutes instead of 17.
    #[arg(
        long,
        env = "ISVC_INGRESS_KUBE_API_QPS",
        default_value = "10",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kube_api_qps: u32,

    /// Requests that may start at once above the sustained rate (the bucket's size). Like
    /// client-go's Burst.
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
/// whose every request first waits for the rate limit of `args`.
///
/// # Errors
/// No configuration, or one that cannot make a client ([`ClientError`]).
pub async fn client(args: &ApiClientArgs) -> Result<kube::Client, ClientError> {
    let config = kube::Config::infer().await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&RateLimitLayer::new(args)).build())
}

/// A tower layer that admits requests at the rate of a shared token bucket.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl RateLimitLayer {
    pub fn new(args: &ApiClientArgs) -> Self {
        let per_second = NonZeroU32::new(args.kube_api_qps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(args.kube_api_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(per_second).allow_burst(burst),
            )),
        }
    }
}

impl<S> tower_layer::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            limiter: self.limiter.clone(),
            admitted: false,
            waiting: None,
        }
    }
}

/// The service of [`RateLimitLayer`]: `poll_ready` is Pending until the bucket has a token for
/// the next request (then the inner service's readiness decides), and `call` spends it.
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// A token was taken for the next `call`.
    admitted: bool,
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
            if let Some(waiting) = self.waiting.as_mut() {
                if waiting.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                self.waiting = None;
            }
            match self.limiter.check() {
                Ok(()) => self.admitted = true,
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
        let mut service = RateLimitLayer::new(&args).layer(Echo);
        for request in 0..3 {
            assert!(ready_now(&mut service), "request {request} of the burst");
            assert_eq!(service.call(request).await, Ok(request));
        }
        // One token per second: the fourth request is not admitted now, and polling again
        // without a call does not spend another token.
        assert!(!ready_now(&mut service));
        assert!(!ready_now(&mut service));
    }

    #[tokio::test]
    async fn an_admitted_request_keeps_its_token_until_called() {
        let args = ApiClientArgs {
            kube_api_qps: 1,
            kube_api_burst: 1,
        };
        let mut service = RateLimitLayer::new(&args).layer(Echo);
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
