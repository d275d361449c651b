//! The identity store end to end, in the real binary over HTTP: AppRole
//! and Kubernetes logins resolve to entities (their aliases named as
//! OpenBao names them); the policies of nested groups grant a path to a
//! live token and a change to a group applies to it at once; a disabled
//! entity's token is refused; merge moves the aliases; concurrent first
//! logins of one alias make one entity.
//!
//! Also runs against OpenBao (`STRONGROOM_TEST_TARGET=bao`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_test::kube::{legacy_claims, sa_uid, FakeKube, RsaSigner};
use strongroom_test::server::{target, Call, Reply, Server};

fn expect(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
}

/// An AppRole role `r1` with policy `none`; returns a login call.
async fn approle(server: &Server) -> Call {
    expect(
        &server
            .send(&Call::post("sys/auth/approle", json!({"type": "approle"})))
            .await,
        204,
        "enable approle",
    );
    expect(
        &server
            .send(&Call::post(
                "auth/approle/role/r1",
                json!({"token_policies": "none"}),
            ))
            .await,
        204,
        "role",
    );
    let rid = server
        .send(&Call::get("auth/approle/role/r1/role-id"))
        .await
        .data("role_id")
        .clone();
    let sid = server
        .send(&Call::post("auth/approle/role/r1/secret-id", json!({})))
        .await
        .data("secret_id")
        .clone();
    Call::post(
        "auth/approle/login",
        json!({"role_id": rid, "secret_id": sid}),
    )
    .anonymous()
}

