//! A device's `options`, as `sys/audit/:path` and the config's `audit`
//! block give them (strings, as OpenBao keeps them), parsed once.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a device's configuration was refused (a 400 at `sys/audit`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An option has a value it cannot take.
    #[error("{0}")]
    Invalid(String),
    /// The device type is not one Strongroom has.
    #[error("unknown backend type: {0:?}")]
    UnknownType(String),
    /// The device cannot write (its file cannot be opened, ...).
    #[error("{0}")]
    Unwritable(String),
}

/// The options every device type shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonOptions {
    /// Leave every value in clear (`log_raw`).
    pub log_raw: bool,
    /// Hash accessors (`hmac_accessor`, default true).
    pub hmac_accessor: bool,
    /// LIST answers' `keys` become their count (`elide_list_responses`).
    pub elide_list_responses: bool,
    /// Text written before each entry (`prefix`).
    pub prefix: String,
    /// Chain each entry to the previous one (`hash_chain`, Strongroom's).
    pub hash_chain: bool,
    /// How long one write may take before the device counts as failed
    /// (`write_timeout`, default 2 s).
    pub write_timeout: Duration,
}

/// Reads a boolean option the way OpenBao's `parseutil.ParseBool` does.
fn parse_bool(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match options.get(key).map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ConfigError::Invalid(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

impl Default for CommonOptions {
    /// OpenBao's defaults: hashed, accessors hashed, no prefix, no chain,
    /// a 2 s write timeout.
    fn default() -> Self {
        CommonOptions {
            log_raw: false,
            hmac_accessor: true,
            elide_list_responses: false,
            prefix: String::new(),
            hash_chain: false,
            write_timeout: Duration::from_secs(2),
        }
    }
}

impl CommonOptions {
    /// Parses the shared options. `allow_prefix` is the server's
    /// `allow_audit_log_prefixing`.
    pub fn parse(
        options: &BTreeMap<String, String>,
        allow_prefix: bool,
    ) -> Result<CommonOptions, ConfigError> {
        match options.get("format").map(String::as_str) {
            None | Some("") | Some("json") => {}
            Some("jsonx") => {
                return Err(ConfigError::Invalid(
                    "jsonx formatting has been removed, consider switching to json by \
                     omitting \"format\" or setting it to \"json\""
                        .into(),
                ))
            }
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "unknown format type {other:?}"
                )))
            }
        }
        let prefix = options.get("prefix").cloned().unwrap_or_default();
        if !prefix.is_empty() && !allow_prefix {
            return Err(ConfigError::Invalid(
                "cannot set prefix: prefixing of audit logs is not allowed; set \
                 allow_audit_log_prefixing = true in the server's configuration"
                    .into(),
            ));
        }
        let write_timeout = match options.get("write_timeout").map(|s| s.trim()) {
            None | Some("") => Duration::from_secs(2),
            // OpenBao takes 0 as "no limit"; here a device may never block
            // every request forever, so a limit is required.
            Some(s) => parse_duration(s).filter(|d| !d.is_zero()).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "unable to parse 'write_timeout': {s:?} (a positive duration is required: \
                     a device without a time limit could hold every request)"
                ))
            })?,
        };
        Ok(CommonOptions {
            log_raw: parse_bool(options, "log_raw", false)?,
            hmac_accessor: parse_bool(options, "hmac_accessor", true)?,
            elide_list_responses: parse_bool(options, "elide_list_responses", false)?,
            prefix,
            hash_chain: parse_bool(options, "hash_chain", false)?,
            write_timeout,
        })
    }
}

/// A Go-style duration (`2s`, `500ms`, `1m`) or whole seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let d = humantime::parse_duration(s).ok()?;
    (!d.is_zero()).then_some(d)
}

/// An options map from `(key, value)` pairs (the unit tests' shorthand).
#[cfg(test)]
pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::from_pairs as opts;

    #[test]
    fn defaults_and_values() {
        let d = CommonOptions::parse(&opts(&[]), false).unwrap();
        assert!(!d.log_raw && d.hmac_accessor && !d.elide_list_responses && !d.hash_chain);
        assert_eq!(d.write_timeout, Duration::from_secs(2));
        let o = CommonOptions::parse(
            &opts(&[
                ("log_raw", "true"),
                ("hmac_accessor", "false"),
                ("elide_list_responses", "1"),
                ("hash_chain", "t"),
                ("prefix", "AUDIT:"),
                ("write_timeout", "500ms"),
                ("format", "json"),
            ]),
            true,
        )
        .unwrap();
        assert!(o.log_raw && !o.hmac_accessor && o.elide_list_responses && o.hash_chain);
        assert_eq!(
            (o.prefix.as_str(), o.write_timeout),
            ("AUDIT:", Duration::from_millis(500))
        );
    }

    #[test]
    fn refusals_name_the_option() {
        for (pairs, allow, want) in [
            (
                &[("format", "jsonx")][..],
                false,
                "jsonx formatting has been removed",
            ),
            (
                &[("format", "xml")][..],
                false,
                "unknown format type \"xml\"",
            ),
            (&[("prefix", "p")][..], false, "cannot set prefix"),
            (
                &[("log_raw", "yes")][..],
                false,
                "strconv.ParseBool: parsing \"yes\"",
            ),
            (
                &[("write_timeout", "soon")][..],
                false,
                "unable to parse 'write_timeout'",
            ),
        ] {
            let err = CommonOptions::parse(&opts(pairs), allow)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }
}
