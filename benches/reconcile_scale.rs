//! Scale (issue 4): 10,000 ISVCs over 200 namespaces — 50% Standard/Ingress, 10%
//! Standard/HTTPRoute, 40% Knative/VirtualService; 30% with a transformer, 10% of those also
//! with an explainer — each with the routes and status a settled reconcile leaves
//! (`tests/scale_store/mod.rs`). Reports, before the criterion runs:
//! - memory of the reconciler's caches (the ISVC reflector store, `RouteCache`, `HostIndex`)
//!   per 1,000 ISVCs, as RSS deltas (`/proc/self/status`), with the serialised JSON size as a
//!   cross-check;
//! - for each config change, the writes a re-plan of every ISVC makes, checked against the
//!   route objects the change really changes (computed independently), and the CPU time of the
//!   pass on one thread (`/proc/thread-self/schedstat`), best and median of 5.
//!
//! Then criterion times the same passes (wall clock).
//! Run: `cargo bench --bench reconcile_scale` (SCALE_ISVCS / SCALE_NAMESPACES change the size).
//! Target: a re-plan under 1 s of CPU, no write for an unchanged ISVC.

#[path = "../tests/scale_store/mod.rs"]
mod scale_store;

use criterion::Criterion;
use scale_store::{ConfigChange, Stage, Store, base_config, rss_kib, thread_cpu_ns};
use std::time::Duration;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// CPU time of `pass` on this thread, best and median of `runs`.
fn cpu_time(runs: usize, mut pass: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<u64> = (0..runs)
        .map(|_| {
            let start = thread_cpu_ns();
            pass();
            thread_cpu_ns() - start
        })
        .collect();
    times.sort_unstable();
    (ms(times[0]), ms(times[times.len() / 2]))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: keep that run small.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let isvcs = env_or("SCALE_ISVCS", if benching { 10_000 } else { 300 });
    let namespaces = env_or("SCALE_NAMESPACES", (isvcs / 50).max(1));
    let per_thousand = |kib: u64| kib as f64 / 1024.0 * 1000.0 / isvcs as f64;

    let before = rss_kib();
    let mut rss = Vec::new();
    let store = Store::build_with(isvcs, namespaces, |stage| rss.push((stage, rss_kib())));
    let objects = store.objects();
    let size = store.json_size();
    println!("\n## Synthetic store: {isvcs} ISVCs, {namespaces} namespaces");
    println!(
        "{} route objects, {} external hosts; pruned JSON: {:.0} B per ISVC, {:.0} B per route; \
         held deflated: {:.0} B per ISVC, {:.0} B per route",
        size.routes,
        size.hosts,
        size.isvc_bytes as f64 / size.isvcs as f64,
        size.route_bytes as f64 / size.routes.max(1) as f64,
        size.isvc_held_bytes as f64 / size.isvcs as f64,
        size.route_held_bytes as f64 / size.routes.max(1) as f64,
    );
    println!("\n## Memory per 1,000 ISVCs (RSS delta; serialised JSON for comparison)");
    let mut last = before;
    let json_per_thousand = |bytes: usize| bytes as f64 / 1_048_576.0 * 1000.0 / isvcs as f64;
    for (stage, now) in &rss {
        let json = match stage {
            Stage::Isvcs => format!("{:.2} MiB", json_per_thousand(size.isvc_bytes)),
            Stage::Routes => format!("{:.2} MiB", json_per_thousand(size.route_bytes)),
            Stage::Hosts => "-".to_string(),
        };
        println!(
            "{stage:?}: {:.2} MiB RSS (JSON {json})",
            per_thousand(now.saturating_sub(last))
        );
        last = *now;
    }
    println!(
        "total: {:.2} MiB RSS per 1,000 ISVCs ({:.1} MiB for {isvcs})",
        per_thousand(last.saturating_sub(before)),
        last.saturating_sub(before) as f64 / 1024.0
    );

    println!("\n## Re-plan of every ISVC after a config change (CPU on one thread, 5 runs)");
    println!(
        "change | ISVCs written | route objects changed | applies | deletes | status patches | \
         events | re-plan CPU best / median | of which host index rebuild"
    );
    let runs = if benching { 5 } else { 1 };
    for change in ConfigChange::ALL {
        let config = change.config();
        let (changed, removed, statuses, _) =
            scale_store::expected_changes(&objects, &base_config(), &config);
        store.state.replace_config(config);
        let counts = store.replan();
        assert_eq!(
            counts.applies, changed,
            "{change:?}: one apply per changed route"
        );
        assert_eq!(counts.deletes, removed, "{change:?}");
        assert_eq!(counts.status_patches, statuses, "{change:?}");
        let (best, median) = cpu_time(runs, || {
            std::hint::black_box(store.replan());
        });
        let (hosts_best, _) = cpu_time(runs, || store.rebuild_hosts());
        println!(
            "{} | {} of {} | {changed} | {} | {} | {} | {} | {best:.0} ms / {median:.0} ms | \
             {hosts_best:.0} ms",
            change.name(),
            counts.isvcs_written,
            counts.isvcs,
            counts.applies,
            counts.deletes,
            counts.status_patches,
            counts.events,
        );
        store.state.replace_config(base_config());
    }
    println!();

    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(if benching { 15 } else { 1 }))
        .configure_from_args();
    let mut group = criterion.benchmark_group("reconcile_scale");
    for change in ConfigChange::ALL {
        store.state.replace_config(change.config());
        group.bench_function(format!("replan_{isvcs}/{}", change.name()), |bencher| {
            bencher.iter(|| store.replan())
        });
    }
    store.state.replace_config(base_config());
    group.bench_function(format!("host_index_rebuild_{isvcs}"), |bencher| {
        bencher.iter(|| store.rebuild_hosts())
    });
    group.finish();
    criterion.final_summary();
}
