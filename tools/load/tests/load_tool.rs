//! Smoke tests of the `isvc-ingress-load` binary.

use std::process::Command;

fn load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isvc-ingress-load"))
        // The fixtures are the product's (tests/fixtures at the repository root).
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(args)
        .output()
        .expect("run isvc-ingress-load")
}

#[test]
fn in_process_echo_runs_over_both_protocols() {
    for extra in [&[][..], &["--http2"][..]] {
        let mut args = vec![
            "--in-process-echo",
            "--duration",
            "300ms",
            "--concurrency",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = load(&args);
        assert!(output.status.success(), "{output:?}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["errors"], 0, "{report}");
        assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
        assert!(
            report["latency"]["p99_us"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
}

#[test]
fn burst_mode_reports_every_connection() {
    let output = load(&["--in-process-echo", "--burst", "20", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["answered_ok"], 20, "{report}");
    assert_eq!(report["refused"], 0, "{report}");
    assert_eq!(report["hung"], 0, "{report}");
}

#[test]
fn refuses_non_loopback_targets_and_unbounded_runs() {
    for args in [
        &["--addr", "10.0.0.1:8443", "--cacert", "/dev/null"][..],
        &["--addr", "example.com:443", "--cacert", "/dev/null"][..],
        &["--addr", "[2001:db8::1]:8443", "--cacert", "/dev/null"][..],
        &["--in-process-echo", "--duration", "11m"][..],
        &["--in-process-echo", "--concurrency", "4097"][..],
        &["--in-process-echo", "--burst", "5000"][..],
    ] {
        let output = load(args);
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_paced_run_never_exceeds_its_rate_and_reports_each_interval() {
    let output = load(&[
        "--in-process-webhook",
        "--rate",
        "200",
        "--concurrency",
        "4",
        "--duration",
        "1s",
        "--interval",
        "500ms",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["target_rate"], 200.0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    // Each worker sends on its own schedule of one request per 20 ms: at most 50 in 1 s.
    let requests = report["requests"].as_u64().unwrap();
    assert!((1..=4 * 50).contains(&requests), "{report}");
    let intervals = report["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2, "{report}");
    assert_eq!(intervals[1]["start_s"], 0.5, "{report}");
    let in_intervals: u64 = intervals
        .iter()
        .map(|interval| interval["requests"].as_u64().unwrap())
        .sum();
    assert!(in_intervals <= requests, "{report}");
}

#[test]
fn the_matrix_measures_every_endpoint_and_protocol_and_draws_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("latency.svg");
    let output = load(&[
        "--matrix",
        "--body",
        "tests/fixtures/admission/isvc-create-3kb.json",
        "--status-body",
        "tests/fixtures/admission/isvc-status-update.json",
        "--config",
        "tests/fixtures/config/gateway-api-two-domains.yaml",
        "--levels",
        "1,2",
        "--duration",
        "100ms",
        "--plot",
        plot.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let rows: Vec<serde_json::Value> = output
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let mut cells: Vec<(String, String, u64)> = rows
        .iter()
        .map(|row| {
            assert_eq!(row["errors"], 0, "{row}");
            assert!(row["requests_per_second"].as_f64().unwrap() > 0.0, "{row}");
            (
                row["endpoint"].as_str().unwrap().to_owned(),
                row["protocol"].as_str().unwrap().to_owned(),
                row["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    cells.sort();
    let mut expected = Vec::new();
    for endpoint in ["echo", "mutate", "status", "validate"] {
        for protocol in ["HTTP/1.1", "HTTP/2"] {
            for concurrency in [1, 2] {
                expected.push((endpoint.to_owned(), protocol.to_owned(), concurrency));
            }
        }
    }
    assert_eq!(cells, expected);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for text in [
        "HTTP/1.1, p99.9",
        "HTTP/2, p50",
        "echo",
        "mutate",
        "validate",
        "status",
    ] {
        assert!(svg.contains(text), "the plot lacks {text:?}");
    }
}

#[test]
fn the_memory_plot_is_drawn_from_the_scale_benchmark_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rss.jsonl");
    let svg = dir.path().join("rss.svg");
    std::fs::write(
        &rows,
        concat!(
            r#"{"isvcs":0,"routes":0,"rss_mib":14.2,"hwm_mib":15.0}"#,
            "\n",
            r#"{"isvcs":1000,"routes":1540,"rss_mib":30.5,"hwm_mib":41.0}"#,
            "\n"
        ),
    )
    .unwrap();
    let output = load(&[
        "--plot-rss",
        rows.to_str().unwrap(),
        "--rss-svg",
        svg.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
    for label in [
        "VmRSS after start-up",
        "VmHWM (peak) after start-up",
        "target: 4 MiB per 1,000 ISVCs",
        "InferenceServices",
    ] {
        assert!(text.contains(label), "the plot lacks {label:?}");
    }

    // A line that is not a row is refused with its line number, and nothing is drawn.
    std::fs::write(&rows, "{\"isvcs\":0}\n").unwrap();
    let svg = dir.path().join("none.svg");
    let output = load(&[
        "--plot-rss",
        rows.to_str().unwrap(),
        "--rss-svg",
        svg.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1: not a row"), "{stderr}");
    assert!(!svg.exists());
}
