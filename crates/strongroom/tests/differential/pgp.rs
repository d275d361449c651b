//! Differential tests of PGP-encrypted unseal key shares and root tokens:
//! `sys/init` with `pgp_keys` and `root_token_pgp_key`, a rekey with
//! `pgp_keys` and `backup` (and `sys/rekey/backup`), and generate-root with
//! a `pgp_key`, on both paths. Both servers get the same test keys; the
//! test decrypts what each hands out with its secret keys and uses it.
//!
//! Normalisations, beyond the suite's usual ones:
//! - the ciphertexts (`keys`, `keys_base64`, `root_token`, `encoded_token`,
//!   `encoded_root_token`, the backup's shares) differ by nature (a random
//!   session key per message): accepted, and each server's are decrypted
//!   instead, to shares that unseal and tokens that are root tokens;
//! - fingerprints are normalised like any hash, so they are also compared
//!   raw ([`same_value`]), as both servers saw the same keys;
//! - a PGP key that does not decode or parse is compared up to `given PGP
//!   key` (`differences::canonical_error`): the rest is the OpenPGP
//!   library's own wording;
//! - a bad key in `sys/rekey/init` is a 500 on OpenBao, a 400 on
//!   Strongroom (`differences::REKEY_CONFIG_STATUS`);
//! - `sys/rotate/root/init` with a wrong number of keys: OpenBao's message
//!   is mangled by a Go formatting bug (`%!w(*errors.errorString=&{...})`);
//!   both must name the count mismatch.

use serde_json::json;
use strongroom_test::diff::{on_both, same_value, Allow, Pair};
use strongroom_test::pgp::{keys, TestKey};
use strongroom_test::server::{str_list, Call, Reply};

use crate::differences;
use crate::operators::{config_pair, init_both, unseal_with};

/// Ciphertexts, random per message.
const CIPHERTEXTS: &[Allow] = &[
    Allow {
        pattern: "**/keys",
        reason: "PGP ciphertexts of the shares (random session keys)",
    },
    Allow {
        pattern: "**/keys_base64",
        reason: "PGP ciphertexts of the shares (random session keys)",
    },
    Allow {
        pattern: "/root_token",
        reason: "the PGP ciphertext of each server's own root token",
    },
    Allow {
        pattern: "**/encoded_token",
        reason: "the PGP ciphertext of each server's own root token",
    },
    Allow {
        pattern: "**/encoded_root_token",
        reason: "the PGP ciphertext of each server's own root token",
    },
];

/// The backup's shares: the fingerprint map and the list lengths are
/// compared, the ciphertexts are not.
const BACKUP_CIPHERTEXTS: &[Allow] = &[
    Allow {
        pattern: "**/keys/*/[]",
        reason: "PGP ciphertexts of the shares (random session keys)",
    },
    Allow {
        pattern: "**/keys_base64/*/[]",
        reason: "PGP ciphertexts of the shares (random session keys)",
    },
];

fn public_keys(ks: &[&TestKey]) -> Vec<String> {
    ks.iter().map(|k| k.public_b64.clone()).collect()
}

/// Each server's shares, decrypted from `keys_base64` at `ptr` with the
/// key at the same position (the hex text of each share).
fn decrypt_shares(ks: &[&TestKey], r: &Reply, ptr: &str) -> Vec<String> {
    let b64 = str_list(r.body.pointer(ptr).unwrap_or(&json!(null)));
    assert_eq!(b64.len(), ks.len(), "{r:?}");
    ks.iter().zip(&b64).map(|(k, c)| k.decrypt_b64(c)).collect()
}

/// Records a failure unless `tokens` are root tokens on their servers.
async fn root_on_both(p: &mut Pair, tokens: (&str, &str), what: &str) {
    let r = (
        p.bao
            .send(&Call::get("auth/token/lookup-self").token(tokens.0))
            .await,
        p.sr.send(&Call::get("auth/token/lookup-self").token(tokens.1))
            .await,
    );
    on_both(p, &r, what, |r| {
        r.status == 200 && r.data("policies") == &json!(["root"])
    });
}

