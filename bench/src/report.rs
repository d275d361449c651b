//! The result table: one row per workload, pairing and server, as Markdown,
//! with the Strongroom/OpenBao ratios on the Strongroom row. A
//! Strongroom-only workload gets an OpenBao line of `n/a` and a note saying
//! why.

use std::fmt::Write as _;

use crate::workloads::{self, Pairing};

/// One measured workload on one server.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload's name.
    pub workload: &'static str,
    /// The pairing it ran in.
    pub pairing: Pairing,
    /// The server's label.
    pub server: String,
    /// True for the Strongroom side, whose row carries the ratios.
    pub is_strongroom: bool,
    /// Answered requests per second.
    pub requests_per_sec: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Peak RSS during the workload, in KiB, when `/proc` could be read.
    pub peak_rss_kib: Option<u64>,
    /// Measured requests.
    pub requests: u64,
    /// Of those, failed ones.
    pub errors: u64,
    /// The first error, for the notes under the table.
    pub first_error: Option<String>,
}

/// How the run was made, printed above the table.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Concurrent connections.
    pub connections: usize,
    /// Warm-up seconds.
    pub warmup_secs: f64,
    /// Measured seconds.
    pub duration_secs: f64,
    /// `root`, or the policy the workload token was created with.
    pub token: String,
    /// Free-form lines (binaries, stand-ins, RSS caveats).
    pub notes: Vec<String>,
}

/// Renders the run as Markdown: a settings line, the table, and notes on
/// the rows that had errors. A comparison where either side had errors
/// shows `n/a` instead of ratios; so does a Strongroom-only workload, whose
/// OpenBao line is all `n/a`.
pub fn render(info: &RunInfo, rows: &[Row]) -> String {
    let every = workloads::all();
    let only_reason = |name: &str| {
        every
            .iter()
            .find(|w| w.name == name)
            .and_then(|w| w.strongroom_only)
    };
    // Reason -> the workloads it kept from OpenBao, in table order.
    let mut only_notes: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} connections, {} s warm-up, {} s measured per workload, token: {}.\n",
        info.connections, info.warmup_secs, info.duration_secs, info.token
    );
    out.push_str(
        "| workload | pairing | server | req/s | p50 ms | p99 ms | peak RSS MiB | errors \
         | req/s x | p99 ratio | RSS ratio |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in ordered(rows) {
        let peer = rows
            .iter()
            .find(|r| !r.is_strongroom && r.workload == row.workload && r.pairing == row.pairing);
        let only = only_reason(row.workload).filter(|_| row.is_strongroom);
        let (speed, p99, rss) = match (row.is_strongroom, peer) {
            _ if only.is_some() => ("n/a".to_string(), "n/a".to_string(), "n/a".to_string()),
            // Failed requests are fast: a ratio against them means nothing.
            (true, Some(peer)) if row.errors > 0 || peer.errors > 0 => {
                ("n/a".to_string(), "n/a".to_string(), "n/a".to_string())
            }
            (true, Some(peer)) => (
                ratio(row.requests_per_sec, peer.requests_per_sec),
                ratio(row.p99_ms, peer.p99_ms),
                match (row.peak_rss_kib, peer.peak_rss_kib) {
                    (Some(a), Some(b)) => ratio(a as f64, b as f64),
                    _ => String::new(),
                },
            ),
            _ => Default::default(),
        };
        let speed = if speed.is_empty() || speed == "n/a" {
            speed
        } else {
            format!("{speed}x")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            row.workload,
            row.pairing,
            row.server,
            row.requests_per_sec,
            row.p50_ms,
            row.p99_ms,
            row.peak_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "?".into()),
            errors_cell(row),
            speed,
            p99,
            rss,
        );
        if let Some(reason) = only {
            let _ = writeln!(
                out,
                "| {} | {} | openbao | n/a | n/a | n/a | n/a | n/a | | | |",
                row.workload, row.pairing
            );
            match only_notes.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, names)) if names.contains(&row.workload) => {}
                Some((_, names)) => names.push(row.workload),
                None => only_notes.push((reason, vec![row.workload])),
            }
        }
    }
    let failed: Vec<&Row> = ordered(rows).into_iter().filter(|r| r.errors > 0).collect();
    if !failed.is_empty() || !info.notes.is_empty() || !only_notes.is_empty() {
        out.push('\n');
    }
    for (reason, names) in &only_notes {
        let _ = writeln!(
            out,
            "- n/a for openbao: {reason}; {} ran against Strongroom only.",
            names.join(", ")
        );
    }
    for row in failed {
        let _ = writeln!(
            out,
            "- WARNING {} / {} / {}: {} of {} requests failed; first: {}",
            row.workload,
            row.pairing,
            row.server,
            row.errors,
            row.requests,
            row.first_error.as_deref().unwrap_or("?").replace('\n', " "),
        );
    }
    for note in &info.notes {
        let _ = writeln!(out, "- {note}");
    }
    out
}

