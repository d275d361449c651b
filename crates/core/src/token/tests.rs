//! Token store tests: creation, the in-memory index after a reload, use
//! counting under concurrency, the tree, renewal limits.

use std::sync::Arc;

use super::*;
use crate::test_util::unsealed_view;

async fn open(view: View) -> TokenStore {
    TokenStore::open(view, Arc::new(Schedule::default()))
        .await
        .unwrap()
        .0
}

fn new_token(parent: Option<String>) -> NewToken {
    NewToken {
        policies: vec!["default".into()],
        display_name: "token".into(),
        ttl: 3600,
        renewable: true,
        parent,
        path: "auth/token/create".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tokens_survive_a_reload_and_are_found_by_id_and_accessor() {
    let view = unsealed_view().await;
    let store = open(view.clone()).await;
    let (id, entry) = store.create(new_token(None)).await.unwrap();
    assert!(id.starts_with("s."));
    let again = open(view).await;
    assert_eq!(*again.lookup(&id).unwrap(), *entry);
    assert_eq!(*again.lookup_accessor(&entry.accessor).unwrap(), *entry);
    assert!(again.lookup("s.nope").is_none());
}

#[tokio::test]
async fn concurrent_uses_never_exceed_num_uses() {
    let view = unsealed_view().await;
    let store = Arc::new(open(view).await);
    let mut new = new_token(None);
    new.num_uses = 3;
    let (id, _) = store.create(new).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let entry = store.lookup(&id).unwrap();
            store.use_token(entry).await
        }));
    }
    let mut ok = 0;
    let mut exhausted = 0;
    for t in tasks {
        if let Ok(used) = t.await.unwrap() {
            ok += 1;
            exhausted += used.exhausted as usize;
        }
    }
    assert_eq!(ok, 3);
    assert_eq!(exhausted, 1);
    assert_eq!(store.lookup(&id).unwrap().num_uses, -1);
}

#[tokio::test]
async fn tree_lists_children_before_parents() {
    let view = unsealed_view().await;
    let store = open(view.clone()).await;
    let (_, root) = store.create(new_token(None)).await.unwrap();
    let (_, child) = store
        .create(new_token(Some(root.id_hash.clone())))
        .await
        .unwrap();
    let (_, grandchild) = store
        .create(new_token(Some(child.id_hash.clone())))
        .await
        .unwrap();
    let order = store.tree_postorder(&root.id_hash);
    assert_eq!(
        order,
        vec![
            grandchild.id_hash.clone(),
            child.id_hash.clone(),
            root.id_hash.clone()
        ]
    );
    // The tree is rebuilt from storage after a reload.
    let again = open(view).await;
    assert_eq!(again.tree_postorder(&root.id_hash), order);
    // Deleting the middle token and reloading reports the grandchild as
    // dangling.
    again.delete(&child.id_hash).await.unwrap();
    let (_, dangling) = TokenStore::open(again.view.clone(), Arc::new(Schedule::default()))
        .await
        .unwrap();
    assert_eq!(dangling, vec![grandchild.id_hash.clone()]);
}

#[tokio::test]
async fn renewal_is_capped_by_explicit_max_ttl() {
    let view = unsealed_view().await;
    let store = open(view).await;
    let mut new = new_token(None);
    new.explicit_max_ttl = 7200;
    let (_, entry) = store.create(new).await.unwrap();
    let (renewed, warning) = store.renew(&entry.id_hash, 3 * 3600, 0).await.unwrap();
    let left = renewed.expire_time - now_unix();
    assert!(left <= 7200 && left > 7100, "{left}");
    assert!(warning.unwrap().contains("max_ttl of \"2h\""));
    let mut fixed = new_token(None);
    fixed.renewable = false;
    let (_, fixed) = store.create(fixed).await.unwrap();
    assert!(matches!(
        store.renew(&fixed.id_hash, 60, 0).await,
        Err(Error::BadRequest(m)) if m == "lease is not renewable"
    ));
}

#[tokio::test]
async fn batch_tokens_are_not_stored_and_die_with_their_parent() {
    let view = unsealed_view().await;
    let store = open(view.clone()).await;
    let (_, parent) = store.create(new_token(None)).await.unwrap();
    let mut new = new_token(Some(parent.id_hash.clone()));
    new.batch = true;
    let (id, entry) = store.create(new).await.unwrap();
    assert!(id.starts_with("b."));
    assert!(entry.is_batch() && !entry.renewable);
    assert!(store.lookup(&id).is_some());
    assert_eq!(view.list(ID_PREFIX).await.unwrap().len(), 1);
    store.delete(&parent.id_hash).await.unwrap();
    assert!(store.lookup(&id).is_none());
}
