//! Durations as people and kube-apiserver write them.
//!
//! The same parser reads command-line flags (`30s`, `500ms`, `2m`) and the `?timeout=` query
//! parameter kube-apiserver appends to every webhook call. The apiserver formats that value
//! with Go's `time.Duration.String()`, which produces compound forms such as `1m0s` or `2.5s`,
//! so the grammar is Go's: one or more `<decimal><unit>` terms, units `h`, `m`, `s`, `ms`,
//! `us`/`µs` and `ns`, plus the bare `0`. A hand-written parser keeps that grammar exact
//! without another dependency.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The input was empty or only whitespace.
    #[error("empty duration")]
    Empty,
    /// A number was not followed by a unit, as in `30`.
    #[error("duration {0:?} is missing a unit (use h, m, s, ms, us or ns, e.g. `30s`)")]
    MissingUnit(String),
    /// A unit that is not one of `h`, `m`, `s`, `ms`, `us`, `µs`, `ns`.
    #[error("duration {input:?} has unknown unit {unit:?} (use h, m, s, ms, us or ns)")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// A term did not start with a decimal number.
    #[error("duration {0:?} is not a number followed by a unit (e.g. `10s`, `500ms`, `1m30s`)")]
    InvalidNumber(String),
    /// The value does not fit in 2^64 nanoseconds (about 584 years).
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `10s`, `500ms`, `1m`, `1m30s`, `2.5s`, `1h`, `0`.
///
/// Negative durations are rejected because no caller has a use for them.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let overflow = || DurationError::Overflow(input.to_owned());
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::InvalidNumber(input.to_owned()));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_owned()));
        }
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut term = whole.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Digits past the 19th cannot change a nanosecond count derived from at most 3600e9.
        let fraction = &fraction[..fraction.len().min(19)];
        if !fraction.is_empty() {
            let digits: u128 = fraction.parse().map_err(|_| overflow())?;
            let scale = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| overflow())?);
            term = term
                .checked_add(digits * unit_nanos / scale)
                .ok_or_else(overflow)?;
        }
        total_nanos = total_nanos.checked_add(term).ok_or_else(overflow)?;
        rest = next;
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| overflow())?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a duration the way [`parse_duration`] reads it back (`1.5s`, `250ms`, `10s`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_owned()
    } else if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn parses_go_duration_strings() {
        // What time.Duration.String() produces for webhook timeouts.
        assert_eq!(parse_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert!(matches!(
            parse_duration("3d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::InvalidNumber(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::InvalidNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.2.3s"),
            Err(DurationError::InvalidNumber(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(10),
            Duration::from_millis(1500),
            Duration::from_micros(42),
            Duration::from_nanos(3),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
