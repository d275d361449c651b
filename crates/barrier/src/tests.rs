//! Tests of the barrier and its views over an in-memory backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use strongroom_sdk::storage::{list_level, StorageError};

/// A tiny in-memory backend (crates/storage is written separately).
#[derive(Default)]
struct MemBackend {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemBackend {
    fn entries(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.lock().expect("lock").clone()
    }
    fn raw_get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.lock().expect("lock").get(key).cloned()
    }
    fn raw_put(&self, key: &str, value: Vec<u8>) {
        self.map
            .lock()
            .expect("lock")
            .insert(key.to_string(), value);
    }
}

#[async_trait]
impl Backend for MemBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.raw_get(key))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.map.lock().expect("lock");
        Ok(list_level(prefix, map.keys().map(String::as_str)))
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        let mut map = self.map.lock().expect("lock");
        for op in ops {
            match op {
                BatchOp::Put(k, v) => {
                    map.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }
}

/// An initialised, unsealed barrier, its backend and unseal key.
async fn unsealed() -> (Arc<Barrier>, Arc<MemBackend>, Zeroizing<Vec<u8>>) {
    let mem = Arc::new(MemBackend::default());
    let barrier = Arc::new(Barrier::new(mem.clone()));
    let key = generate_key();
    barrier.initialize(&key).await.expect("initialize");
    barrier.unseal(&key).await.expect("unseal");
    (barrier, mem, key)
}

fn physical_term(mem: &MemBackend, key: &str) -> u32 {
    let bytes = mem.raw_get(key).expect("entry exists");
    u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn roundtrip_put_get_list_delete() {
    let (barrier, _mem, _key) = unsealed().await;
    assert_eq!(barrier.get("a/b").await.expect("get"), None);
    barrier.put("a/b", b"value one").await.expect("put");
    barrier.put("a/c/d", b"").await.expect("put");
    assert_eq!(
        barrier.get("a/b").await.expect("get").as_deref(),
        Some(&b"value one"[..])
    );
    assert_eq!(
        barrier.get("a/c/d").await.expect("get").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(barrier.list("a/").await.expect("list"), vec!["b", "c/"]);
    barrier.delete("a/b").await.expect("delete");
    assert_eq!(barrier.get("a/b").await.expect("get"), None);
    barrier
        .batch(vec![
            BatchOp::Put("x".into(), b"1".to_vec()),
            BatchOp::Put("y".into(), b"2".to_vec()),
            BatchOp::Delete("a/c/d".into()),
        ])
        .await
        .expect("batch");
    assert_eq!(
        barrier.get("x").await.expect("get").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        barrier.get("y").await.expect("get").as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(barrier.get("a/c/d").await.expect("get"), None);
}

#[tokio::test]
async fn initialization_lifecycle() {
    let mem = Arc::new(MemBackend::default());
    let barrier = Barrier::new(mem.clone());
    let key = generate_key();
    assert_eq!(key.len(), 32);
    assert!(!barrier.initialized().await.expect("initialized"));
    assert!(matches!(
        barrier.unseal(&key).await,
        Err(BarrierError::NotInitialized)
    ));
    assert!(matches!(
        barrier.initialize(&key[..16]).await,
        Err(BarrierError::InvalidKey)
    ));
    barrier.initialize(&key).await.expect("initialize");
    assert!(barrier.initialized().await.expect("initialized"));
    assert!(barrier.is_sealed(), "initialize leaves the barrier sealed");
    assert!(matches!(
        barrier.initialize(&generate_key()).await,
        Err(BarrierError::AlreadyInitialized)
    ));
    barrier.unseal(&key).await.expect("unseal");
    assert!(!barrier.is_sealed());
    let status = barrier.key_status().expect("unsealed");
    assert_eq!(status.term, 1);
    barrier.seal();
    assert!(barrier.is_sealed());
    assert_eq!(barrier.key_status(), None);
}

#[tokio::test]
async fn wrong_unseal_key_is_refused_and_barrier_stays_sealed() {
    let (barrier, mem, key) = unsealed().await;
    barrier.seal();
    let mut wrong = key.to_vec();
    wrong[0] ^= 1;
    assert!(matches!(
        barrier.unseal(&wrong).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(barrier.is_sealed());
    assert!(matches!(
        barrier.unseal(&key[..31]).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(barrier.is_sealed());
    assert!(matches!(barrier.get("x").await, Err(BarrierError::Sealed)));
    // A fresh barrier with the wrong key too.
    let other = Barrier::new(mem);
    assert!(matches!(
        other.unseal(&generate_key()).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(other.is_sealed());
    // Unsealed already: the key is still checked.
    barrier.unseal(&key).await.expect("unseal");
    assert!(matches!(
        barrier.unseal(&wrong).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(!barrier.is_sealed());
}

#[tokio::test]
async fn sealed_barrier_refuses_all_access() {
    let (barrier, _mem, _key) = unsealed().await;
    barrier.put("k", b"v").await.expect("put");
    barrier.seal();
    assert!(matches!(barrier.get("k").await, Err(BarrierError::Sealed)));
    assert!(matches!(
        barrier.put("k", b"w").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.delete("k").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(barrier.list("").await, Err(BarrierError::Sealed)));
    assert!(matches!(
        barrier.batch(vec![BatchOp::Delete("k".into())]).await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(barrier.rotate().await, Err(BarrierError::Sealed)));
    let view = barrier.view("logical/");
    assert!(matches!(view.get("k").await, Err(BarrierError::Sealed)));
}

#[tokio::test]
async fn reserved_keys_are_refused() {
    let (barrier, mem, _key) = unsealed().await;
    let before = mem.entries();
    for key in [KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH] {
        assert!(matches!(
            barrier.get(key).await,
            Err(BarrierError::Reserved(_))
        ));
        assert!(matches!(
            barrier.put(key, b"x").await,
            Err(BarrierError::Reserved(_))
        ));
        assert!(matches!(
            barrier.delete(key).await,
            Err(BarrierError::Reserved(_))
        ));
        assert!(matches!(
            barrier
                .batch(vec![
                    BatchOp::Put("ok".into(), vec![]),
                    BatchOp::Delete(key.into())
                ])
                .await,
            Err(BarrierError::Reserved(_))
        ));
    }
    assert_eq!(mem.entries(), before, "nothing was written");
}

#[tokio::test]
async fn raw_storage_holds_no_plaintext() {
    let (barrier, mem, unseal_key) = unsealed().await;
    mem.raw_put(SEAL_CONFIG_PATH, b"{\"type\":\"shamir\"}".to_vec());
    let marker = b"RECOGNISABLE-PLAINTEXT-MARKER-0123456789";
    barrier.put("secret/one", marker).await.expect("put");
    barrier
        .batch(vec![BatchOp::Put("secret/two".into(), marker.to_vec())])
        .await
        .expect("batch");
    barrier
        .view("logical/abc/")
        .put("three", marker)
        .await
        .expect("put");
    barrier.rotate().await.expect("rotate");
    barrier.put("secret/four", marker).await.expect("put");

    let state = barrier.current().expect("unsealed");
    let mut needles: Vec<Vec<u8>> = vec![
        marker.to_vec(),
        marker[..16].to_vec(),
        unseal_key.to_vec(),
        state.root_key.raw().to_vec(),
    ];
    for n in 1..=2 {
        needles.push(state.keyring.term(n).expect("term").key.raw().to_vec());
    }
    let entries = mem.entries();
    assert!(entries.len() >= 6);
    for (path, bytes) in entries.iter().filter(|(p, _)| *p != SEAL_CONFIG_PATH) {
        for needle in &needles {
            assert!(
                !contains(bytes, needle),
                "plaintext or key material at {path}"
            );
            assert!(
                !contains(bytes, hex::encode(needle).as_bytes()),
                "hex at {path}"
            );
        }
    }
}

#[tokio::test]
async fn ciphertext_moved_to_another_path_does_not_decrypt() {
    let (barrier, mem, _key) = unsealed().await;
    barrier.put("a", b"value").await.expect("put");
    mem.raw_put("b", mem.raw_get("a").expect("a"));
    assert!(matches!(
        barrier.get("b").await,
        Err(BarrierError::Corrupt(_))
    ));
    // Tampering is detected too.
    let mut bytes = mem.raw_get("a").expect("a");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    mem.raw_put("a", bytes);
    assert!(matches!(
        barrier.get("a").await,
        Err(BarrierError::Corrupt(_))
    ));
    // An unknown term, and garbage shorter than a header.
    barrier.put("c", b"value").await.expect("put");
    let mut bytes = mem.raw_get("c").expect("c");
    bytes[..4].copy_from_slice(&99u32.to_be_bytes());
    mem.raw_put("c", bytes);
    assert!(matches!(
        barrier.get("c").await,
        Err(BarrierError::Corrupt(_))
    ));
    mem.raw_put("d", vec![0, 0]);
    assert!(matches!(
        barrier.get("d").await,
        Err(BarrierError::Corrupt(_))
    ));
}

#[tokio::test]
async fn rotation_keeps_old_data_and_writes_with_new_term() {
    let (barrier, mem, key) = unsealed().await;
    barrier.put("old", b"before").await.expect("put");
    assert_eq!(physical_term(&mem, "old"), 1);
    assert_eq!(barrier.rotate().await.expect("rotate"), 2);
    assert_eq!(barrier.key_status().expect("status").term, 2);
    barrier.put("new", b"after").await.expect("put");
    assert_eq!(physical_term(&mem, "new"), 2);
    assert_eq!(
        barrier.get("old").await.expect("get").as_deref(),
        Some(&b"before"[..])
    );
    assert_eq!(
        barrier.get("new").await.expect("get").as_deref(),
        Some(&b"after"[..])
    );
    assert_eq!(barrier.rotate().await.expect("rotate"), 3);

    // A new process over the same storage sees all terms.
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    assert_eq!(again.key_status().expect("status").term, 3);
    assert_eq!(
        again.get("old").await.expect("get").as_deref(),
        Some(&b"before"[..])
    );
    assert_eq!(
        again.get("new").await.expect("get").as_deref(),
        Some(&b"after"[..])
    );
}

#[tokio::test]
async fn rotates_automatically_at_the_threshold() {
    let (barrier, mem, key) = unsealed().await;
    barrier.set_rotation_threshold(10);
    // Unsealing assumes a whole PERSIST_INTERVAL of unrecorded encryptions,
    // which exceeds 10: start from a fresh term to count from zero.
    assert_eq!(barrier.rotate().await.expect("rotate"), 2);
    for i in 0..10 {
        barrier.put(&format!("k{i}"), b"v").await.expect("put");
    }
    let status = barrier.key_status().expect("status");
    assert_eq!(status.term, 3, "rotated after the 10th encryption");
    assert_eq!(status.encryptions, 0);
    barrier.put("k10", b"v").await.expect("put");
    for i in 0..10 {
        assert_eq!(physical_term(&mem, &format!("k{i}")), 2);
    }
    assert_eq!(physical_term(&mem, "k10"), 3);
    assert_eq!(barrier.key_status().expect("status").encryptions, 1);
    // Batches count every put.
    let ops = (0..9)
        .map(|i| BatchOp::Put(format!("b{i}"), b"v".to_vec()))
        .collect();
    barrier.batch(ops).await.expect("batch");
    assert_eq!(barrier.key_status().expect("status").term, 4);

    // The new terms were persisted before use.
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    assert_eq!(again.key_status().expect("status").term, 4);
    for i in 0..=10 {
        assert!(again.get(&format!("k{i}")).await.expect("get").is_some());
    }
    for i in 0..9 {
        assert!(again.get(&format!("b{i}")).await.expect("get").is_some());
    }
}

#[tokio::test]
async fn encryption_budget_survives_restart() {
    let (barrier, mem, key) = unsealed().await;
    barrier.put("a", b"v").await.expect("put");
    // Nothing persisted since unseal: a restart assumes a whole interval.
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    assert!(again.key_status().expect("status").encryptions >= PERSIST_INTERVAL);

    // Crossing an interval boundary persists the count.
    let state = barrier.current().expect("unsealed");
    state
        .encryptions
        .store(3 * PERSIST_INTERVAL - 1, Ordering::Relaxed);
    barrier.put("b", b"v").await.expect("put");
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    assert_eq!(
        again.key_status().expect("status").encryptions,
        4 * PERSIST_INTERVAL
    );

    // A restart whose allowance reaches the threshold rotates before the
    // next encryption.
    let again = Barrier::with_rotation_threshold(mem.clone(), PERSIST_INTERVAL);
    again.unseal(&key).await.expect("unseal");
    again.put("c", b"v").await.expect("put");
    assert_eq!(again.key_status().expect("status").term, 2);
    assert_eq!(physical_term(&mem, "c"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_across_rotations() {
    let (barrier, mem, key) = unsealed().await;
    barrier.set_rotation_threshold(7);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let k = format!("t{t}/k{i}");
                barrier.put(&k, k.as_bytes()).await.expect("put");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    // 320 encryptions at 7 per term: at least 320 / 7 rotations.
    assert!(again.key_status().expect("status").term > 45);
    for t in 0..8 {
        for i in 0..40 {
            let k = format!("t{t}/k{i}");
            assert_eq!(
                again.get(&k).await.expect("get").as_deref(),
                Some(k.as_bytes())
            );
        }
    }
}

#[tokio::test]
async fn view_prefixes_keys_and_refuses_escapes() {
    let (barrier, mem, _key) = unsealed().await;
    let view = barrier.view("logical/1234/");
    view.put("foo", b"bar").await.expect("put");
    assert!(mem.raw_get("logical/1234/foo").is_some());
    assert_eq!(
        view.get("foo").await.expect("get").as_deref(),
        Some(&b"bar"[..])
    );
    assert_eq!(
        barrier
            .get("logical/1234/foo")
            .await
            .expect("get")
            .as_deref(),
        Some(&b"bar"[..])
    );

    let sub = view.sub_view("sub/");
    assert_eq!(sub.prefix(), "logical/1234/sub/");
    sub.put("x", b"1").await.expect("put");
    sub.put("dir/y", b"2").await.expect("put");
    assert_eq!(view.list("").await.expect("list"), vec!["foo", "sub/"]);
    assert_eq!(sub.list("").await.expect("list"), vec!["dir/", "x"]);
    assert_eq!(sub.list("dir/").await.expect("list"), vec!["y"]);
    sub.batch(vec![
        BatchOp::Delete("x".into()),
        BatchOp::Put("z".into(), b"3".to_vec()),
    ])
    .await
    .expect("batch");
    assert!(mem.raw_get("logical/1234/sub/x").is_none());
    assert_eq!(
        view.get("sub/z").await.expect("get").as_deref(),
        Some(&b"3"[..])
    );
    sub.delete("z").await.expect("delete");
    assert_eq!(view.get("sub/z").await.expect("get"), None);

    let other = barrier.view("logical/5678/");
    other.put("secret", b"s").await.expect("put");
    let before = mem.entries();
    for bad in [
        "../5678/secret",
        "a/../../5678/secret",
        "/etc",
        "./foo",
        "a/./b",
        "..",
    ] {
        assert!(
            matches!(view.get(bad).await, Err(BarrierError::InvalidPath(_))),
            "{bad}"
        );
        assert!(
            matches!(view.put(bad, b"x").await, Err(BarrierError::InvalidPath(_))),
            "{bad}"
        );
        assert!(
            matches!(view.delete(bad).await, Err(BarrierError::InvalidPath(_))),
            "{bad}"
        );
        assert!(
            matches!(view.list(bad).await, Err(BarrierError::InvalidPath(_))),
            "{bad}"
        );
        assert!(matches!(
            view.batch(vec![BatchOp::Put(bad.into(), vec![])]).await,
            Err(BarrierError::InvalidPath(_))
        ));
    }
    let escaped = view.sub_view("../5678/");
    assert!(matches!(
        escaped.get("secret").await,
        Err(BarrierError::InvalidPath(_))
    ));
    assert_eq!(mem.entries(), before, "nothing written by refused calls");
    // Dots inside names are fine.
    view.put("a..b/.hidden", b"ok").await.expect("put");
}

#[tokio::test]
async fn view_json_helpers() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Entry {
        name: String,
        n: u32,
    }
    let (barrier, mem, _key) = unsealed().await;
    let view = barrier.view("sys/");
    let entry = Entry {
        name: "x".into(),
        n: 3,
    };
    view.put_json("entry", &entry).await.expect("put");
    assert_eq!(
        view.get_json::<Entry>("entry").await.expect("get"),
        Some(entry)
    );
    assert_eq!(view.get_json::<Entry>("missing").await.expect("get"), None);
    view.put("bad", b"not json").await.expect("put");
    assert!(matches!(
        view.get_json::<Entry>("bad").await,
        Err(BarrierError::Corrupt(_))
    ));
    assert!(!contains(
        &mem.raw_get("sys/entry").expect("entry"),
        b"name"
    ));
}

#[tokio::test]
async fn debug_output_hides_keys() {
    let (barrier, _mem, _key) = unsealed().await;
    let state = barrier.current().expect("unsealed");
    let root = format!("{:?}", state.root_key.raw());
    let data = format!("{:?}", state.keyring.active().key.raw());
    for shown in [
        format!("{barrier:?}"),
        format!("{state:?}"),
        format!("{:?}", barrier.view("p/")),
    ] {
        assert!(!shown.contains(&root) && !shown.contains(&data), "{shown}");
    }
}

#[test]
fn errors_map_to_boundary_errors() {
    let e: strongroom_sdk::Error = BarrierError::Sealed.into();
    assert_eq!(e.status(), 503);
    assert!(matches!(e, strongroom_sdk::Error::Sealed));
    let e: strongroom_sdk::Error = BarrierError::NotInitialized.into();
    assert!(matches!(e, strongroom_sdk::Error::NotInitialized));
    let e: strongroom_sdk::Error = BarrierError::InvalidKey.into();
    assert_eq!(e.status(), 400);
    let e: strongroom_sdk::Error = BarrierError::InvalidPath("x/..".into()).into();
    assert_eq!(e.status(), 400);
    let e: strongroom_sdk::Error = BarrierError::Storage(StorageError::Closed).into();
    assert!(matches!(
        e,
        strongroom_sdk::Error::Storage(StorageError::Closed)
    ));
    let e: strongroom_sdk::Error = BarrierError::Corrupt("p".into()).into();
    assert!(matches!(e, strongroom_sdk::Error::Internal(_)));
    let e: strongroom_sdk::Error = BarrierError::Reserved("core/keyring".into()).into();
    assert!(matches!(e, strongroom_sdk::Error::Internal(_)));
    let e: strongroom_sdk::Error = BarrierError::AlreadyInitialized.into();
    assert_eq!(e.status(), 500);
}

#[test]
fn barrier_and_view_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Barrier>();
    assert_send_sync::<View>();
}

#[tokio::test]
async fn a_clean_seal_keeps_the_exact_count_and_a_crash_after_it_does_not() {
    let (barrier, mem, key) = unsealed().await;
    barrier.seal_persisting().await.expect("clean seal");
    barrier.unseal(&key).await.expect("unseal");
    let start = barrier.key_status().expect("status").encryptions;
    for i in 0..30 {
        barrier.put(&format!("k{i}"), b"v").await.expect("put");
    }
    assert_eq!(
        barrier.key_status().expect("status").encryptions,
        start + 30
    );
    barrier.seal_persisting().await.expect("clean seal");
    assert!(barrier.is_sealed());

    // Unsealing after a clean seal counts on from the exact figure.
    barrier.unseal(&key).await.expect("unseal");
    assert_eq!(
        barrier.key_status().expect("status").encryptions,
        start + 30
    );
    barrier.put("one-more", b"v").await.expect("put");

    // A crash now (no clean seal) assumes a whole interval again: the
    // unseal above unmarked the exact count before encrypting anything.
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal");
    assert_eq!(
        again.key_status().expect("status").encryptions,
        start + 30 + PERSIST_INTERVAL
    );
}

#[tokio::test]
async fn rekey_replaces_the_unseal_key_and_keeps_the_data() {
    let (barrier, mem, old_key) = unsealed().await;
    barrier.put("kept", b"value").await.expect("put");
    assert!(barrier.check_unseal_key(&old_key).await.is_ok());
    let new_key = generate_key();
    barrier
        .rekey(
            &new_key,
            vec![BatchOp::Put("core/extra".into(), b"plain".to_vec())],
        )
        .await
        .expect("rekey");
    // The extra operation landed in the same batch, unencrypted.
    assert_eq!(
        mem.get("core/extra").await.expect("get").as_deref(),
        Some(&b"plain"[..])
    );
    assert!(matches!(
        barrier.check_unseal_key(&old_key).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(barrier.check_unseal_key(&new_key).await.is_ok());
    // Still unsealed and working.
    barrier.put("after", b"v").await.expect("put");

    let again = Barrier::new(mem.clone());
    assert!(matches!(
        again.unseal(&old_key).await,
        Err(BarrierError::InvalidKey)
    ));
    again
        .unseal(&new_key)
        .await
        .expect("unseal with the new key");
    assert_eq!(
        again.get("kept").await.expect("get").as_deref(),
        Some(&b"value"[..])
    );
    assert!(again.get("after").await.expect("get").is_some());
}

#[tokio::test]
async fn rotate_root_replaces_the_root_key_and_keeps_the_unseal_key() {
    let (barrier, mem, key) = unsealed().await;
    barrier.put("kept", b"value").await.expect("put");
    let wrapped_before = mem.get(ROOT_KEY_PATH).await.expect("get");
    barrier.rotate_root().await.expect("rotate the root key");
    let wrapped_after = mem.get(ROOT_KEY_PATH).await.expect("get");
    assert_ne!(wrapped_before, wrapped_after, "a new root key is stored");
    // Still unsealed and working; the same unseal key opens the new root
    // key after a restart, and the data is all there.
    barrier.put("after", b"v").await.expect("put");
    assert!(barrier.check_unseal_key(&key).await.is_ok());
    let again = Barrier::new(mem.clone());
    again.unseal(&key).await.expect("unseal with the same key");
    assert_eq!(
        again.get("kept").await.expect("get").as_deref(),
        Some(&b"value"[..])
    );
    assert!(again.get("after").await.expect("get").is_some());
    // Sealed, there is nothing to rotate with.
    again.seal();
    assert!(matches!(
        again.rotate_root().await,
        Err(BarrierError::Sealed)
    ));
}
