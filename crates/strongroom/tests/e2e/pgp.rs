//! PGP-encrypted unseal key shares and root tokens, end to end: `sys/init`
//! with `pgp_keys` and `root_token_pgp_key`, a rekey with `pgp_keys` and
//! `backup` on a durable server across a restart, and generate-root with a
//! `pgp_key`. The test holds the secret keys, decrypts what the server hands
//! out and uses it: the shares unseal, the tokens are root tokens.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs them against OpenBao (raft storage),
//! except for the checks of Strongroom's deliberate differences.

use serde_json::{json, Value};

use crate::races::wait_active;
use strongroom_test::pgp::{keys, TestKey};
use strongroom_test::server::{
    errors_mention, str_list, target, Call, Config, Kind, Listener, Reply, Server, Storage,
};

/// A config with the unauthenticated operator endpoints on, durable storage
/// in `dir` when `durable`.
fn config(dir: &std::path::Path, durable: bool) -> Config {
    let mut cfg = Config::inmem(dir);
    if durable {
        cfg.storage = Storage::Durable(dir.to_path_buf());
    }
    cfg.listeners = vec![Listener {
        unauthed_operator_endpoints: true,
        ..Default::default()
    }];
    cfg
}

async fn unseal_with(s: &Server, shares: &[String]) -> Reply {
    let mut last = None;
    for k in shares {
        last = Some(s.send(&Call::put("sys/unseal", json!({ "key": k }))).await);
    }
    last.expect("at least one share")
}

fn public_keys(ks: &[TestKey]) -> Vec<String> {
    ks.iter().map(|k| k.public_b64.clone()).collect()
}

fn fingerprints(ks: &[TestKey]) -> Value {
    json!(ks.iter().map(|k| k.fingerprint.clone()).collect::<Vec<_>>())
}

/// Decrypts each `keys_base64` entry of `body` with the key at its
/// position, checking that `keys` (hex) carries the same ciphertext; the
/// hex shares.
fn decrypt_shares(ks: &[TestKey], body: &Value) -> Vec<String> {
    let hex = str_list(&body["keys"]);
    let b64 = str_list(&body["keys_base64"]);
    assert_eq!((hex.len(), b64.len()), (ks.len(), ks.len()), "{body}");
    ks.iter()
        .zip(hex.iter().zip(&b64))
        .map(|(k, (h, b))| {
            let share = k.decrypt_b64(b);
            assert_eq!(k.decrypt_hex(h), share, "keys and keys_base64 differ");
            assert!(
                share.len() == 66 && share.bytes().all(|c| c.is_ascii_hexdigit()),
                "a share is the hex of 33 bytes: {share:?}"
            );
            share
        })
        .collect()
}

async fn assert_root(server: &Server, token: &str) {
    let r = server
        .send(&Call::get("auth/token/lookup-self").token(token))
        .await;
    assert_eq!(r.status, 200, "lookup-self: {r:?}");
    assert_eq!(r.data("policies"), &json!(["root"]), "{r:?}");
}