#[tokio::test]
async fn nested_group_policies_follow_live_changes_and_disabled_entities_are_refused() {
    let server = Server::dev(target());
    let login = approle(&server).await;
    let r = server.send(&login).await;
    expect(&r, 200, "login");
    let token = r.body["auth"]["client_token"].as_str().unwrap().to_string();
    let entity = r.body["auth"]["entity_id"].as_str().unwrap().to_string();
    assert!(!entity.is_empty(), "a login has an entity: {}", r.body);
    let rid = server
        .send(&Call::get("auth/approle/role/r1/role-id"))
        .await
        .data("role_id")
        .clone();
    let e = server
        .send(&Call::get(&format!("identity/entity/id/{entity}")))
        .await;
    expect(&e, 200, "the login's entity");
    assert_eq!(
        e.data("aliases")[0]["name"],
        rid,
        "AppRole's alias is the role id"
    );
    assert_eq!(e.data("aliases")[0]["metadata"], json!({"role_name": "r1"}));

    expect(
        &server
            .send(&Call::put(
                "sys/policies/acl/reader",
                json!({"policy": "path \"secret/data/shared\" { capabilities = [\"read\"] }"}),
            ))
            .await,
        204,
        "policy",
    );
    expect(
        &server
            .send(&Call::post("secret/data/shared", json!({"data": {"v": 1}})))
            .await,
        200,
        "secret",
    );
    let read = Call::get("secret/data/shared").token(&token);
    expect(&server.send(&read).await, 403, "no policy yet");

    // The entity in `inner`, `inner` in `outer`, `outer` grants `reader`.
    let inner = server
        .send(&Call::post(
            "identity/group",
            json!({"name": "inner", "member_entity_ids": [entity]}),
        ))
        .await;
    expect(&inner, 200, "inner");
    let inner_id = inner.data("id").clone();
    expect(
        &server
            .send(&Call::post(
                "identity/group",
                json!({"name": "outer", "policies": "reader", "member_group_ids": [inner_id]}),
            ))
            .await,
        200,
        "outer",
    );
    expect(
        &server.send(&read).await,
        200,
        "granted through the nested group",
    );
    let me = server
        .send(&Call::get("auth/token/lookup-self").token(&token))
        .await;
    expect(&me, 200, "lookup-self");
    assert_eq!(me.data("identity_policies"), &json!(["reader"]));
    let caps = server
        .send(
            &Call::post(
                "sys/capabilities-self",
                json!({"paths": ["secret/data/shared"]}),
            )
            .token(&token),
        )
        .await;
    assert_eq!(
        caps.data("secret/data/shared"),
        &json!(["read"]),
        "{}",
        caps.body
    );

    expect(
        &server
            .send(&Call::post(
                "identity/group/name/outer",
                json!({"policies": ""}),
            ))
            .await,
        204,
        "outer loses reader",
    );
    expect(
        &server.send(&read).await,
        403,
        "the change applies to the live token",
    );
    expect(
        &server
            .send(&Call::post(
                &format!("identity/entity/id/{entity}"),
                json!({"policies": "reader"}),
            ))
            .await,
        204,
        "entity policy",
    );
    expect(&server.send(&read).await, 200, "entity policy applies");

    expect(
        &server
            .send(&Call::post(
                &format!("identity/entity/id/{entity}"),
                json!({"disabled": true}),
            ))
            .await,
        204,
        "disable",
    );
    let r = server.send(&read).await;
    expect(&r, 403, "a disabled entity's token");
    assert_eq!(r.errors(), ["permission denied"]);
    expect(&server.send(&login).await, 403, "a disabled entity's login");
    expect(
        &server
            .send(&Call::post(
                &format!("identity/entity/id/{entity}"),
                json!({"disabled": false}),
            ))
            .await,
        204,
        "enable",
    );
    expect(&server.send(&read).await, 200, "enabled again");

    // Merge: a second entity with an alias elsewhere moves into the first.
    let other = server
        .send(&Call::post("identity/entity", json!({"name": "other"})))
        .await;
    let other_id = other.data("id").as_str().unwrap().to_string();
    let acc = server
        .send(&Call::get("sys/auth/token"))
        .await
        .data("accessor")
        .clone();
    expect(
        &server
            .send(&Call::post(
                "identity/entity-alias",
                json!({"name": "o", "mount_accessor": acc, "canonical_id": other_id}),
            ))
            .await,
        200,
        "alias",
    );
    expect(
        &server
            .send(&Call::post(
                "identity/entity/merge",
                json!({"from_entity_ids": [other_id], "to_entity_id": entity}),
            ))
            .await,
        204,
        "merge",
    );
    let e = server
        .send(&Call::get(&format!("identity/entity/id/{entity}")))
        .await;
    let names: Vec<&Value> = e
        .data("aliases")
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["name"])
        .collect();
    assert_eq!(names.len(), 2, "{}", e.body);
    assert!(names.contains(&&json!("o")));
    expect(
        &server
            .send(&Call::get(&format!("identity/entity/id/{other_id}")))
            .await,
        404,
        "merged away",
    );
}

