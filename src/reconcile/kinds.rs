//! The route kinds the reconciler writes, and which of them the cluster serves.
//!
//! Discovery runs once at start: the Controller watches only kinds that exist (a watch on a
//! missing CRD would fail forever), and a plan that needs a missing kind becomes a condition on
//! the ISVC instead of an error loop (see [`super::decide`]).

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};
use std::fmt;

/// One kind of object the reconciler creates, owns and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagedKind {
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `gateway.networking.k8s.io/v1` HTTPRoute.
    HttpRoute,
    /// `networking.istio.io/v1` VirtualService.
    VirtualService,
    /// Core `v1` Service of type ExternalName, created next to a VirtualService.
    Service,
    /// `serving.knative.dev/v1beta1` DomainMapping.
    DomainMapping,
}

impl ManagedKind {
    /// Every kind, in the order the reconciler deletes stale routes and reports missing CRDs.
    pub const ALL: [Self; 5] = [
        Self::Ingress,
        Self::HttpRoute,
        Self::VirtualService,
        Self::Service,
        Self::DomainMapping,
    ];

    /// API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Self::Ingress => "networking.k8s.io",
            Self::HttpRoute => "gateway.networking.k8s.io",
            Self::VirtualService => "networking.istio.io",
            Self::Service => "",
            Self::DomainMapping => "serving.knative.dev",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Self::DomainMapping => "v1beta1",
            _ => "v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::HttpRoute => "HTTPRoute",
            Self::VirtualService => "VirtualService",
            Self::Service => "Service",
            Self::DomainMapping => "DomainMapping",
        }
    }

    /// The resource name in URLs and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Ingress => "ingresses",
            Self::HttpRoute => "httproutes",
            Self::VirtualService => "virtualservices",
            Self::Service => "services",
            Self::DomainMapping => "domainmappings",
        }
    }

    /// `group/version`, or `v1` for the core group.
    pub fn api_version(self) -> String {
        match self.group() {
            "" => self.version().to_string(),
            group => format!("{group}/{}", self.version()),
        }
    }

    /// The dynamic-type descriptor kube's `Api<DynamicObject>` needs.
    pub fn api_resource(self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), self.version(), self.kind()),
            self.plural(),
        )
    }

    /// The kind of a generated route object, from its `apiVersion` and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.kind() == kind && candidate.api_version() == api_version)
    }

    /// The condition reason when the cluster does not serve this kind. HTTPRoute says
    /// `GatewayCRDMissing` because the fix is installing the Gateway API CRDs.
    pub fn missing_reason(self) -> &'static str {
        match self {
            Self::Ingress => "IngressAPIMissing",
            Self::HttpRoute => "GatewayCRDMissing",
            Self::VirtualService => "VirtualServiceCRDMissing",
            Self::Service => "ServiceAPIMissing",
            Self::DomainMapping => "DomainMappingCRDMissing",
        }
    }

    /// What to install to get this kind, for the condition message.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Ingress | Self::Service => "the cluster's API server does not serve it",
            Self::HttpRoute => "install the Gateway API CRDs (standard channel)",
            Self::VirtualService => "install Istio, or set disableIstioVirtualHost",
            Self::DomainMapping => "install Knative Serving",
        }
    }
}

impl fmt::Display for ManagedKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.api_version(), self.kind())
    }
}

/// Which managed kinds the cluster serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServedKinds {
    served: [bool; 5],
}

impl ServedKinds {
    /// Every kind served (tests, and clusters with all of Istio, Gateway API and Knative).
    pub fn all() -> Self {
        Self { served: [true; 5] }
    }

    /// Exactly these kinds served.
    pub fn only(kinds: &[ManagedKind]) -> Self {
        let mut served = Self::default();
        for kind in kinds {
            served.insert(*kind);
        }
        served
    }

    pub fn insert(&mut self, kind: ManagedKind) {
        self.served[Self::slot(kind)] = true;
    }

    pub fn contains(&self, kind: ManagedKind) -> bool {
        self.served[Self::slot(kind)]
    }

    pub fn iter(&self) -> impl Iterator<Item = ManagedKind> + '_ {
        ManagedKind::ALL
            .into_iter()
            .filter(|kind| self.contains(*kind))
    }

    fn slot(kind: ManagedKind) -> usize {
        ManagedKind::ALL
            .iter()
            .position(|candidate| *candidate == kind)
            .expect("every kind is in ALL")
    }
}

/// Asks the API server which managed kinds it serves: one discovery request per group/version.
/// A 404 (group not installed) means not served; any other error is returned, because guessing
/// would either hide routes or start a watch that fails forever.
pub async fn discover(client: &Client) -> Result<ServedKinds, kube::Error> {
    let mut served = ServedKinds::default();
    for kind in ManagedKind::ALL {
        let resources = if kind.group().is_empty() {
            client.list_core_api_resources(kind.version()).await
        } else {
            client.list_api_group_resources(&kind.api_version()).await
        };
        match resources {
            Ok(list) => {
                if list
                    .resources
                    .iter()
                    .any(|resource| resource.name == kind.plural())
                {
                    served.insert(kind);
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_api_version_and_kind() {
        for kind in ManagedKind::ALL {
            assert_eq!(
                ManagedKind::of(&kind.api_version(), kind.kind()),
                Some(kind)
            );
        }
        assert_eq!(ManagedKind::Service.api_version(), "v1");
        assert_eq!(
            ManagedKind::of("networking.istio.io/v1beta1", "VirtualService"),
            None
        );
    }

    #[test]
    fn served_kinds_are_a_set() {
        let served = ServedKinds::only(&[ManagedKind::Ingress, ManagedKind::Service]);
        assert!(served.contains(ManagedKind::Ingress));
        assert!(!served.contains(ManagedKind::HttpRoute));
        assert_eq!(
            served.iter().collect::<Vec<_>>(),
            [ManagedKind::Ingress, ManagedKind::Service]
        );
    }
}
