//! The `oidc/*` paths served by a framework backend over a fake identity
//! host; tokens are verified with jsonwebtoken against the published JWKS,
//! as an external relying party would. Expected answers are OpenBao
//! 2.7.2's (`bao server -dev`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use strongroom_identity_oidc::{paths, periodic, Entity, HasOidc, IdentityHost, Namespace, Oidc};
use strongroom_sdk::framework::{Backend, BackendRequest, Ctx, LogicalBackend, MountContext};
use strongroom_sdk::identity::{AliasFacts, GroupFacts, IdentityFacts};
use strongroom_sdk::logical::{Operation, Request, Response};
use strongroom_sdk::storage::{MemoryStorage, View};

/// The fake host: the caller's entity comes from a request header-like
/// field set by the test; entities live in a map.
#[derive(Default)]
struct Host {
    caller: Mutex<Option<String>>,
    entities: Mutex<BTreeMap<String, Entity>>,
    namespace: Mutex<Namespace>,
}

impl IdentityHost for Host {
    fn caller_entity_id(&self, _ctx: &Ctx) -> Option<String> {
        self.caller.lock().unwrap().clone()
    }
    fn entity(&self, _ctx: &Ctx, id: &str) -> Option<Entity> {
        self.entities.lock().unwrap().get(id).cloned()
    }
    fn namespace(&self, _ctx: &Ctx) -> Namespace {
        self.namespace.lock().unwrap().clone()
    }
    fn api_addr(&self) -> String {
        "http://127.0.0.1:8200".into()
    }
}

struct State {
    oidc: Oidc,
}

impl HasOidc for State {
    fn oidc(&self) -> &Oidc {
        &self.oidc
    }
}

struct Fixture {
    host: Arc<Host>,
    backend: Backend<State>,
    view: View,
}

fn fixture() -> Fixture {
    let host = Arc::new(Host::default());
    *host.namespace.lock().unwrap() = Namespace {
        id: "root".into(),
        path: String::new(),
    };
    let state = Arc::new(State {
        oidc: Oidc::new(host.clone()),
    });
    Fixture {
        host,
        backend: Backend::new(state, paths(), "identity"),
        view: MemoryStorage::view("identity/"),
    }
}

impl Fixture {
    async fn call(&self, op: Operation, path: &str, body: Value) -> Result<Response, String> {
        let mut req = Request::new(op, path);
        req.data = body.as_object().cloned().unwrap_or_default();
        let mut breq =
            BackendRequest::new(req, self.view.clone(), Arc::new(MountContext::default()));
        if op == Operation::Update {
            if let Ok(Some(false)) = self.backend.exists(&breq).await {
                breq.request.operation = Operation::Create;
            }
        }
        self.backend.handle(breq).await.map_err(|e| e.to_string())
    }

    async fn write(&self, path: &str, body: Value) -> Result<Response, String> {
        self.call(Operation::Update, path, body).await
    }

    async fn read(&self, path: &str) -> Result<Value, String> {
        let r = self.call(Operation::Read, path, json!({})).await?;
        Ok(match (r.raw, r.data) {
            (Some(raw), _) => raw.body,
            (None, Some(d)) => Value::Object(d),
            _ => Value::Null,
        })
    }

    fn add_entity(&self, id: &str, disabled: bool) {
        let facts = IdentityFacts {
            entity_id: id.into(),
            entity_name: format!("name-{id}"),
            entity_metadata: [("team".to_string(), "blue".to_string())].into(),
            aliases: vec![AliasFacts {
                id: "alias-1".into(),
                mount_accessor: "auth_userpass_1".into(),
                name: "alice".into(),
                ..Default::default()
            }],
            groups: vec![GroupFacts {
                id: "g1".into(),
                name: "ops".into(),
                metadata: BTreeMap::new(),
            }],
        };
        self.host
            .entities
            .lock()
            .unwrap()
            .insert(id.into(), Entity { facts, disabled });
    }
}

