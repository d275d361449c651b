//! The broker: every enabled device, and the fail-closed rule. An entry is
//! on record when at least one device wrote it; when devices exist and
//! none could, the caller fails the request (before its backend runs) or
//! withholds the answer. One failing device among working ones only logs
//! an error naming it.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::device::Device;
use crate::entry::{Entry, EntryType};

/// Why an entry is not on record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no audit device could record the {0}")]
pub struct NotRecorded(pub &'static str);

/// The enabled devices.
#[derive(Debug, Default)]
pub struct Broker {
    devices: ArcSwap<Vec<Arc<Device>>>,
    /// Whether `devices` is not empty: asked on every request, so one
    /// relaxed load instead of an `ArcSwap` load.
    enabled: std::sync::atomic::AtomicBool,
}

impl Broker {
    /// A broker with no device.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Replaces the device list.
    pub fn set(&self, devices: Vec<Arc<Device>>) {
        let enabled = !devices.is_empty();
        self.devices.store(Arc::new(devices));
        self.enabled
            .store(enabled, std::sync::atomic::Ordering::Release);
    }

    /// The devices, in path order.
    pub fn devices(&self) -> Arc<Vec<Arc<Device>>> {
        self.devices.load_full()
    }

    /// Whether any device is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The device at `path` (`file/`).
    pub fn device(&self, path: &str) -> Option<Arc<Device>> {
        self.devices
            .load()
            .iter()
            .find(|d| d.config().path == path)
            .cloned()
    }

    /// Records `entry` on every device; `Ok` when at least one wrote it
    /// (or there is none).
    ///
    /// # Errors
    /// Devices exist and none recorded the entry.
    pub async fn log(
        &self,
        entry: &Entry,
        non_hmac_request_keys: &[String],
        non_hmac_response_keys: &[String],
    ) -> Result<(), NotRecorded> {
        let devices = self.devices.load_full();
        if devices.is_empty() {
            return Ok(());
        }
        // Hand the entry to every device first, then wait: the devices
        // write in parallel.
        let mut pending = Vec::with_capacity(devices.len());
        for d in devices.iter() {
            match d
                .submit(entry, non_hmac_request_keys, non_hmac_response_keys)
                .await
            {
                Ok(p) => pending.push(p),
                Err(e) => tracing::error!(error = %e, "audit: a device refused an entry"),
            }
        }
        let mut recorded = false;
        for p in pending {
            match p.wait().await {
                Ok(()) => recorded = true,
                Err(e) => tracing::error!(error = %e, "audit: a device did not record an entry"),
            }
        }
        if recorded {
            Ok(())
        } else {
            Err(NotRecorded(match entry.kind {
                EntryType::Request => "request",
                EntryType::Response => "response",
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceConfig;
    use crate::entry::{Auth, RequestInfo};
    use crate::options::CommonOptions;
    use crate::salt::Salt;
    use crate::sink::Sink;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Keeps every batch it was given.
    #[derive(Default)]
    struct Memory(Mutex<Vec<Vec<u8>>>);

    #[async_trait::async_trait]
    impl Sink for Memory {
        async fn write(&self, batch: &[u8]) -> std::io::Result<()> {
            self.0.lock().unwrap().push(batch.to_vec());
            Ok(())
        }
    }

    /// Fails every write.
    struct Broken;

    #[async_trait::async_trait]
    impl Sink for Broken {
        async fn write(&self, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("connection refused"))
        }
    }

    /// Never finishes a write.
    struct Hung;

    #[async_trait::async_trait]
    impl Sink for Hung {
        async fn write(&self, _: &[u8]) -> std::io::Result<()> {
            std::future::pending().await
        }
    }

    fn device(path: &str, sink: Arc<dyn Sink>, chain: bool) -> Arc<Device> {
        let mut options = BTreeMap::new();
        if chain {
            options.insert("hash_chain".to_string(), "true".to_string());
        }
        options.insert("write_timeout".to_string(), "200ms".to_string());
        let common = CommonOptions::parse(&options, false).unwrap();
        Arc::new(Device::with_sink(
            DeviceConfig {
                path: path.into(),
                kind: "test".into(),
                description: String::new(),
                local: false,
                options,
            },
            common,
            Salt::from_bytes(path.as_bytes()),
            sink,
        ))
    }

    fn entry(i: usize) -> Entry {
        Entry {
            time: "2026-12-05T00:00:00Z".into(),
            kind: EntryType::Request,
            auth: Auth {
                token_type: "service".into(),
                client_token: "s.secret".into(),
                ..Auth::default()
            },
            request: RequestInfo {
                id: format!("req-{i}"),
                operation: "read".into(),
                path: "secret/data/x".into(),
                ..RequestInfo::default()
            },
            response: None,
            error: String::new(),
        }
    }

    /// Holds its first write until released, then keeps every batch.
    struct Held {
        started: tokio::sync::Notify,
        release: tokio::sync::Semaphore,
        batches: Mutex<Vec<Vec<u8>>>,
    }

    #[async_trait::async_trait]
    impl Sink for Held {
        async fn write(&self, batch: &[u8]) -> std::io::Result<()> {
            if self.batches.lock().unwrap().is_empty() {
                self.started.notify_one();
                let _ = self.release.acquire().await;
            }
            self.batches.lock().unwrap().push(batch.to_vec());
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_queued_behind_a_write_share_the_next_one_and_chain_in_order() {
        let held = Arc::new(Held {
            started: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
            batches: Mutex::new(Vec::new()),
        });
        let d = device("file/", held.clone(), true);
        let first = d.submit(&entry(0), &[], &[]).await.unwrap();
        held.started.notified().await;
        // The writer is inside its first write: these all queue.
        let mut pending = vec![first];
        for i in 1..500 {
            pending.push(d.submit(&entry(i), &[], &[]).await.unwrap());
        }
        held.release.add_permits(1);
        for p in pending {
            p.wait().await.unwrap();
        }
        let batches = held.batches.lock().unwrap().clone();
        assert_eq!(batches.len(), 2, "499 queued entries, one write");
        let lines: Vec<Vec<u8>> = batches
            .concat()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(lines.len(), 500);
        let salt = Salt::from_bytes(b"file/");
        let n = crate::chain::verify(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| ("m", i + 1, l.as_slice())),
            "",
            |input| Ok::<_, String>(salt.hash(input)),
        )
        .unwrap();
        assert_eq!(n, 500);
        let text = String::from_utf8(batches.concat()).unwrap();
        assert!(!text.contains("s.secret"));
        assert!(text.contains("\"id\":\"req-499\""));
    }

    #[tokio::test]
    async fn fail_closed_only_when_no_device_recorded() {
        let broker = Broker::new();
        assert_eq!(broker.log(&entry(0), &[], &[]).await, Ok(()), "no device");
        let memory = Arc::new(Memory::default());
        broker.set(vec![
            device("broken/", Arc::new(Broken), false),
            device("file/", memory.clone(), false),
        ]);
        assert_eq!(broker.log(&entry(1), &[], &[]).await, Ok(()), "one works");
        assert_eq!(memory.0.lock().unwrap().len(), 1);
        broker.set(vec![
            device("broken/", Arc::new(Broken), false),
            device("hung/", Arc::new(Hung), false),
        ]);
        assert_eq!(
            broker.log(&entry(2), &[], &[]).await,
            Err(NotRecorded("request"))
        );
    }
}
