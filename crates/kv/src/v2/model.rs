//! KV v2's stored records and the pure rules over them: the mount config,
//! a key's metadata with its versions, which version a read sees, trimming
//! to `max_versions`, and how OpenBao renders durations and times.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Versions kept per key when neither the key nor the mount says.
pub const DEFAULT_MAX_VERSIONS: u64 = 10;

/// The mount-wide settings (`config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Versions kept per key (0: the default, 10).
    pub max_versions: u64,
    /// Every write must carry `options.cas`.
    pub cas_required: bool,
    /// Versions are soft-deleted this many seconds after they are written
    /// (0: never).
    pub delete_version_after: u64,
    /// Every metadata write must carry `metadata_cas` (OpenBao's).
    #[serde(default)]
    pub metadata_cas_required: bool,
}

impl Config {
    /// The `config` read body.
    pub fn render(&self) -> Map<String, Value> {
        obj(json!({
            "cas_required": self.cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "metadata_cas_required": self.metadata_cas_required,
        }))
    }
}

/// What is known about one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// RFC 3339 time of the write.
    pub created_time: String,
    /// RFC 3339 time of the (soft) deletion, "" for none. May be in the
    /// future (`delete_version_after`).
    pub deletion_time: String,
    /// The data is gone for good.
    pub destroyed: bool,
}

impl VersionMeta {
    /// Whether a read at `now` sees the data.
    pub fn readable(&self, now: SystemTime) -> bool {
        !self.destroyed && !deleted_at(&self.deletion_time, now)
    }
}

/// A key's metadata, versions included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyMeta {
    /// RFC 3339 time of the first write.
    pub created_time: String,
    /// RFC 3339 time of the last change.
    pub updated_time: String,
    /// The newest version (0: none yet).
    pub current_version: u64,
    /// The oldest version still kept (0 until trimming happened).
    pub oldest_version: u64,
    /// Versions kept (0: the mount's setting).
    pub max_versions: u64,
    /// Writes to this key must carry `options.cas`.
    pub cas_required: bool,
    /// Seconds after which versions are soft-deleted (0: the mount's).
    pub delete_version_after: u64,
    /// Free string metadata.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// Counts metadata writes (OpenBao's metadata check-and-set).
    pub current_metadata_version: u64,
    /// Metadata writes to this key must carry `metadata_cas`.
    #[serde(default)]
    pub metadata_cas_required: bool,
    /// Every kept version.
    pub versions: BTreeMap<u64, VersionMeta>,
}

impl KeyMeta {
    /// Metadata of a key that has none yet, created at `now`.
    pub fn new(now: &str) -> KeyMeta {
        KeyMeta {
            created_time: now.to_string(),
            updated_time: now.to_string(),
            current_version: 0,
            oldest_version: 0,
            max_versions: 0,
            cas_required: false,
            delete_version_after: 0,
            custom_metadata: None,
            current_metadata_version: 0,
            metadata_cas_required: false,
            versions: BTreeMap::new(),
        }
    }