#[tokio::test]
async fn init_with_pgp_keys_and_root_token_pgp_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    let ks = keys(3);
    let all: Vec<&TestKey> = ks.iter().collect();
    for (body, what) in [
        (
            json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&all[..2])}),
            "fewer keys than shares",
        ),
        (
            json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["aGVsbG8="]}),
            "a key that does not parse",
        ),
        (
            json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["keybase:alice"]}),
            "a keybase user (expanded by the CLI only)",
        ),
    ] {
        let r = p.check(Call::put("sys/init", body), &[]).await;
        p.expect_status(&r, 400, what);
    }
    let r = p
        .check(
            Call::put(
                "sys/init",
                json!({
                    "secret_shares": 3,
                    "secret_threshold": 2,
                    "pgp_keys": public_keys(&all),
                    "root_token_pgp_key": ks[2].public_b64,
                }),
            ),
            CIPHERTEXTS,
        )
        .await;
    p.expect_status(&r, 200, "init with pgp keys");
    on_both(&mut p, &r, "init fields", |r| {
        let mut fields: Vec<&String> = r
            .body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        fields.sort();
        fields == ["keys", "keys_base64", "root_token"]
            && str_list(&r.body["keys"]).len() == 3
            && str_list(&r.body["keys"])
                .iter()
                .zip(str_list(&r.body["keys_base64"]))
                .all(|(h, b)| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .is_ok_and(|bytes| hex::encode(bytes) == *h)
                })
    });
    let shares = (
        decrypt_shares(&all, &r.0, "/keys_base64"),
        decrypt_shares(&all, &r.1, "/keys_base64"),
    );
    let tokens = (
        ks[2].decrypt_b64(r.0.body["root_token"].as_str().unwrap_or_default()),
        ks[2].decrypt_b64(r.1.body["root_token"].as_str().unwrap_or_default()),
    );
    let r = (
        unseal_with(&p.bao, &shares.0[1..]).await,
        unseal_with(&p.sr, &shares.1[1..]).await,
    );
    on_both(&mut p, &r, "decrypted shares unseal", |r| {
        r.body["sealed"] == json!(false)
    });
    root_on_both(&mut p, (&tokens.0, &tokens.1), "decrypted root token").await;
    p.finish();
}

#[tokio::test]
async fn rekey_with_pgp_keys_and_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    init_both(&mut p, 3, 2).await;
    let ks = keys(2);
    // One operator holds two of the three new shares.
    let holders: Vec<&TestKey> = vec![&ks[0], &ks[1], &ks[0]];

    for (body, allow, what) in [
        (
            json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&holders[..2])}),
            &[][..],
            "fewer keys than shares",
        ),
        (
            json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["aGVsbG8="]}),
            differences::REKEY_CONFIG_STATUS,
            "a key that does not parse",
        ),
        (
            json!({"secret_shares": 1, "secret_threshold": 1, "backup": true}),
            &[][..],
            "backup without pgp keys",
        ),
    ] {
        let r = p
            .check(Call::put("sys/rekey/init", body).anonymous(), allow)
            .await;
        p.expect(
            r.0.status >= 400 && r.1.status == 400,
            format!("{what}: {r:?}"),
        );
    }
    // The authenticated path takes `backup` without keys (it does nothing)
    // and names a count mismatch in its own words.
    let r = p
        .check(
            Call::put(
                "sys/rotate/root/init",
                json!({"secret_shares": 1, "secret_threshold": 1, "backup": true}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "rotate init with backup and no keys");
    let r = p.check(Call::delete("sys/rotate/root/init"), &[]).await;
    p.expect_status(&r, 204, "cancel");
    let r = p
        .check(
            Call::put(
                "sys/rotate/root/init",
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&holders[..2])}),
            ),
            &[Allow {
                pattern: "/errors",
                reason: "OpenBao's message is mangled by a Go formatting bug",
            }],
        )
        .await;
    p.expect_status(&r, 400, "rotate init with fewer keys than shares");
    on_both(&mut p, &r, "count mismatch named", |r| {
        str_list(&r.body["errors"]).iter().any(|e| {
            e.contains("count mismatch between number of provided PGP keys and number of shares")
        })
    });

    let r = p
        .check(
            Call::put(
                "sys/rekey/init",
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&holders), "backup": true}),
            )
            .anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "rekey init with pgp keys and backup");
    same_value(&mut p, &r, "/pgp_fingerprints", "init fingerprints");
    p.expect(
        r.1.body["pgp_fingerprints"]
            == json!([ks[0].fingerprint, ks[1].fingerprint, ks[0].fingerprint]),
        format!("fingerprints in key order: {:?}", r.1.body),
    );
    let r = p.check(Call::get("sys/rekey/init").anonymous(), &[]).await;
    same_value(&mut p, &r, "/pgp_fingerprints", "status fingerprints");
    let nonces = (r.0.body["nonce"].clone(), r.1.body["nonce"].clone());
    let old = (p.bao.unseal_keys.clone(), p.sr.unseal_keys.clone());
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
                CIPHERTEXTS,
            )
            .await;
        p.expect_status(&r, 200, &format!("rekey update {i}"));
        same_value(&mut p, &r, "/pgp_fingerprints", "update fingerprints");
        last = Some(r);
    }
    let r = last.expect("two updates");
    on_both(&mut p, &r, "rekey complete with backup", |r| {
        r.body["complete"] == json!(true) && r.body["backup"] == json!(true)
    });
    let new = (
        decrypt_shares(&holders, &r.0, "/keys_base64"),
        decrypt_shares(&holders, &r.1, "/keys_base64"),
    );
    let sent = (r.0.body["keys"].clone(), r.1.body["keys"].clone());

    let r = p
        .check(Call::get("sys/rekey/backup"), BACKUP_CIPHERTEXTS)
        .await;
    p.expect_status(&r, 200, "backup");
    for (reply, keys) in [(&r.0, &sent.0), (&r.1, &sent.1)] {
        let backup = reply.data("keys");
        p.expect(
            backup[&ks[0].fingerprint] == json!([keys[0], keys[2]])
                && backup[&ks[1].fingerprint] == json!([keys[1]]),
            format!("the backup holds the shares sent, by fingerprint: {reply:?}"),
        );
    }
    let r = p
        .check(Call::get("sys/rotate/root/backup"), BACKUP_CIPHERTEXTS)
        .await;
    p.expect_status(&r, 200, "backup on the rotate path");

    for s in [&p.bao, &p.sr] {
        let r = s.send(&Call::put("sys/seal", json!({}))).await;
        assert_eq!(r.status, 204, "{} seal: {r:?}", s.kind.label());
    }
    let r = (
        unseal_with(&p.bao, &new.0[..2]).await,
        unseal_with(&p.sr, &new.1[..2]).await,
    );
    on_both(&mut p, &r, "decrypted new shares unseal", |r| {
        r.body["sealed"] == json!(false)
    });
    let r = p.check(Call::delete("sys/rekey/backup"), &[]).await;
    p.expect_status(&r, 204, "delete the backup");
    let r = p.check(Call::get("sys/rekey/backup"), &[]).await;
    p.expect_status(&r, 400, "no backup once deleted");
    p.finish();
}

