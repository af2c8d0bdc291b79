//! `--attack NAME`: normal traffic during a siege of hostile clients (issue 12).
//!
//! Before the siege, one HTTP/2 connection is opened to the webhook port, as kube-apiserver
//! keeps one; then `--attackers` hostile clients (see `isvc_ingress_testkit::hostile`) start on the
//! webhook port (`--attack-port webhook`) or the admin port (`--attack-port admin`). Once they
//! have all connected (or after 5 s), for `--duration`, a review is sent every 10 ms on that
//! connection and a kubelet-style probe (`GET /livez` on a fresh connection) goes to the admin
//! port every 100 ms; the report gives the p99 and maximum latency of each and the errors.
//! The server's memory is read by the caller (scripts/measure-hostile.sh reads its `VmHWM`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use isvc_ingress::duration::parse_duration;
use isvc_ingress_testkit::client::{self, ClientTls, HttpVersion};
use isvc_ingress_testkit::hostile::{self, Attack, Siege};
use rustls::pki_types::ServerName;

use crate::{Latency, LoadError, loopback_addr, new_histogram, read_file};

/// Time between two reviews of the normal traffic.
const REVIEW_PERIOD: Duration = Duration::from_millis(10);
/// Time between two probes of the normal traffic.
const PROBE_PERIOD: Duration = Duration::from_millis(100);
/// How long the attackers get to connect before the measurement starts anyway.
const RAMP_UP: Duration = Duration::from_secs(5);
/// A review or probe not answered within this long counts as an error.
const GIVE_UP: Duration = Duration::from_secs(10);

/// The flags of the attack mode.
#[derive(Debug, clap::Args)]
pub(crate) struct AttackArgs {
    /// Run this attack (unfinished-headers, idle-headers, declared-length, declared-chunked,
    /// declared-http2, partial-http2) and measure normal traffic while it lasts.
    #[arg(long, value_parser = attack_name, conflicts_with_all = ["matrix", "burst", "rate", "in_process_echo", "in_process_webhook", "compare"])]
    attack: Option<Attack>,
    /// With `--attack`: the port attacked.
    #[arg(long, value_enum, default_value_t = AttackPort::Webhook)]
    attack_port: AttackPort,
    /// With `--attack`: hostile connections kept up at once.
    #[arg(long, default_value_t = 2000)]
    attackers: usize,
    /// With `--attack`: an attacker whose connection is closed connects again after this
    /// long.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    reconnect_pause: Duration,
    /// With `--attack`: the admin address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8081")]
    admin_addr: String,
}

