//! How a [`Report`] is shown: a table grouped by InferenceService for people (coloured only on
//! a terminal), or JSON for tools.

use super::{Report, Severity};
use serde::Serialize;
use std::fmt::Write as _;

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonReport<'a> {
    #[serde(flatten)]
    pub report: &'a Report,
    pub summary: Summary,
}

/// Counts, for a quick check by tools.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub inference_services: usize,
    pub errors: usize,
    pub warnings: usize,
}

/// The report as pretty JSON: `inferenceServices`, `findings` (each `code`, `severity`,
/// `inferenceService`, `objects`, `message`, `fix`) and `summary`.
pub fn json(report: &Report) -> String {
    let document = JsonReport {
        report,
        summary: summary(report),
    };
    serde_json::to_string_pretty(&document).expect("reports serialise")
}

fn summary(report: &Report) -> Summary {
    Summary {
        inference_services: report.inference_services.len(),
        errors: report.count(Severity::Error),
        warnings: report.count(Severity::Warning),
    }
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The report as text: one block per ISVC (the cluster's config first), a row per finding
/// (severity, code, the object involved, the problem) with its fix below, then a summary line.
/// `colour` adds ANSI colours (the caller passes whether stdout is a terminal).
pub fn table(report: &Report, colour: bool) -> String {
    let paint = |style: &str, text: &str| {
        if colour {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut text = String::new();
    let mut groups: Vec<(Option<&str>, Vec<&super::Finding>)> = Vec::new();
    for finding in &report.findings {
        let key = finding.inference_service.as_deref();
        match groups.iter_mut().find(|(group, _)| *group == key) {
            Some((_, findings)) => findings.push(finding),
            None => groups.push((key, vec![finding])),
        }
    }
    for (group, findings) in &groups {
        let heading = match group {
            Some(isvc) => format!("InferenceService {isvc}"),
            None => "Cluster configuration".to_string(),
        };
        let _ = writeln!(text, "{}", paint(BOLD, &heading));
        let objects: Vec<String> = findings
            .iter()
            .map(|finding| {
                finding
                    .objects
                    .first()
                    .map_or_else(|| "-".to_string(), ToString::to_string)
            })
            .collect();
        let width = objects
            .iter()
            .map(String::len)
            .chain(["OBJECT".len()])
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            text,
            "  {:<8} {:<6} {:<width$} PROBLEM",
            "SEVERITY", "CODE", "OBJECT"
        );
        for (finding, object) in findings.iter().zip(&objects) {
            let severity = finding.severity.as_str();
            let padded = format!("{severity:<8}");
            let shown = match finding.severity {
                Severity::Error => paint(RED, &padded),
                Severity::Warning => paint(YELLOW, &padded),
            };
            let _ = writeln!(
                text,
                "  {shown} {:<6} {object:<width$} {}",
                finding.code, finding.message
            );
            let indent = 2 + 9 + 7 + width + 1;
            let _ = writeln!(
                text,
                "{:indent$}{}",
                "",
                paint(DIM, &format!("fix: {}", finding.fix))
            );
        }
        let _ = writeln!(text);
    }
    let counts = summary(report);
    let plural =
        |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    let _ = writeln!(
        text,
        "{} analysed: {}, {}.{}",
        plural(counts.inference_services, "InferenceService"),
        plural(counts.errors, "error"),
        plural(counts.warnings, "warning"),
        if report.findings.is_empty() {
            " Every link from the gateway to the model is in place."
        } else {
            " Each code is explained in docs/analyze.md."
        }
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Code, Finding};

    fn report() -> Report {
        Report {
            inference_services: vec!["models/m".to_string()],
            findings: vec![Finding {
                code: Code::RouteMissing,
                severity: Code::RouteMissing.severity(),
                inference_service: Some("models/m".to_string()),
                objects: Vec::new(),
                message: "the route is missing".to_string(),
                fix: "create it".to_string(),
            }],
        }
    }

    #[test]
    fn colours_only_when_asked() {
        let plain = table(&report(), false);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("  error    IA0301 -      the route is missing\n"));
        let coloured = table(&report(), true);
        assert!(coloured.contains(&format!("{RED}error   {RESET}")));
        assert!(coloured.contains(&format!("{BOLD}InferenceService models/m{RESET}")));
        assert_eq!(
            coloured
                .replace(RED, "")
                .replace(BOLD, "")
                .replace(DIM, "")
                .replace(RESET, ""),
            plain,
            "colour changes nothing else"
        );
    }
}
