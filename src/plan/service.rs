//! The Service KServe creates in front of each Standard-mode component, as far as routes
//! depend on it: its ports, and which of them carries gRPC. Every backend port a route names
//! comes from here, so a route never sends traffic to a port the Service does not have.

use crate::isvc::{Component, ContainerPort, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT};

/// The port KServe's Services always expose (KServe `constants.CommonDefaultHttpPort`).
pub const SERVICE_HTTP_PORT: u16 = 80;
/// `appProtocol`-less gRPC detection: a port whose name contains one of these, in any case
/// (KServe httproute_reconciler `detectServiceProtocolPorts`).
const GRPC_NAME_MARKERS: [&str; 2] = ["grpc", "h2c"];

/// One port of a component's Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// The port name (may be empty, as the container port's).
    pub name: String,
    /// `port`: what routes and clients address.
    pub port: u16,
    /// `targetPort`: the container port behind it.
    pub target_port: u16,
}

impl ServicePort {
    /// Whether KServe takes this port for gRPC: its name contains `grpc` or `h2c`, in any case.
    pub fn is_grpc(&self) -> bool {
        let name = self.name.to_ascii_lowercase();
        GRPC_NAME_MARKERS.iter().any(|marker| name.contains(marker))
    }
}

/// The ports of the Service KServe creates for `component` (KServe service_reconciler
/// `createDefaultSvc`): port 80 maps to the first container port and keeps its name; every
/// later container port is exposed under its own number and name. Without declared ports the
/// Service has port 80 to 8080, named after the component; a component that only says
/// `protocolVersion: grpc-v2` listens on `h2c` 8081, so its port 80 carries gRPC.
pub fn service_ports(component: &Component) -> Vec<ServicePort> {
    let grpc_default;
    let declared: &[ContainerPort] = if component.spec.ports.is_empty() && component.spec.grpc_v2 {
        grpc_default = [ContainerPort {
            name: "h2c".to_string(),
            number: DEFAULT_GRPC_PORT,
        }];
        &grpc_default
    } else {
        &component.spec.ports
    };
    let Some((first, later)) = declared.split_first() else {
        return vec![ServicePort {
            name: component.service_name.clone(),
            port: SERVICE_HTTP_PORT,
            target_port: DEFAULT_HTTP_PORT,
        }];
    };
    std::iter::once(ServicePort {
        name: first.name.clone(),
        port: SERVICE_HTTP_PORT,
        target_port: first.number,
    })
    .chain(later.iter().map(|port| ServicePort {
        name: port.name.clone(),
        port: port.number,
        target_port: port.number,
    }))
    .collect()
}

/// The gRPC and REST ports of a Service, as KServe's `detectServiceProtocolPorts` picks them:
/// the first gRPC-named port and the first other port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolPorts {
    pub grpc: Option<u16>,
    pub rest: Option<u16>,
}

impl ProtocolPorts {
    pub fn of(ports: &[ServicePort]) -> Self {
        Self {
            grpc: ports
                .iter()
                .find(|port| port.is_grpc())
                .map(|port| port.port),
            rest: ports
                .iter()
                .find(|port| !port.is_grpc())
                .map(|port| port.port),
        }
    }

    /// Both protocols on separate ports: routes then split gRPC from REST (the rule pair of
    /// reference §5.2); otherwise one rule sends everything to port 80.
    pub fn split(self) -> Option<(u16, u16)> {
        self.grpc.zip(self.rest)
    }
}

/// The Service port that carries the component's gRPC, when it declares gRPC (a port named
/// `grpc*`/`h2c*` or `protocolVersion: grpc-v2`). A Service without declared ports is named
/// after the component, which may contain `grpc` without the component speaking it.
pub fn grpc_service_port(component: &Component) -> Option<u16> {
    if component.spec.ports.is_empty() && !component.spec.grpc_v2 {
        return None;
    }
    ProtocolPorts::of(&service_ports(component)).grpc
}

