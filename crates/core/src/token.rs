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
use crate::logical::{Auth, Operation, Response};
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
    /// Whether `renew` may extend it.
    #[serde(default)]
    pub renewable: bool,
    /// Periodic tokens renew to this period, in seconds (0: not periodic).
    #[serde(default)]
    pub period: u64,
}

impl TokenEntry {
    /// Whether the token carries the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Unix seconds at which the token expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        (self.ttl > 0).then(|| self.creation_time.saturating_add(self.ttl))
    }

    /// Whether the token has expired at `now` (unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }
}

/// What a new token is made of (after the caller applied its rules).
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// Policies, sorted and deduplicated by the caller.
    pub policies: Vec<String>,
    /// Free metadata.
    pub meta: Option<Map<String, Value>>,
    /// Human-readable name.
    pub display_name: String,
    /// TTL in seconds (0: none).
    pub ttl: u64,
    /// Explicit max TTL in seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Period in seconds (0: none).
    pub period: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Hashed id of the parent; `None` makes an orphan.
    pub parent: Option<String>,
    /// The path that created it.
    pub path: String,
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
        let new = NewToken {
            policies: vec!["root".into()],
            display_name: "root".into(),
            path: "auth/token/root".into(),
            ..Default::default()
        };
        let (id, _) = self.insert(id.filter(|i| !i.is_empty()), new).await?;
        Ok(id)
    }

    /// Creates a service token; returns its id and entry.
    pub async fn create(&self, new: NewToken) -> Result<(String, Arc<TokenEntry>)> {
        self.insert(None, new).await
    }

    /// Stores a new service token with `id`, or a fresh `s.` id.
    async fn insert(&self, id: Option<&str>, new: NewToken) -> Result<(String, Arc<TokenEntry>)> {
        let id = id
            .map(str::to_string)
            .unwrap_or_else(|| format!("s.{}", random_base62(24)));
        let entry = TokenEntry {
            id_hash: self.hash(&id),
            accessor: random_base62(24),
            policies: new.policies,
            path: new.path,
            display_name: new.display_name,
            creation_time: now_unix(),
            ttl: new.ttl,
            explicit_max_ttl: new.explicit_max_ttl,
            num_uses: 0,
            orphan: new.parent.is_none(),
            parent: new.parent,
            meta: new.meta,
            token_type: "service".into(),
            renewable: new.renewable,
            period: new.period,
        };
        self.store(entry.clone()).await?;
        Ok((id, Arc::new(entry)))
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

    /// Looks a token up by its accessor.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<Arc<TokenEntry>>> {
        let key = format!("{ACCESSOR_PREFIX}{}", self.hash(accessor));
        let Some(hash) = self.view.get(&key).await? else {
            return Ok(None);
        };
        let hash =
            String::from_utf8(hash).map_err(|_| Error::internal("corrupt accessor entry"))?;
        self.lookup_hash(&hash).await
    }

    async fn lookup_hash(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>> {
        if let Some(e) = self.cache.get(hash) {
            return Ok((!e.expired(now_unix())).then(|| e.clone()));
        }
        let Some(bytes) = self.view.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt token entry: {e}")))?;
        let entry = Arc::new(entry);
        self.cache.insert(hash.to_string(), entry.clone());
        Ok((!entry.expired(now_unix())).then_some(entry))
    }

    /// Looks a token id up: memory first, then storage.
    /// An expired token is not returned (the expiration manager, which
    /// revokes tokens on time, builds on this).
    pub async fn lookup(&self, id: &str) -> Result<Option<Arc<TokenEntry>>> {
        self.lookup_hash(&self.hash(id)).await
    }
}

