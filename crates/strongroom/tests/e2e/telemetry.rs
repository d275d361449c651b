//! Telemetry end to end: `sys/metrics` grows with requests in OpenBao's
//! JSON and in Prometheus text (parsed by a Prometheus parser), the
//! listener's `telemetry` block (`unauthenticated_metrics_access`,
//! `disallow_metrics`, `metrics_only`), the format negotiation and
//! `sys/in-flight-req`. Every test runs against OpenBao too with
//! `STRONGROOM_TEST_TARGET=bao` (its dev server has the same defaults).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strongroom_test::server::{target, Call, Config, Listener, Server};

/// The Prometheus text of `sys/metrics?format=prometheus` at `base`.
async fn scrape(server: &Server, base: &str, call: Call) -> prometheus_parse::Scrape {
    let r = server.send_to(base, &call).await;
    assert_eq!(r.status, 200, "{r:?}");
    let text = r
        .body
        .as_str()
        .expect("Prometheus text, not JSON")
        .to_string();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

/// The sum of the `<name>` samples' plain values (counters, gauges and
/// summaries' `_count` lines) whose name passes `pick`.
fn total(scrape: &prometheus_parse::Scrape, pick: impl Fn(&str) -> bool) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| pick(&s.metric))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn prometheus() -> Call {
    Call::get("sys/metrics?format=prometheus")
}

