//! The stored records of the AppRole method (roles, secret ids, indexes)
//! and the pure rules on their inputs: role names, CIDR lists and their
//! subset relation, secret id metadata, OpenBao's wording of the errors.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_sdk::cidr::BoundCidr;
use strongroom_sdk::login::{Legacy, TokenParams};
use strongroom_sdk::{Error, Result};

/// The longest role name OpenBao accepts, in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 4096;

/// A role as stored under `role/<lowercased name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleEntry {
    /// The (lowercased) role name.
    pub name: String,
    /// The role id, in clear: it is read back through `role-id`.
    pub role_id: String,
    /// Whether a login must present a secret id.
    pub bind_secret_id: bool,
    /// CIDR blocks allowed to log in (`None`: never set, reads as null).
    pub secret_id_bound_cidrs: Option<Vec<String>>,
    /// Default use limit of new secret ids (0: unlimited).
    pub secret_id_num_uses: u64,
    /// Default TTL of new secret ids in seconds (0: none).
    pub secret_id_ttl: u64,
    /// Set at creation only; secret ids are local to the cluster.
    pub local_secret_ids: bool,
    /// The token parameters (stored flattened: `token_ttl`, ...,
    /// `legacy_policies`, `legacy_period`).
    #[serde(flatten)]
    pub params: TokenParams,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            name: String::new(),
            role_id: String::new(),
            bind_secret_id: true,
            secret_id_bound_cidrs: None,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            params: TokenParams::new(Legacy::APPROLE),
        }
    }
}

impl RoleEntry {
    /// The secret id CIDR blocks (empty when unset).
    pub fn secret_cidrs(&self) -> &[String] {
        self.secret_id_bound_cidrs.as_deref().unwrap_or(&[])
    }

    /// OpenBao's rule: a role must bind a secret id or some CIDR blocks.
    pub fn check_constraints(&self) -> Result<()> {
        if !self.bind_secret_id && self.secret_cidrs().is_empty() {
            return Err(Error::bad_request(
                "at least one constraint should be enabled on the role",
            ));
        }
        Ok(())
    }

    /// The role as `GET role/:name` shows it (keys in OpenBao's order).
    pub fn render(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("bind_secret_id".into(), self.bind_secret_id.into());
        d.insert("local_secret_ids".into(), self.local_secret_ids.into());
        d.insert(
            "secret_id_bound_cidrs".into(),
            nullable_list(self.secret_cidrs()),
        );
        d.insert("secret_id_num_uses".into(), self.secret_id_num_uses.into());
        d.insert("secret_id_ttl".into(), self.secret_id_ttl.into());
        self.params.render(&mut d, Legacy::APPROLE);
        d
    }
}

/// A list that reads as `null` when empty (OpenBao's nil slices).
pub fn nullable_list(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::from(items.to_vec())
    }
}

/// A secret id as stored under `secret_id/<role hash>/<secret id HMAC>`.
/// The secret id itself is never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretIdEntry {
    /// The HMAC of the secret id (hex), checked against the storage key.
    pub hmac: String,
    /// The public handle of the secret id.
    pub accessor: String,
    /// Remaining uses (0: unlimited).
    pub num_uses: u64,
    /// The TTL it was created with, in seconds (0: none).
    pub ttl: u64,
    /// CIDR blocks allowed to log in with it.
    pub cidr_list: Vec<String>,
    /// CIDR blocks the issued tokens are bound to (overrides the role's).
    pub token_bound_cidrs: Vec<String>,
    /// Metadata copied onto the issued tokens.
    pub metadata: Map<String, Value>,
    /// Creation time, nanoseconds since the epoch.
    pub created_ns: u64,
    /// Last change (use count), nanoseconds since the epoch.
    pub updated_ns: u64,
    /// Expiry, nanoseconds since the epoch (0: never).
    pub expires_ns: u64,
}

impl SecretIdEntry {
    /// Whether the secret id has expired at `now_ns`.
    pub fn expired(&self, now_ns: u64) -> bool {
        self.expires_ns != 0 && now_ns >= self.expires_ns
    }

    /// The entry as the lookup endpoints show it.
    pub fn render(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("cidr_list".into(), self.cidr_list.clone().into());
        d.insert("creation_time".into(), rfc3339(self.created_ns).into());
        d.insert("expiration_time".into(), rfc3339(self.expires_ns).into());
        d.insert("last_updated_time".into(), rfc3339(self.updated_ns).into());
        d.insert("metadata".into(), Value::Object(self.metadata.clone()));
        d.insert("secret_id_accessor".into(), self.accessor.clone().into());
        d.insert("secret_id_num_uses".into(), self.num_uses.into());
        d.insert("secret_id_ttl".into(), self.ttl.into());
        d.insert(
            "token_bound_cidrs".into(),
            self.token_bound_cidrs.clone().into(),
        );
        d
    }
}

