//! The OTLP trace receiver of the scale benchmark (`benches/support/webhook_spans.rs`), over
//! real gRPC: spans exported as kube-apiserver exports them (its webhook call spans, its
//! request spans with `http.target`) are kept, grouped and timed as the benchmark reports them.

#[path = "../benches/support/webhook_spans.rs"]
mod webhook_spans;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use webhook_spans::{
    Admission, Call, Figures, MUTATING_SPAN, VALIDATING_SPAN, WebhookCall, WebhookSpans,
    nearest_rank, summarize,
};

const OURS: &str = "inferenceservices.isvc-ingress.io";
const STATUS: &str = "status.inferenceservices.isvc-ingress.io";

/// 1 s after the epoch plus `ms`, in ns: the spans' clock.
fn at(ms: u64) -> u64 {
    1_000_000_000 + ms * 1_000_000
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// A span of `trace`, from `start` to `end` ms.
fn span(name: &str, trace: u8, start: u64, end: u64, attributes: &[(&str, &str)]) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: name.to_owned(),
        start_time_unix_nano: at(start),
        end_time_unix_nano: at(end),
        attributes: attributes.iter().map(|(k, v)| text(k, v)).collect(),
        ..Span::default()
    }
}

/// A webhook call span as the dispatchers of k8s.io/apiserver v0.37.2 write it.
fn webhook_call(
    name: &str,
    trace: u8,
    start: u64,
    end: u64,
    webhook: &str,
    operation: &str,
    subresource: &str,
) -> Span {
    span(
        name,
        trace,
        start,
        end,
        &[
            ("configuration", "isvc-ingress"),
            ("webhook", webhook),
            (
                "resource",
                "serving.kserve.io/v1beta1, Resource=inferenceservices",
            ),
            ("subresource", subresource),
            ("operation", operation),
            ("UID", "0b4f6a52-0000-0000-0000-000000000000"),
        ],
    )
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn call(admission: Admission, webhook: &str, operation: &str, dry_run: bool) -> Call {
    Call {
        admission,
        webhook: webhook.to_owned(),
        operation: operation.to_owned(),
        subresource: String::new(),
        dry_run,
    }
}

fn epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(at(ms))
}

#[tokio::test]
async fn the_receiver_keeps_our_webhook_calls_with_their_exact_durations_and_dry_runs() {
    let receiver = WebhookSpans::start();
    let configuration = receiver.tracing_configuration();
    assert!(configuration.contains(&format!("endpoint: {}\n", receiver.endpoint())));
    assert!(configuration.contains("kind: TracingConfiguration\n"));
    assert!(configuration.contains("samplingRatePerMillion: 1000000\n"));
    assert_eq!(
        webhook_spans::exporter_environment(),
        [
            ("OTEL_BSP_SCHEDULE_DELAY", "1000".to_owned()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "65536".to_owned()),
        ]
    );

    let mut client = TraceServiceClient::connect(format!("http://{}", receiver.endpoint()))
        .await
        .expect("the receiver answers");
    // Trace 1: a dry-run create (the load), its mutating and validating calls, exported
    // before its request span, which comes in a later batch (it ends later).
    client
        .export(request(vec![
            webhook_call(MUTATING_SPAN, 1, 10, 13, OURS, "CREATE", ""),
            webhook_call(VALIDATING_SPAN, 1, 14, 21, OURS, "CREATE", ""),
            // Trace 2: the reconciler's status patch, not a dry run.
            webhook_call(MUTATING_SPAN, 2, 30, 32, STATUS, "UPDATE", "status"),
            // Another webhook's call and a span of another name: not ours.
            webhook_call(MUTATING_SPAN, 3, 40, 90, "other.example.com", "CREATE", ""),
            span("Create", 1, 9, 22, &[]),
        ]))
        .await
        .expect("the export is accepted");
    client
        .export(request(vec![
            span(
                "POST /apis/serving.kserve.io/v1beta1/namespaces/{:namespace}/inferenceservices",
                1,
                8,
                23,
                &[(
                    "http.target",
                    "/apis/serving.kserve.io/v1beta1/namespaces/webhook-load/inferenceservices?dryRun=All",
                )],
            ),
            span(
                "PATCH /apis/serving.kserve.io/v1beta1/namespaces/{:namespace}/inferenceservices/{:name}/status",
                2,
                29,
                33,
                &[(
                    "http.target",
                    "/apis/serving.kserve.io/v1beta1/namespaces/team-0/inferenceservices/model-00000/status?fieldManager=isvc-ingress",
                )],
            ),
        ]))
        .await
        .expect("the export is accepted");

    assert_eq!(receiver.spans_received(), 7);
    assert_eq!(receiver.latest_end(), epoch_ms(90));
    let ours = [OURS.to_owned(), STATUS.to_owned()];
    let calls = receiver.calls(&ours, epoch_ms(0), epoch_ms(100));
    let status = Call {
        subresource: "status".to_owned(),
        ..call(Admission::Mutating, STATUS, "UPDATE", false)
    };
    assert_eq!(
        calls,
        vec![
            WebhookCall {
                call: call(Admission::Mutating, OURS, "CREATE", true),
                duration: Duration::from_millis(3),
                end: epoch_ms(13),
            },
            WebhookCall {
                call: call(Admission::Validating, OURS, "CREATE", true),
                duration: Duration::from_millis(7),
                end: epoch_ms(21),
            },
            WebhookCall {
                call: status.clone(),
                duration: Duration::from_millis(2),
                end: epoch_ms(32),
            },
        ]
    );
    // A window holds the calls that ended in it: [from, to).
    let window = receiver.calls(&ours, epoch_ms(13), epoch_ms(32));
    let ends: Vec<SystemTime> = window.iter().map(|call| call.end).collect();
    assert_eq!(ends, [epoch_ms(13), epoch_ms(21)]);
    // Only the webhooks asked for.
    let status_only = receiver.calls(&[STATUS.to_owned()], epoch_ms(0), epoch_ms(100));
    assert_eq!(status_only.len(), 1);
    assert_eq!(status_only[0].call, status);
    assert_eq!(
        status.to_string(),
        "mutating `status.inferenceservices.isvc-ingress.io` UPDATE status"
    );
    assert_eq!(
        calls[1].call.to_string(),
        "validating `inferenceservices.isvc-ingress.io` CREATE (dry run)"
    );
    // Stopping does not wait for the client's connection, still open here (kube-apiserver
    // keeps its exporter's open while it runs).
    let stopped = tokio::task::spawn_blocking(move || drop(receiver));
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the receiver stops within 10 s with a connection open")
        .expect("the receiver stops");
    drop(client);
}

