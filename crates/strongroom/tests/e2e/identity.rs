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