#[tokio::test]
async fn init_encrypts_the_shares_and_the_root_token_to_pgp_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::with_config(target(), &config(dir.path(), false));
    let ks = keys(3);

    let r = server
        .send(&Call::put(
            "sys/init",
            json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&ks[..2])}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        errors_mention(
            &r,
            "count mismatch between number of provided PGP keys and number of shares"
        ),
        "{r:?}"
    );
    let r = server
        .send(&Call::put(
            "sys/init",
            json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["aGVsbG8="]}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        errors_mention(
            &r,
            "invalid seal configuration: error parsing given PGP key"
        ),
        "{r:?}"
    );
    if target() == Kind::Strongroom {
        // OpenBao checks this key only after initialising, and so stays
        // initialised with everything lost; Strongroom changes nothing.
        let r = server
            .send(&Call::put(
                "sys/init",
                json!({"secret_shares": 1, "secret_threshold": 1, "root_token_pgp_key": "keybase:alice"}),
            ))
            .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(
            errors_mention(&r, "error decoding given PGP key")
                && errors_mention(&r, "does not fetch keys from keybase"),
            "{r:?}"
        );
    }
    let r = server.send(&Call::get("sys/init")).await;
    assert_eq!(
        r.body["initialized"], false,
        "bad input changes nothing: {r:?}"
    );

    let r = server
        .send(&Call::put(
            "sys/init",
            json!({
                "secret_shares": 3,
                "secret_threshold": 2,
                "pgp_keys": public_keys(&ks),
                "root_token_pgp_key": ks[1].public_b64,
            }),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let shares = decrypt_shares(&ks, &r.body);
    let root_token = ks[1].decrypt_b64(r.body["root_token"].as_str().expect("root_token"));
    let r = unseal_with(&server, &[shares[2].clone(), shares[0].clone()]).await;
    assert_eq!(
        r.body["sealed"], false,
        "two decrypted shares unseal: {r:?}"
    );
    wait_active(&server).await;
    assert_root(&server, &root_token).await;
}

#[tokio::test]
async fn pgp_rekey_with_backup_unseals_a_durable_server_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), true);
    let mut server = Server::with_config(target(), &cfg);
    server.init(3, 2).await;
    server.unseal().await;
    wait_active(&server).await;
    let old = server.unseal_keys.clone();
    let token = server.root_token.clone().expect("root token from init");
    let ks = keys(3);

    let r = server
        .send(
            &Call::put(
                "sys/rekey/init",
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": public_keys(&ks), "backup": true}),
            )
            .anonymous(),
        )
        .await;
    assert_eq!(r.status, 200, "rekey init: {r:?}");
    assert_eq!(r.body["pgp_fingerprints"], fingerprints(&ks), "{r:?}");
    assert_eq!(r.body["backup"], true, "{r:?}");
    let nonce = r.body["nonce"].as_str().expect("nonce").to_string();
    let r = server.send(&Call::get("sys/rekey/init").anonymous()).await;
    assert_eq!(r.body["pgp_fingerprints"], fingerprints(&ks), "{r:?}");
    let r = server
        .send(&Call::put("sys/rekey/update", json!({"nonce": nonce, "key": old[0]})).anonymous())
        .await;
    assert_eq!(r.body["progress"], 1, "{r:?}");
    assert_eq!(r.body["pgp_fingerprints"], fingerprints(&ks), "{r:?}");
    let r = server
        .send(&Call::put("sys/rekey/update", json!({"nonce": nonce, "key": old[1]})).anonymous())
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (
            &r.body["complete"],
            &r.body["backup"],
            &r.body["pgp_fingerprints"]
        ),
        (&json!(true), &json!(true), &fingerprints(&ks)),
        "{r:?}"
    );
    let ciphertexts = (r.body["keys"].clone(), r.body["keys_base64"].clone());
    let new = decrypt_shares(&ks, &r.body);

    // The backup: by fingerprint, the same ciphertexts, with the nonce.
    let check_backup = |r: &Reply| {
        assert_eq!(r.status, 200, "backup: {r:?}");
        for (i, k) in ks.iter().enumerate() {
            assert_eq!(
                r.data("keys")[&k.fingerprint],
                json!([ciphertexts.0[i]]),
                "{r:?}"
            );
            assert_eq!(
                r.data("keys_base64")[&k.fingerprint],
                json!([ciphertexts.1[i]]),
                "{r:?}"
            );
        }
        assert_eq!(r.data("nonce"), &json!(nonce), "{r:?}");
        assert_eq!(
            r.body["keys"],
            r.data("keys").clone(),
            "also at the top level"
        );
    };
    server.root_token = Some(token.clone());
    check_backup(&server.send(&Call::get("sys/rekey/backup")).await);

    server.kill();
    drop(server);
    let mut server = Server::with_config(target(), &cfg);
    let r = unseal_with(&server, &old[..2]).await;
    assert_eq!(
        r.status, 400,
        "a threshold of old shares must not unseal: {r:?}"
    );
    let r = unseal_with(&server, &[new[2].clone(), new[1].clone()]).await;
    assert_eq!(
        r.body["sealed"], false,
        "decrypted new shares unseal: {r:?}"
    );
    wait_active(&server).await;
    server.root_token = Some(token);
    check_backup(&server.send(&Call::get("sys/rotate/root/backup")).await);
    let r = server.send(&Call::delete("sys/rekey/backup")).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.send(&Call::get("sys/rekey/backup")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(errors_mention(&r, "no backed-up keys found"), "{r:?}");
}

