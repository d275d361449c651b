//! A device's salt: the HMAC-SHA256 key its entries are hashed with
//! (`hmac-sha256:<hex>`, OpenBao's format), kept in the barrier by the
//! core and never written anywhere else.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// The prefix of every hashed value.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// Bytes in a generated salt.
pub const SALT_LEN: usize = 32;

/// An HMAC key. `Debug` never shows it.
pub struct Salt {
    raw: Zeroizing<Vec<u8>>,
    key: hmac::Key,
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

impl Salt {
    /// A fresh random salt.
    ///
    /// # Errors
    /// If the system's random source fails.
    pub fn generate() -> Result<Salt, aws_lc_rs::error::Unspecified> {
        let mut raw = Zeroizing::new(vec![0u8; SALT_LEN]);
        aws_lc_rs::rand::fill(&mut raw)?;
        Ok(Salt::from_bytes(&raw))
    }

    /// The salt with these bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Salt {
        Salt {
            raw: Zeroizing::new(bytes.to_vec()),
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// The salt's bytes, to store in the barrier.
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// `hmac-sha256:<hex>` of `input`.
    pub fn hash(&self, input: &[u8]) -> String {
        let tag = hmac::sign(&self.key, input);
        let mut out = String::with_capacity(HMAC_PREFIX.len() + 64);
        out.push_str(HMAC_PREFIX);
        out.push_str(&hex::encode(tag.as_ref()));
        out
    }

    /// The hash of the concatenation of `parts` (no separator), without
    /// building it.
    pub fn hash_parts(&self, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p);
        }
        let tag = ctx.sign();
        format!("{HMAC_PREFIX}{}", hex::encode(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_openbaos_format_and_depend_on_the_salt() {
        // RFC 4231 test case 2: key "Jefe".
        let s = Salt::from_bytes(b"Jefe");
        assert_eq!(
            s.hash(b"what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            s.hash_parts(&[b"what do ya ", b"want for nothing?"]),
            s.hash(b"what do ya want for nothing?")
        );
        let a = Salt::generate().unwrap();
        let b = Salt::generate().unwrap();
        assert_ne!(a.hash(b"x"), b.hash(b"x"));
        assert_eq!(a.bytes().len(), SALT_LEN);
        assert_eq!(Salt::from_bytes(a.bytes()).hash(b"x"), a.hash(b"x"));
        assert!(!format!("{a:?}").contains(&hex::encode(a.bytes())));
    }
}
