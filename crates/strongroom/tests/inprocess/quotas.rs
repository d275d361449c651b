//! In-process tests of the rate-limit bucket table: 100,000 distinct
//! client addresses through the whole pipeline leave at most the table's
//! capacity of buckets (what the e2e test can only see as memory).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;
use strongroom_sdk::logical::{Operation, Request, RequestHandler};
use strongroom_test::inprocess::{call, unsealed_inmem};

#[tokio::test]
async fn the_bucket_table_stays_bounded_under_a_hundred_thousand_clients() {
    let (core, root, _) = unsealed_inmem().await;
    let (s, body) = call(
        &core,
        "POST",
        "/v1/sys/quotas/rate-limit/global",
        Some(&root),
        Some(json!({"rate": 1, "interval": "1h"})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let quotas = core.active().unwrap().quotas.clone();
    let send = |n: u32| {
        let mut req = Request::new(Operation::Read, "nothing/here");
        req.remote_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
        core.handle_request(req)
    };
    for n in 0..100_000 {
        // Past the quota (one each), the ACL answers: no token.
        let err = send(n).await.unwrap_err();
        assert_eq!(err.status(), 403, "client {n}: {err}");
        assert!(quotas.bucket_count() <= quotas.max_buckets());
    }
    assert!(
        quotas.bucket_count() > quotas.max_buckets() / 2,
        "{} buckets",
        quotas.bucket_count()
    );
    // The most recent client keeps its (empty) bucket: refused.
    let err = send(99_999).await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert_eq!(
        err.to_string(),
        r#"request path "nothing/here": rate limit quota exceeded"#
    );
}

#[tokio::test]
async fn quotas_are_stored_and_loaded_again_at_unseal() {
    let (core, root, key) = unsealed_inmem().await;
    let (s, body) = call(
        &core,
        "POST",
        "/v1/sys/quotas/rate-limit/kv",
        Some(&root),
        Some(json!({"path": "secret/", "rate": 1, "interval": "1h"})),
    )
    .await;
    // No `secret/` mount in a non-dev core: OpenBao's refusal.
    assert_eq!(s, 400, "{body}");
    assert_eq!(body, json!({"errors": ["invalid mount path \"secret/\""]}));
    let (s, body) = call(
        &core,
        "POST",
        "/v1/sys/quotas/rate-limit/global",
        Some(&root),
        Some(json!({"rate": 7, "block_interval": "1m"})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/quotas/config",
        Some(&root),
        Some(json!({"enable_rate_limit_audit_logging": true})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&core, "POST", "/v1/sys/seal", Some(&root), None).await;
    assert_eq!(s, 204);
    let (s, _) = strongroom_test::inprocess::unseal(&core, &key).await;
    assert_eq!(s, 200);
    let (s, body) = call(
        &core,
        "GET",
        "/v1/sys/quotas/rate-limit/global",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["rate"], json!(7));
    assert_eq!(body["data"]["block_interval"], json!(60));
    assert_eq!(body["data"]["interval"], json!(1));
    assert_eq!(body["data"]["inheritable"], json!(true));
    let (s, body) = call(&core, "GET", "/v1/sys/quotas/config", Some(&root), None).await;
    assert_eq!(s, 200);
    assert_eq!(body["data"]["enable_rate_limit_audit_logging"], json!(true));
    assert_eq!(
        body["data"]["rate_limit_exempt_paths"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let quotas = core.active().unwrap().quotas.clone();
    assert_eq!(quotas.snapshot().rate_limits.len(), 1);
}