    /// The metadata read body.
    pub fn render(&self) -> Map<String, Value> {
        let versions: Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, m)| {
                (
                    v.to_string(),
                    json!({
                        "created_time": m.created_time,
                        "deletion_time": m.deletion_time,
                        "destroyed": m.destroyed,
                    }),
                )
            })
            .collect();
        obj(json!({
            "cas_required": self.cas_required,
            "created_time": self.created_time,
            "current_metadata_version": self.current_metadata_version,
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "metadata_cas_required": self.metadata_cas_required,
            "oldest_version": self.oldest_version,
            "updated_time": self.updated_time,
            "versions": versions,
        }))
    }

    /// The `metadata` block of a version as data reads and writes show it.
    pub fn version_block(&self, version: u64, m: &VersionMeta) -> Value {
        json!({
            "created_time": m.created_time,
            "custom_metadata": self.custom_metadata,
            "deletion_time": m.deletion_time,
            "destroyed": m.destroyed,
            "version": version,
        })
    }

    /// Adds version `current + 1` written at `now`, with `config`'s and the
    /// key's deletion rule; returns its number.
    pub fn add_version(&mut self, config: &Config, now: SystemTime) -> u64 {
        let version = self.current_version + 1;
        let created = rfc3339(now);
        let after = match self.delete_version_after {
            0 => config.delete_version_after,
            d => d,
        };
        let deletion_time = if after > 0 {
            rfc3339(now + Duration::from_secs(after))
        } else {
            String::new()
        };
        self.versions.insert(
            version,
            VersionMeta {
                created_time: created.clone(),
                deletion_time,
                destroyed: false,
            },
        );
        self.current_version = version;
        self.updated_time = created;
        version
    }

    /// Drops the oldest versions beyond the key's (else the mount's, else
    /// 10) `max_versions`; returns the versions whose data must go.
    pub fn trim(&mut self, config: &Config) -> Vec<u64> {
        let max = match (self.max_versions, config.max_versions) {
            (0, 0) => DEFAULT_MAX_VERSIONS,
            (0, m) => m,
            (m, _) => m,
        };
        let mut dropped = Vec::new();
        while self.versions.len() as u64 > max {
            let Some((&oldest, _)) = self.versions.iter().next() else {
                break;
            };
            self.versions.remove(&oldest);
            dropped.push(oldest);
        }
        if !dropped.is_empty() {
            self.oldest_version = self.versions.keys().next().copied().unwrap_or(0);
        }
        dropped
    }
}

/// Whether a deletion time (RFC 3339, "" for none) has come at `now`.
pub fn deleted_at(deletion_time: &str, now: SystemTime) -> bool {
    if deletion_time.is_empty() {
        return false;
    }
    humantime::parse_rfc3339(deletion_time).is_ok_and(|t| t <= now)
}

/// RFC 3339 with nanoseconds, as OpenBao writes times.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Now, for the handlers.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Go's `time.Duration` text for whole seconds: `0s`, `45s`, `1m30s`,
/// `1h0m0s` (OpenBao renders `delete_version_after` so).
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The `subkeys` view of a secret: its structure with every leaf `null`,
/// down to `depth` levels (0: all).
pub fn subkeys(data: &Value, depth: u64) -> Value {
    fn walk(v: &Value, level: u64, depth: u64) -> Value {
        match v {
            Value::Object(m) if depth == 0 || level < depth => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let inner = match v {
                            Value::Object(_) => {
                                strongroom_sdk::json::grow(|| walk(v, level + 1, depth))
                            }
                            _ => Value::Null,
                        };
                        (k.clone(), inner)
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    walk(data, 0, depth)
}

/// `v` as an object (empty for anything else).
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn durations_render_as_go_does() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(45), "45s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(3600), "1h0m0s");
    }

    #[test]
    fn versions_trim_to_the_effective_maximum() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut m = KeyMeta::new(&rfc3339(t));
        let config = Config {
            max_versions: 2,
            ..Default::default()
        };
        for _ in 0..3 {
            m.add_version(&config, t);
        }
        assert_eq!(m.trim(&config), vec![1]);
        assert_eq!((m.oldest_version, m.current_version), (2, 3));
        // The key's own maximum wins over the mount's.
        m.max_versions = 1;
        assert_eq!(m.trim(&config), vec![2]);
        assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn delete_version_after_sets_a_future_deletion() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut m = KeyMeta::new(&rfc3339(t));
        let config = Config {
            delete_version_after: 60,
            ..Default::default()
        };
        let v = m.add_version(&config, t);
        let vm = &m.versions[&v];
        assert!(vm.readable(t + Duration::from_secs(59)));
        assert!(!vm.readable(t + Duration::from_secs(60)));
    }

    #[test]
    fn subkeys_hide_values_and_respect_depth() {
        let d = json!({"a": 1, "b": {"c": {"d": 2}}, "e": [1]});
        assert_eq!(
            subkeys(&d, 0),
            json!({"a": null, "b": {"c": {"d": null}}, "e": null})
        );
        assert_eq!(subkeys(&d, 1), json!({"a": null, "b": null, "e": null}));
        assert_eq!(
            subkeys(&d, 2),
            json!({"a": null, "b": {"c": null}, "e": null})
        );
    }
}
