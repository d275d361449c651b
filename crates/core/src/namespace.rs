//! Namespaces, as data: the stored entry of a namespace, OpenBao's rules
//! for their names, and how a request's `X-Vault-Namespace` header and
//! path are read. Pure (no storage, no core), so it can be fuzzed; the
//! serving state of a namespace is [`crate::node::tenant`].
//!
//! A namespace is addressed by its path (`ns1/ns2/`, always with a
//! trailing slash; the root namespace's is empty) and identified by a
//! short random id (six base62 characters, OpenBao's length), which
//! suffixes the ids of the tokens and leases made in it (`s.xxxx.<id>`),
//! and by a uuid, which names its storage (`namespaces/<uuid>/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

/// The root namespace's id, as OpenBao names it.
pub const ROOT_ID: &str = "root";

/// Names no namespace segment may take (OpenBao's list): they are, or
/// were, paths of the system's own mounts.
const RESERVED: [&str; 9] = [
    "",
    ".",
    "..",
    "root",
    "sys",
    "audit",
    "auth",
    "cubbyhole",
    "identity",
];

/// Length of a namespace id (OpenBao's: one more than Vault's five).
pub const ID_LEN: usize = 6;

/// A namespace as stored (`core/namespaces/<uuid>` in the barrier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceEntry {
    /// The short id, suffix of the namespace's token and lease ids.
    pub id: String,
    /// The uuid naming the namespace's storage.
    pub uuid: String,
    /// The full path, with a trailing slash (`ns1/ns2/`).
    pub path: String,
    /// Free string metadata.
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    /// Being deleted: requests to it are refused and it cannot be changed.
    #[serde(default)]
    pub tainted: bool,
    /// The hex SHA-256 of the key that unlocks the namespace's API, when
    /// it is locked (the key itself is handed out once and never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_key_hash: Option<String>,
}

impl NamespaceEntry {
    /// The root namespace.
    pub fn root() -> Self {
        NamespaceEntry {
            id: ROOT_ID.into(),
            uuid: "00000000-0000-0000-0000-000000000000".into(),
            path: String::new(),
            custom_metadata: BTreeMap::new(),
            tainted: false,
            unlock_key_hash: None,
        }
    }

    /// Whether this is the root namespace.
    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    /// Whether the namespace's API is locked (by itself; an ancestor's
    /// lock is the registry's to find).
    pub fn locked(&self) -> bool {
        self.unlock_key_hash.is_some()
    }

    /// The barrier prefix of the namespace's storage (`""` for root).
    pub fn storage_prefix(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            format!("namespaces/{}/", self.uuid)
        }
    }

    /// The parent's path (`None` for root).
    pub fn parent_path(&self) -> Option<&str> {
        parent_of(&self.path)
    }

    /// Whether `self` is `other` or one of its descendants.
    pub fn is_within(&self, other: &NamespaceEntry) -> bool {
        self.path.starts_with(&other.path)
    }

    /// The API rendering (`sys/namespaces` reads and listings).
    pub fn render(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "uuid": self.uuid,
            "path": self.path,
            "custom_metadata": self.custom_metadata,
            "tainted": self.tainted,
            "locked": self.locked(),
        })
    }
}

/// The parent path of a namespace path (`ns1/ns2/` → `ns1/`, `ns1/` → ``);
/// `None` for the root's.
pub fn parent_of(path: &str) -> Option<&str> {
    let trimmed = path.strip_suffix('/')?;
    Some(match trimmed.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    })
}

/// OpenBao's canonical form of a namespace path: no leading slash, no
/// empty, `.` or `..` segments (resolved as a path is), one trailing
/// slash; the root namespace is `""`.
pub fn canonicalize(raw: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for s in raw.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for s in segments {
        out.push_str(s);
        out.push('/');
    }
    out
}

/// The header's namespace: canonical, with `root` meaning the root
/// namespace (`""`).
pub fn from_header(raw: &str) -> String {
    let canonical = canonicalize(raw.trim());
    if canonical == "root/" {
        String::new()
    } else {
        canonical
    }
}

/// Parses the name of a child namespace as `sys/namespaces/:name` takes
/// it: one segment, not reserved, made of printable non-space characters
/// other than `*` and `+`. Returns it with its trailing slash.
pub fn parse_name(raw: &str) -> Result<String> {
    let name = canonicalize(raw);
    let Some(clipped) = name.strip_suffix('/') else {
        return Err(Error::bad_request("namespace name cannot be empty"));
    };
    if clipped.contains('/') {
        return Err(Error::bad_request("namespace name cannot contain /"));
    }
    validate_segment(clipped).map_err(|e| match e {
        NameError::Reserved => Error::bad_request(format!(
            "{name:?} is a reserved path and cannot be used as a namespace name"
        )),
        other => other.into_error(clipped),
    })?;
    Ok(name)
}

/// Why a segment is not a namespace name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameError {
    Reserved,
    Unprintable(char),
    Space,
    Wildcard(char),
}

impl NameError {
    /// OpenBao's message for the segment.
    fn into_error(self, segment: &str) -> Error {
        Error::bad_request(match self {
            NameError::Reserved => {
                format!("{segment:?} is a reserved path and cannot be used as a namespace name")
            }
            NameError::Unprintable(c) => format!(
                "{segment:?} contains unicode characters that cannot be used in a namespace name: {:?}",
                c.to_string()
            ),
            NameError::Space => format!(
                "{segment:?} contains space characters that cannot be used in a namespace name"
            ),
            NameError::Wildcard(c) => format!(
                "{segment:?} contains wildcard characters that cannot be used in a namespace name: '{c}'"
            ),
        })
    }
}

