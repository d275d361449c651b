//! Vault's lenient durations: `"1h30m"`, `"90s"`, `"3600"`, `3600`, `"0"`.
//! Used by the framework's duration fields and by the server config.

use std::time::Duration;

/// Why a duration did not parse: the input as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// The longest duration accepted anywhere, in whole seconds: Go's
/// `time.Duration` (int64 nanoseconds) tops out at 9,223,372,036.85 s,
/// and OpenBao refuses anything longer with a 400. Every duration that
/// comes from outside goes through [`parse_duration`] or
/// [`duration_from_json`], so no later arithmetic on it (adding it to a
/// time, summing TTLs) can overflow.
pub const MAX_DURATION_SECS: u64 = 9_223_372_036;

/// The same bound in nanoseconds (`i64::MAX`, Go's maximum duration).
const MAX_DURATION_NANOS: u128 = i64::MAX as u128;

/// Parses a duration as Vault does: a bare integer is seconds; otherwise a
/// sequence of `<number><unit>` with units `ns`, `us`/`µs`, `ms`, `s`, `m`,
/// `h`, and `d` (days, which Vault accepts beside Go's units). Fractions are
/// allowed (`1.5h`). Negative values are refused, and so is anything
/// longer than [`MAX_DURATION_SECS`]. The arithmetic is exact integer
/// nanoseconds, checked at every step: no input can panic.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = || DurationError(input.to_string());
    if s.is_empty() {
        return Err(err());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) if secs <= MAX_DURATION_SECS => Ok(Duration::from_secs(secs)),
            _ => Err(err()),
        };
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number = &rest[..num_end];
        rest = &rest[num_end..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(err());
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        total = total
            .checked_add(component_nanos(whole, frac, unit).ok_or_else(err)?)
            .filter(|t| *t <= MAX_DURATION_NANOS)
            .ok_or_else(err)?;
    }
    // `total` is at most i64::MAX, so it fits a u64.
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| err())
}

/// `whole.frac` units in nanoseconds (fraction digits beyond nanosecond
/// precision are dropped, as Go does), or `None` past the maximum.
fn component_nanos(whole: &str, frac: &str, unit: u128) -> Option<u128> {
    let mut nanos: u128 = 0;
    for d in whole.bytes() {
        nanos = nanos.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        if nanos > MAX_DURATION_NANOS {
            return None;
        }
    }
    nanos = nanos.checked_mul(unit)?;
    let mut scale: u128 = 1;
    let mut fraction: u128 = 0;
    // Nineteen digits are more than nanosecond precision of a day needs.
    for d in frac.bytes().take(19) {
        fraction = fraction * 10 + u128::from(d - b'0');
        scale *= 10;
    }
    nanos.checked_add(fraction * unit / scale)
}

/// Formats whole seconds compactly, as OpenBao's messages show TTLs:
/// `3h`, `1h30m`, `45s`, `0s`.
pub fn format_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (v, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
        }
    }
    out
}

/// Parses a JSON value as a duration, as OpenBao's `ParseDurationSecond`
/// does: an integer number is seconds, a string as [`parse_duration`].
/// A number with a fraction or an exponent (`1.5`, `1e20`) is refused, as
/// in OpenBao (Go reads it as a duration string without a unit), and so
/// are negative numbers and anything past [`MAX_DURATION_SECS`].
pub fn duration_from_json(value: &serde_json::Value) -> Result<Duration, DurationError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .filter(|secs| *secs <= MAX_DURATION_SECS)
            .map(Duration::from_secs)
            .ok_or_else(|| DurationError(n.to_string())),
        serde_json::Value::String(s) => parse_duration(s),
        other => Err(DurationError(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_openbao_messages_do() {
        assert_eq!(format_secs(0), "0s");
        assert_eq!(format_secs(7200), "2h");
        assert_eq!(format_secs(5400), "1h30m");
        assert_eq!(format_secs(3661), "1h1m1s");
        assert_eq!(format_secs(45), "45s");
    }

    #[test]
    fn parses_vault_forms() {
        assert_eq!(parse_duration("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("768h").unwrap(),
            Duration::from_secs(2_764_800)
        );
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "h",
            "1x",
            "-5",
            "1h-",
            "..s",
            ".s",
            "1.2.3s",
            "5 m",
            "1e20",
            "1.5",
            "1h\u{0}",
            "9223372037",
            "18446744073709551616",
            "2562048h",
            "106752d",
            "99999999999999999999999999999999999999999999h",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_numbers_are_seconds() {
        assert_eq!(
            duration_from_json(&serde_json::json!(60)).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            duration_from_json(&serde_json::json!("1m")).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse_duration("2562047h").unwrap(),
            Duration::from_secs(2_562_047 * 3600)
        );
        assert_eq!(
            parse_duration("9223372036").unwrap(),
            Duration::from_secs(MAX_DURATION_SECS)
        );
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h0.5m").unwrap(), Duration::from_secs(3630));
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(true),
            serde_json::json!(1.5),
            serde_json::json!(1e20),
            serde_json::json!(-1e24),
            serde_json::json!(u64::MAX),
            serde_json::json!(MAX_DURATION_SECS + 1),
            serde_json::json!([]),
            // 2^64 seconds used to panic in `Duration::from_secs_f64`.
            serde_json::json!(1.8446744073709552e19),
        ] {
            let err = duration_from_json(&bad).expect_err("not a duration");
            assert_eq!(err.0, bad.to_string());
        }
    }
}
