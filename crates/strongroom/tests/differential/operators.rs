//! Differential tests of the operator quorum endpoints: root token
//! generation (`sys/generate-root-token/*`, the unauthenticated
//! `sys/generate-root/*` behind the listener flag, `sys/decode-token`) and
//! rekeying (`sys/rotate/root/*`, the unauthenticated `sys/rekey/*`).
//! Tokens generated on each server must work on that server, and a rekey
//! must make the old shares useless and the new ones unseal.

use crate::differences;
use serde_json::json;
use strongroom_test::diff::{on_both, Allow, Pair};
use strongroom_test::server::{self, Call, Config, Listener, Reply, Server};

/// The generated one-time password, the new shares and the encoded token
/// are random per server.
const RANDOM: &[Allow] = &[
    Allow {
        pattern: "**/otp",
        reason: "a generated one-time password is random",
    },
    Allow {
        pattern: "**/encoded_token",
        reason: "each server generates its own root token",
    },
    Allow {
        pattern: "**/encoded_root_token",
        reason: "each server generates its own root token",
    },
    Allow {
        pattern: "**/keys",
        reason: "each server generates its own key shares",
    },
    Allow {
        pattern: "**/keys_base64",
        reason: "each server generates its own key shares",
    },
];

/// A fixed 26-character one-time password (a root token's length).
const OTP: &str = "abcdefghijklmnopqrstuvwxyz";

fn xor_decode(encoded: &str, otp: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded)
        .expect("encoded token is unpadded base64");
    assert_eq!(bytes.len(), otp.len(), "encoded token length");
    String::from_utf8(bytes.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect())
        .expect("decoded token is text")
}

/// Checks on each server that `token` is a working root token.
async fn works_as_root(p: &mut Pair, tokens: (&str, &str), what: &str) {
    let mut failures = Vec::new();
    for (server, token) in [(&p.bao, tokens.0), (&p.sr, tokens.1)] {
        let label = server.kind.label();
        let r = server
            .send(&Call::get("auth/token/lookup-self").token(token))
            .await;
        if !(r.status == 200 && r.body["data"]["policies"] == json!(["root"])) {
            failures.push(format!(
                "{what}: {label}: the new token is not a root token: {r:?}"
            ));
        }
        let r = server
            .send(&Call::post("sys/mounts/made-by-new-root", json!({"type": "kv"})).token(token))
            .await;
        if r.status != 204 {
            failures.push(format!(
                "{what}: {label}: the new root token cannot mount: {r:?}"
            ));
        }
    }
    for f in failures {
        p.expect(false, f);
    }
}