fn bad(msg: &str) -> String {
    msg.to_string()
}

/// Verifies `token` as a relying party: the key from the JWKS by `kid`,
/// the algorithm from the key, audience and issuer checked.
fn verify_externally(token: &str, jwks: &Value, aud: &str, iss: &str) -> Value {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[iss]);
    decode::<Value>(token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn keys_have_openbaos_defaults_and_checks() {
    let f = fixture();
    // The default key exists from the start.
    let list = f
        .call(Operation::List, "oidc/key", json!({}))
        .await
        .unwrap();
    assert_eq!(list.data.unwrap()["keys"], json!(["default"]));
    assert_eq!(
        f.read("oidc/key/default").await.unwrap(),
        json!({"algorithm": "RS256", "allowed_client_ids": ["*"], "rotation_period": 86400, "verification_ttl": 86400})
    );
    f.write("oidc/key/k1", json!({"algorithm": "ES256"}))
        .await
        .unwrap();
    assert_eq!(
        f.read("oidc/key/k1").await.unwrap(),
        json!({"algorithm": "ES256", "allowed_client_ids": [], "rotation_period": 86400, "verification_ttl": 86400})
    );
    // An update keeps what it does not name.
    f.write("oidc/key/k1", json!({"allowed_client_ids": "a,b"}))
        .await
        .unwrap();
    assert_eq!(
        f.read("oidc/key/k1").await.unwrap()["allowed_client_ids"],
        json!(["a", "b"])
    );
    assert_eq!(f.read("oidc/key/k1").await.unwrap()["algorithm"], "ES256");
    for (body, msg) in [
        (
            json!({"algorithm": "HS256"}),
            "unknown signing algorithm \"HS256\"",
        ),
        (
            json!({"rotation_period": "30s"}),
            "rotation_period must be at least one minute",
        ),
        (
            json!({"verification_ttl": "300h"}),
            "verification_ttl cannot be longer than 10x rotation_period",
        ),
    ] {
        assert_eq!(f.write("oidc/key/k2", body).await.unwrap_err(), bad(msg));
    }
    // Nothing was written: a 404 with no message (bao: {"errors":[]}).
    assert_eq!(f.read("oidc/key/k2").await.unwrap_err(), "not found");
    assert_eq!(f.read("oidc/role/missing").await.unwrap_err(), "not found");
    assert_eq!(
        f.call(Operation::Delete, "oidc/key/default", json!({}))
            .await
            .unwrap_err(),
        "deletion of key \"default\" not allowed"
    );
    assert_eq!(
        f.write("oidc/key/nokey/rotate", json!({}))
            .await
            .unwrap_err(),
        "no named key found at \"nokey\""
    );
}

#[tokio::test]
async fn roles_are_checked_like_openbao() {
    let f = fixture();
    f.write("oidc/key/k1", json!({"algorithm": "ES256"}))
        .await
        .unwrap();
    for (body, msg) in [
        (json!({}), "the key parameter is required"),
        (json!({"key": "nope"}), "cannot find key \"nope\""),
        (json!({"key": "k1", "template": "{\"iss\":1}"}), "top level key \"iss\" not allowed. Restricted keys: iat, aud, exp, iss, sub, namespace, nonce, auth_time, at_hash, c_hash"),
        (json!({"key": "k1", "template": "{{identity.entity.id"}), "error parsing template: unbalanced templating characters"),
        (json!({"key": "k1", "ttl": "48h"}), "a role's token ttl cannot be longer than the verification_ttl of the key it references"),
    ] {
        assert_eq!(f.write("oidc/role/r", body.clone()).await.unwrap_err(), bad(msg), "{body}");
    }
    let e = f
        .write("oidc/role/r", json!({"key": "k1", "template": "{bad"}))
        .await
        .unwrap_err();
    assert!(e.starts_with("error parsing template JSON: "), "{e}");

    f.write("oidc/role/r1", json!({"key": "k1"})).await.unwrap();
    let r = f.read("oidc/role/r1").await.unwrap();
    assert_eq!(r["key"], "k1");
    assert_eq!(r["template"], "");
    assert_eq!(r["ttl"], 86400);
    let id = r["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    // A base64 template is stored decoded.
    f.write(
        "oidc/role/r5",
        json!({"key": "k1", "template": "eyJhIjogMX0=", "client_id": "mine", "ttl": 60}),
    )
    .await
    .unwrap();
    assert_eq!(
        f.read("oidc/role/r5").await.unwrap(),
        json!({"client_id": "mine", "key": "k1", "template": "{\"a\": 1}", "ttl": 60})
    );
    let list = f
        .call(Operation::List, "oidc/role", json!({}))
        .await
        .unwrap();
    assert_eq!(list.data.unwrap()["keys"], json!(["r1", "r5"]));
    assert_eq!(
        f.call(Operation::Delete, "oidc/key/k1", json!({}))
            .await
            .unwrap_err(),
        "unable to delete key \"k1\" because it is currently referenced by these roles: r1, r5"
    );
    // A token from a key that does not allow the role's client id.
    assert_eq!(
        f.read("oidc/token/r1").await.unwrap_err(),
        "the key \"k1\" does not list the client ID of the role \"r1\" as an allowed client ID"
    );
    assert_eq!(
        f.read("oidc/token/nope").await.unwrap_err(),
        "role \"nope\" not found"
    );
}

#[tokio::test]
async fn tokens_verify_against_the_published_keys() {
    let f = fixture();
    let template = r#"{"name": {{identity.entity.name}}, "team": {{identity.entity.metadata.team}}, "groups": {{identity.entity.groups.names}}, "login": {{identity.entity.aliases.auth_userpass_1.name}}, "missing": {{identity.entity.aliases.auth_other.name}}}"#;
    for alg in ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"] {
        let key = format!("k-{alg}");
        f.write(
            &format!("oidc/key/{key}"),
            json!({"algorithm": alg, "allowed_client_ids": "*"}),
        )
        .await
        .unwrap();
        f.write(
            "oidc/role/r",
            json!({"key": key, "template": template, "client_id": "cid"}),
        )
        .await
        .unwrap();
        *f.host.caller.lock().unwrap() = None;
        assert_eq!(
            f.read("oidc/token/r").await.unwrap_err(),
            "no entity associated with the request's token"
        );
        f.add_entity("e-1", false);
        *f.host.caller.lock().unwrap() = Some("e-1".into());
        let t = f.read("oidc/token/r").await.unwrap();
        assert_eq!(t["client_id"], "cid");
        assert_eq!(t["ttl"], 86400);
        let jwks = f.read("oidc/.well-known/keys").await.unwrap();
        let iss = "http://127.0.0.1:8200/v1/identity/oidc";
        let claims = verify_externally(t["token"].as_str().unwrap(), &jwks, "cid", iss);
        assert_eq!(claims["sub"], "e-1");
        assert_eq!(claims["namespace"], "root");
        assert_eq!(claims["name"], "name-e-1");
        assert_eq!(claims["team"], "blue");
        assert_eq!(claims["groups"], json!(["ops"]));
        assert_eq!(claims["login"], "alice");
        assert_eq!(claims["missing"], "");
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 86400);
        // Introspection agrees, and checks the audience and the entity.
        let tok = t["token"].as_str().unwrap();
        let active = f
            .write("oidc/introspect", json!({"token": tok}))
            .await
            .unwrap();
        assert_eq!(active.raw.unwrap().body, json!({"active": true}));
        let wrong = f
            .write(
                "oidc/introspect",
                json!({"token": tok, "client_id": "other"}),
            )
            .await
            .unwrap();
        assert_eq!(
            wrong.raw.unwrap().body,
            json!({"active": false, "error": "error validating claims: go-jose/go-jose/jwt: validation failed, invalid audience claim (aud)"})
        );
        f.add_entity("e-1", true);
        let off = f
            .write("oidc/introspect", json!({"token": tok}))
            .await
            .unwrap();
        assert_eq!(
            off.raw.unwrap().body,
            json!({"active": false, "error": "entity is disabled"})
        );
    }
    let garbage = f
        .write("oidc/introspect", json!({"token": "abc"}))
        .await
        .unwrap();
    assert_eq!(
        garbage.raw.unwrap().body,
        json!({"active": false, "error": "error parsing token: compact JWS format must have three parts"})
    );
}

