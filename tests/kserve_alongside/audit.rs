//! Who wrote what: kube-apiserver's audit log (level `Metadata` for every write) read back as
//! one [`Write`] per request, with its writer told apart by its user: isvc-ingress runs as its
//! ServiceAccount, KServe's manager and the test's kubectl as admin with their own user agents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The audit files of one control plane.
pub struct Audit {
    pub log: PathBuf,
    pub apiserver_args: Vec<String>,
}

/// Writes an audit policy into `directory` (every create, update, patch and delete at level
/// `Metadata`, nothing else) and returns the kube-apiserver arguments that use it.
pub fn audit(directory: &Path) -> Audit {
    let policy = directory.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  verbs: [create, update, patch, delete]\n- level: None\n",
    )
    .unwrap();
    let log = directory.join("audit.log");
    Audit {
        apiserver_args: vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", log.display()),
            "--audit-log-format=json".to_owned(),
            "--audit-log-mode=blocking".to_owned(),
        ],
        log,
    }
}

/// One write request as the audit log records it.
#[derive(Clone, Debug)]
pub struct Write {
    /// `isvc-ingress`, `kserve` or `test` (kubectl as admin).
    pub writer: String,
    pub verb: String,
    /// `<resource>[/<subresource>] <namespace>/<name>`.
    pub object: String,
    pub code: i64,
    pub message: String,
}

fn writer(event: &Value) -> String {
    let user = event["user"]["username"].as_str().unwrap_or_default();
    let agent = event["userAgent"].as_str().unwrap_or_default();
    if user.starts_with("system:serviceaccount:isvc-ingress:") {
        "isvc-ingress".to_owned()
    } else if agent.starts_with("manager/") {
        "kserve".to_owned()
    } else if agent.starts_with("kubectl") {
        "test".to_owned()
    } else {
        format!("{user} ({agent})")
    }
}

impl Audit {
    /// Every write recorded so far, in order.
    pub fn writes(&self) -> Vec<Write> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["stage"] == "ResponseComplete")
            .map(|event| {
                let reference = &event["objectRef"];
                let mut resource = reference["resource"].as_str().unwrap_or("?").to_owned();
                if let Some(subresource) = reference["subresource"].as_str() {
                    resource = format!("{resource}/{subresource}");
                }
                Write {
                    writer: writer(&event),
                    verb: event["verb"].as_str().unwrap_or_default().to_owned(),
                    object: format!(
                        "{resource} {}/{}",
                        reference["namespace"].as_str().unwrap_or(""),
                        reference["name"].as_str().unwrap_or("")
                    ),
                    code: event["responseStatus"]["code"].as_i64().unwrap_or(0),
                    message: event["responseStatus"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                }
            })
            .collect()
    }
}

/// Successful writes per (object, writer, verb) in `writes`.
pub fn count_by_object_and_writer(writes: &[Write]) -> BTreeMap<(String, String, String), usize> {
    let mut counts = BTreeMap::new();
    for write in writes.iter().filter(|write| write.code < 300) {
        *counts
            .entry((
                write.object.clone(),
                write.writer.clone(),
                write.verb.clone(),
            ))
            .or_default() += 1;
    }
    counts
}

/// The successful writes of KServe and isvc-ingress in `namespace`, one line per (object,
/// writer, verb) with its count, for the test's report.
pub fn controller_writes(writes: &[Write], namespace: &str) -> String {
    let in_namespace = format!(" {namespace}/");
    count_by_object_and_writer(writes)
        .into_iter()
        .filter(|((object, writer, _), _)| {
            object.contains(&in_namespace) && (writer == "kserve" || writer == "isvc-ingress")
        })
        .map(|((object, writer, verb), count)| format!("  {object}: {writer} {verb} x{count}\n"))
        .collect()
}

/// Objects that more than one controller (isvc-ingress, KServe) wrote in `writes`: where two
/// controllers could undo each other.
pub fn written_by_both(writes: &[Write]) -> Vec<String> {
    let mut writers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for write in writes
        .iter()
        .filter(|write| write.code < 300 && write.writer != "test")
    {
        let entry = writers.entry(&write.object).or_default();
        if !entry.contains(&write.writer.as_str()) {
            entry.push(&write.writer);
        }
    }
    writers
        .into_iter()
        .filter(|(_, writers)| writers.len() > 1)
        .map(|(object, writers)| format!("{object}: {}", writers.join(", ")))
        .collect()
}