fn validate_segment(segment: &str) -> std::result::Result<(), NameError> {
    if RESERVED.contains(&segment) {
        return Err(NameError::Reserved);
    }
    for c in segment.chars() {
        if c.is_whitespace() {
            return Err(NameError::Space);
        }
        if c.is_control() {
            return Err(NameError::Unprintable(c));
        }
        if c == '*' || c == '+' {
            return Err(NameError::Wildcard(c));
        }
    }
    Ok(())
}

/// Where each namespace's data is stored: what the node-wide token and
/// lease stores ask to place an entry under its namespace's prefix.
pub trait Places: Send + Sync + 'static {
    /// The barrier prefix of namespace `ns_id`'s storage (`""` for root;
    /// `None` when no such namespace exists).
    fn prefix_of(&self, ns_id: &str) -> Option<String>;
    /// The ids of every namespace but root.
    fn ids(&self) -> Vec<String>;
    /// The path of namespace `ns_id` (`ns1/ns2/`; `""` for root; `None`
    /// when no such namespace exists).
    fn path_of(&self, ns_id: &str) -> Option<String> {
        (ns_id.is_empty() || ns_id == ROOT_ID).then(String::new)
    }
    /// Whether only the root namespace exists.
    fn only_root(&self) -> bool {
        self.ids().is_empty()
    }
}

/// `base`, a view of the root namespace's storage, moved under namespace
/// `ns`'s prefix (`""`: root, `base` itself); `None` when `ns` does not
/// exist. The node-wide token and lease stores place their entries so.
pub fn view_in(places: &dyn Places, base: &View, ns: &str) -> Option<View> {
    if ns.is_empty() {
        return Some(base.clone());
    }
    let prefix = places.prefix_of(ns)?;
    Some(View::new(
        base.storage().clone(),
        &format!("{prefix}{}", base.prefix()),
    ))
}

/// Only the root namespace (stores opened outside a node, in tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct RootOnly;

impl Places for RootOnly {
    fn prefix_of(&self, ns_id: &str) -> Option<String> {
        (ns_id.is_empty() || ns_id == ROOT_ID).then(String::new)
    }

    fn ids(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `namespace` label of OpenBao's metrics: `root`, or the
/// namespace's path without its trailing slash.
pub fn metric_label(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "root",
        p => p,
    }
}

/// Splits the namespace id off a token id or lease id (`s.abc.XyZ12q` →
/// `Some("XyZ12q")`); `None` when it has none (the root namespace's).
/// Only a suffix of exactly [`ID_LEN`] base62 characters counts, so
/// random parts of ids are never mistaken for one.
pub fn id_suffix(id: &str) -> Option<&str> {
    let (head, tail) = id.rsplit_once('.')?;
    // A token prefix alone (`s.`) is not a suffix.
    if head.is_empty() || matches!(head, "s" | "b" | "hvs" | "hvb") {
        return None;
    }
    (tail.len() == ID_LEN && tail.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(tail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_follow_openbao() {
        assert_eq!(canonicalize(""), "");
        assert_eq!(canonicalize("/"), "");
        assert_eq!(canonicalize("ns1"), "ns1/");
        assert_eq!(canonicalize("/ns1/ns2"), "ns1/ns2/");
        assert_eq!(canonicalize("ns1//ns2/"), "ns1/ns2/");
        assert_eq!(canonicalize("ns1/../ns2"), "ns2/");
        assert_eq!(from_header("root"), "");
        assert_eq!(from_header("root/"), "");
        assert_eq!(from_header("/ns1/"), "ns1/");
    }

    #[test]
    fn names_follow_openbao_rules() {
        assert_eq!(parse_name("ns1").unwrap(), "ns1/");
        assert_eq!(parse_name("x.y").unwrap(), "x.y/");
        for reserved in ["root", "sys", "audit", "auth", "cubbyhole", "identity"] {
            let e = parse_name(reserved).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "\"{reserved}/\" is a reserved path and cannot be used as a namespace name"
                )
            );
        }
        assert_eq!(
            parse_name("a b").unwrap_err().to_string(),
            "\"a b\" contains space characters that cannot be used in a namespace name"
        );
        assert_eq!(
            parse_name("a*").unwrap_err().to_string(),
            "\"a*\" contains wildcard characters that cannot be used in a namespace name: '*'"
        );
        assert_eq!(
            parse_name("a/b").unwrap_err().to_string(),
            "namespace name cannot contain /"
        );
        assert_eq!(
            parse_name("").unwrap_err().to_string(),
            "namespace name cannot be empty"
        );
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("ns1/ns2/"), Some("ns1/"));
        assert_eq!(parent_of("ns1/"), Some(""));
        assert_eq!(parent_of(""), None);
    }

    #[test]
    fn id_suffixes() {
        assert_eq!(
            id_suffix("s.AWIPwkoL2MlDfmhz4ANXgUBZ.LDvL7u"),
            Some("LDvL7u")
        );
        assert_eq!(id_suffix("s.AWIPwkoL2MlDfmhz4ANXgUBZ"), None);
        assert_eq!(id_suffix("V5aY3CGWI5vvbbXWpgjRcDo4.LDvL7u"), Some("LDvL7u"));
        assert_eq!(id_suffix("V5aY3CGWI5vvbbXWpgjRcDo4"), None);
        assert_eq!(id_suffix("secret/creds/x/abc.LDvL7u"), Some("LDvL7u"));
        assert_eq!(id_suffix("s.LDvL7u"), None);
        assert_eq!(id_suffix("root"), None);
    }
}
