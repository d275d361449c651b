//! Vault's lenient durations: `"1h30m"`, `"90s"`, `"3600"`, `3600`, `"0"`.
//! Used by the framework's duration fields and by the server config.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Parses a duration as Vault does: a bare integer is seconds; otherwise a
/// sequence of `<number><unit>` with units `ns`, `us`/`µs`, `ms`, `s`, `m`,
/// `h`, and `d` (days, which Vault accepts beside Go's units). Fractions are
/// allowed (`1.5h`). Negative values are refused.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = || DurationError(input.to_string());
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_end == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        total += value * factor;
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
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

/// Parses a JSON value as a duration: numbers are seconds, strings as
/// [`parse_duration`].
pub fn duration_from_json(value: &serde_json::Value) -> Result<Duration, DurationError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .or_else(|| {
                // `try_from`: 2^64 seconds or more is an error, not a panic.
                n.as_f64().and_then(|f| Duration::try_from_secs_f64(f).ok())
            })
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
        for bad in ["", "h", "1x", "-5", "1h-", "..s", "5 m"] {
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
        // 2^64 seconds and more used to panic in `Duration::from_secs_f64`.
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(true),
            serde_json::json!(1e20),
            serde_json::json!(1.8446744073709552e19),
        ] {
            let err = duration_from_json(&bad).expect_err("not a duration");
            assert_eq!(err.0, bad.to_string());
        }
    }
}