#[tokio::test]
async fn generate_root_with_a_pgp_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = config_pair(dir.path());
    init_both(&mut p, 1, 1).await;
    let k = TestKey::generate("operator");
    let key = (p.bao.unseal_keys[0].clone(), p.sr.unseal_keys[0].clone());

    for (path, body, what) in [
        (
            "sys/generate-root-token/attempt",
            json!({"pgp_key": "aGVsbG8="}),
            "a key that does not parse",
        ),
        (
            "sys/generate-root-token/attempt",
            json!({"pgp_key": "keybase:alice"}),
            "a keybase user",
        ),
        (
            "sys/generate-root/attempt",
            json!({"pgp_key": "aGVsbG8="}),
            "a key that does not parse (unauthenticated path)",
        ),
    ] {
        let call = Call::put(path, body);
        let call = if path.starts_with("sys/generate-root/") {
            call.anonymous()
        } else {
            call
        };
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 400, what);
    }
    // An otp given with a pgp_key wins: the key is not used.
    let r = p
        .check(
            Call::put(
                "sys/generate-root-token/attempt",
                json!({"otp": "abcdefghijklmnopqrstuvwxyz", "pgp_key": k.public_b64}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "otp and pgp_key together");
    on_both(&mut p, &r, "the otp wins", |r| {
        r.data("pgp_fingerprint") == &json!("")
    });
    let r = p
        .check(Call::delete("sys/generate-root-token/attempt"), &[])
        .await;
    p.expect_status(&r, 204, "cancel");

    // Both paths: start with the key, give the one share, decrypt.
    let paths = [
        ("sys/generate-root-token", false),
        ("sys/generate-root", true),
    ];
    for (base, unauthenticated) in paths {
        let call = |c: Call| if unauthenticated { c.anonymous() } else { c };
        let fingerprint = if unauthenticated {
            "/pgp_fingerprint"
        } else {
            "/data/pgp_fingerprint"
        };
        let r = p
            .check(
                call(Call::put(
                    &format!("{base}/attempt"),
                    json!({"pgp_key": k.public_b64}),
                )),
                &[],
            )
            .await;
        p.expect_status(&r, 200, &format!("{base}: start with a pgp key"));
        same_value(&mut p, &r, fingerprint, "attempt fingerprint");
        p.expect(
            r.1.body.pointer(fingerprint) == Some(&json!(k.fingerprint)),
            format!("{base}: the key's fingerprint: {:?}", r.1.body),
        );
        let nonce_at = if unauthenticated {
            "/nonce"
        } else {
            "/data/nonce"
        };
        let nonces = (
            r.0.body.pointer(nonce_at).cloned().unwrap_or_default(),
            r.1.body.pointer(nonce_at).cloned().unwrap_or_default(),
        );
        let r = p
            .check(call(Call::get(&format!("{base}/attempt"))), &[])
            .await;
        same_value(&mut p, &r, fingerprint, "status fingerprint");
        let r = p
            .check_each(
                call(Call::put(
                    &format!("{base}/update"),
                    json!({"nonce": nonces.0, "key": key.0}),
                )),
                call(Call::put(
                    &format!("{base}/update"),
                    json!({"nonce": nonces.1, "key": key.1}),
                )),
                CIPHERTEXTS,
            )
            .await;
        p.expect_status(&r, 200, &format!("{base}: the share"));
        same_value(&mut p, &r, fingerprint, "update fingerprint");
        let encoded_at = if unauthenticated {
            "/encoded_token"
        } else {
            "/data/encoded_token"
        };
        let decrypt = |r: &Reply| {
            k.decrypt_b64(
                r.body
                    .pointer(encoded_at)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default(),
            )
        };
        let tokens = (decrypt(&r.0), decrypt(&r.1));
        root_on_both(&mut p, (&tokens.0, &tokens.1), base).await;
    }
    p.finish();
}
