//! What the three schedulers share: the HTTP client (rustls, timeouts, a
//! custom CA), one GET with its errors sorted into [`SchedulerError`], and
//! the lenient decoding helpers (Go's `null` slices, RFC 3339 and float
//! timestamps) that never panic on odd input.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::SchedulerError;

/// The most of an answer body read before giving up: a big Mesos cluster's
/// state is tens of megabytes, far below this.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Builds the client one scheduler uses: rustls, no redirects followed
/// (the Mesos leader hint is handled by hand), `timeout` per request and
/// per connect, and, with `cacert`, only the CAs of that PEM file trusted.
pub(crate) fn http_client(
    what: &str,
    cacert: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, SchedulerError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("strongroom-gatekeeper/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = cacert {
        let pem = std::fs::read(path).map_err(|e| {
            SchedulerError::Unavailable(format!("{what}: reading CA file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            SchedulerError::Unavailable(format!("{what}: CA file {}: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(SchedulerError::Unavailable(format!(
                "{what}: CA file {} holds no certificate",
                path.display()
            )));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| SchedulerError::Unavailable(format!("{what}: building the HTTP client: {e}")))
}

/// A scheduler's answer, read whole.
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: reqwest::StatusCode,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends `request` and reads the answer: a connection failure or a body
/// cut short is [`SchedulerError::Unavailable`], a request that outlived
/// the client's timeout [`SchedulerError::TimedOut`].
pub(crate) async fn send(
    what: &str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, SchedulerError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(what, "", e))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(what, "reading the answer: ", e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SchedulerError::BadAnswer(format!(
                "{what}: the answer is larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// Sorts a transport error: a timeout (connect or whole request) is
/// [`SchedulerError::TimedOut`], anything else
/// [`SchedulerError::Unavailable`].
fn transport_error(what: &str, doing: &str, e: reqwest::Error) -> SchedulerError {
    if e.is_timeout() {
        SchedulerError::TimedOut(format!("{what}: {doing}{e}"))
    } else {
        SchedulerError::Unavailable(format!("{what}: {doing}{e}"))
    }
}

/// The error for a status that is neither success nor a "not found" the
/// caller handles: the scheduler refused us (401/403) or failed (5xx), or
/// answered something unexpected; all are worth retrying later.
pub(crate) fn status_error(what: &str, status: reqwest::StatusCode) -> SchedulerError {
    SchedulerError::Unavailable(format!("{what}: answered HTTP {status}"))
}

/// Decodes a JSON body; anything else is [`SchedulerError::BadAnswer`].
pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, SchedulerError> {
    serde_json::from_slice(body)
        .map_err(|e| SchedulerError::BadAnswer(format!("{what}: undecodable answer: {e}")))
}

/// Deserializes `null` as the type's default (Go encodes empty slices and
/// maps as `null`). Use with `#[serde(default, deserialize_with = ...)]`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Unix time in (fractional) seconds, as Mesos reports it; `None` for a
/// negative, non-finite or absurdly large value.
pub(crate) fn from_unix_f64(secs: f64) -> Option<SystemTime> {
    let since = Duration::try_from_secs_f64(secs).ok()?;
    UNIX_EPOCH.checked_add(since)
}

/// An RFC 3339 time (`2024-05-01T10:00:00Z`, fractional seconds and a
/// `+02:00` offset allowed), as Kubernetes and Nomad write them; `None` if
/// it is not one or lies before 1970.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if text.ends_with(['Z', 'z']) {
        return humantime::parse_rfc3339_weak(text.get(..text.len() - 1)?).ok();
    }
    // A numeric offset: the last six characters, `+HH:MM` or `-HH:MM`.
    let split = text.len().checked_sub(6)?;
    let (local, offset) = (text.get(..split)?, text.get(split..)?);
    let bytes = offset.as_bytes();
    let sign = match bytes.first()? {
        b'+' => 1i64,
        b'-' => -1i64,
        _ => return None,
    };
    if bytes.get(3) != Some(&b':') {
        return None;
    }
    let hours: u64 = offset.get(1..3)?.parse().ok()?;
    let minutes: u64 = offset.get(4..6)?.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let offset = Duration::from_secs(hours * 3600 + minutes * 60);
    let as_utc = humantime::parse_rfc3339_weak(local).ok()?;
    // The local reading is `offset` ahead of UTC for a `+` offset.
    if sign > 0 {
        as_utc.checked_sub(offset)
    } else {
        as_utc.checked_add(offset)
    }
}

/// Adds `ip` to `addresses` unless it is already there.
pub(crate) fn push_address(addresses: &mut Vec<IpAddr>, ip: IpAddr) {
    if !addresses.contains(&ip) {
        addresses.push(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_zone_and_offsets() {
        let utc = parse_rfc3339("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(
            utc.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_714_557_600
        );
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00+02:00"), Some(utc));
        assert_eq!(parse_rfc3339("2024-05-01T07:30:00-02:30"), Some(utc));
        let nanos = parse_rfc3339("2024-05-01T10:00:00.123456789Z").unwrap();
        assert_eq!(
            nanos.duration_since(utc).unwrap(),
            Duration::from_nanos(123_456_789)
        );
        for bad in [
            "",
            "Z",
            "yesterday",
            "0001-01-01T00:00:00Z",
            "2024-05-01T10:00:00+2:00",
            "2024-05-01T10:00:00+25:00",
            "2024-05-01T10:00:00é00:00",
            "ééééééé",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn float_seconds_refuse_impossible_values() {
        assert_eq!(
            from_unix_f64(1.5),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(from_unix_f64(bad), None, "{bad}");
        }
    }
}
