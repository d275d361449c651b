//! Unit tests of the store and its backend over in-memory storage.

use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_sdk::framework::{BackendRequest, LogicalBackend, MountContext};
use strongroom_sdk::identity::LoginAlias;
use strongroom_sdk::logical::{Operation, Request};
use strongroom_sdk::storage::MemoryStorage;
use strongroom_sdk::storage::View;
use strongroom_sdk::Error;

use crate::store::{IdentityStore, MountInfo, MountLookup};

struct OneMount;

impl MountLookup for OneMount {
    fn by_accessor(&self, accessor: &str) -> Option<MountInfo> {
        (accessor == "auth_approle_1").then(|| MountInfo {
            path: "auth/approle/".into(),
            kind: "approle".into(),
        })
    }
}

fn setup() -> (
    View,
    Arc<IdentityStore>,
    strongroom_sdk::framework::Backend<crate::backend::IdentityState>,
) {
    let view = MemoryStorage::view("identity/");
    let store = IdentityStore::new(view.clone(), "", Arc::new(OneMount));
    let backend = crate::backend(store.clone(), "http://127.0.0.1:8200");
    (view, store, backend)
}

async fn call(
    b: &strongroom_sdk::framework::Backend<crate::backend::IdentityState>,
    view: &View,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Value>, Error> {
    let data = match body {
        Value::Object(m) => m,
        _ => Default::default(),
    };
    let req = BackendRequest::new(
        Request::new(op, path).with_data(data),
        view.clone(),
        Arc::new(MountContext::default()),
    );
    let resp = b.handle(req).await?;
    if let Some(raw) = resp.raw {
        return Err(Error::bad_request(raw.body.to_string()));
    }
    Ok(resp.data.map(Value::Object))
}

fn login_alias(name: &str) -> LoginAlias {
    LoginAlias {
        name: name.into(),
        metadata: [("role_name".to_string(), "r".to_string())].into(),
    }
}

#[tokio::test]
async fn concurrent_first_logins_make_one_entity() {
    let (_, store, _) = setup();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.login("auth_approle_1", &login_alias("role-id")).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id.clone());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(store.state().entities().count(), 1);
}

#[tokio::test]
async fn login_entity_persists_and_reloads() {
    let (view, store, _) = setup();
    let e = store
        .login("auth_approle_1", &login_alias("a"))
        .await
        .unwrap();
    assert!(
        e.name.starts_with("entity_") && e.name.ends_with(".root"),
        "{}",
        e.name
    );
    let again = IdentityStore::new(view, "", Arc::new(OneMount));
    again.load().await.unwrap();
    let state = again.state();
    let (owner, alias) = state.alias_by_key("auth_approle_1", "a").unwrap();
    assert_eq!(owner.id, e.id);
    assert_eq!(alias.metadata.as_ref().unwrap()["role_name"], "r");
}

#[tokio::test]
async fn nested_group_policies_apply_and_follow_changes() {
    let (view, store, b) = setup();
    let e = store
        .login("auth_approle_1", &login_alias("a"))
        .await
        .unwrap();
    call(
        &b,
        &view,
        Operation::Update,
        &format!("entity/id/{}", e.id),
        json!({"policies": "ep"}),
    )
    .await
    .unwrap();
    let inner = call(
        &b,
        &view,
        Operation::Update,
        "group",
        json!({"name": "inner", "policies": "gi", "member_entity_ids": [e.id]}),
    )
    .await
    .unwrap()
    .unwrap();
    let inner_id = inner["id"].as_str().unwrap().to_string();
    call(
        &b,
        &view,
        Operation::Update,
        "group",
        json!({"name": "outer", "policies": "go", "member_group_ids": [inner_id]}),
    )
    .await
    .unwrap();
    assert_eq!(store.resolve(&e.id).unwrap().policies, ["ep", "gi", "go"]);
    call(
        &b,
        &view,
        Operation::Update,
        "group/name/outer",
        json!({"policies": "changed"}),
    )
    .await
    .unwrap();
    assert_eq!(
        store.resolve(&e.id).unwrap().policies,
        ["changed", "ep", "gi"]
    );
    let facts = store.facts(&e.id).unwrap();
    assert_eq!(facts.groups.len(), 2);
    // Making outer a member of inner would close a cycle.
    let outer_id = store.state().group_by_name("outer").unwrap().id.clone();
    let err = call(
        &b,
        &view,
        Operation::Update,
        "group/name/inner",
        json!({"member_group_ids": [outer_id.clone()]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cyclic relationship detected for member group ID {outer_id:?}")
    );
    call(
        &b,
        &view,
        Operation::Update,
        &format!("entity/id/{}", e.id),
        json!({"disabled": true}),
    )
    .await
    .unwrap();
    assert!(store.resolve(&e.id).unwrap().disabled);
}

#[tokio::test]
async fn merge_moves_aliases_and_refuses_clashes() {
    let (view, store, b) = setup();
    let a = store
        .login("auth_approle_1", &login_alias("a"))
        .await
        .unwrap();
    let c = store
        .login("auth_approle_1", &login_alias("c"))
        .await
        .unwrap();
    let err = call(
        &b,
        &view,
        Operation::Update,
        "entity/merge",
        json!({"from_entity_ids": [c.id], "to_entity_id": a.id}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "toEntity and at least one fromEntity have aliases with the same mount accessor"
        ),
        "{err}"
    );
    let keep = c.aliases[0].id.clone();
    call(&b, &view, Operation::Update, "entity/merge", json!({"from_entity_ids": [c.id], "to_entity_id": a.id, "conflicting_alias_ids_to_keep": [keep]})).await.unwrap();
    let state = store.state();
    assert!(state.entity(&c.id).is_none());
    let (owner, _) = state.alias_by_key("auth_approle_1", "c").unwrap();
    assert_eq!(owner.id, a.id);
    assert!(state.alias_by_key("auth_approle_1", "a").is_none());
}

#[tokio::test]
async fn lookups_and_errors_follow_openbao() {
    let (view, _store, b) = setup();
    let err = call(&b, &view, Operation::Update, "lookup/entity", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "query parameter not supplied");
    let err = call(
        &b,
        &view,
        Operation::Update,
        "lookup/entity",
        json!({"alias_name": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "both 'alias_name' and 'alias_mount_accessor' needs to be set"
    );
    call(
        &b,
        &view,
        Operation::Update,
        "entity",
        json!({"name": "bob"}),
    )
    .await
    .unwrap();
    let found = call(
        &b,
        &view,
        Operation::Update,
        "lookup/entity",
        json!({"name": "bob"}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(found["name"], "bob");
    let err = call(
        &b,
        &view,
        Operation::Update,
        "entity-alias",
        json!({"name": "x", "mount_accessor": "bogus"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid mount accessor \"bogus\"");
    let err = call(&b, &view, Operation::Read, "entity/name/nobody", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(None)));
}