#[test]
fn nearest_rank_is_a_measured_value_at_rank_ceil_q_n() {
    let ms = |values: &[u64]| -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    };
    let hundred: Vec<u64> = (1..=100).collect();
    let two_hundred: Vec<u64> = (1..=200).collect();
    for (values, quantile, expected) in [
        (ms(&[]), 0.5, None),
        (ms(&[7]), 0.5, Some(7)),
        (ms(&[7]), 0.99, Some(7)),
        (ms(&[1, 2]), 0.5, Some(1)),
        (ms(&[1, 2]), 0.99, Some(2)),
        (ms(&[1, 2, 3]), 0.5, Some(2)),
        (ms(&hundred), 0.5, Some(50)),
        (ms(&hundred), 0.99, Some(99)),
        (ms(&two_hundred), 0.99, Some(198)),
        (ms(&hundred), 1.0, Some(100)),
    ] {
        assert_eq!(
            nearest_rank(&values, quantile),
            expected.map(Duration::from_millis),
            "{quantile} of {} values",
            values.len()
        );
    }
}

#[test]
fn the_summary_gives_every_kind_of_call_its_own_figures() {
    assert_eq!(summarize(&[]), None);
    let load = call(Admission::Validating, OURS, "CREATE", true);
    let reconciler = Call {
        subresource: "status".to_owned(),
        ..call(Admission::Mutating, STATUS, "UPDATE", false)
    };
    let mut calls = Vec::new();
    for ms in 1..=100 {
        calls.push(WebhookCall {
            call: load.clone(),
            duration: Duration::from_millis(ms),
            end: epoch_ms(ms),
        });
    }
    for ms in [40, 10, 30, 20] {
        calls.push(WebhookCall {
            call: reconciler.clone(),
            duration: Duration::from_millis(ms),
            end: epoch_ms(200 + ms),
        });
    }
    let summary = summarize(&calls).expect("calls");
    let figures = |calls, p50, p99, max| Figures {
        calls,
        p50: Duration::from_millis(p50),
        p99: Duration::from_millis(p99),
        max: Duration::from_millis(max),
    };
    // 104 calls, 1..=100 ms with 10, 20, 30 and 40 twice: rank 52 is 48 ms, rank 103 is
    // 99 ms.
    assert_eq!(summary.all, figures(104, 48, 99, 100));
    assert_eq!(summary.dry_runs, Some(figures(100, 50, 99, 100)));
    assert_eq!(summary.by_call.len(), 2);
    assert_eq!(summary.by_call[&load], figures(100, 50, 99, 100));
    assert_eq!(summary.by_call[&reconciler], figures(4, 20, 40, 40));
    let reconciler_only = summarize(&calls[100..]).expect("calls");
    assert_eq!(reconciler_only.dry_runs, None);
}