/// The failover times of one server (see `ha::HaCluster::failover`).
#[derive(Debug, Clone)]
pub struct FailoverRow {
    /// The server's label.
    pub server: String,
    /// True for the Strongroom side, whose row carries the ratio.
    pub is_strongroom: bool,
    /// Each round's time from the SIGKILL to the first 200 from another node.
    pub times: Vec<std::time::Duration>,
}

/// Renders the failover times as Markdown: median, minimum and maximum
/// per server in seconds, and on the Strongroom row OpenBao's median
/// divided by Strongroom's (above 1: Strongroom fails over faster).
pub fn render_failover(rows: &[FailoverRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Failover after kill -9 of the active node (two nodes on one PostgreSQL database): \
         seconds until the other node answers `sys/health` with 200.\n"
    );
    let _ = writeln!(
        out,
        "| server | rounds | median s | min s | max s | OpenBao median / this median |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let median_of = |row: &FailoverRow| crate::ha::summary(&row.times).map(|(m, _, _)| m);
    let bao = rows.iter().find(|r| !r.is_strongroom).and_then(median_of);
    for row in rows {
        let Some((median, min, max)) = crate::ha::summary(&row.times) else {
            let _ = writeln!(out, "| {} | 0 | n/a | n/a | n/a | |", row.server);
            continue;
        };
        let ratio_cell = match (row.is_strongroom, bao) {
            (true, Some(bao)) if !median.is_zero() => {
                format!("{:.2}x", bao.as_secs_f64() / median.as_secs_f64())
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} |",
            row.server,
            row.times.len(),
            median.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            ratio_cell
        );
    }
    out
}

/// Rows grouped by pairing then workload (in [`workloads::all`] order),
/// Strongroom before OpenBao, so that each comparison sits on adjacent lines.
fn ordered(rows: &[Row]) -> Vec<&Row> {
    let table_order: Vec<&str> = workloads::all().iter().map(|w| w.name).collect();
    let rank = |name: &str| table_order.iter().position(|n| *n == name);
    let mut sorted: Vec<(usize, &Row)> = rows.iter().enumerate().collect();
    sorted.sort_by_key(|(i, r)| (r.pairing, rank(r.workload), !r.is_strongroom, *i));
    sorted.into_iter().map(|(_, r)| r).collect()
}

/// `a / b` to two decimals, blank when `b` is zero.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        String::new()
    }
}