#[tokio::test]
async fn concurrent_first_logins_make_one_entity() {
    let server = Arc::new(Server::dev(target()));
    let login = approle(&server).await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (s, l) = (server.clone(), login.clone());
        tasks.push(tokio::spawn(async move { s.send(&l).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        expect(&r, 200, "login");
        ids.insert(r.body["auth"]["entity_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let list = server.send(&Call::list("identity/entity/id")).await;
    assert_eq!(
        list.data("keys").as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
}

#[tokio::test]
async fn kubernetes_logins_name_their_alias_by_uid_or_name() {
    const REVIEWER: &str = "reviewer-jwt-for-the-identity-tests";
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    kube.require_reviewer(REVIEWER);
    let server = Server::dev(target());
    expect(
        &server
            .send(&Call::post(
                "sys/auth/kubernetes",
                json!({"type": "kubernetes"}),
            ))
            .await,
        204,
        "enable",
    );
    expect(&server.send(&Call::post("auth/kubernetes/config", json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem, "token_reviewer_jwt": REVIEWER}))).await, 204, "config");
    for (role, source, alias) in [
        ("by-uid", "serviceaccount_uid", sa_uid("default", "app")),
        ("by-name", "serviceaccount_name", "default/app".to_string()),
    ] {
        expect(&server.send(&Call::post(&format!("auth/kubernetes/role/{role}"), json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "default", "alias_name_source": source}))).await, 204, "role");
        let jwt = signer.sign(&legacy_claims("default", "app"));
        let r = server
            .send(
                &Call::post("auth/kubernetes/login", json!({"role": role, "jwt": jwt})).anonymous(),
            )
            .await;
        expect(&r, 200, "login");
        let entity = r.body["auth"]["entity_id"].as_str().unwrap();
        let e = server
            .send(&Call::get(&format!("identity/entity/id/{entity}")))
            .await;
        expect(&e, 200, "entity");
        assert_eq!(e.data("aliases")[0]["name"], json!(alias), "{role}");
        assert_eq!(e.data("aliases")[0]["mount_type"], json!("kubernetes"));
    }
}

/// An AppRole role `name` with `policies`; logs in and returns the token
/// and its entity id.
async fn login_with(server: &Server, name: &str, policies: &str) -> (String, String) {
    let enabled = server
        .send(&Call::post("sys/auth/approle", json!({"type": "approle"})))
        .await;
    assert!(
        enabled.status == 204 || enabled.status == 400,
        "enable approle: {}",
        enabled.body
    );
    expect(
        &server
            .send(&Call::post(
                &format!("auth/approle/role/{name}"),
                json!({"token_policies": policies}),
            ))
            .await,
        204,
        "role",
    );
    let rid = server
        .send(&Call::get(&format!("auth/approle/role/{name}/role-id")))
        .await
        .data("role_id")
        .clone();
    let sid = server
        .send(&Call::post(
            &format!("auth/approle/role/{name}/secret-id"),
            json!({}),
        ))
        .await
        .data("secret_id")
        .clone();
    let r = server
        .send(
            &Call::post(
                "auth/approle/login",
                json!({"role_id": rid, "secret_id": sid}),
            )
            .anonymous(),
        )
        .await;
    expect(&r, 200, "login");
    (
        r.body["auth"]["client_token"].as_str().unwrap().to_string(),
        r.body["auth"]["entity_id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_templated_policy_grants_each_entity_its_own_path_and_nothing_else() {
    let server = Server::dev(target());
    let policy = r#"path "secret/data/{{identity.entity.id}}/*" { capabilities = ["create", "update", "read"] }"#;
    expect(
        &server
            .send(&Call::put(
                "sys/policies/acl/own",
                json!({"policy": policy}),
            ))
            .await,
        204,
        "templated policy",
    );
    let (alice, alice_entity) = login_with(&server, "alice", "own").await;
    let (_bob, bob_entity) = login_with(&server, "bob", "own").await;
    assert_ne!(alice_entity, bob_entity);
    let write = |entity: &str| {
        Call::post(
            &format!("secret/data/{entity}/note"),
            json!({"data": {"v": 1}}),
        )
        .token(&alice)
    };
    expect(
        &server.send(&write(&alice_entity)).await,
        200,
        "alice's own path",
    );
    let r = server.send(&write(&bob_entity)).await;
    expect(&r, 403, "bob's path is not alice's");
    // A template never becomes a wildcard: the literal path is not granted.
    let r = server.send(&write("{{identity.entity.id}}")).await;
    expect(&r, 403, "the template's literal text");
}

#[tokio::test]
async fn oidc_tokens_name_their_entity_and_verify_against_the_published_keys() {
    use base64::Engine;
    let server = Server::dev(target());
    let policy = r#"path "identity/oidc/token/*" { capabilities = ["read"] }"#;
    expect(
        &server
            .send(&Call::put(
                "sys/policies/acl/oidc",
                json!({"policy": policy}),
            ))
            .await,
        204,
        "policy",
    );
    expect(
        &server
            .send(&Call::post(
                "identity/oidc/key/k1",
                json!({"algorithm": "RS256", "allowed_client_ids": "*"}),
            ))
            .await,
        204,
        "key",
    );
    let template = r#"{"entity_name": {{identity.entity.name}}}"#;
    expect(
        &server
            .send(&Call::post(
                "identity/oidc/role/r1",
                json!({"key": "k1", "ttl": "1h", "template": template}),
            ))
            .await,
        204,
        "role",
    );
    let (token, entity) = login_with(&server, "svc", "oidc").await;
    let r = server
        .send(&Call::get("identity/oidc/token/r1").token(&token))
        .await;
    expect(&r, 200, "token");
    let jwt = r.data("token").as_str().unwrap().to_string();
    let client_id = r.data("client_id").as_str().unwrap().to_string();

    let discovery = server
        .send(&Call::get("identity/oidc/.well-known/openid-configuration").anonymous())
        .await;
    expect(&discovery, 200, "discovery, unauthenticated");
    let issuer = discovery.body["issuer"].as_str().unwrap().to_string();
    let keys = server
        .send(&Call::get("identity/oidc/.well-known/keys").anonymous())
        .await;
    expect(&keys, 200, "keys, unauthenticated");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.body.clone()).unwrap();

    // An external verifier: the key named by the token's header, the
    // issuer and audience the provider publishes.
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the signing key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[client_id.as_str()]);
    validation.set_issuer(&[issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies")
    .claims;
    assert_eq!(
        claims["sub"],
        json!(entity),
        "the subject is the caller's entity"
    );
    let name = server
        .send(&Call::get(&format!("identity/entity/id/{entity}")))
        .await
        .data("name")
        .clone();
    assert_eq!(
        claims["entity_name"], name,
        "the role's template is rendered"
    );
    assert_eq!(claims["namespace"], json!("root"));

    // A tampered token does not verify.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut body: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    body["sub"] = json!("someone-else");
    parts[1] = engine.encode(serde_json::to_vec(&body).unwrap());
    assert!(jsonwebtoken::decode::<Value>(
        &parts.join("."),
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .is_err());
}

#[tokio::test]
async fn a_token_role_entity_alias_finds_or_makes_its_entity() {
    let server = Server::dev(target());
    expect(
        &server
            .send(&Call::post(
                "auth/token/roles/svc",
                json!({"allowed_entity_aliases": ["svc-*"], "orphan": true}),
            ))
            .await,
        204,
        "token role",
    );
    let create = |alias: &str| Call::post("auth/token/create/svc", json!({"entity_alias": alias}));
    let first = server.send(&create("svc-a")).await;
    expect(&first, 200, "a token for alias svc-a");
    let entity = first.body["auth"]["entity_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!entity.is_empty(), "{}", first.body);
    let again = server.send(&create("svc-a")).await;
    expect(&again, 200, "a second token for svc-a");
    assert_eq!(
        again.body["auth"]["entity_id"],
        json!(entity),
        "the same entity"
    );
    let other = server.send(&create("svc-b")).await;
    expect(&other, 200, "a token for svc-b");
    assert_ne!(
        other.body["auth"]["entity_id"],
        json!(entity),
        "another entity"
    );

    let accessor =
        server.send(&Call::get("sys/auth")).await.body["data"]["token/"]["accessor"].clone();
    let e = server
        .send(&Call::get(&format!("identity/entity/id/{entity}")))
        .await;
    expect(&e, 200, "the alias's entity");
    assert_eq!(e.data("aliases")[0]["name"], json!("svc-a"));
    assert_eq!(e.data("aliases")[0]["mount_accessor"], accessor);

    let refused = server.send(&create("db-a")).await;
    expect(&refused, 400, "an alias the role does not allow");
    assert_eq!(
        refused.errors(),
        vec!["invalid 'entity_alias' value".to_string()]
    );
}