/// The accessor index entry under `accessor/<accessor HMAC>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessorEntry {
    /// The hash of the owning role's name.
    pub role_hash: String,
    /// The HMAC of the secret id.
    pub secret_hmac: String,
}

/// The role id index entry under `role_id/<role id HMAC>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleIdEntry {
    /// The role the id belongs to.
    pub name: String,
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 with nanoseconds; 0 is Go's zero time, as OpenBao shows a
/// secret id that never expires.
pub fn rfc3339(ns: u64) -> String {
    if ns == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// A parsed CIDR block (`addr/len`, the slash required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    cidr: BoundCidr,
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    /// Parses a block as OpenBao's CIDR validation does: `addr/len` only.
    pub fn parse(s: &str) -> Option<Block> {
        let s = s.trim();
        let (addr, len) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max || len.starts_with('+') {
            return None;
        }
        let cidr = BoundCidr::parse(s).ok()?;
        Some(Block { cidr, addr, prefix })
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip)
    }

    /// Whether every address of `other` lies in this block.
    pub fn covers(&self, other: &Block) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && other.prefix >= self.prefix
            && self.cidr.contains(other.addr)
    }
}

/// Validates a list of CIDR blocks; `what` is "CIDR blocks" or "token CIDR
/// blocks" as in OpenBao's messages.
pub fn parse_blocks(items: &[String], what: &str) -> Result<Vec<Block>> {
    items
        .iter()
        .map(|s| {
            Block::parse(s).ok_or_else(|| {
                Error::bad_request(format!(
                    "failed to validate {what}: invalid CIDR address: {s}"
                ))
            })
        })
        .collect()
}

/// Checks that every block of `inner` lies in some block of `outer` (an
/// empty `outer` allows anything).
pub fn check_subset(outer: &[String], inner: &[String], what: &str) -> Result<()> {
    if outer.is_empty() || inner.is_empty() {
        return Ok(());
    }
    let outer_blocks = parse_blocks(outer, what)?;
    let inner_blocks = parse_blocks(inner, what)?;
    let ok = inner_blocks
        .iter()
        .all(|i| outer_blocks.iter().any(|o| o.covers(i)));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "failed to verify subset relationship between CIDR blocks on the role {} and CIDR blocks on the secret ID {}",
            go_quote_list(outer),
            go_quote_list(inner)
        )))
    }
}

/// Whether `ip` is in one of the blocks (blocks are validated at write).
pub fn ip_allowed(blocks: &[String], ip: IpAddr) -> bool {
    blocks
        .iter()
        .filter_map(|b| Block::parse(b))
        .any(|b| b.contains(ip))
}

