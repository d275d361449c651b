//! One audit device: its configuration, salt and sink, and the writer task
//! that batches lines. Requests hand their entry to the writer and wait
//! until the batch holding it has been written: concurrent requests share
//! one write system call, and no request proceeds before its entry is with
//! the operating system. The writer also owns the hash chain, so links
//! follow the order lines are written in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::chain;
use crate::entry::{Entry, HashRules};
use crate::options::{CommonOptions, ConfigError};
use crate::salt::Salt;
use crate::sink::{self, Sink};

/// Lines waiting for the writer before requests wait for room.
const QUEUE: usize = 8192;
/// The most bytes one batch gathers before it is written.
const MAX_BATCH: usize = 4 << 20;

/// A device as `sys/audit` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Its path, ending in `/` (`file/`).
    pub path: String,
    /// `file`, `socket`, `syslog`, `http`.
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Not replicated (kept for OpenBao's API shape).
    pub local: bool,
    /// The type's options and the shared ones.
    pub options: BTreeMap<String, String>,
}

/// Why an entry was not recorded by one device.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeviceError {
    /// The sink failed.
    #[error("audit device {path} failed to write: {reason}")]
    Write {
        /// The device's path.
        path: String,
        /// The I/O error's text (never an entry's content).
        reason: String,
    },
    /// The write did not finish within `write_timeout`.
    #[error("audit device {path} did not write within {timeout:?}")]
    Timeout {
        /// The device's path.
        path: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// The device was closed (disabled) meanwhile.
    #[error("audit device {0} is closed")]
    Closed(String),
}

/// What the writer is asked.
enum Job {
    /// Write this entry (its JSON without prefix or newline).
    Line(Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Reopen the sink (SIGHUP).
    Reopen(oneshot::Sender<Result<(), String>>),
}

/// A running audit device.
pub struct Device {
    config: DeviceConfig,
    options: CommonOptions,
    salt: Arc<Salt>,
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Opens the device's sink and starts its writer (on the current tokio
    /// runtime). `allow_prefix` is the server's
    /// `allow_audit_log_prefixing`.
    ///
    /// # Errors
    /// Bad options, an unknown type, or a sink that cannot be opened.
    pub fn open(
        config: DeviceConfig,
        salt: Salt,
        allow_prefix: bool,
    ) -> Result<Device, ConfigError> {
        let options = CommonOptions::parse(&config.options, allow_prefix)?;
        let sink = sink::open(&config.kind, &config.options)?;
        Ok(Device::with_sink(config, options, salt, sink))
    }

