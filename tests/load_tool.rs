//! Smoke tests of the `isvc-ingress-load` binary.

use std::process::Command;

fn load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isvc-ingress-load"))
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
