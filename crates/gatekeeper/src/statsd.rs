//! StatsD reporting (`--metrics-statsd`), as the original's metrics: this
//! module owns the line format, the UDP socket and the gauge ticker.
//!
//! - Counters `requests`, `success`, `denied`, `failed` are sent as each
//!   token request is counted (`<prefix>.requests:1|c`), by the counters
//!   of [`crate::service::Stats`].
//! - Every `--metrics-ticker`, the gauges `peers`, `unsealed_peers`,
//!   `sealed`, `unsealed` and `in_service` (this instance unsealed, or a
//!   peer that is) are sent ([`gauges`]).
//! - With `--metrics-statsd-influx` or `--metrics-statsd-datadog`, every
//!   line carries a `host` tag (the machine's host name) in that format:
//!   InfluxDB `name,host=h:1|c`, Datadog `name:1|c|#host:h`. InfluxDB wins
//!   when both are set, as in the original.
//!
//! Sending never blocks and never fails a request: the socket is
//! non-blocking, a datagram that cannot be sent is dropped, and failures
//! are logged at warn at most once a minute (with how many were dropped).
//!
//! Written by hand rather than with a crate: the well-kept Rust client
//! (`cadence`) knows Datadog-style tags but not InfluxDB's `name,tag=v`
//! form, and what is needed here is one UDP socket and one line format.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::args::GatekeeperArgs;
use crate::peers::{Peer, Peers};
use crate::service::Gatekeeper;

/// How often a failing StatsD server is logged about, at most.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// The tag format of the `host` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagFormat {
    /// `name,host=h:1|c` (Telegraf's StatsD input).
    Influx,
    /// `name:1|c|#host:h`.
    Datadog,
}

/// The kind of a StatsD metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A counter increment (`|c`).
    Count,
    /// A gauge value (`|g`).
    Gauge,
}

/// Replaces the characters that delimit StatsD lines and tags.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, ',' | ':' | '|' | '=' | '#' | '@') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The prefix as sent: `gatekeeper` becomes `gatekeeper.`; empty stays
/// empty (no leading dot).
fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_end_matches('.');
    if p.is_empty() {
        String::new()
    } else {
        format!("{}.", sanitize(p))
    }
}

/// One StatsD line: `prefix` as [`Statsd`] keeps it (ending in `.` or
/// empty), `tag` the `host` tag's format and value.
pub fn format_line(
    prefix: &str,
    name: &str,
    value: u64,
    kind: Kind,
    tag: Option<(TagFormat, &str)>,
) -> String {
    let kind = match kind {
        Kind::Count => "c",
        Kind::Gauge => "g",
    };
    match tag {
        None => format!("{prefix}{name}:{value}|{kind}"),
        Some((TagFormat::Influx, host)) => format!("{prefix}{name},host={host}:{value}|{kind}"),
        Some((TagFormat::Datadog, host)) => format!("{prefix}{name}:{value}|{kind}|#host:{host}"),
    }
}

/// The machine's host name (what the original's `os.Hostname` gave).
pub fn hostname() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// A StatsD client: a non-blocking UDP socket connected to the server.
pub struct Statsd {
    socket: UdpSocket,
    target: SocketAddr,
    prefix: String,
    tag: Option<(TagFormat, String)>,
    last_warn: Mutex<Option<Instant>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Statsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statsd")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Statsd {
    /// A client sending to `addr` (`host:port`, resolved once, now) with
    /// metric names prefixed by `prefix` and, with `tag`, a `host` tag of
    /// that value in that format.
    pub async fn connect(
        addr: &str,
        prefix: &str,
        tag: Option<(TagFormat, String)>,
    ) -> anyhow::Result<Statsd> {
        let target = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("--metrics-statsd {addr:?}: not a resolvable host:port"))?
            .next()
            .with_context(|| format!("--metrics-statsd {addr:?}: no address"))?;
        let local: SocketAddr = if target.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).context("StatsD socket")?;
        socket
            .connect(target)
            .with_context(|| format!("StatsD socket to {target}"))?;
        socket
            .set_nonblocking(true)
            .context("StatsD socket: non-blocking")?;
        Ok(Statsd {
            socket,
            target,
            prefix: normalize_prefix(prefix),
            tag: tag.map(|(f, h)| (f, sanitize(&h))),
            last_warn: Mutex::new(None),
            dropped: AtomicU64::new(0),
        })
    }

    /// The client the flags ask for: `None` without `--metrics-statsd`.
    pub async fn from_args(args: &GatekeeperArgs) -> anyhow::Result<Option<Statsd>> {
        let Some(addr) = args
            .metrics_statsd
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        else {
            return Ok(None);
        };
        if args.metrics_ticker.is_zero() {
            anyhow::bail!("--metrics-ticker must be longer than zero");
        }
        let format = if args.metrics_statsd_influx {
            Some(TagFormat::Influx)
        } else if args.metrics_statsd_datadog {
            Some(TagFormat::Datadog)
        } else {
            None
        };
        let tag = match format {
            None => None,
            Some(f) => match hostname() {
                Some(h) => Some((f, h)),
                None => {
                    tracing::warn!("statsd: no host name; metrics are sent without the host tag");
                    None
                }
            },
        };
        let s = Statsd::connect(addr, &args.metrics_statsd_prefix, tag).await?;
        tracing::info!(target = %s.target, prefix = %s.prefix, "sending metrics to StatsD");
        Ok(Some(s))
    }

    /// Where the metrics go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The line this client sends for `name`.
    pub fn line(&self, name: &str, value: u64, kind: Kind) -> String {
        format_line(
            &self.prefix,
            name,
            value,
            kind,
            self.tag.as_ref().map(|(f, h)| (*f, h.as_str())),
        )
    }

    /// Sends a counter increment.
    pub fn count(&self, name: &str, n: u64) {
        self.send(&self.line(name, n, Kind::Count));
    }

    /// Sends a gauge value.
    pub fn gauge(&self, name: &str, value: u64) {
        self.send(&self.line(name, value, Kind::Gauge));
    }

    /// Sends one datagram without blocking; a failure drops it and is
    /// logged at most every [`WARN_EVERY`].
    fn send(&self, line: &str) {
        if let Err(e) = self.socket.send(line.as_bytes()) {
            self.failed(&e);
        }
    }

    fn failed(&self, e: &io::Error) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warn.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            self.dropped.store(0, Ordering::Relaxed);
            tracing::warn!(target = %self.target, error = %e, dropped,
                "statsd: sending metrics failed; they are dropped (logged at most once a minute)");
        }
    }

    /// Sends the gauges once ([`gauges`]).
    pub fn report_gauges(&self, unsealed: bool, peers: &[Peer]) {
        for (name, value) in gauges(unsealed, peers) {
            self.gauge(name, value);
        }
    }
}