/// Parses secret id metadata: a JSON object of strings, given as a string.
pub fn parse_metadata(raw: &str) -> Result<Map<String, Value>> {
    if raw.trim().is_empty() {
        return Ok(Map::new());
    }
    let bad = || {
        Error::bad_request(
            "failed to parse metadata: failed to parse the input: invalid <key,value> format",
        )
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) if m.values().all(Value::is_string) => Ok(m),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_openbao_routing() {
        let state = crate::state::AppRole::default();
        let role_name = |n: &str| state.roles.name(n);
        assert_eq!(role_name("Web.App-1_x").unwrap(), "web.app-1_x");
        assert_eq!(role_name("a").unwrap(), "a");
        for bad in ["", "-ab", "ab.", "a b", "a/b", "ä", "a!b"] {
            assert_eq!(role_name(bad).unwrap_err().status(), 404, "{bad:?}");
        }
        assert!(role_name(&"a".repeat(4096)).is_ok());
        let err = role_name(&"a".repeat(4097)).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.to_string(),
            "role_name is longer than maximum of 4096 bytes"
        );
    }

    #[test]
    fn cidr_blocks_need_a_length_and_nest() {
        assert!(Block::parse("127.0.0.1").is_none());
        assert!(Block::parse("10.0.0.0/33").is_none());
        assert!(Block::parse("::1/128").is_some());
        let err = parse_blocks(&["bad".into()], "CIDR blocks").unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to validate CIDR blocks: invalid CIDR address: bad"
        );
        let role = vec!["10.0.0.0/8".to_string(), "192.168.1.0/24".to_string()];
        assert!(check_subset(&role, &["10.1.0.0/16".into()], "CIDR blocks").is_ok());
        assert!(check_subset(&role, &["192.168.1.128/25".into()], "CIDR blocks").is_ok());
        assert!(check_subset(&[], &["11.0.0.0/8".into()], "CIDR blocks").is_ok());
        let err = check_subset(&role, &["10.0.0.0/7".into()], "CIDR blocks").unwrap_err();
        assert_eq!(err.status(), 400);
        let err = check_subset(&role[..1], &["11.0.0.0/8".into()], "CIDR blocks").unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to verify subset relationship between CIDR blocks on the role [\"10.0.0.0/8\"] and CIDR blocks on the secret ID [\"11.0.0.0/8\"]"
        );
        assert!(ip_allowed(&role, "10.9.8.7".parse().unwrap()));
        assert!(ip_allowed(&role, "::ffff:10.9.8.7".parse().unwrap()));
        assert!(!ip_allowed(&role, "11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn metadata_is_a_json_object_of_strings() {
        assert_eq!(parse_metadata("").unwrap(), Map::new());
        let m = parse_metadata(r#"{"tag1": "production"}"#).unwrap();
        assert_eq!(m["tag1"], "production");
        for bad in ["notjson", r#"{"a":1}"#, "[1]", r#""x""#] {
            let err = parse_metadata(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert!(err.to_string().contains("invalid <key,value> format"));
        }
    }

    #[test]
    fn expiry_and_rendering() {
        let mut e = SecretIdEntry {
            hmac: "h".into(),
            accessor: "acc".into(),
            num_uses: 2,
            ttl: 0,
            cidr_list: vec![],
            token_bound_cidrs: vec![],
            metadata: Map::new(),
            created_ns: 1_000_000_000,
            updated_ns: 1_000_000_000,
            expires_ns: 0,
        };
        assert!(!e.expired(u64::MAX));
        let r = e.render();
        assert_eq!(r["expiration_time"], "0001-01-01T00:00:00Z");
        assert_eq!(r["creation_time"], "1970-01-01T00:00:01.000000000Z");
        assert!(!r.contains_key("secret_id"));
        e.expires_ns = 5;
        assert!(e.expired(5));
        assert!(!e.expired(4));
    }

    #[test]
    fn role_render_echoes_legacy_fields_only_when_used() {
        let mut r = RoleEntry::default();
        let d = r.render();
        assert_eq!(d["bind_secret_id"], true);
        assert_eq!(d["secret_id_bound_cidrs"], Value::Null);
        assert_eq!(d["token_bound_cidrs"], serde_json::json!([]));
        assert_eq!(d["token_type"], "default");
        assert!(!d.contains_key("policies") && !d.contains_key("period"));
        r.params.legacy_policies = Some(true);
        r.params.legacy_period = Some(true);
        r.params.token_period = 60;
        r.params.token_policies = vec!["x".into()];
        let d = r.render();
        assert_eq!(d["policies"], serde_json::json!(["x"]));
        assert_eq!(d["period"], 60);
    }

    #[test]
    fn roles_stored_before_token_params_load_and_store_unchanged() {
        // A role as the method has always stored it (field order included).
        let stored = r#"{"name":"web","role_id":"rid","bind_secret_id":false,"secret_id_bound_cidrs":["10.0.0.0/8"],"secret_id_num_uses":3,"secret_id_ttl":60,"local_secret_ids":true,"token_ttl":600,"token_max_ttl":1200,"token_policies":["dev"],"token_bound_cidrs":["10.1.0.0/16"],"token_explicit_max_ttl":3000,"token_no_default_policy":true,"token_num_uses":2,"token_period":0,"token_type":"service","token_strictly_bind_ip":true,"legacy_policies":true,"legacy_period":false}"#;
        let role: RoleEntry = serde_json::from_str(stored).unwrap();
        assert_eq!(role.name, "web");
        assert_eq!(role.secret_id_num_uses, 3);
        assert_eq!(role.params.token_ttl, 600);
        assert_eq!(role.params.token_policies, vec!["dev"]);
        assert_eq!(role.params.bound_cidrs(), ["10.1.0.0/16"]);
        assert_eq!(role.params.legacy_policies, Some(true));
        assert_eq!(role.render()["policies"], serde_json::json!(["dev"]));
        assert_eq!(serde_json::to_string(&role).unwrap(), stored);
        // A fresh role stores what a fresh role always stored.
        let fresh = RoleEntry {
            name: "a".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&fresh).unwrap(),
            r#"{"name":"a","role_id":"","bind_secret_id":true,"secret_id_bound_cidrs":null,"secret_id_num_uses":0,"secret_id_ttl":0,"local_secret_ids":false,"token_ttl":0,"token_max_ttl":0,"token_policies":[],"token_bound_cidrs":null,"token_explicit_max_ttl":0,"token_no_default_policy":false,"token_num_uses":0,"token_period":0,"token_type":"default","token_strictly_bind_ip":false,"legacy_policies":false,"legacy_period":false}"#
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote_list(&["a".into(), "b\"c".into()]),
            r#"["a" "b\"c"]"#
        );
    }
}