    /// A device writing to `sink` (tests, and sinks made elsewhere).
    pub fn with_sink(
        config: DeviceConfig,
        options: CommonOptions,
        salt: Salt,
        sink: Arc<dyn Sink>,
    ) -> Device {
        let salt = Arc::new(salt);
        let (queue, jobs) = mpsc::channel(QUEUE);
        let start = if options.hash_chain {
            sink.last_line()
                .and_then(|l| {
                    let body = l.strip_prefix(options.prefix.as_bytes())?.to_vec();
                    chain::split_link(&body).map(|(_, link)| link.to_string())
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let writer = Writer {
            path: config.path.clone(),
            prefix: options.prefix.clone().into_bytes(),
            chain: options.hash_chain.then_some(start),
            batch_start: None,
            salt: salt.clone(),
            sink,
            timeout: options.write_timeout,
        };
        tokio::spawn(writer.run(jobs));
        Device {
            config,
            options,
            salt,
            queue,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The shared options, parsed.
    pub fn options(&self) -> &CommonOptions {
        &self.options
    }

    /// `hmac-sha256:<hex>` of `input` with this device's salt
    /// (`sys/audit-hash`).
    pub fn hash(&self, input: &[u8]) -> String {
        self.salt.hash(input)
    }

    /// Hands `entry` (hashed with this device's salt and options, the
    /// mount's non-HMAC keys given) to the writer, returning a receiver
    /// of the write's outcome: [`Device::log`] without the wait, so that a
    /// broker can submit to every device before waiting for any.
    pub async fn submit(
        &self,
        entry: &Entry,
        non_hmac_request_keys: &[String],
        non_hmac_response_keys: &[String],
    ) -> Result<Pending, DeviceError> {
        let rules = HashRules {
            log_raw: self.options.log_raw,
            hmac_accessor: self.options.hmac_accessor,
            elide_list_responses: self.options.elide_list_responses,
            non_hmac_request_keys,
            non_hmac_response_keys,
        };
        let hashed = entry.hashed(&self.salt, &rules);
        let line = serde_json::to_vec(&hashed).map_err(|e| DeviceError::Write {
            path: self.config.path.clone(),
            reason: format!("encoding the entry: {e}"),
        })?;
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Job::Line(line, done))
            .await
            .map_err(|_| DeviceError::Closed(self.config.path.clone()))?;
        Ok(Pending {
            path: self.config.path.clone(),
            timeout: self.options.write_timeout,
            outcome,
        })
    }

    /// Records `entry` and waits until it is written.
    ///
    /// # Errors
    /// The write failed, timed out, or the device is closed.
    pub async fn log(
        &self,
        entry: &Entry,
        non_hmac_request_keys: &[String],
        non_hmac_response_keys: &[String],
    ) -> Result<(), DeviceError> {
        self.submit(entry, non_hmac_request_keys, non_hmac_response_keys)
            .await?
            .wait()
            .await
    }

    /// Reopens the sink (log rotation), in order with the writes: the
    /// chain continues into the new file.
    ///
    /// # Errors
    /// The sink could not be reopened.
    pub async fn reopen(&self) -> Result<(), DeviceError> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Job::Reopen(done))
            .await
            .map_err(|_| DeviceError::Closed(self.config.path.clone()))?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(DeviceError::Write {
                path: self.config.path.clone(),
                reason,
            }),
            Err(_) => Err(DeviceError::Closed(self.config.path.clone())),
        }
    }
}

/// An entry handed to a device's writer.
#[derive(Debug)]
pub struct Pending {
    path: String,
    timeout: Duration,
    outcome: oneshot::Receiver<Result<(), String>>,
}

impl Pending {
    /// Waits until the entry is written (bounded by the device's timeout,
    /// plus as much again for the batch ahead of it).
    ///
    /// # Errors
    /// The write failed or timed out.
    pub async fn wait(self) -> Result<(), DeviceError> {
        match tokio::time::timeout(self.timeout * 2, self.outcome).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(DeviceError::Write {
                path: self.path,
                reason,
            }),
            Ok(Err(_)) => Err(DeviceError::Closed(self.path)),
            Err(_) => Err(DeviceError::Timeout {
                path: self.path,
                timeout: self.timeout,
            }),
        }
    }
}

/// The task that writes one device's lines.
struct Writer {
    path: String,
    prefix: Vec<u8>,
    /// The last link, when chaining.
    chain: Option<String>,
    /// The link before the batch being gathered: a batch that fails is
    /// not on record, so the chain goes back to it.
    batch_start: Option<String>,
    salt: Arc<Salt>,
    sink: Arc<dyn Sink>,
    timeout: Duration,
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        while let Some(first) = jobs.recv().await {
            let mut next = Some(first);
            // Gather what is already queued behind the first job.
            while let Some(job) = next.take() {
                match job {
                    Job::Line(line, done) => {
                        self.push(&mut batch, line);
                        waiters.push(done);
                    }
                    Job::Reopen(done) => {
                        // Lines before the reopen go to the old file.
                        self.flush(&mut batch, &mut waiters).await;
                        let r = self.sink.reopen().await.map_err(|e| e.to_string());
                        if let Err(e) = &r {
                            tracing::error!(device = %self.path, error = %e, "audit: reopening failed");
                        }
                        let _ = done.send(r);
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = jobs.try_recv().ok();
                }
            }
            self.flush(&mut batch, &mut waiters).await;
        }
    }

    /// Appends one entry's line (prefix, link, newline) to the batch.
    fn push(&mut self, batch: &mut Vec<u8>, mut line: Vec<u8>) {
        if batch.is_empty() {
            self.batch_start = self.chain.clone();
        }
        if let Some(previous) = self.chain.as_mut() {
            let link = self.salt.hash_parts(&[previous.as_bytes(), &line]);
            chain::append_link(&mut line, &link);
            *previous = link;
        }
        batch.extend_from_slice(&self.prefix);
        batch.extend_from_slice(&line);
        batch.push(b'\n');
    }

    /// Writes the batch and tells its waiters.
    async fn flush(
        &mut self,
        batch: &mut Vec<u8>,
        waiters: &mut Vec<oneshot::Sender<Result<(), String>>>,
    ) {
        if waiters.is_empty() {
            return;
        }
        let outcome = match tokio::time::timeout(self.timeout, self.sink.write(batch)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("the write took longer than {:?}", self.timeout)),
        };
        if let Err(e) = &outcome {
            tracing::error!(device = %self.path, error = %e, "audit: a device failed to write");
            self.chain = self.batch_start.take();
        }
        for w in waiters.drain(..) {
            let _ = w.send(outcome.clone());
        }
        batch.clear();
    }
}
