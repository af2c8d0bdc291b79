//! One problem found in user input, tied to the field that causes it.
//!
//! Every layer collects *all* violations instead of stopping at the first (KServe's config loader
//! and validator stop at the first), so one `kubectl apply` shows the user everything to fix.

use serde::Serialize;
use std::fmt;

/// A problem with the field it belongs to: a JSON path into the InferenceService
/// (`metadata.annotations[isvc-ingress.io/host]`) or into the KServe config
/// (`config.ingress.domainTemplate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
    /// A policy refusal (a host or gateway the platform does not allow): the object is well
    /// formed, and the webhook answers 403 `Forbidden` rather than 422 `Invalid`.
    #[serde(skip)]
    pub forbidden: bool,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            forbidden: false,
        }
    }

    /// A policy refusal; see [`Violation::forbidden`].
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            forbidden: true,
            ..Self::new(field, message)
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.field, self.message)
    }
}

/// Joins violations the way the admission response and the CLI show them:
/// `field: problem; field: problem`.
pub fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
