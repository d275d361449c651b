//! The token store: tokens are persisted by salted hash (HMAC-SHA256 under a
//! per-server salt kept behind the barrier), never in plaintext, and cached
//! in memory so that validating a request's token costs no storage read and
//! takes no global lock. The token auth backend (`auth/token/`) answers
//! lookups. Policies, children, TTLs and revocation build on this model.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, View};
use crate::framework::{handler, Backend, Ctx, Field, FieldType, Path};
use crate::logical::{Operation, Response};
use crate::{Error, Result};

/// The salt's key in the token store's view.
const SALT_KEY: &str = "salt";
/// Prefix of token entries by hashed id.
const ID_PREFIX: &str = "id/";
/// Prefix of accessor entries (accessor -> hashed id).
const ACCESSOR_PREFIX: &str = "accessor/";

/// A stored token. The id itself is never stored, only its salted hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// HMAC of the token id, hex.
    pub id_hash: String,
    /// The token's accessor.
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// The path that created it.
    pub path: String,
    /// Human-readable name.
    pub display_name: String,
    /// Unix seconds of creation.
    pub creation_time: u64,
    /// TTL in seconds at creation, 0 for none.
    pub ttl: u64,
    /// Explicit maximum TTL in seconds, 0 for none.
    pub explicit_max_ttl: u64,
    /// Remaining uses, 0 for unlimited.
    pub num_uses: u64,
    /// No parent.
    pub orphan: bool,
    /// Hashed id of the parent, if any.
    pub parent: Option<String>,
    /// Free metadata.
    pub meta: Option<Map<String, Value>>,
    /// `service` or `batch`.
    pub token_type: String,
}

impl TokenEntry {
    /// Whether the token carries the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }
}

/// The token store of an unsealed server.
pub struct TokenStore {
    view: View,
    salt: hmac::Key,
    cache: DashMap<String, Arc<TokenEntry>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// Random base62 text of `len` characters.
pub fn random_base62(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // aws-lc's RNG does not fail on supported platforms; an error here
        // would leave `buf` as zeros, so refuse to continue rather than
        // produce a guessable token.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(&mut buf).expect("system random generator failed");
        for b in buf {
            // Rejection sampling keeps the distribution uniform.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenStore {
    /// Opens the store in `view`, creating its salt on first use.
    pub async fn open(view: View) -> Result<Self> {
        let salt = match view.get(SALT_KEY).await? {
            Some(s) => Zeroizing::new(s),
            None => {
                let s = Barrier::generate_key();
                view.put(SALT_KEY, &s).await?;
                s
            }
        };
        Ok(TokenStore {
            view,
            salt: hmac::Key::new(hmac::HMAC_SHA256, &salt),
            cache: DashMap::new(),
        })
    }

    /// The salted hash under which a token id is stored.
    pub fn hash(&self, id: &str) -> String {
        hex::encode(hmac::sign(&self.salt, id.as_bytes()).as_ref())
    }

    /// Creates a root token, with `id` or a fresh `s.` id; returns the id.
    pub async fn create_root(&self, id: Option<&str>) -> Result<String> {
        let id = match id {
            Some(i) if !i.is_empty() => i.to_string(),
            _ => format!("s.{}", random_base62(24)),
        };
        let entry = TokenEntry {
            id_hash: self.hash(&id),
            accessor: random_base62(24),
            policies: vec!["root".into()],
            path: "auth/token/root".into(),
            display_name: "root".into(),
            creation_time: now_unix(),
            ttl: 0,
            explicit_max_ttl: 0,
            num_uses: 0,
            orphan: true,
            parent: None,
            meta: None,
            token_type: "service".into(),
        };
        self.store(entry).await?;
        Ok(id)
    }

    async fn store(&self, entry: TokenEntry) -> Result<()> {
        let bytes = serde_json::to_vec(&entry).map_err(Error::internal)?;
        let accessor_key = format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor));
        self.view
            .batch(vec![
                crate::storage::BatchOp::Put(format!("{ID_PREFIX}{}", entry.id_hash), bytes),
                crate::storage::BatchOp::Put(accessor_key, entry.id_hash.as_bytes().to_vec()),
            ])
            .await?;
        self.cache.insert(entry.id_hash.clone(), Arc::new(entry));
        Ok(())
    }

    /// Looks a token id up: memory first, then storage.
    pub async fn lookup(&self, id: &str) -> Result<Option<Arc<TokenEntry>>> {
        let hash = self.hash(id);
        if let Some(e) = self.cache.get(&hash) {
            return Ok(Some(e.clone()));
        }
        let Some(bytes) = self.view.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt token entry: {e}")))?;
        let entry = Arc::new(entry);
        self.cache.insert(hash, entry.clone());
        Ok(Some(entry))
    }
}

/// The token as `lookup`/`lookup-self` render it.
fn render(id: &str, e: &TokenEntry) -> Map<String, Value> {
    let issue = humantime::format_rfc3339_nanos(
        UNIX_EPOCH + std::time::Duration::from_secs(e.creation_time),
    );
    let v = json!({
        "accessor": e.accessor,
        "creation_time": e.creation_time,
        "creation_ttl": e.ttl,
        "display_name": e.display_name,
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": e.explicit_max_ttl,
        "id": id,
        "issue_time": issue.to_string(),
        "meta": e.meta,
        "num_uses": e.num_uses,
        "orphan": e.orphan,
        "path": e.path,
        "policies": e.policies,
        "renewable": false,
        "ttl": e.ttl,
        "type": e.token_type,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn lookup_self(store: Arc<TokenStore>, ctx: Ctx) -> Result<Response> {
    let token = ctx
        .request
        .client_token
        .as_ref()
        .ok_or(Error::PermissionDenied)?;
    let entry = store
        .lookup(&token.0)
        .await?
        .ok_or(Error::PermissionDenied)?;
    Ok(Response::data(render(&token.0, &entry)))
}

async fn lookup(store: Arc<TokenStore>, ctx: Ctx) -> Result<Response> {
    let token = ctx.fields.str_or_empty("token")?;
    if token.is_empty() {
        return lookup_self(store, ctx).await;
    }
    match store.lookup(&token).await? {
        Some(entry) => Ok(Response::data(render(&token, &entry))),
        None => Err(Error::bad_request("bad token")),
    }
}

/// The `token` auth backend over `store`.
pub fn backend(store: Arc<TokenStore>) -> Backend<TokenStore> {
    let token_field = || vec![Field::new("token", FieldType::String, "Token to look up.")];
    Backend::new(
        store,
        vec![
            Path::new("lookup-self")
                .fields(token_field())
                .op(Operation::Read, handler(lookup_self), "Look up the calling token.")
                .op(Operation::Update, handler(lookup_self), "Look up the calling token.")
                .help(
                    "Look up the calling token's properties.",
                    "Returns the properties of the token that authenticates the request.",
                ),
            Path::new("lookup")
                .fields(token_field())
                .op(Operation::Read, handler(lookup), "Look up a token.")
                .op(Operation::Update, handler(lookup), "Look up a token.")
                .help(
                    "Look up a token's properties.",
                    "Returns the properties of the given token, or of the calling token when none is given.",
                ),
        ],
        "The token credential backend is always enabled and builds in some core\nfunctionality like tokens and accessors.",
    )
}
