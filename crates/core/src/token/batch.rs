//! Batch tokens: the token *is* its entry, serialised, encrypted and
//! authenticated with AES-256-GCM under a key kept behind the barrier, so
//! that nothing is written when one is issued (as OpenBao's batch tokens).
//! Layout: `b.` + base64url(nonce ‖ ciphertext ‖ tag). The token text is
//! bound as associated data, so a blob cannot be replayed under another
//! prefix.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TokenEntry;
use strongroom_sdk::{Error, Result};

/// What a batch token carries: the fields of its entry that can differ
/// from one batch token to another, under one-letter names (tokens travel
/// in every request header, so size matters).
#[derive(Serialize, Deserialize)]
struct Body {
    #[serde(rename = "p")]
    policies: Vec<String>,
    #[serde(rename = "a")]
    path: String,
    #[serde(rename = "d", default, skip_serializing_if = "String::is_empty")]
    display_name: String,
    #[serde(rename = "c")]
    creation_time: u64,
    #[serde(rename = "t", default)]
    ttl: u64,
    #[serde(rename = "x", default, skip_serializing_if = "is_zero")]
    explicit_max_ttl: u64,
    #[serde(rename = "e", default)]
    expire_time: u64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    meta: Option<Map<String, Value>>,
    #[serde(rename = "o", default, skip_serializing_if = "String::is_empty")]
    role: String,
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    bound_cidrs: Vec<strongroom_sdk::cidr::BoundCidr>,
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    namespace_id: String,
    #[serde(rename = "i", default, skip_serializing_if = "String::is_empty")]
    entity_id: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Body {
    fn of(e: &TokenEntry) -> Body {
        Body {
            policies: e.policies.clone(),
            path: e.path.clone(),
            display_name: e.display_name.clone(),
            creation_time: e.creation_time,
            ttl: e.ttl,
            explicit_max_ttl: e.explicit_max_ttl,
            expire_time: e.expire_time,
            parent: e.parent.clone(),
            meta: e.meta.clone(),
            role: e.role.clone(),
            bound_cidrs: e.bound_cidrs.clone(),
            namespace_id: e.namespace_id.clone(),
            entity_id: e.entity_id.clone(),
        }
    }

    fn into_entry(self) -> TokenEntry {
        TokenEntry {
            id_hash: String::new(),
            accessor: String::new(),
            policies: self.policies,
            path: self.path,
            display_name: self.display_name,
            creation_time: self.creation_time,
            ttl: self.ttl,
            explicit_max_ttl: self.explicit_max_ttl,
            num_uses: 0,
            orphan: self.parent.is_none(),
            parent: self.parent,
            meta: self.meta,
            token_type: strongroom_sdk::token_type::TokenType::Batch,
            renewable: false,
            period: 0,
            expire_time: self.expire_time,
            last_renewal: 0,
            role: self.role,
            cubbyhole_id: String::new(),
            bound_cidrs: self.bound_cidrs,
            max_ttl: 0,
            namespace_id: self.namespace_id,
            entity_id: self.entity_id,
        }
    }
}

/// The prefix of batch token ids.
pub const PREFIX: &str = "b.";
/// Associated data binding blobs to their purpose.
const AAD: &[u8] = b"strongroom batch token v1";

/// Seals and opens batch tokens.
pub struct Codec {
    key: LessSafeKey,
}

impl Codec {
    /// A codec over a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::internal("invalid batch token key"))?;
        Ok(Codec {
            key: LessSafeKey::new(unbound),
        })
    }

    /// The token id carrying `entry`.
    pub fn seal(&self, entry: &TokenEntry) -> Result<String> {
        let mut body = serde_json::to_vec(&Body::of(entry)).map_err(Error::internal)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::internal("random source failed"))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .map_err(|_| Error::internal("sealing a batch token failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&body);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// The entry inside a batch token, or `None` for anything that was not
    /// sealed by this server (tampered, truncated, foreign).
    pub fn open(&self, id: &str) -> Option<TokenEntry> {
        let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.strip_prefix(PREFIX)?)
            .ok()?;
        if blob.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .ok()?;
        serde_json::from_slice::<Body>(plain)
            .ok()
            .map(Body::into_entry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry() -> TokenEntry {
        TokenEntry {
            id_hash: String::new(),
            accessor: String::new(),
            policies: vec!["default".into()],
            path: "auth/token/create".into(),
            display_name: "token".into(),
            creation_time: 1,
            ttl: 60,
            explicit_max_ttl: 0,
            num_uses: 0,
            orphan: false,
            parent: Some("abc".into()),
            meta: None,
            token_type: strongroom_sdk::token_type::TokenType::Batch,
            renewable: false,
            period: 0,
            expire_time: 61,
            last_renewal: 0,
            role: String::new(),
            cubbyhole_id: String::new(),
            bound_cidrs: vec![],
            namespace_id: String::new(),
            entity_id: String::new(),
            max_ttl: 0,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let codec = Codec::new(&[7u8; 32]).unwrap();
        let id = codec.seal(&entry()).unwrap();
        assert!(id.starts_with("b."));
        assert_eq!(codec.open(&id).unwrap(), entry());
        // Flip one character of the blob: authentication fails.
        let mut bytes = id.into_bytes();
        let i = bytes.len() - 5;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert!(codec.open(&String::from_utf8(bytes).unwrap()).is_none());
        assert!(codec.open("b.").is_none());
        assert!(codec.open("b.!!!").is_none());
        // Another server's key cannot open it.
        let other = Codec::new(&[8u8; 32]).unwrap();
        assert!(other.open(&codec.seal(&entry()).unwrap()).is_none());
    }
}