#[tokio::test]
async fn rotation_keeps_old_keys_for_verification_then_drops_them() {
    let f = fixture();
    f.write("oidc/key/k", json!({"allowed_client_ids": "*"}))
        .await
        .unwrap();
    f.write("oidc/role/r", json!({"key": "k", "client_id": "cid"}))
        .await
        .unwrap();
    f.add_entity("e-1", false);
    *f.host.caller.lock().unwrap() = Some("e-1".into());
    let iss = "http://127.0.0.1:8200/v1/identity/oidc";
    let old = f.read("oidc/token/r").await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Current and next key are published.
    assert_eq!(
        f.read("oidc/.well-known/keys").await.unwrap()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    f.write("oidc/key/k/rotate", json!({"verification_ttl": "1h"}))
        .await
        .unwrap();
    let new = f.read("oidc/token/r").await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwks = f.read("oidc/.well-known/keys").await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    verify_externally(&old, &jwks, "cid", iss);
    verify_externally(&new, &jwks, "cid", iss);
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&old), kid(&new));
    // Once the old key's verification TTL is over, it is gone.
    let mut stored: Value = serde_json::from_slice(
        &f.view
            .get("oidc_tokens/named_keys/k")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    for e in stored["key_ring"].as_array_mut().unwrap() {
        if e["key_id"] == kid(&old) {
            e["expire_at"] = json!(1);
        }
    }
    f.view
        .put(
            "oidc_tokens/named_keys/k",
            &serde_json::to_vec(&stored).unwrap(),
        )
        .await
        .unwrap();
    let state = f.backend.state().clone();
    periodic(&*state, &f.view).await.unwrap();
    let jwks = f.read("oidc/.well-known/keys").await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(!kids.contains(&kid(&old).as_str()));
    let dead = f
        .write("oidc/introspect", json!({"token": old}))
        .await
        .unwrap();
    assert_eq!(
        dead.raw.unwrap().body["error"],
        "unable to validate the token signature"
    );
}

