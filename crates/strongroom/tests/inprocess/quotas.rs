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
