//! DNS name rules of Kubernetes (RFC 1123 labels and subdomains, RFC 1035 labels), with
//! messages that say *which* part is wrong and by how much.
//!
//! KServe validates hosts with apimachinery's `IsFullyQualifiedDomainName`, whose message for an
//! over-long label names neither the host nor the excess ("must be no more than 63 characters").
//! Users hit that on long namespace names (kserve#4807) and cannot tell which of the hosts of
//! their model failed, so every problem here carries the offending label and its length.

/// Longest DNS label (RFC 1123).
pub const MAX_LABEL_LENGTH: usize = 63;
/// Longest DNS subdomain (RFC 1123).
pub const MAX_SUBDOMAIN_LENGTH: usize = 253;

const LABEL_SHAPE: &str = "must consist of lower case alphanumeric characters or '-', and must \
                           start and end with an alphanumeric character";

fn is_label_character(character: u8) -> bool {
    character.is_ascii_lowercase() || character.is_ascii_digit() || character == b'-'
}

/// Why `value` is not a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63), if it is not.
pub fn label_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".to_string());
    }
    if value.len() > MAX_LABEL_LENGTH {
        return Some(format!(
            "label \"{value}\" is {} characters, {} over the limit of {MAX_LABEL_LENGTH}",
            value.len(),
            value.len() - MAX_LABEL_LENGTH
        ));
    }
    let bytes = value.as_bytes();
    let well_formed = bytes.iter().all(|&c| is_label_character(c))
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if well_formed {
        None
    } else {
        Some(format!("label \"{value}\" {LABEL_SHAPE}"))
    }
}

/// Why `value` is not a DNS-1035 label (a DNS-1123 label that starts with a letter), if it is not.
/// InferenceService names must be DNS-1035 labels because KServe derives Service names from them.
pub fn dns1035_label_problem(value: &str) -> Option<String> {
    if let Some(problem) = label_problem(value) {
        return Some(problem);
    }
    if value.as_bytes()[0].is_ascii_lowercase() {
        None
    } else {
        Some(format!(
            "\"{value}\" must start with a lower case letter (a DNS-1035 label: lower case \
             alphanumeric characters or '-', starting with a letter)"
        ))
    }
}

/// Why `value` is not a DNS-1123 subdomain (dot-separated labels, at most 253), if it is not.
pub fn subdomain_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".to_string());
    }
    if value.len() > MAX_SUBDOMAIN_LENGTH {
        return Some(format!(
            "is {} characters, {} over the limit of {MAX_SUBDOMAIN_LENGTH}",
            value.len(),
            value.len() - MAX_SUBDOMAIN_LENGTH
        ));
    }
    value.split('.').find_map(label_problem)
}

/// Why `host` cannot be the host of a URL KServe publishes, if it cannot: a DNS-1123 subdomain
/// of at least two labels, one trailing dot allowed (the rules of apimachinery's
/// `IsFullyQualifiedDomainName`, which KServe applies to every generated host).
pub fn host_problem(host: &str) -> Option<String> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if let Some(problem) = subdomain_problem(trimmed) {
        return Some(problem);
    }
    if !trimmed.contains('.') {
        return Some("must be a domain with at least two labels separated by dots".to_string());
    }
    None
}

/// Splits a `<namespace>/<name>` gateway reference, each half a DNS-1123 label.
pub fn parse_namespaced_name(value: &str) -> Result<(&str, &str), String> {
    let mut parts = value.split('/');
    let (Some(namespace), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "\"{value}\" must be in the format <namespace>/<name>"
        ));
    };
    if let Some(problem) = label_problem(namespace) {
        return Err(format!("gateway namespace is invalid: {problem}"));
    }
    if let Some(problem) = label_problem(name) {
        return Err(format!("gateway name is invalid: {problem}"));
    }
    Ok((namespace, name))
}

/// Whether `host` is `domain` itself or a name below it.
pub fn is_within_domain(host: &str, domain: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let cases: &[(&str, Option<&str>)] = &[
            ("abc-123", None),
            ("a", None),
            ("0abc", None),
            ("", Some("must not be empty")),
            ("-abc", Some("must consist of lower case")),
            ("abc-", Some("must consist of lower case")),
            ("aBc", Some("must consist of lower case")),
            ("a_b", Some("must consist of lower case")),
            ("a.b", Some("must consist of lower case")),
        ];
        for (value, expected) in cases {
            let problem = label_problem(value);
            match expected {
                None => assert_eq!(problem, None, "{value}"),
                Some(fragment) => assert!(
                    problem.as_deref().unwrap_or_default().contains(fragment),
                    "{value}: {problem:?}"
                ),
            }
        }
    }

    #[test]
    fn long_label_says_by_how_much() {
        let label = "a".repeat(70);
        assert_eq!(
            label_problem(&label).unwrap(),
            format!("label \"{label}\" is 70 characters, 7 over the limit of 63")
        );
        assert_eq!(label_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn dns1035_needs_a_leading_letter() {
        assert_eq!(dns1035_label_problem("abc-123"), None);
        assert!(
            dns1035_label_problem("1abcde")
                .unwrap()
                .contains("must start with a lower case letter")
        );
        assert!(dns1035_label_problem("abc.de").is_some());
    }

    #[test]
    fn hosts() {
        assert_eq!(host_problem("my-model-test.example.com"), None);
        assert_eq!(host_problem("my-model-test.example.com."), None);
        assert!(
            host_problem("localhost")
                .unwrap()
                .contains("at least two labels")
        );
        assert!(host_problem("a..b").unwrap().contains("must not be empty"));
        assert!(
            host_problem("m_ns.example.com")
                .unwrap()
                .contains("label \"m_ns\"")
        );
        let long = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(
            host_problem(&long)
                .unwrap()
                .contains("over the limit of 253")
        );
    }

    #[test]
    fn namespaced_names() {
        assert_eq!(
            parse_namespaced_name("kserve/kserve-ingress-gateway"),
            Ok(("kserve", "kserve-ingress-gateway"))
        );
        assert!(
            parse_namespaced_name("invalid-format")
                .unwrap_err()
                .contains("<namespace>/<name>")
        );
        assert!(
            parse_namespaced_name("a/b/c")
                .unwrap_err()
                .contains("<namespace>/<name>")
        );
        assert!(
            parse_namespaced_name("invalid_namespace/kserve-ingress-gateway")
                .unwrap_err()
                .contains("gateway namespace is invalid")
        );
        assert!(
            parse_namespaced_name("kserve/invalid_name")
                .unwrap_err()
                .contains("gateway name is invalid")
        );
    }

    #[test]
    fn domains() {
        assert!(is_within_domain("m.example.com", "example.com"));
        assert!(is_within_domain("example.com", "example.com"));
        assert!(!is_within_domain("mexample.com", "example.com"));
        assert!(!is_within_domain("example.com", "m.example.com"));
        assert!(is_within_domain("m.example.com.", "example.com"));
    }
}
