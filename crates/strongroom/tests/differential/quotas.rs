//! Differential tests of `sys/quotas`: the configuration and the
//! rate-limit quotas (write, read, list, delete) in OpenBao's shapes, the
//! refusals of bad definitions, and the 429 of a request over its quota.
//!
//! Not compared: a partial write of `sys/quotas/config` (Strongroom keeps
//! the fields not given, OpenBao empties them: see the e2e test), and the
//! lease-count quotas (OpenBao 2.7 has none).

use crate::differences;
use serde_json::json;
use strongroom_test::server::Call;

#[tokio::test]
async fn quota_definitions_have_openbaos_shapes() {
    let mut p = differences::pair();
    let r = p.check(Call::get("sys/quotas/config"), &[]).await;
    p.expect_status(&r, 200, "default config");
    let full = json!({
        "rate_limit_exempt_paths": ["sys/health", "sys/quotas/"],
        "enable_rate_limit_audit_logging": true,
        "enable_rate_limit_response_headers": true,
    });
    let r = p.check(Call::post("sys/quotas/config", full), &[]).await;
    p.expect_status(&r, 204, "write config");
    p.check(Call::get("sys/quotas/config"), &[]).await;
    let r = p
        .check(
            Call::post(
                "sys/quotas/rate-limit/mount",
                json!({"path": "secret", "rate": 2.5, "interval": "1m", "block_interval": 30}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write a mount quota");
    let r = p.check(Call::get("sys/quotas/rate-limit/mount"), &[]).await;
    p.expect_status(&r, 200, "read it");
    p.check(Call::list("sys/quotas/rate-limit"), &[]).await;
    let r = p
        .check(
            Call::post("sys/quotas/rate-limit/global", json!({"rate": 1000})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write a global quota");
    p.check(Call::get("sys/quotas/rate-limit/global"), &[])
        .await;
    p.check(
        Call::post(
            "sys/quotas/rate-limit/path",
            json!({"path": "cubbyhole/a", "rate": 10, "inheritable": true}),
        ),
        &[],
    )
    .await;
    p.check(Call::get("sys/quotas/rate-limit/path"), &[]).await;
    // Refusals.
    for (body, what) in [
        (json!({"rate": 0}), "a zero rate"),
        (json!({"rate": -1}), "a negative rate"),
        (json!({}), "no rate"),
        (json!({"rate": "abc"}), "a rate that is no number"),
        (json!({"rate": 1, "path": "nomount/"}), "an unknown mount"),
        (
            json!({"rate": 1, "path": "secret/"}),
            "the same path as another quota",
        ),
        (json!({"rate": 1, "interval": -5}), "a negative interval"),
        (
            json!({"rate": 1, "path": "auth/token/", "role": "r"}),
            "a role on the token store",
        ),
    ] {
        let r = p
            .check(Call::post("sys/quotas/rate-limit/bad", body), &[])
            .await;
        p.expect_status(&r, 400, what);
    }
    let r = p.check(Call::get("sys/quotas/rate-limit/bad"), &[]).await;
    p.expect_status(&r, 404, "a refused quota is not stored");
    let r = p
        .check(Call::delete("sys/quotas/rate-limit/path"), &[])
        .await;
    p.expect_status(&r, 204, "delete");
    p.check(Call::delete("sys/quotas/rate-limit/nothing"), &[])
        .await;
    p.check(Call::get("sys/quotas/rate-limit/path"), &[]).await;
    p.finish();
}

#[tokio::test]
async fn a_request_over_its_quota_gets_openbaos_429() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post(
                "sys/quotas/rate-limit/kv",
                json!({"path": "secret/", "rate": 2, "interval": "1h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "quota");
    for _ in 0..2 {
        let r = p.check(Call::get("secret/data/nothing"), &[]).await;
        p.expect_status(&r, 404, "within the quota");
    }
    let r = p.check(Call::get("secret/data/nothing"), &[]).await;
    p.expect_status(&r, 429, "over the quota");
    // Before authentication: no token, still the quota's answer.
    let r = p
        .check(Call::get("secret/data/nothing").anonymous(), &[])
        .await;
    p.expect_status(&r, 429, "over the quota without a token");
    // Other mounts are not limited.
    let r = p.check(Call::get("sys/mounts/secret"), &[]).await;
    p.expect_status(&r, 200, "another path");
    p.finish();
}