/// The gauges as the original computed them: the number of peers, of
/// unsealed peers, whether this instance is sealed or unsealed, and
/// whether the service is available here (unsealed, or sealed with an
/// unsealed peer to forward to).
pub fn gauges(unsealed: bool, peers: &[Peer]) -> [(&'static str, u64); 5] {
    let unsealed_peers = peers.iter().filter(|p| p.unsealed).count() as u64;
    let in_service = unsealed || unsealed_peers > 0;
    [
        ("peers", peers.len() as u64),
        ("unsealed_peers", unsealed_peers),
        ("sealed", u64::from(!unsealed)),
        ("unsealed", u64::from(unsealed)),
        ("in_service", u64::from(in_service)),
    ]
}

/// Sends the gauges every `every` (the first after one period, as the
/// original's ticker), until Gatekeeper is dropped.
pub fn spawn_gauges(
    statsd: Arc<Statsd>,
    gk: Weak<Gatekeeper>,
    peers: Option<Arc<Peers>>,
    every: Duration,
) -> JoinHandle<()> {
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(gk) = gk.upgrade() else { return };
            let list = peers.as_ref().map(|p| p.list()).unwrap_or_default();
            statsd.report_gauges(gk.is_unsealed(), &list);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, unsealed: bool) -> Peer {
        Peer {
            id: id.into(),
            address: format!("http://{id}:9201/"),
            unsealed,
            version: "1".into(),
        }
    }

    #[test]
    fn lines_in_each_tag_format() {
        let p = normalize_prefix("gatekeeper");
        assert_eq!(p, "gatekeeper.");
        assert_eq!(
            format_line(&p, "requests", 1, Kind::Count, None),
            "gatekeeper.requests:1|c"
        );
        assert_eq!(
            format_line(&p, "in_service", 0, Kind::Gauge, None),
            "gatekeeper.in_service:0|g"
        );
        assert_eq!(
            format_line(
                &p,
                "success",
                1,
                Kind::Count,
                Some((TagFormat::Influx, "h1"))
            ),
            "gatekeeper.success,host=h1:1|c"
        );
        assert_eq!(
            format_line(
                &p,
                "peers",
                3,
                Kind::Gauge,
                Some((TagFormat::Datadog, "h1"))
            ),
            "gatekeeper.peers:3|g|#host:h1"
        );
    }

    #[test]
    fn prefixes_and_tags_cannot_break_the_line() {
        assert_eq!(normalize_prefix("gk."), "gk.");
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(
            format_line(&normalize_prefix(""), "denied", 1, Kind::Count, None),
            "denied:1|c"
        );
        assert_eq!(normalize_prefix("a:b|c"), "a_b_c.");
        assert_eq!(sanitize("web 1,dc=x:y|#z"), "web_1_dc_x_y__z");
    }

    #[test]
    fn gauges_as_the_original_computes_them() {
        let get = |g: [(&str, u64); 5]| g.iter().map(|(_, v)| *v).collect::<Vec<_>>();
        // Names and order.
        let names: Vec<_> = gauges(true, &[]).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "peers",
                "unsealed_peers",
                "sealed",
                "unsealed",
                "in_service"
            ]
        );
        assert_eq!(get(gauges(true, &[])), [0, 0, 0, 1, 1]);
        assert_eq!(get(gauges(false, &[])), [0, 0, 1, 0, 0]);
        // Sealed, but a peer is unsealed: still in service (forwarding).
        let peers = [peer("a", false), peer("b", true), peer("c", true)];
        assert_eq!(get(gauges(false, &peers)), [3, 2, 1, 0, 1]);
        assert_eq!(get(gauges(false, &peers[..1])), [1, 0, 1, 0, 0]);
    }

    #[tokio::test]
    async fn an_unresolvable_server_is_a_start_error() {
        let err = Statsd::connect("no port here", "gk", None)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("--metrics-statsd"), "{err:#}");
    }
}