#[tokio::test]
async fn generate_root_with_a_pgp_key_gives_a_working_root_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::with_config(target(), &config(dir.path(), false));
    server.init(3, 2).await;
    server.unseal().await;
    wait_active(&server).await;
    let shares = server.unseal_keys.clone();
    let k = TestKey::generate("operator");

    let r = server
        .send(&Call::put("sys/generate-root/attempt", json!({"pgp_key": "aGVsbG8="})).anonymous())
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        errors_mention(&r, "error parsing PGP key: error parsing given PGP key"),
        "{r:?}"
    );

    // The unauthenticated path.
    let r = server
        .send(
            &Call::put(
                "sys/generate-root/attempt",
                json!({"pgp_key": k.public_b64}),
            )
            .anonymous(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (&r.body["pgp_fingerprint"], &r.body["otp"]),
        (&json!(k.fingerprint), &json!("")),
        "{r:?}"
    );
    let nonce = r.body["nonce"].clone();
    let r = server
        .send(&Call::get("sys/generate-root/attempt").anonymous())
        .await;
    assert_eq!(r.body["pgp_fingerprint"], json!(k.fingerprint), "{r:?}");
    let update = |key: &str| {
        Call::put(
            "sys/generate-root/update",
            json!({"nonce": nonce, "key": key}),
        )
        .anonymous()
    };
    let r = server.send(&update(&shares[0])).await;
    assert_eq!(r.body["pgp_fingerprint"], json!(k.fingerprint), "{r:?}");
    let r = server.send(&update(&shares[1])).await;
    assert_eq!(r.body["complete"], true, "{r:?}");
    assert_eq!(
        r.body["encoded_token"], r.body["encoded_root_token"],
        "{r:?}"
    );
    let token = k.decrypt_b64(r.body["encoded_token"].as_str().expect("encoded_token"));
    assert_root(&server, &token).await;

    // The authenticated path, driven with the new token.
    server.root_token = Some(token);
    let r = server
        .send(&Call::put(
            "sys/generate-root-token/attempt",
            json!({"pgp_key": k.public_b64}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data("pgp_fingerprint"), &json!(k.fingerprint), "{r:?}");
    let nonce = r.data("nonce").clone();
    let mut last = None;
    for share in &shares[1..] {
        last = Some(
            server
                .send(&Call::put(
                    "sys/generate-root-token/update",
                    json!({"nonce": nonce, "key": share}),
                ))
                .await,
        );
    }
    let r = last.expect("two shares");
    assert_eq!(r.data("complete"), &json!(true), "{r:?}");
    assert_eq!(r.data("pgp_fingerprint"), &json!(k.fingerprint), "{r:?}");
    let second = k.decrypt_b64(r.data("encoded_token").as_str().expect("encoded_token"));
    assert_root(&server, &second).await;
}

/// A rotation that requires verification hands out encrypted shares; the
/// decrypted shares are what verifies it, and then unseal.
#[tokio::test]
async fn pgp_rotation_with_verification_is_verified_with_the_decrypted_shares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::with_config(target(), &config(dir.path(), false));
    server.init(1, 1).await;
    server.unseal().await;
    wait_active(&server).await;
    let ks = keys(2);
    let r = server
        .send(&Call::put(
            "sys/rotate/root/init",
            json!({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": public_keys(&ks), "require_verification": true}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.data("pgp_fingerprints"), &fingerprints(&ks), "{r:?}");
    assert_eq!(r.data("backup"), &json!(false), "{r:?}");
    let nonce = r.data("nonce").clone();
    let r = server
        .send(&Call::put(
            "sys/rotate/root/update",
            json!({"nonce": nonce, "key": server.unseal_keys[0]}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.data("verification_required"), r.data("pgp_fingerprints")),
        (&json!(true), &fingerprints(&ks)),
        "{r:?}"
    );
    let data = r.body["data"].clone();
    let shares = decrypt_shares(&ks, &data);
    let vnonce = r.data("verification_nonce").clone();
    let mut last = None;
    for share in &shares {
        last = Some(
            server
                .send(&Call::put(
                    "sys/rotate/root/verify",
                    json!({"nonce": vnonce, "key": share}),
                ))
                .await,
        );
    }
    let r = last.expect("two shares");
    assert_eq!(r.data("complete"), &json!(true), "verified: {r:?}");
    let r = server.send(&Call::put("sys/seal", json!({}))).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = unseal_with(&server, &shares).await;
    assert_eq!(r.body["sealed"], false, "the verified shares unseal: {r:?}");
}