/// The token as `lookup`/`lookup-self` render it.
fn render(id: &str, e: &TokenEntry) -> Map<String, Value> {
    let issue = humantime::format_rfc3339_nanos(
        UNIX_EPOCH + std::time::Duration::from_secs(e.creation_time),
    );
    let now = now_unix();
    let (ttl, expire_time) = match e.expires_at() {
        Some(at) => (
            at.saturating_sub(now),
            Value::String(
                humantime::format_rfc3339_nanos(UNIX_EPOCH + std::time::Duration::from_secs(at))
                    .to_string(),
            ),
        ),
        None => (0, Value::Null),
    };
    let mut v = json!({
        "accessor": e.accessor,
        "creation_time": e.creation_time,
        "creation_ttl": e.ttl,
        "display_name": e.display_name,
        "entity_id": "",
        "expire_time": expire_time,
        "explicit_max_ttl": e.explicit_max_ttl,
        "id": id,
        "issue_time": issue.to_string(),
        "meta": e.meta,
        "num_uses": e.num_uses,
        "orphan": e.orphan,
        "path": e.path,
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": ttl,
        "type": e.token_type,
    });
    if e.period > 0 {
        v["period"] = json!(e.period);
    }
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

/// `create` and `create-orphan`: a service token under the caller (or an
/// orphan), with OpenBao's rules for policies and TTLs.
async fn create(store: Arc<TokenStore>, ctx: Ctx) -> Result<Response> {
    let f = &ctx.fields;
    let caller_id = ctx
        .request
        .client_token
        .as_ref()
        .ok_or(Error::PermissionDenied)?;
    let parent = store
        .lookup(&caller_id.0)
        .await?
        .ok_or(Error::PermissionDenied)?;
    let orphan_path = ctx.request.path == "create-orphan";
    let no_parent = f.get_bool("no_parent")?.unwrap_or(false);
    if no_parent && !orphan_path && !parent.is_root() {
        return Err(Error::bad_request(
            "root or sudo privileges required to create orphan token",
        ));
    }
    match f.str_or_empty("type")?.as_str() {
        "" | "service" | "default" => {}
        // Batch tokens (encrypted, unpersisted) arrive with the rest of the
        // token store; refusing beats silently issuing a service token.
        "batch" => {
            return Err(Error::bad_request(
                "batch tokens are not available on this server yet",
            ))
        }
        other => {
            return Err(Error::bad_request(format!(
                "unsupported token type {other:?}"
            )))
        }
    }
    if f.get_int("num_uses")?.unwrap_or(0) != 0 {
        return Err(Error::bad_request(
            "num_uses is not available on this server yet",
        ));
    }
    if !f.str_or_empty("id")?.is_empty() {
        return Err(Error::bad_request(
            "custom token ids are not available on this server yet",
        ));
    }
    let mut policies: Vec<String> = match f.get_strings("policies")? {
        Some(p) if !p.is_empty() => p.into_iter().map(|p| p.trim().to_lowercase()).collect(),
        _ => parent
            .policies
            .iter()
            .filter(|p| p.as_str() != "default")
            .cloned()
            .collect(),
    };
    policies.retain(|p| !p.is_empty());
    if !parent.is_root() {
        if let Some(extra) = policies
            .iter()
            .find(|p| p.as_str() != "default" && !parent.policies.contains(p))
        {
            return Err(Error::bad_request(format!(
                "child policies must be subset of parent: {extra:?} is not"
            )));
        }
    }
    let is_root = policies.iter().any(|p| p == "root");
    if !is_root && !f.get_bool("no_default_policy")?.unwrap_or(false) {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();

    let secs =
        |name: &str| -> Result<u64> { Ok(f.get_duration(name)?.map(|d| d.as_secs()).unwrap_or(0)) };
    let explicit_max_ttl = secs("explicit_max_ttl")?;
    let period = secs("period")?;
    let max = ctx.mount.max_lease_ttl.as_secs();
    let mut ttl = match (secs("ttl")?, period) {
        (0, 0) if is_root => 0,
        (0, 0) => ctx.mount.default_lease_ttl.as_secs(),
        (0, p) => p,
        (t, _) => t,
    };
    if ttl > 0 && period == 0 {
        ttl = ttl.min(max);
    }
    if explicit_max_ttl > 0 {
        ttl = if ttl == 0 {
            explicit_max_ttl
        } else {
            ttl.min(explicit_max_ttl)
        };
    }
    let display_name = match f.str_or_empty("display_name")?.trim() {
        "" => "token".to_string(),
        name => format!("token-{name}"),
    };
    let meta = f
        .get_kv_pairs("meta")?
        .map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    let (id, entry) = store
        .create(NewToken {
            policies: policies.clone(),
            meta,
            display_name,
            ttl,
            explicit_max_ttl,
            period,
            renewable: f.get_bool("renewable")?.unwrap_or(true),
            parent: (!no_parent && !orphan_path).then(|| parent.id_hash.clone()),
            path: format!("auth/token/{}", ctx.request.path),
        })
        .await?;
    Ok(Response {
        auth: Some(Auth {
            client_token: id,
            accessor: entry.accessor.clone(),
            policies: policies.clone(),
            token_policies: policies,
            metadata: entry.meta.clone(),
            lease_duration: entry.ttl,
            renewable: entry.renewable,
            entity_id: String::new(),
            token_type: "service".into(),
            orphan: entry.orphan,
            mfa_requirement: None,
            num_uses: 0,
        }),
        ..Default::default()
    })
}

fn create_fields() -> Vec<Field> {
    vec![
        Field::new(
            "policies",
            FieldType::CommaStringSlice,
            "Policies of the token (default: the parent's).",
        ),
        Field::new("meta", FieldType::KvPairs, "Arbitrary key=value metadata."),
        Field::new(
            "no_parent",
            FieldType::Bool,
            "Create an orphan (root only on this path).",
        ),
        Field::new(
            "no_default_policy",
            FieldType::Bool,
            "Do not attach the default policy.",
        ),
        Field::new(
            "renewable",
            FieldType::Bool,
            "Whether the token can be renewed (default true).",
        ),
        Field::new(
            "ttl",
            FieldType::DurationSecond,
            "Initial TTL (default: the mount's default lease TTL).",
        ),
        Field::new(
            "explicit_max_ttl",
            FieldType::DurationSecond,
            "Hard limit on the token's life.",
        ),
        Field::new(
            "period",
            FieldType::DurationSecond,
            "Make a periodic token renewed to this period.",
        ),
        Field::new("display_name", FieldType::String, "Name shown in lookups."),
        Field::new("num_uses", FieldType::Int, "Maximum uses (0: unlimited)."),
        Field::new("type", FieldType::String, "service or batch."),
        Field::new("id", FieldType::String, "A custom id (root only)."),
    ]
}

/// The `token` auth backend over `store`.
pub fn backend(store: Arc<TokenStore>) -> Backend<TokenStore> {
    let token_field = || vec![Field::new("token", FieldType::String, "Token to look up.")];
    Backend::new(
        store,
        vec![
            Path::new("create")
                .fields(create_fields())
                .op(Operation::Update, handler(create), "Create a token as a child of the calling token.")
                .help(
                    "The token create path is used to create new tokens.",
                    "Creates a service token whose parent is the calling token, with the given policies (a subset of the parent's unless the parent is root), TTLs and metadata.",
                ),
            Path::new("create-orphan")
                .fields(create_fields())
                .op(Operation::Update, handler(create), "Create a token without a parent.")
                .help(
                    "The token create path is used to create new orphan tokens.",
                    "Creates a service token with no parent: it survives the revocation of the calling token.",
                ),
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