#[tokio::test]
async fn prometheus_metrics_grow_with_requests() {
    let server = Server::dev(target());
    let base = server.addr.clone();
    let r = server
        .send(&Call::post("secret/data/m", json!({"data": {"v": 1}})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let before = scrape(&server, &base, prometheus()).await;
    for _ in 0..5 {
        let r = server.send(&Call::get("secret/data/m")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = server
        .send(&Call::post("auth/token/create", json!({"ttl": "1h"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let after = scrape(&server, &base, prometheus()).await;

    let reads = |s: &prometheus_parse::Scrape| total(s, |m| m == "vault_route_read_secret__count");
    assert_eq!(
        reads(&after) - reads(&before),
        5.0,
        "five KV reads routed to secret/"
    );
    let handled =
        |s: &prometheus_parse::Scrape| total(s, |m| m == "vault_core_handle_request_count");
    assert!(
        handled(&after) - handled(&before) >= 6.0,
        "handle_request counts every request: {} then {}",
        handled(&before),
        handled(&after)
    );
    let created = |s: &prometheus_parse::Scrape| total(s, |m| m == "vault_token_creation");
    assert_eq!(created(&after) - created(&before), 1.0, "one token created");
    let labelled = after
        .samples
        .iter()
        .find(|s| s.metric == "vault_token_creation" && s.labels.get("creation_ttl") == Some("1h"))
        .expect("a vault_token_creation series labelled creation_ttl=1h");
    assert_eq!(labelled.labels.get("auth_method"), Some("token"));
    assert_eq!(labelled.labels.get("mount_point"), Some("auth/token/"));
    assert_eq!(labelled.labels.get("token_type"), Some("service"));
    assert_eq!(total(&after, |m| m == "vault_core_unsealed"), 1.0);
    let barrier_gets = |s: &prometheus_parse::Scrape| total(s, |m| m == "vault_barrier_get_count");
    assert!(
        barrier_gets(&after) - barrier_gets(&before) >= 5.0,
        "each KV read reads the barrier"
    );

    // Prometheus scrapers ask by the Accept header.
    let by_accept = scrape(
        &server,
        &base,
        Call::get("sys/metrics").header("Accept", "application/openmetrics-text"),
    )
    .await;
    assert!(reads(&by_accept) >= 5.0);
}

#[tokio::test]
async fn json_metrics_show_the_last_interval_in_openbao_shape() {
    let server = Server::dev(target());
    for _ in 0..3 {
        let r = server.send(&Call::get("sys/mounts")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // OpenBao's JSON shows the last finished 10-second interval: wait for
    // the one holding these requests.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let r = server.send(&Call::get("sys/metrics")).await;
        assert_eq!(r.status, 200, "{r:?}");
        for key in ["Timestamp", "Gauges", "Counters", "Samples", "Points"] {
            assert!(r.body.get(key).is_some(), "{key} missing: {}", r.body);
        }
        let samples = r.body["Samples"].as_array().cloned().unwrap_or_default();
        if samples.iter().any(|s| s["Name"] == "vault.route.read.sys-") {
            break r.body;
        }
        assert!(
            Instant::now() < deadline,
            "no interval with the requests: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let sample = body["Samples"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["Name"] == "vault.route.read.sys-"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(sample["Count"].as_f64().unwrap_or(0.0) >= 1.0, "{sample}");
    for key in ["Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"] {
        assert!(sample.get(key).is_some(), "{key} missing in {sample}");
    }
    let gauges = body["Gauges"].as_array().cloned().unwrap_or_default();
    assert!(
        gauges
            .iter()
            .any(|g| g["Name"] == "vault.core.unsealed" && g["Value"] == 1),
        "{gauges:?}"
    );
}

#[tokio::test]
async fn an_unknown_format_gets_openbaos_400() {
    let server = Server::dev(target());
    let r = server.send(&Call::get("sys/metrics?format=xml")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!("metric response format \"xml\" unknown"));
}

/// One listener with `telemetry { <line> }`, a plain second one.
fn two_listeners(dir: &std::path::Path, telemetry: &str) -> Config {
    let mut cfg = Config::inmem(dir);
    cfg.listeners = vec![
        Listener {
            lines: vec![format!("telemetry {{\n    {telemetry}\n  }}")],
            ..Default::default()
        },
        Listener::default(),
    ];
    // OpenBao serves Prometheus text from a config file only with a
    // retention time; Strongroom serves it either way.
    cfg.lines
        .push("telemetry {\n  prometheus_retention_time = \"30s\"\n}".into());
    cfg
}

#[tokio::test]
async fn unauthenticated_metrics_access_is_per_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = two_listeners(dir.path(), "unauthenticated_metrics_access = true");
    let mut server = Server::with_config(target(), &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    let (open, plain) = (server.listeners[0].clone(), server.listeners[1].clone());

    let r = server
        .send_to(&open, &Call::get("sys/metrics").anonymous())
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["Gauges"].is_array(), "{r:?}");
    let s = scrape(&server, &open, prometheus().anonymous()).await;
    assert!(!s.samples.is_empty());

    let r = server
        .send_to(&plain, &Call::get("sys/metrics").anonymous())
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.errors(), vec!["permission denied".to_string()]);
    let r = server.send_to(&plain, &Call::get("sys/metrics")).await;
    assert_eq!(r.status, 200, "a token still opens it: {r:?}");
}

#[tokio::test]
async fn disallow_metrics_and_metrics_only_listeners() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::inmem(dir.path());
    cfg.listeners = vec![
        Listener {
            lines: vec!["telemetry {\n    disallow_metrics = true\n  }".into()],
            ..Default::default()
        },
        Listener {
            lines: vec!["telemetry {\n    metrics_only = true\n  }".into()],
            ..Default::default()
        },
    ];
    let mut server = Server::with_config(target(), &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    let (disallowed, only) = (server.listeners[0].clone(), server.listeners[1].clone());

    let r = server.send_to(&disallowed, &Call::get("sys/metrics")).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.body,
        json!("metrics endpoint is disabled for this listener\n")
    );
    let r = server.send_to(&disallowed, &Call::get("sys/mounts")).await;
    assert_eq!(r.status, 200, "the rest of the API is served: {r:?}");

    let r = server.send_to(&only, &Call::get("sys/metrics")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["Gauges"].is_array(), "{r:?}");
    for path in ["sys/mounts", "sys/health", "secret/x"] {
        let r = server.send_to(&only, &Call::get(path)).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(
            r.body,
            json!("this listener only serves the metrics endpoint\n")
        );
    }
    let r = server
        .send_to(&only, &Call::get("sys/metrics").anonymous())
        .await;
    assert_eq!(r.status, 403, "a token is still needed: {r:?}");
}

#[tokio::test]
async fn in_flight_requests_list_the_asking_request() {
    let server = Server::dev(target());
    let r = server.send(&Call::get("sys/in-flight-req")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let map = r
        .body
        .as_object()
        .expect("a bare object keyed by request id");
    let mine = map
        .values()
        .find(|v| v["request_path"] == "/v1/sys/in-flight-req")
        .expect("the request itself is in flight");
    assert_eq!(mine["request_method"], "GET");
    assert!(mine["client_remote_address"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let r = server
        .send(&Call::get("sys/in-flight-req").anonymous())
        .await;
    assert_eq!(r.status, 403, "{r:?}");
}

#[tokio::test]
async fn durable_storage_is_timed_per_backend() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::inmem(dir.path());
    cfg.storage = strongroom_test::server::Storage::Durable(dir.path().to_path_buf());
    // Strongroom's own backend name (OpenBao's raft storage has others).
    let mut server = Server::with_config(strongroom_test::server::Kind::Strongroom, &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    let base = server.addr.clone();
    let s = scrape(&server, &base, prometheus()).await;
    assert!(
        total(&s, |m| m == "vault_redb_batch_count") >= 1.0,
        "init wrote through redb"
    );
    assert!(
        total(&s, |m| m == "vault_redb_get_count") >= 1.0,
        "unseal read through redb"
    );
}

#[tokio::test]
async fn usage_gauges_count_tokens_by_policy_auth_and_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::inmem(dir.path());
    cfg.lines.push(
        "telemetry {\n  prometheus_retention_time = \"30s\"\n  usage_gauge_period = \"1s\"\n}"
            .into(),
    );
    let mut server = Server::with_config(strongroom_test::server::Kind::Strongroom, &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    for _ in 0..2 {
        let r = server
            .send(&Call::post(
                "auth/token/create",
                json!({"policies": ["gauged"], "ttl": "30m"}),
            ))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // The usage gauges are sampled by the upkeep (every interval, at most
    // every usage_gauge_period): poll until the two tokens are counted.
    let base = server.addr.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let by = |s: &prometheus_parse::Scrape, metric: &str, label: &str, value: &str| {
        s.samples
            .iter()
            .filter(|x| x.metric == metric && x.labels.get(label) == Some(value))
            .map(|x| match x.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    loop {
        let s = scrape(&server, &base, prometheus()).await;
        if by(&s, "vault_token_count_by_policy", "policy", "gauged") == 2.0 {
            assert_eq!(
                by(&s, "vault_token_count_by_ttl", "creation_ttl", "1h"),
                2.0
            );
            // The root token (no TTL) and the two children, all issued by
            // the token store.
            assert_eq!(
                by(&s, "vault_token_count_by_auth", "auth_method", "token"),
                3.0
            );
            assert_eq!(by(&s, "vault_token_count", "namespace", "root"), 3.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the usage gauges never counted the tokens"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