#[tokio::test]
async fn discovery_follows_the_issuer_and_namespace() {
    let f = fixture();
    let d = f
        .read("oidc/.well-known/openid-configuration")
        .await
        .unwrap();
    assert_eq!(
        d,
        json!({"issuer": "http://127.0.0.1:8200/v1/identity/oidc",
               "jwks_uri": "http://127.0.0.1:8200/v1/identity/oidc/.well-known/keys",
               "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
               "id_token_signing_alg_values_supported": ["RS256","RS384","RS512","ES256","ES384","ES512","EdDSA"]})
    );
    assert_eq!(f.read("oidc/config").await.unwrap(), json!({"issuer": ""}));
    assert_eq!(
        f.write("oidc/config", json!({"issuer": "https://x.example:8200/path"})).await.unwrap_err(),
        "invalid issuer, which must include only a scheme, host, and optional port (e.g. https://example.com:8200)"
    );
    let r = f
        .write("oidc/config", json!({"issuer": "https://x.example:8200"}))
        .await
        .unwrap();
    assert_eq!(r.warnings.len(), 1);
    *f.host.namespace.lock().unwrap() = Namespace {
        id: "ns1id".into(),
        path: "ns1/".into(),
    };
    let d = f
        .read("oidc/.well-known/openid-configuration")
        .await
        .unwrap();
    assert_eq!(d["issuer"], "https://x.example:8200/v1/ns1/identity/oidc");
    assert_eq!(
        f.read("oidc/.well-known/keys").await.unwrap(),
        json!({"keys": []})
    );
}
