//! Reading live objects: owners, labels, and the hosts and paths a route claims.

use super::snapshot::Kind;
use crate::plan::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, objects};
use serde_json::Value;

/// Cluster-local hosts end with this (`<service>.<namespace>.svc.cluster.local`).
pub const CLUSTER_LOCAL_SUFFIX: &str = ".svc.cluster.local";

/// The controller ownerReference of an object: `(kind, name, uid)`.
pub fn controller(object: &Value) -> Option<(&str, &str, Option<&str>)> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|owner| owner.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|owner| {
            let text = |key: &str| owner.get(key).and_then(Value::as_str);
            (
                text("kind").unwrap_or(""),
                text("name").unwrap_or(""),
                text("uid"),
            )
        })
}

pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(key))
        .and_then(Value::as_str)
}

/// Whether isvc-ingress wrote the object (its managed-by label).
pub fn managed_by_us(object: &Value) -> bool {
    label(object, MANAGED_BY_LABEL) == Some(MANAGED_BY_VALUE)
}

pub fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

pub fn array<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A host and path prefix a route sends somewhere; `/` claims the whole host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub host: String,
    pub path: String,
}

impl Claim {
    pub fn new(host: &str, path: &str) -> Self {
        Self {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            path: if path.is_empty() {
                "/".to_string()
            } else {
                path.to_string()
            },
        }
    }

    /// Same host, and one path is the other or a prefix of it at a `/` boundary.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.host == other.host
            && (prefix_of(&self.path, &other.path) || prefix_of(&other.path, &self.path))
    }
}

impl std::fmt::Display for Claim {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path == "/" {
            formatter.write_str(&self.host)
        } else {
            write!(formatter, "{}{}", self.host, self.path)
        }
    }
}

fn prefix_of(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The literal path a regular expression starts with (`^/serving/ns/m/.*` → `/serving/ns/m/`):
/// the part of the path space it can match at most.
fn regex_prefix(regex: &str) -> String {
    let body = regex.strip_prefix('^').unwrap_or(regex);
    let mut prefix = String::new();
    let mut characters = body.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => match characters.next() {
                Some(escaped) if !escaped.is_alphanumeric() => prefix.push(escaped),
                _ => break,
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '$' => break,
            other => prefix.push(other),
        }
    }
    if prefix.is_empty() {
        "/".to_string()
    } else {
        prefix
    }
}

/// Every (host, path prefix) a live route sends traffic for. Routes without hosts (which take
/// whatever their listener or gateway admits) and wildcard hosts claim nothing here: they lose
/// to exact hosts.
pub fn claims(kind: Kind, object: &Value) -> Vec<Claim> {
    let mut claims = Vec::new();
    let mut add = |hosts: &[String], paths: &[String]| {
        for host in hosts.iter().filter(|host| !host.starts_with('*')) {
            for path in paths {
                let claim = Claim::new(host, path);
                if !claims.contains(&claim) {
                    claims.push(claim);
                }
            }
        }
    };
    match kind {
        Kind::Ingress => {
            for rule in array(object, "/spec/rules") {
                let Some(host) = text(rule, "/host") else {
                    continue;
                };
                let paths: Vec<String> = array(rule, "/http/paths")
                    .iter()
                    .map(|path| text(path, "/path").unwrap_or("/").to_string())
                    .collect();
                add(&[host.to_string()], &paths);
            }
        }
        Kind::HttpRoute => {
            let hosts = strings(array(object, "/spec/hostnames"));
            let mut paths = Vec::new();
            for rule in array(object, "/spec/rules") {
                let matches = array(rule, "/matches");
                if matches.is_empty() {
                    paths.push("/".to_string());
                }
                for matched in matches {
                    let value = text(matched, "/path/value").unwrap_or("/");
                    paths.push(match text(matched, "/path/type") {
                        Some("RegularExpression") => regex_prefix(value),
                        _ => value.to_string(),
                    });
                }
            }
            add(&hosts, &paths);
        }
        Kind::VirtualService => {
            let hosts = strings(array(object, "/spec/hosts"));
            let mut paths = Vec::new();
            for route in array(object, "/spec/http") {
                let matches = array(route, "/match");
                let unmatched = matches.is_empty();
                for matched in matches {
                    paths.push(if let Some(prefix) = text(matched, "/uri/prefix") {
                        prefix.to_string()
                    } else if let Some(exact) = text(matched, "/uri/exact") {
                        exact.to_string()
                    } else if let Some(regex) = text(matched, "/uri/regex") {
                        regex_prefix(regex)
                    } else {
                        "/".to_string()
                    });
                }
                if unmatched {
                    paths.push("/".to_string());
                }
            }
            add(&hosts, &paths);
        }
        Kind::DomainMapping => {
            add(
                &[super::snapshot::object_name(object).to_string()],
                &["/".to_string()],
            );
        }
        _ => {}
    }
    claims
}

/// The hosts a live route serves (every host of [`claims`], once).
pub fn hosts(kind: Kind, object: &Value) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for claim in claims(kind, object) {
        if !hosts.contains(&claim.host) {
            hosts.push(claim.host);
        }
    }
    hosts
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The analysis kind of a generated route.
pub fn kind_of(route: &objects::RouteObject) -> Option<Kind> {
    Kind::of(route.api_version(), route.kind())
}

/// `kubectl delete <plural>.<group> -n <namespace> <name>` for an object of `kind`.
pub fn delete_command(kind: Kind, object: &Value) -> String {
    let resource = match kind.group() {
        "" => kind.plural().to_string(),
        group => format!("{}.{group}", kind.plural()),
    };
    format!(
        "kubectl delete {resource} -n {} {}",
        super::snapshot::object_namespace(object),
        super::snapshot::object_name(object)
    )
}

/// The host of a URL (`http://host:port/path` → `host`).
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_overlap_by_host_and_path_segment() {
        let whole = Claim::new("a.example.com", "/");
        let model = Claim::new("a.example.com", "/serving/ns/m");
        let other = Claim::new("a.example.com", "/serving/ns/m2");
        assert!(whole.overlaps(&model));
        assert!(!model.overlaps(&other));
        assert!(model.overlaps(&Claim::new("A.example.com.", "/serving/ns/m/v1")));
        assert!(!whole.overlaps(&Claim::new("b.example.com", "/")));
    }

    #[test]
    fn claims_read_each_route_kind() {
        let route = json!({"spec": {"hostnames": ["h.example.com"], "rules": [
            {"matches": [{"path": {"type": "RegularExpression", "value": "^/.*$"}}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}]}]}});
        assert_eq!(
            claims(Kind::HttpRoute, &route),
            [
                Claim::new("h.example.com", "/"),
                Claim::new("h.example.com", "/v2")
            ]
        );
        let service = json!({"spec": {"hosts": ["x.example.com"], "http": [
            {"match": [{"uri": {"regex": "^/serving/ns/m(/v1/models/[\\w-]+:explain)$"}}]}]}});
        assert_eq!(
            claims(Kind::VirtualService, &service),
            [Claim::new("x.example.com", "/serving/ns/m")]
        );
        assert_eq!(
            url_host("https://m.ns.example.com:8443/v1"),
            "m.ns.example.com"
        );
    }
}