fn attack_name(name: &str) -> Result<Attack, String> {
    Attack::from_name(name).ok_or_else(|| {
        let names: Vec<_> = Attack::ALL.iter().map(|a| a.name()).collect();
        format!("unknown attack {name:?}; one of {}", names.join(", "))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AttackPort {
    Webhook,
    Admin,
}

impl AttackArgs {
    pub(crate) fn attack(&self) -> Option<Attack> {
        self.attack
    }
}

#[derive(Debug, serde::Serialize)]
struct AttackReport {
    attack: &'static str,
    port: &'static str,
    attackers: usize,
    duration_s: f64,
    /// Hostile connections opened, open at the end, closed by the server, refused.
    hostile_opened: usize,
    hostile_holding: usize,
    hostile_closed: usize,
    hostile_refused: usize,
    reviews: u64,
    review_errors: u64,
    review_latency: Latency,
    probes: u64,
    probe_errors: u64,
    probe_latency: Latency,
}

/// Runs `attack` against the server at `args.addr` and prints the report.
pub(crate) async fn run(args: &crate::Args, attack: Attack, body: Bytes) -> Result<(), LoadError> {
    let flags = &args.attack;
    if flags.attackers == 0 || flags.attackers > crate::MAX_CONNECTIONS * 4 {
        return Err(LoadError::Usage(format!(
            "--attackers must be between 1 and {}",
            crate::MAX_CONNECTIONS * 4
        )));
    }
    let addr = loopback_addr(&args.addr).await?;
    let admin = loopback_addr(&flags.admin_addr).await?;
    let cacert = args.cacert.as_ref().expect("required by clap");
    let ca_pem = read_file(cacert)?.to_vec();
    let server_name = ServerName::try_from(args.server_name.clone())
        .map_err(|_| LoadError::Usage(format!("invalid --server-name {}", args.server_name)))?;
    let http2 = ClientTls::new(ca_pem.clone(), HttpVersion::Http2).build()?;
    let target = match flags.attack_port {
        AttackPort::Webhook => hostile::Target::Webhook {
            addr,
            server_name,
            http1: ClientTls::new(ca_pem, HttpVersion::Http1).build()?,
            http2: Arc::clone(&http2),
        },
        AttackPort::Admin => hostile::Target::Admin(admin),
    };
    let reviewer = client::connect(addr, &args.server_name, Arc::clone(&http2)).await?;
    // The apiserver opens a connection to send a review: it has had one answered.
    let mut reviewer = reviewer;
    let first = reviewer.post_json(&args.path, body.clone()).await?;
    if first.status != 200 {
        return Err(LoadError::Usage(format!(
            "the server answered the first review {}: {}",
            first.status,
            String::from_utf8_lossy(&first.body)
        )));
    }

    let siege = Siege::start(
        &target,
        attack,
        flags.attackers,
        Some(flags.reconnect_pause),
    );
    let ramp = Instant::now();
    while siege
        .stats()
        .opened
        .load(std::sync::atomic::Ordering::Relaxed)
        < flags.attackers
        && ramp.elapsed() < RAMP_UP
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let deadline = Instant::now() + args.duration;
    let path = args.path.clone();
    let server_name = args.server_name.as_str();
    let reviews = paced(REVIEW_PERIOD, deadline, reviewer, |mut reviewer| {
        let (body, path, http2) = (body.clone(), path.as_str(), Arc::clone(&http2));
        async move {
            let answer = tokio::time::timeout(GIVE_UP, reviewer.post_json(path, body)).await;
            let answered = matches!(answer, Ok(Ok(ref response)) if response.status == 200);
            if !answered && let Ok(fresh) = client::connect(addr, server_name, http2).await {
                reviewer = fresh;
            }
            (reviewer, answered)
        }
    });
    let probes = paced(PROBE_PERIOD, deadline, (), |()| async move {
        let answer = tokio::time::timeout(GIVE_UP, client::probe(admin, "/livez")).await;
        ((), matches!(answer, Ok(Ok(true))))
    });
    let measured = Instant::now();
    let ((review_latencies, review_errors), (probe_latencies, probe_errors)) =
        tokio::join!(reviews, probes);
    let duration_s = measured.elapsed().as_secs_f64();
    let stats = siege.stop().await;
    let load = |counter: &std::sync::atomic::AtomicUsize| {
        counter.load(std::sync::atomic::Ordering::Relaxed)
    };
    let report = AttackReport {
        attack: attack.name(),
        port: match flags.attack_port {
            AttackPort::Webhook => "webhook",
            AttackPort::Admin => "admin",
        },
        attackers: flags.attackers,
        duration_s,
        hostile_opened: load(&stats.opened),
        hostile_holding: load(&stats.holding),
        hostile_closed: load(&stats.closed),
        hostile_refused: load(&stats.refused),
        reviews: review_latencies.len(),
        review_errors,
        review_latency: Latency::of(&review_latencies),
        probes: probe_latencies.len(),
        probe_errors,
        probe_latency: Latency::of(&probe_latencies),
    };
    print(args.json, &report);
    Ok(())
}

/// Runs `attempt` every `period` until `deadline`, threading `state` through; the latencies
/// of the attempts that succeeded, and how many failed. A failed attempt's time is not a
/// latency (it may include reconnecting).
async fn paced<S, F, Fut>(
    period: Duration,
    deadline: Instant,
    mut state: S,
    mut attempt: F,
) -> (Histogram<u64>, u64)
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = (S, bool)>,
{
    let mut latencies = new_histogram();
    let mut errors = 0;
    let mut ticks = tokio::time::interval(period);
    while Instant::now() < deadline {
        ticks.tick().await;
        let started = Instant::now();
        let (next, succeeded) = attempt(state).await;
        state = next;
        if succeeded {
            latencies.saturating_record(crate::nanos(started.elapsed()));
        } else {
            errors += 1;
        }
    }
    (latencies, errors)
}

fn print(json: bool, report: &AttackReport) {
    if json {
        println!("{}", serde_json::to_string(report).expect("serialisable"));
        return;
    }
    let ms = |us: f64| us / 1_000.0;
    println!(
        "attack:      {} x {} on the {} port, {:.1}s",
        report.attack, report.attackers, report.port, report.duration_s
    );
    println!(
        "hostile:     {} opened, {} open at the end, {} closed by the server, {} refused",
        report.hostile_opened,
        report.hostile_holding,
        report.hostile_closed,
        report.hostile_refused
    );
    for (label, answered, errors, latency) in [
        (
            "reviews",
            report.reviews,
            report.review_errors,
            &report.review_latency,
        ),
        (
            "probes",
            report.probes,
            report.probe_errors,
            &report.probe_latency,
        ),
    ] {
        println!(
            "{:<12} {answered} answered 200, {errors} errors; p99 {:.1} ms, max {:.1} ms",
            format!("{label}:"),
            ms(latency.p99_us),
            ms(latency.max_us)
        );
    }
}