#[tokio::test]
async fn generate_root_token_with_the_authenticated_endpoints() {
    let mut p = differences::pair();
    let r = p
        .check(Call::get("sys/generate-root-token/attempt"), &[])
        .await;
    p.expect_status(&r, 200, "status before an attempt");
    on_both(&mut p, &r, "not started", |r| {
        r.data("started") == &json!(false)
    });
    let r = p
        .check(
            Call::get("sys/generate-root-token/attempt").anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 403, "the authenticated path wants a token");

    // A generated OTP is returned once; cancel it.
    let r = p
        .check(
            Call::put("sys/generate-root-token/attempt", json!({})),
            RANDOM,
        )
        .await;
    p.expect_status(&r, 200, "start with a generated otp");
    on_both(&mut p, &r, "generated otp", |r| {
        r.data("otp").as_str().is_some_and(|o| o.len() == 26)
    });
    let r = p
        .check(Call::put("sys/generate-root-token/attempt", json!({})), &[])
        .await;
    p.expect_status(&r, 400, "a second attempt while one runs");
    let r = p
        .check(Call::delete("sys/generate-root-token/attempt"), &[])
        .await;
    p.expect_status(&r, 204, "cancel");
    let r = p
        .check(Call::get("sys/generate-root-token/attempt"), &[])
        .await;
    on_both(&mut p, &r, "cancelled", |r| {
        r.data("started") == &json!(false)
    });

    let r = p
        .check(
            Call::put("sys/generate-root-token/attempt", json!({"otp": "short"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "an otp of the wrong length");
    let r = p
        .check(
            Call::put("sys/generate-root-token/update", json!({"key": "abcd"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "update without a nonce");

    // With our own OTP, the one dev share completes the attempt.
    let r = p
        .check(
            Call::put("sys/generate-root-token/attempt", json!({"otp": OTP})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "start with an otp");
    let nonces = (
        r.0.data("nonce").as_str().unwrap_or_default().to_string(),
        r.1.data("nonce").as_str().unwrap_or_default().to_string(),
    );
    let keys = (p.bao.unseal_keys[0].clone(), p.sr.unseal_keys[0].clone());
    let r = p
        .check_each(
            Call::put(
                "sys/generate-root-token/update",
                json!({"nonce": nonces.0, "key": keys.0}),
            ),
            Call::put(
                "sys/generate-root-token/update",
                json!({"nonce": nonces.1, "key": keys.1}),
            ),
            RANDOM,
        )
        .await;
    p.expect_status(&r, 200, "the last share");
    on_both(&mut p, &r, "complete", |r| {
        r.data("complete") == &json!(true)
    });
    let encoded = (
        r.0.data("encoded_token")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        r.1.data("encoded_token")
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let tokens = (xor_decode(&encoded.0, OTP), xor_decode(&encoded.1, OTP));
    works_as_root(&mut p, (&tokens.0, &tokens.1), "OTP-decoded token").await;

    // sys/decode-token (unauthenticated) decodes the same way.
    let r = p
        .check_each(
            Call::put(
                "sys/decode-token",
                json!({"encoded_token": encoded.0, "otp": OTP}),
            )
            .anonymous(),
            Call::put(
                "sys/decode-token",
                json!({"encoded_token": encoded.1, "otp": OTP}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "decode-token");
    p.expect(
        r.0.data("token") == &json!(tokens.0) && r.1.data("token") == &json!(tokens.1),
        format!("decode-token gives the token: {r:?}"),
    );
    let r = p
        .check(
            Call::put(
                "sys/decode-token",
                json!({"encoded_token": "abc", "otp": "x"}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "decode-token with a mismatched otp");
    let r = p
        .check(Call::get("sys/generate-root-token/attempt"), &[])
        .await;
    on_both(&mut p, &r, "finished", |r| {
        r.data("started") == &json!(false)
    });

    // bao's CLI decodes what each server encoded.
    let mut failures = Vec::new();
    for (server, enc, token) in [
        (&p.bao, &encoded.0, &tokens.0),
        (&p.sr, &encoded.1, &tokens.1),
    ] {
        let out = server::run(
            &server::bao_path(),
            &[
                "operator",
                "generate-root",
                &format!("-decode={enc}"),
                &format!("-otp={OTP}"),
            ],
            &[
                ("BAO_ADDR", server.addr.as_str()),
                ("BAO_TOKEN", server::DEV_ROOT_TOKEN),
            ],
        );
        if !(out.code == 0 && out.stdout.contains(token.as_str())) {
            let label = server.kind.label();
            failures.push(format!(
                "bao operator generate-root -decode on {label}: {out:?}"
            ));
        }
    }
    for f in failures {
        p.expect(false, f);
    }
    p.finish();
}

#[tokio::test]
async fn unauthenticated_operator_endpoints_are_off_by_default() {
    let mut p = differences::pair();
    for call in [
        Call::get("sys/generate-root/attempt"),
        Call::put("sys/generate-root/attempt", json!({})),
        Call::put(
            "sys/generate-root/update",
            json!({"key": "abcd", "nonce": "x"}),
        ),
        Call::get("sys/rekey/init"),
        Call::put(
            "sys/rekey/init",
            json!({"secret_shares": 1, "secret_threshold": 1}),
        ),
        Call::put("sys/rekey/update", json!({"key": "abcd", "nonce": "x"})),
        Call::get("sys/rekey/verify"),
    ] {
        let what = call.describe();
        let r = p.check(call.clone(), &[]).await;
        p.expect_status(&r, 405, &what);
        let r = p.check(call.anonymous(), &[]).await;
        p.expect_status(&r, 405, &format!("{what} without a token"));
    }
    let r = p.check(Call::get("sys/rekey/backup"), &[]).await;
    p.expect_status(&r, 400, "no backup");
    let r = p
        .check(Call::get("sys/rekey/backup").anonymous(), &[])
        .await;
    p.expect_status(&r, 403, "backup wants a token");
    p.finish();
}

fn keys_of(r: &Reply) -> Vec<String> {
    server::str_list(&r.body["keys_base64"])
}

/// Submits `keys` to the legacy unseal endpoint of `s`; the last answer.
pub(crate) async fn unseal_with(s: &Server, keys: &[String]) -> Reply {
    let mut last = None;
    for k in keys {
        last = Some(s.send(&Call::put("sys/unseal", json!({ "key": k }))).await);
    }
    last.expect("at least one key")
}

pub(crate) fn config_pair(dir: &std::path::Path) -> Pair {
    let mut cfg = Config::inmem(dir);
    cfg.listeners = vec![Listener {
        unauthed_operator_endpoints: true,
        ..Default::default()
    }];
    differences::pair_with_config(&cfg)
}

pub(crate) async fn init_both(p: &mut Pair, shares: u64, threshold: u64) {
    p.bao.init(shares, threshold).await;
    p.sr.init(shares, threshold).await;
    p.bao.unseal().await;
    p.sr.unseal().await;
}

#[tokio::test]
async fn legacy_rekey_replaces_the_shares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    init_both(&mut p, 3, 2).await;

    let r = p.check(Call::get("sys/rekey/init").anonymous(), &[]).await;
    p.expect_status(&r, 200, "rekey status, unauthenticated");
    for (body, what) in [
        (
            json!({"secret_shares": 3, "secret_threshold": 5}),
            "threshold above shares",
        ),
        (
            json!({"secret_shares": 5, "secret_threshold": 3, "backup": true}),
            "backup without pgp keys",
        ),
        (
            json!({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": ["a"]}),
            "wrong number of pgp keys",
        ),
    ] {
        let r = p
            .check(
                Call::put("sys/rekey/init", body).anonymous(),
                differences::REKEY_CONFIG_STATUS,
            )
            .await;
        p.expect(
            r.0.status >= 400 && r.1.status == 400,
            format!("{what}: {r:?}"),
        );
    }
    let r = p
        .check(
            Call::put(
                "sys/rekey/init",
                json!({"secret_shares": 5, "secret_threshold": 3}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "rekey init");
    let r = p
        .check(
            Call::put(
                "sys/rekey/init",
                json!({"secret_shares": 5, "secret_threshold": 3}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "a second rekey");
    let r = p.check(Call::get("sys/rekey/init").anonymous(), &[]).await;
    let nonces = (r.0.body["nonce"].clone(), r.1.body["nonce"].clone());
    let old = (p.bao.unseal_keys.clone(), p.sr.unseal_keys.clone());

    let r = p
        .check(
            Call::put(
                "sys/rekey/update",
                json!({"nonce": "wrong", "key": old.1[0]}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "wrong nonce");
    let mut last = None;
    for i in 0..2 {
        let r = p
            .check_each(
                Call::put(
                    "sys/rekey/update",
                    json!({"nonce": nonces.0, "key": old.0[i]}),
                )
                .anonymous(),
                Call::put(
                    "sys/rekey/update",
                    json!({"nonce": nonces.1, "key": old.1[i]}),
                )
                .anonymous(),
                RANDOM,
            )
            .await;
        p.expect_status(&r, 200, &format!("rekey update {i}"));
        last = Some(r);
    }
    let r = last.expect("two updates");
    on_both(&mut p, &r, "rekey complete", |r| {
        r.body["complete"] == json!(true) && keys_of(r).len() == 5
    });
    let new = (keys_of(&r.0), keys_of(&r.1));

    // The old shares no longer unseal; three new ones do.
    for s in [&p.bao, &p.sr] {
        let r = s.send(&Call::put("sys/seal", json!({}))).await;
        assert_eq!(r.status, 204, "{} seal: {r:?}", s.kind.label());
    }
    let r = (
        unseal_with(&p.bao, &old.0).await,
        unseal_with(&p.sr, &old.1).await,
    );
    p.expect_status(&r, 400, "a threshold of old shares after rekey");
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    on_both(&mut p, &r, "still sealed with t=3 n=5", |r| {
        r.body["sealed"] == json!(true) && r.body["t"] == json!(3) && r.body["n"] == json!(5)
    });
    let r = (
        unseal_with(&p.bao, &new.0[1..4]).await,
        unseal_with(&p.sr, &new.1[1..4]).await,
    );
    on_both(&mut p, &r, "new shares unseal", |r| {
        r.body["sealed"] == json!(false)
    });
    p.finish();
}

#[tokio::test]
async fn rekey_with_verification_on_the_authenticated_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    init_both(&mut p, 1, 1).await;

    let r = p.check(Call::get("sys/rotate/root/init"), &[]).await;
    p.expect_status(&r, 200, "rotation status");
    let r = p
        .check(Call::get("sys/rotate/root/init").anonymous(), &[])
        .await;
    p.expect_status(&r, 403, "rotation status wants a token");
    let r = p.check(Call::get("sys/rotate/root/verify"), &[]).await;
    p.expect_status(&r, 400, "verify without a rotation");
    let r = p
        .check(
            Call::put(
                "sys/rotate/root/init",
                json!({"secret_shares": 3, "secret_threshold": 2, "require_verification": true}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "rotation init");
    let nonces = (r.0.data("nonce").clone(), r.1.data("nonce").clone());
    let old = (p.bao.unseal_keys[0].clone(), p.sr.unseal_keys[0].clone());
    let r = p
        .check_each(
            Call::put(
                "sys/rotate/root/update",
                json!({"nonce": nonces.0, "key": old.0}),
            ),
            Call::put(
                "sys/rotate/root/update",
                json!({"nonce": nonces.1, "key": old.1}),
            ),
            RANDOM,
        )
        .await;
    p.expect_status(&r, 200, "rotation update");
    let new = (
        server::str_list(r.0.data("keys_base64")),
        server::str_list(r.1.data("keys_base64")),
    );
    let vnonces = (
        r.0.data("verification_nonce").clone(),
        r.1.data("verification_nonce").clone(),
    );
    on_both(&mut p, &r, "verification required", |r| {
        r.data("verification_required") == &json!(true) && r.data("complete") == &json!(true)
    });
    // Until verified, the old key still unseals: nothing changed yet.
    let r = p.check(Call::get("sys/rotate/root/verify"), &[]).await;
    on_both(&mut p, &r, "verification started", |r| {
        r.data("started") == &json!(true)
    });
    let r = p
        .check_each(
            Call::put(
                "sys/rotate/root/verify",
                json!({"nonce": vnonces.0, "key": new.0[0]}),
            ),
            Call::put(
                "sys/rotate/root/verify",
                json!({"nonce": vnonces.1, "key": new.1[0]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "first new share");
    on_both(&mut p, &r, "progress 1", |r| {
        r.data("progress") == &json!(1)
    });
    let r = p
        .check_each(
            Call::put(
                "sys/rotate/root/verify",
                json!({"nonce": vnonces.0, "key": new.0[2]}),
            ),
            Call::put(
                "sys/rotate/root/verify",
                json!({"nonce": vnonces.1, "key": new.1[2]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "second new share");
    on_both(&mut p, &r, "verified", |r| {
        r.data("complete") == &json!(true)
    });
    let r = p.check(Call::get("sys/rotate/root/init"), &[]).await;
    on_both(&mut p, &r, "rotation over", |r| {
        r.data("started") == &json!(false)
    });
    let r = p.check(Call::get("sys/rotate/root/backup"), &[]).await;
    p.expect_status(&r, 400, "no backup");

    for s in [&p.bao, &p.sr] {
        s.send(&Call::put("sys/seal", json!({}))).await;
    }
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    on_both(&mut p, &r, "sealed with t=2 n=3", |r| {
        r.body["sealed"] == json!(true) && r.body["t"] == json!(2) && r.body["n"] == json!(3)
    });
    let r = (
        unseal_with(&p.bao, &new.0[1..3]).await,
        unseal_with(&p.sr, &new.1[1..3]).await,
    );
    on_both(&mut p, &r, "new shares unseal", |r| {
        r.body["sealed"] == json!(false)
    });
    p.finish();
}

#[tokio::test]
async fn legacy_generate_root_when_the_listener_allows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    init_both(&mut p, 3, 2).await;
    let r = p
        .check(Call::get("sys/generate-root/attempt").anonymous(), &[])
        .await;
    p.expect_status(&r, 200, "legacy status");
    let r = p
        .check(
            Call::put("sys/generate-root/attempt", json!({"otp": OTP})).anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "legacy start");
    let nonces = (r.0.body["nonce"].clone(), r.1.body["nonce"].clone());
    let r = p
        .check(
            Call::put(
                "sys/generate-root/update",
                json!({"nonce": "wrong", "key": p.sr.unseal_keys[0]}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "wrong nonce");
    let keys = (p.bao.unseal_keys.clone(), p.sr.unseal_keys.clone());
    // One unauthenticated generate-root update with a share.
    let share = |nonce: &serde_json::Value, key: &String| {
        Call::put(
            "sys/generate-root/update",
            json!({"nonce": nonce, "key": key}),
        )
        .anonymous()
    };
    let r = p
        .check_each(
            share(&nonces.0, &keys.0[0]),
            share(&nonces.1, &keys.1[0]),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "first share");
    let r = p
        .check_each(
            share(&nonces.0, &keys.0[0]),
            share(&nonces.1, &keys.1[0]),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "the same share twice");
    let r = p
        .check_each(
            share(&nonces.0, &keys.0[2]),
            share(&nonces.1, &keys.1[2]),
            RANDOM,
        )
        .await;
    p.expect_status(&r, 200, "second share");
    let tokens = (
        xor_decode(r.0.body["encoded_token"].as_str().unwrap_or_default(), OTP),
        xor_decode(r.1.body["encoded_token"].as_str().unwrap_or_default(), OTP),
    );
    works_as_root(&mut p, (&tokens.0, &tokens.1), "legacy generate-root").await;
    p.finish();
}
