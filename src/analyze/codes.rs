//! The stable finding codes of `analyze`. A code never changes meaning once released; each is
//! documented in `docs/analyze.md` (what it means, why it matters, how to fix), and
//! `tests/analyze.rs` holds one dump per code that provokes it.
//!
//! The hundreds follow the chain a request travels: 01 config, 02 plan, 03 route objects,
//! 04 acceptance by the route's controller, 05 Gateway listeners, 06 backend Services,
//! 07 the URLs in the status, 08 host conflicts, 09 DNS and visibility, 10 stale routes.

use serde::Serialize;
use std::fmt;

/// How bad a finding is: an error breaks a URL (exit 1), a warning is a risk or a leftover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $title:literal;)*) => {
        /// A kind of finding.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(#[doc = $title] $variant,)*
        }

        impl Code {
            pub const ALL: &[Self] = &[$(Self::$variant,)*];

            /// `IA` and four digits.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            pub fn severity(self) -> Severity {
                match self {
                    $(Self::$variant => Severity::$severity,)*
                }
            }

            /// One line saying what the code means (the heading in docs/analyze.md).
            pub fn title(self) -> &'static str {
                match self {
                    $(Self::$variant => $title,)*
                }
            }
        }
    };
}

codes! {
    ConfigInvalid = "IA0101", Error, "KServe's inferenceservice-config is invalid";
    ConfigNotFound = "IA0102", Warning, "KServe's inferenceservice-config was not found";
    RouteOwnerConflict = "IA0103", Error, "KServe and isvc-ingress would both write the routes";
    KnativeDomainTemplate = "IA0104", Warning, "Knative's domain-template is not the default";
    PlanInvalid = "IA0201", Error, "the InferenceService cannot be planned";
    RouteMissing = "IA0301", Error, "a route the plan needs does not exist";
    RouteOwnership = "IA0302", Error, "a route is not owned as expected";
    RouteDiffers = "IA0303", Error, "a route differs from the plan";
    RouteNotSeen = "IA0401", Error, "no controller has reported on the route";
    RouteNotAccepted = "IA0402", Error, "the route's controller does not accept it";
    IstioGatewayMissing = "IA0403", Error, "a VirtualService names an Istio Gateway that does not exist";
    IngressClassMissing = "IA0404", Error, "the Ingress has no IngressClass that exists";
    IngressNoAddress = "IA0405", Warning, "the Ingress has no load-balancer address";
    GatewayMissing = "IA0501", Error, "the Gateway an HTTPRoute attaches to does not exist";
    ListenerHostMismatch = "IA0502", Error, "no Gateway listener or server accepts the route's host";
    ListenerNamespaceRefused = "IA0503", Error, "the Gateway listener does not allow routes from the route's namespace";
    GatewayNotProgrammed = "IA0504", Error, "the Gateway is not programmed or has no address";
    BackendServiceMissing = "IA0601", Error, "a backend Service does not exist";
    BackendPortMissing = "IA0602", Error, "a backend Service has no port the route names";
    StatusUrl = "IA0701", Error, "status.url is not the URL the routes serve";
    StatusAddress = "IA0702", Error, "status.address.url is not the planned address";
    StatusComponentUrl = "IA0703", Error, "a component URL in the status is not the planned one";
    HostClaimedByIsvc = "IA0801", Error, "another InferenceService claims the same host and path";
    HostClaimedByRoute = "IA0802", Error, "a route of no InferenceService claims the same host and path";
    HostInvalid = "IA0901", Error, "a host in use is not a valid DNS name";
    LabelNearLimit = "IA0902", Warning, "a host label is within 5 characters of the DNS limit";
    VisibilityLabelIgnored = "IA0903", Warning, "the visibility label of the other deployment mode has no effect";
    ClusterLocalExposed = "IA0904", Error, "a cluster-local InferenceService is still served outside the cluster";
    StaleRoute = "IA1001", Warning, "a route of an InferenceService that no InferenceService wants";
}

impl fmt::Display for Code {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.len() == 6 && text.starts_with("IA"), "{text}");
            assert!(
                text[2..].bytes().all(|byte| byte.is_ascii_digit()),
                "{text}"
            );
        }
    }
}
