//! The node's states and the backends' lifecycle, as a single node goes
//! through them.

use serde_json::json;
use strongroom_sdk::logical::Operation;
use strongroom_sdk::Error;

use super::NodeState;
use crate::test_util::{call, dev_core, recorded, Events};

#[tokio::test]
async fn unseal_activates_step_down_stops_serving_and_writing() {
    let events = Events::default();
    let core = dev_core(events).await;
    assert_eq!(core.state(), NodeState::Active);
    call(&core, Operation::Update, "probe/item/a", "root", json!({}))
        .await
        .expect("served while active");

    core.step_down().await;
    assert_eq!(core.state(), NodeState::Standby);
    assert!(!core.is_sealed());
    let standby = call(&core, Operation::Read, "probe/item/a", "root", json!({})).await;
    assert!(matches!(standby, Err(Error::Standby)), "{standby:?}");
    assert_eq!(Error::Standby.status(), 503);
    // Only an active node writes: the gate refuses, whoever asks.
    let write = core.view("sys/").put("anything", b"x").await;
    assert!(
        matches!(write, Err(strongroom_sdk::storage::BarrierError::NotActive)),
        "{write:?}"
    );
    // Reads still work on a standby (the keys are there).
    assert!(core
        .view("")
        .get("core/mounts")
        .await
        .expect("read")
        .is_some());

    core.activate().await.expect("activate again");
    assert_eq!(core.state(), NodeState::Active);
    call(&core, Operation::Read, "probe/item/a", "root", json!({}))
        .await
        .expect("the root token survives a step-down");

    core.seal().await;
    assert_eq!(core.state(), NodeState::Sealed);
    let sealed = call(&core, Operation::Read, "probe/item/a", "root", json!({})).await;
    assert!(matches!(sealed, Err(Error::Sealed)), "{sealed:?}");
    assert!(matches!(core.activate().await, Err(Error::Sealed)));
}

#[tokio::test]
async fn backends_are_initialised_ticked_and_cleaned_up() {
    let events = Events::default();
    let core = dev_core(events.clone()).await;
    assert_eq!(recorded(&events), vec!["initialize 1"]);
    core.run_periodic().await.expect("periodic");
    assert_eq!(
        recorded(&events).last().map(String::as_str),
        Some("periodic 1")
    );

    // Stepping down cleans up; activating builds and initialises anew.
    core.step_down().await;
    assert_eq!(
        recorded(&events).last().map(String::as_str),
        Some("cleanup 1")
    );
    core.activate().await.expect("activate");
    assert_eq!(
        recorded(&events).last().map(String::as_str),
        Some("initialize 2")
    );

    call(
        &core,
        Operation::Delete,
        "sys/mounts/probe",
        "root",
        json!({}),
    )
    .await
    .expect("unmount");
    assert_eq!(
        recorded(&events).last().map(String::as_str),
        Some("cleanup 2")
    );
}

#[tokio::test]
async fn a_tune_swaps_the_mount_context_and_keeps_the_backend() {
    let events = Events::default();
    let core = dev_core(events.clone()).await;
    let before = core
        .active()
        .expect("active")
        .root()
        .routes
        .load()
        .lookup("probe/x")
        .map(|(r, _)| r.clone())
        .expect("route");
    call(
        &core,
        Operation::Update,
        "sys/mounts/probe/tune",
        "root",
        json!({"default_lease_ttl": "1h"}),
    )
    .await
    .expect("tune");
    let ttl = call(&core, Operation::Read, "probe/ttl", "root", json!({}))
        .await
        .expect("read ttl");
    assert_eq!(ttl.data.expect("data")["default_lease_ttl"], json!(3600));
    let after = core
        .active()
        .expect("active")
        .root()
        .routes
        .load()
        .lookup("probe/x")
        .map(|(r, _)| r.clone())
        .expect("route");
    assert!(
        std::sync::Arc::ptr_eq(&before.backend, &after.backend),
        "a TTL tune must not rebuild the backend"
    );
    assert_eq!(
        recorded(&events),
        vec!["initialize 1"],
        "no cleanup, no new backend"
    );

    // New options may change what the backend is: it is rebuilt.
    call(
        &core,
        Operation::Update,
        "sys/mounts/probe/tune",
        "root",
        json!({"options": {"flavour": "b"}}),
    )
    .await
    .expect("tune options");
    assert_eq!(
        recorded(&events),
        vec!["initialize 1", "initialize 2", "cleanup 1"]
    );
}

#[tokio::test]
async fn invalidation_reaches_the_mount_that_owns_the_key() {
    let events = Events::default();
    let core = dev_core(events.clone()).await;
    let prefix = core
        .active()
        .expect("active")
        .root()
        .routes
        .load()
        .lookup("probe/x")
        .map(|(r, _)| r.storage.prefix().to_string())
        .expect("route");
    assert!(core.invalidate(&format!("{prefix}item/a")));
    assert_eq!(
        recorded(&events).last().map(String::as_str),
        Some("invalidate 1 item/a")
    );
    assert!(!core.invalidate("nowhere/at/all"));
}
