//! The dump fixtures of `tests/fixtures/analyze` (written by its generate.py) and how each is
//! analysed: shared by the offline tests (`tests/analyze.rs`) and the live ones against a real
//! API server (`tests/e2e/analyze.rs`), which include this file by path.

#![allow(dead_code)] // each test binary uses a different subset

use isvc_ingress::plan::RouteOwner::{self, IsvcIngress, Kserve};

/// One fixture: its file name without `.yaml`, the route owner it is analysed with, the ISVC
/// names given on the command line (empty: all), and the codes the analysis gives, sorted.
pub struct Fixture {
    pub name: &'static str,
    pub route_owner: RouteOwner,
    pub names: &'static [&'static str],
    pub codes: &'static [&'static str],
}

const fn fixture(
    name: &'static str,
    route_owner: RouteOwner,
    names: &'static [&'static str],
    codes: &'static [&'static str],
) -> Fixture {
    Fixture {
        name,
        route_owner,
        names,
        codes,
    }
}

/// Every fixture: the healthy set-ups (no code) and at least one per code.
pub const FIXTURES: &[Fixture] = &[
    fixture("healthy-gateway", Kserve, &[], &[]),
    fixture("healthy-ingress", IsvcIngress, &[], &[]),
    fixture("healthy-virtualservice", Kserve, &[], &[]),
    fixture("healthy-domainmapping", Kserve, &[], &[]),
    fixture("ia0101", Kserve, &[], &["IA0101"]),
    fixture("ia0102", Kserve, &[], &["IA0102"]),
    fixture("ia0103", IsvcIngress, &[], &["IA0103"]),
    fixture("ia0104", Kserve, &[], &["IA0104"]),
    fixture("ia0201", Kserve, &[], &["IA0201"]),
    fixture("ia0301", Kserve, &[], &["IA0301"]),
    fixture("ia0302", Kserve, &[], &["IA0302"]),
    fixture("ia0302-label", IsvcIngress, &[], &["IA0302"]),
    fixture("ia0302-uid", Kserve, &[], &["IA0302"]),
    fixture("ia0303", Kserve, &[], &["IA0303"]),
    fixture("ia0401", Kserve, &[], &["IA0401"]),
    fixture("ia0401-domainmapping", Kserve, &[], &["IA0401"]),
    fixture("ia0402", Kserve, &[], &["IA0402"]),
    fixture("ia0402-domainmapping", Kserve, &[], &["IA0402"]),
    fixture("ia0403", Kserve, &[], &["IA0403"]),
    fixture("ia0404", IsvcIngress, &[], &["IA0404"]),
    fixture("ia0405", IsvcIngress, &[], &["IA0405"]),
    fixture("ia0501", Kserve, &[], &["IA0501"]),
    fixture("ia0502", Kserve, &[], &["IA0502"]),
    fixture("ia0502-istio", Kserve, &[], &["IA0403", "IA0502"]),
    fixture("ia0503", Kserve, &[], &["IA0503"]),
    fixture("ia0504", Kserve, &[], &["IA0504"]),
    fixture("ia0601", Kserve, &[], &["IA0601"]),
    fixture("ia0602", Kserve, &[], &["IA0602"]),
    fixture("ia0701", Kserve, &[], &["IA0701"]),
    fixture("ia0702", Kserve, &[], &["IA0702"]),
    fixture("ia0703", Kserve, &[], &["IA0703"]),
    fixture("ia0801", Kserve, &["sklearn-iris"], &["IA0801"]),
    fixture("ia0802", Kserve, &[], &["IA0802"]),
    fixture("ia0901", Kserve, &[], &["IA0701", "IA0901"]),
    fixture("ia0902", Kserve, &[], &["IA0902"]),
    fixture("ia0903", Kserve, &[], &["IA0903"]),
    fixture("ia0904", Kserve, &[], &["IA0904"]),
    fixture("ia1001", Kserve, &[], &["IA1001"]),
];

impl Fixture {
    /// The fixture named `name`; panics (failing the test) when it is not listed.
    pub fn named(name: &str) -> &'static Fixture {
        FIXTURES
            .iter()
            .find(|fixture| fixture.name == name)
            .unwrap_or_else(|| panic!("{name} is not in FIXTURES"))
    }

    /// The path of the dump, relative to the repository root.
    pub fn path(&self) -> String {
        format!("tests/fixtures/analyze/{}.yaml", self.name)
    }

    /// The `analyze` arguments besides the input: `--route-owner` and the names.
    pub fn arguments(&self) -> Vec<&'static str> {
        let mut arguments = vec![
            "--route-owner",
            match self.route_owner {
                Kserve => "kserve",
                IsvcIngress => "isvc-ingress",
            },
        ];
        arguments.extend(self.names);
        arguments
    }
}
