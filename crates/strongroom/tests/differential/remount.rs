//! Differential tests of `sys/remount`: a secrets engine and an auth method
//! move with their data and configuration; as in OpenBao, the leases issued
//! under the old path (an auth method's tokens) are revoked; the status of
//! the move; the old path answers 404; the refusals.

use crate::differences;
use serde_json::json;
use strongroom_test::diff::{on_both, Pair};
use strongroom_test::server::{Call, Reply, Server};

/// Waits until `server` reports the move `id` finished (OpenBao moves in
/// the background; Strongroom before answering). Returns the last status.
async fn finished(server: &Server, id: &str) -> Reply {
    let mut last = None;
    for _ in 0..100 {
        let r = server
            .send(&Call::get(&format!("sys/remount/status/{id}")))
            .await;
        if r.data("migration_info")["status"] != json!("in-progress") {
            return r;
        }
        last = Some(r);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last.expect("polled at least once")
}

async fn remount(p: &mut Pair, from: &str, to: &str) -> (Reply, Reply) {
    let r = p
        .check(
            Call::post("sys/remount", json!({"from": from, "to": to})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, &format!("remount {from} -> {to}"));
    let ids = (
        r.0.data("migration_id")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        r.1.data("migration_id")
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let statuses = (
        finished(&p.bao, &ids.0).await,
        finished(&p.sr, &ids.1).await,
    );
    let diffs = strongroom_test::diff::reply_diffs(
        &statuses.0,
        &statuses.1,
        ("openbao", "strongroom"),
        &[],
    );
    p.expect(
        diffs.is_empty(),
        format!("remount status differs: {diffs:?}"),
    );
    on_both(p, &statuses, "move succeeded", |r| {
        r.data("migration_info")["status"] == json!("success")
    });
    statuses
}

#[tokio::test]
async fn remount_moves_a_secrets_engine_with_its_data() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post(
                "sys/mounts/before",
                json!({"type": "kv", "options": {"version": "1"}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount");
    p.check(
        Call::put("sys/mounts/before/tune", json!({"default_lease_ttl": "1h"})),
        &[],
    )
    .await;
    let r = p
        .check(Call::put("before/secret", json!({"v": "kept"})), &[])
        .await;
    p.expect_status(&r, 204, "write");

    let r = p
        .check(
            Call::post("sys/remount", json!({"from": "before", "to": "after"})).anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 403, "remount without a token");
    remount(&mut p, "before", "after").await;

    let r = p.check(Call::get("after/secret"), &[]).await;
    p.expect_status(&r, 200, "read at the new path");
    let r = p.check(Call::get("before/secret"), &[]).await;
    p.expect_status(&r, 404, "the old path");
    let r = p.check(Call::get("sys/mounts/after/tune"), &[]).await;
    p.expect_status(&r, 200, "the configuration moved");
    let r = p
        .check(Call::get("sys/remount/status/not-a-migration"), &[])
        .await;
    p.expect_status(&r, 404, "unknown migration");

    for (from, to, what) in [
        ("nope", "elsewhere", "no mount there"),
        ("after", "secret", "destination in use"),
        ("sys", "system", "the system backend"),
        ("cubbyhole", "cubby", "cubbyhole"),
        ("auth/token", "auth/t2", "the token backend"),
        ("after", "auth/after", "secrets to auth"),
    ] {
        let r = p
            .check(
                Call::post("sys/remount", json!({"from": from, "to": to})),
                &[],
            )
            .await;
        p.expect_status(&r, 400, what);
    }
    p.finish();
}

#[tokio::test]
async fn remount_moves_an_auth_method_and_revokes_its_tokens() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post("sys/auth/userpass-like", json!({"type": "approle"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable approle");
    p.check(
        Call::post(
            "auth/userpass-like/role/app",
            json!({"token_policies": ["default"], "role_id": "fixed-role-id"}),
        ),
        &[],
    )
    .await;
    let r = p
        .check(
            Call::put(
                "auth/userpass-like/role/app/custom-secret-id",
                json!({"secret_id": "fixed-secret"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "secret id");
    let r = p
        .check(
            Call::post(
                "auth/userpass-like/login",
                json!({"role_id": "fixed-role-id", "secret_id": "fixed-secret"}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "login before the move");
    let tokens = (
        r.0.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        r.1.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );

    remount(&mut p, "auth/userpass-like", "auth/moved").await;

    let r = p
        .check_each(
            Call::get("auth/token/lookup-self").token(&tokens.0),
            Call::get("auth/token/lookup-self").token(&tokens.1),
            &[],
        )
        .await;
    p.expect_status(
        &r,
        403,
        "tokens of the moved method are revoked, as OpenBao does",
    );
    let r = p
        .check(
            Call::post(
                "auth/moved/login",
                json!({"role_id": "fixed-role-id", "secret_id": "fixed-secret"}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "login at the new path");
    let r = p
        .check(
            Call::post(
                "auth/userpass-like/login",
                json!({"role_id": "fixed-role-id", "secret_id": "fixed-secret"}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect(
        r.0.status == r.1.status,
        format!("login at the old path: {r:?}"),
    );
    let r = p
        .check(
            Call::post("sys/remount", json!({"from": "auth/moved", "to": "kv-now"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "auth to secrets");
    p.finish();
}
