//! Differential tests of the telemetry endpoints' shapes (keys, not
//! values: the numbers are each server's own): `sys/metrics` in JSON,
//! its 400 for an unknown format, `sys/in-flight-req` and `sys/host-info`.

use std::collections::BTreeSet;

use serde_json::Value;
use strongroom_test::diff::Pair;
use strongroom_test::server::{Call, Reply, Server};

use crate::differences;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The keys of the first element of the array at `ptr`.
fn element_keys(r: &Reply, ptr: &str) -> BTreeSet<String> {
    r.body
        .pointer(ptr)
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .map(keys)
        .unwrap_or_default()
}

async fn both(p: &Pair, call: &Call) -> (Reply, Reply) {
    (p.bao.send(call).await, p.sr.send(call).await)
}

/// Makes sure each server has a finished interval with counters and
/// samples: requests, then the JSON until both lists fill (OpenBao's
/// in-memory sink shows the last finished 10-second interval).
async fn json_with_samples(server: &Server) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        server.send(&Call::get("sys/mounts")).await;
        let r = server.send(&Call::get("sys/metrics")).await;
        let filled = ["/Samples", "/Counters", "/Gauges"].iter().all(|p| {
            r.body
                .pointer(p)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        });
        if filled || std::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn metrics_json_has_openbaos_shape() {
    let mut p = differences::pair();
    // A token creation gives both a counter in the interval.
    let create = Call::post("auth/token/create", serde_json::json!({"ttl": "1h"}));
    both(&p, &create).await;
    let (a, b) = tokio::join!(json_with_samples(&p.bao), json_with_samples(&p.sr));
    p.expect(
        a.status == 200 && b.status == 200,
        "sys/metrics: 200 on both",
    );
    p.expect(
        keys(&a.body) == keys(&b.body),
        format!(
            "sys/metrics keys: {:?} vs {:?}",
            keys(&a.body),
            keys(&b.body)
        ),
    );
    for list in ["/Gauges", "/Counters", "/Samples"] {
        let (ka, kb) = (element_keys(&a, list), element_keys(&b, list));
        p.expect(
            !ka.is_empty() && ka == kb,
            format!("{list} entries: {ka:?} vs {kb:?}"),
        );
    }
    p.expect(
        a.body["Timestamp"].as_str().map(str::len) == b.body["Timestamp"].as_str().map(str::len),
        format!(
            "Timestamp form: {} vs {}",
            a.body["Timestamp"], b.body["Timestamp"]
        ),
    );

    // An unknown format: the same plain-text 400.
    p.check(Call::get("sys/metrics?format=xml"), &[]).await;
    // Namespaces cannot read it.
    // (created first on both: the namespace's id and times differ)
    both(&p, &Call::post("sys/namespaces/ns1", serde_json::json!({}))).await;
    p.check(
        Call::get("sys/metrics").header("X-Vault-Namespace", "ns1"),
        &[],
    )
    .await;
    p.finish();
}

#[tokio::test]
async fn in_flight_requests_and_host_info_have_openbaos_shape() {
    let mut p = differences::pair();
    let (a, b) = both(&p, &Call::get("sys/in-flight-req")).await;
    p.expect(
        a.status == 200 && b.status == 200,
        "in-flight-req: 200 on both",
    );
    let entry = |r: &Reply| r.body.as_object().and_then(|m| m.values().next()).map(keys);
    p.expect(
        entry(&a).is_some() && entry(&a) == entry(&b),
        format!("in-flight-req entries: {:?} vs {:?}", entry(&a), entry(&b)),
    );
    p.check(Call::get("sys/in-flight-req").anonymous(), &[])
        .await;

    let (a, b) = both(&p, &Call::get("sys/host-info")).await;
    p.expect(a.status == 200 && b.status == 200, "host-info: 200 on both");
    for ptr in ["/data", "/data/host", "/data/memory"] {
        let (ka, kb) = (
            a.body.pointer(ptr).map(keys).unwrap_or_default(),
            b.body.pointer(ptr).map(keys).unwrap_or_default(),
        );
        p.expect(ka == kb, format!("host-info {ptr}: {ka:?} vs {kb:?}"));
    }
    for list in ["/data/cpu", "/data/cpu_times", "/data/disk"] {
        let (ka, kb) = (element_keys(&a, list), element_keys(&b, list));
        p.expect(ka == kb, format!("host-info {list}: {ka:?} vs {kb:?}"));
    }
    p.check(Call::get("sys/host-info").anonymous(), &[]).await;
    p.finish();
}