/// The errors column: `0`, or a flagged count.
fn errors_cell(row: &Row) -> String {
    if row.errors == 0 {
        "0".into()
    } else {
        format!("**{} (!)**", row.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &'static str, pairing: Pairing, strongroom: bool) -> Row {
        Row {
            workload,
            pairing,
            server: if strongroom { "strongroom" } else { "openbao" }.into(),
            is_strongroom: strongroom,
            requests_per_sec: if strongroom { 3000.0 } else { 1000.0 },
            p50_ms: 1.0,
            p99_ms: if strongroom { 2.0 } else { 8.0 },
            peak_rss_kib: Some(if strongroom { 10 * 1024 } else { 100 * 1024 }),
            requests: 100,
            errors: 0,
            first_error: None,
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            connections: 32,
            warmup_secs: 2.0,
            duration_secs: 10.0,
            token: "root".into(),
            notes: vec![],
        }
    }

    #[test]
    fn failover_table_has_median_min_max_and_the_ratio_on_strongroom() {
        let secs = |v: &[u64]| {
            v.iter()
                .map(|&ms| std::time::Duration::from_millis(ms))
                .collect::<Vec<_>>()
        };
        let text = render_failover(&[
            FailoverRow {
                server: "strongroom".into(),
                is_strongroom: true,
                times: secs(&[3200, 3000, 3400]),
            },
            FailoverRow {
                server: "openbao".into(),
                is_strongroom: false,
                times: secs(&[15000, 16000, 12800]),
            },
        ]);
        let lines = table_lines(&text);
        assert_eq!(lines[1], "| strongroom | 3 | 3.20 | 3.00 | 3.40 | 4.69x |");
        assert_eq!(lines[2], "| openbao | 3 | 15.00 | 12.80 | 16.00 |  |");
    }

    fn table_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with("| ")).collect()
    }

    #[test]
    fn strongroom_row_carries_the_ratios() {
        let rows = [
            row("health", Pairing::Dev, false),
            row("health", Pairing::Dev, true),
        ];
        let text = render(&info(), &rows);
        let lines = table_lines(&text);
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "| health | dev | strongroom | 3000 | 1.00 | 2.00 | 10.0 | 0 | 3.00x | 0.25 | 0.10 |"
        );
        assert_eq!(
            lines[2],
            "| health | dev | openbao | 1000 | 1.00 | 8.00 | 100.0 | 0 |  |  |  |"
        );
        assert!(text.starts_with("32 connections, 2 s warm-up, 10 s measured"));
    }

    #[test]
    fn comparisons_are_adjacent_in_pairing_then_workload_order() {
        // The order rows are measured in: each server runs all its workloads.
        let rows = [
            row("kv1-read", Pairing::Durable, true),
            row("health", Pairing::Dev, true),
            row("kv1-read", Pairing::Dev, true),
            row("health", Pairing::Dev, false),
            row("kv1-read", Pairing::Dev, false),
            row("kv1-read", Pairing::Durable, false),
        ];
        let text = render(&info(), &rows);
        let keys: Vec<String> = table_lines(&text)[1..]
            .iter()
            .map(|l| l.split(" | ").take(3).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            keys,
            [
                "| health dev strongroom",
                "| health dev openbao",
                "| kv1-read dev strongroom",
                "| kv1-read dev openbao",
                "| kv1-read durable strongroom",
                "| kv1-read durable openbao",
            ]
        );
    }

    #[test]
    fn rows_with_errors_are_flagged_and_explained() {
        let mut bad = row("kv1-write", Pairing::Dev, true);
        bad.errors = 7;
        bad.first_error = Some("HTTP 403 Forbidden: {\"errors\":[\"permission denied\"]}".into());
        let text = render(&info(), &[bad, row("kv1-write", Pairing::Dev, false)]);
        assert!(text.contains("| **7 (!)** |"), "{text}");
        assert!(text.contains("WARNING kv1-write / dev / strongroom: 7 of 100 requests failed"));
        assert!(text.contains("permission denied"));
        // No ratio against failed requests, whichever side failed.
        let strongroom_row = table_lines(&text)[1];
        assert!(strongroom_row.ends_with("| n/a | n/a | n/a |"), "{text}");
        let mut bad_peer = row("kv1-write", Pairing::Dev, false);
        bad_peer.errors = 1;
        let text = render(&info(), &[row("kv1-write", Pairing::Dev, true), bad_peer]);
        assert!(
            table_lines(&text)[1].ends_with("| 0 | n/a | n/a | n/a |"),
            "{text}"
        );
        assert!(text.contains("WARNING kv1-write / dev / openbao: 1 of 100"));
    }

    #[test]
    fn strongroom_only_workloads_show_na_for_openbao_with_the_reason() {
        let rows = [
            row("gcp-login-cold", Pairing::Durable, true),
            row("gcp-login-cached", Pairing::Dev, true),
            row("gcp-login-cold", Pairing::Dev, true),
            row("health", Pairing::Dev, true),
            row("health", Pairing::Dev, false),
        ];
        let text = render(&info(), &rows);
        let lines = table_lines(&text);
        assert_eq!(
            &lines[1..],
            [
                "| health | dev | strongroom | 3000 | 1.00 | 2.00 | 10.0 | 0 | 3.00x | 0.25 | 0.10 |",
                "| health | dev | openbao | 1000 | 1.00 | 8.00 | 100.0 | 0 |  |  |  |",
                "| gcp-login-cached | dev | strongroom | 3000 | 1.00 | 2.00 | 10.0 | 0 | n/a | n/a | n/a |",
                "| gcp-login-cached | dev | openbao | n/a | n/a | n/a | n/a | n/a | | | |",
                "| gcp-login-cold | dev | strongroom | 3000 | 1.00 | 2.00 | 10.0 | 0 | n/a | n/a | n/a |",
                "| gcp-login-cold | dev | openbao | n/a | n/a | n/a | n/a | n/a | | | |",
                "| gcp-login-cold | durable | strongroom | 3000 | 1.00 | 2.00 | 10.0 | 0 | n/a | n/a | n/a |",
                "| gcp-login-cold | durable | openbao | n/a | n/a | n/a | n/a | n/a | | | |",
            ]
        );
        // One note, naming each workload once.
        let notes: Vec<&str> = text.lines().filter(|l| l.starts_with("- n/a")).collect();
        assert_eq!(
            notes,
            ["- n/a for openbao: OpenBao has no GCP auth method; \
              gcp-login-cached, gcp-login-cold ran against Strongroom only."]
        );
        // Workloads both servers run get no such note.
        let text = render(&info(), &rows[3..]);
        assert!(!text.contains("n/a"), "{text}");
    }

    #[test]
    fn missing_peer_or_rss_leaves_ratios_blank() {
        let mut alone = row("health", Pairing::Dev, true);
        let text = render(&info(), std::slice::from_ref(&alone));
        assert!(table_lines(&text)[1].ends_with("| 0 |  |  |  |"), "{text}");

        alone.peak_rss_kib = None;
        let text = render(&info(), &[alone, row("health", Pairing::Dev, false)]);
        let line = table_lines(&text)[1];
        assert!(line.contains("| ? |"), "{line}");
        assert!(line.ends_with("| 3.00x | 0.25 |  |"), "{line}");
    }
}