/// The port of a headless Service's address (KServe `createAddress`, reference §6.3): the
/// target port of the first port that is not gRPC, else 8080.
pub fn headless_address_port(ports: &[ServicePort]) -> u16 {
    ports
        .iter()
        .find(|port| !port.is_grpc())
        .map_or(DEFAULT_HTTP_PORT, |port| port.target_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isvc::{ComponentKind, ComponentSpec};

    fn component(ports: &[(&str, u16)], grpc_v2: bool) -> Component {
        Component {
            kind: ComponentKind::Predictor,
            service_name: "m-predictor".to_string(),
            spec: ComponentSpec {
                timeout_seconds: None,
                ports: ports
                    .iter()
                    .map(|(name, number)| ContainerPort {
                        name: name.to_string(),
                        number: *number,
                    })
                    .collect(),
                grpc_v2,
            },
        }
    }

    /// Every order, name and protocol of the ports: the Service KServe creates, the ports the
    /// routes use (gRPC, REST), and the headless address port.
    #[test]
    fn service_ports_and_protocols_for_every_permutation() {
        type Case<'a> = (
            &'a [(&'a str, u16)],
            bool,
            &'a [(&'a str, u16, u16)],
            Option<(u16, u16)>,
            u16,
        );
        let cases: [Case; 12] = [
            // No ports: port 80 to 8080, named after the component; one rule to 80.
            (&[], false, &[("m-predictor", 80, 8080)], None, 8080),
            // grpc-v2 only: h2c 8081 behind port 80, gRPC only, one rule to 80.
            (&[], true, &[("h2c", 80, 8081)], None, 8080),
            // One REST port.
            (
                &[("http1", 8085)],
                false,
                &[("http1", 80, 8085)],
                None,
                8085,
            ),
            // REST first, gRPC second: REST on 80, gRPC under its own number.
            (
                &[("http1", 8080), ("grpc", 9000)],
                false,
                &[("http1", 80, 8080), ("grpc", 9000, 9000)],
                Some((9000, 80)),
                8080,
            ),
            // The field report: gRPC (h2c) first, REST second: gRPC on 80, REST on 8080.
            (
                &[("h2c", 8081), ("http", 8080)],
                false,
                &[("h2c", 80, 8081), ("http", 8080, 8080)],
                Some((80, 8080)),
                8080,
            ),
            // Names matched anywhere and in any case.
            (
                &[("my-GRPC-port", 9000), ("rest", 8080)],
                false,
                &[("my-GRPC-port", 80, 9000), ("rest", 8080, 8080)],
                Some((80, 8080)),
                8080,
            ),
            (
                &[("web", 8080), ("tcp-h2c", 9001)],
                false,
                &[("web", 80, 8080), ("tcp-h2c", 9001, 9001)],
                Some((9001, 80)),
                8080,
            ),
            // Unnamed ports are REST.
            (
                &[("", 8080), ("", 9000)],
                false,
                &[("", 80, 8080), ("", 9000, 9000)],
                None,
                8080,
            ),
            // Two gRPC ports and a REST one: the first of each kind wins.
            (
                &[("grpc-a", 9000), ("grpc-b", 9001), ("http", 8080)],
                false,
                &[
                    ("grpc-a", 80, 9000),
                    ("grpc-b", 9001, 9001),
                    ("http", 8080, 8080),
                ],
                Some((80, 8080)),
                8080,
            ),
            // Only gRPC ports: no REST port, one rule to 80.
            (
                &[("grpc", 9000), ("h2c", 9001)],
                false,
                &[("grpc", 80, 9000), ("h2c", 9001, 9001)],
                None,
                8080,
            ),
            // Declared ports win over grpc-v2's default.
            (
                &[("http", 8080), ("grpc", 9000)],
                true,
                &[("http", 80, 8080), ("grpc", 9000, 9000)],
                Some((9000, 80)),
                8080,
            ),
            // REST third, after two gRPC ports.
            (
                &[("h2c", 9000), ("grpc", 9001), ("api", 7000)],
                false,
                &[("h2c", 80, 9000), ("grpc", 9001, 9001), ("api", 7000, 7000)],
                Some((80, 7000)),
                7000,
            ),
        ];
        for (declared, grpc_v2, expected, split, headless) in cases {
            let component = component(declared, grpc_v2);
            let ports = service_ports(&component);
            let actual: Vec<(&str, u16, u16)> = ports
                .iter()
                .map(|port| (port.name.as_str(), port.port, port.target_port))
                .collect();
            assert_eq!(actual, expected, "{declared:?} grpc-v2 {grpc_v2}");
            let protocols = ProtocolPorts::of(&ports);
            assert_eq!(protocols.split(), split, "{declared:?}");
            for port in [protocols.grpc, protocols.rest].into_iter().flatten() {
                assert!(
                    ports.iter().any(|service| service.port == port),
                    "{declared:?}"
                );
            }
            assert_eq!(headless_address_port(&ports), headless, "{declared:?}");
        }
    }
}
