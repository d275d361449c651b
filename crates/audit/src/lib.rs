//! Audit devices, as OpenBao 2.x has them, plus a tamper-evident chain.
//!
//! The core builds one [`Entry`] per request and one per response (in
//! clear) and hands it to the [`Broker`]; every [`Device`] hashes its own
//! copy with its salt and options ([`Entry::hashed`]) and writes it through
//! its [`Sink`] in batches. The crate owns:
//! - [`salt`]: a device's HMAC key and OpenBao's `hmac-sha256:<hex>`;
//! - [`hash`]: which values are hashed (strings, deeply; not times, not the
//!   mount's non-HMAC keys);
//! - [`entry`]: the entry's JSON shape;
//! - [`options`]: the options every device type shares;
//! - [`sink`]: the destinations (`file`, ...);
//! - [`device`]: a device's writer (batching, the chain);
//! - [`broker`]: every device, and the fail-closed rule;
//! - [`chain`]: `hash_chain` links and their verification.
#![forbid(unsafe_code)]

pub mod broker;
pub mod chain;
pub mod device;
pub mod entry;
pub mod hash;
pub mod options;
pub mod salt;
pub mod sink;

pub use broker::{Broker, NotRecorded};
pub use device::{Device, DeviceConfig, DeviceError};
pub use entry::Entry;
pub use options::ConfigError;
pub use salt::Salt;
pub use sink::Sink;
