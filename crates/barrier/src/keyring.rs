//! Key material of the barrier: AES-256-GCM keys, the ciphertext envelope,
//! and the keyring (the numbered data-key terms) with its binary encoding.
//!
//! Envelope: `[term u32 BE][version = 2][12-byte random nonce][ciphertext || 16-byte tag]`,
//! authenticated with the storage path as associated data, so a ciphertext
//! copied to another path no longer opens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

/// Length of every key the barrier uses (AES-256).
pub const KEY_LEN: usize = 32;
/// The envelope version byte this barrier writes and reads.
const ENVELOPE_VERSION: u8 = 2;
/// Bytes before the ciphertext: term, version, nonce.
const HEADER_LEN: usize = 4 + 1 + NONCE_LEN;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Magic and version at the start of an encoded keyring.
const KEYRING_MAGIC: &[u8; 5] = b"SRKR\x01";
/// Encoded size of one term: number, seconds, nanoseconds, key.
const TERM_LEN: usize = 4 + 8 + 4 + KEY_LEN;

/// Fills `buf` from aws-lc's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // Invariant: aws-lc's RNG only fails when the operating system cannot
    // provide entropy; encrypting with predictable keys or nonces would be
    // worse than stopping.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("the system random number generator failed");
}

/// An AES-256-GCM key together with its raw bytes (kept for re-encoding the
/// keyring; zeroed on drop).
pub(crate) struct Key {
    raw: Zeroizing<[u8; KEY_LEN]>,
    cipher: LessSafeKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The ciphertext does not open under the key (wrong key, wrong path,
/// tampered or truncated bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenError;

impl Key {
    /// Wraps raw key bytes; `None` when the length is not [`KEY_LEN`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        raw.copy_from_slice(bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, raw.as_slice()).ok()?;
        Some(Key {
            raw,
            cipher: LessSafeKey::new(unbound),
        })
    }

    /// A fresh random key.
    pub(crate) fn generate() -> Self {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(raw.as_mut_slice());
        // Invariant: the buffer is exactly KEY_LEN bytes, which AES-256-GCM
        // always accepts.
        #[allow(clippy::expect_used)]
        Key::from_bytes(raw.as_slice()).expect("a 32-byte AES-256 key is always valid")
    }

    /// The raw key bytes.
    pub(crate) fn raw(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// Encrypts `plaintext` for storage at `path`, tagging the envelope with
    /// `term`.
    pub(crate) fn seal(&self, term: u32, path: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&term.to_be_bytes());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self.cipher.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(path.as_bytes()),
            &mut out[HEADER_LEN..],
        );
        // Invariant: AES-GCM sealing only fails for inputs above ~64 GiB,
        // which no storage entry reaches (backends refuse far smaller ones).
        #[allow(clippy::expect_used)]
        let tag = tag.expect("AES-GCM sealing of a storage entry cannot fail");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Decrypts an envelope stored at `path`, in place, returning the
    /// plaintext. The term must already have been checked by the caller.
    pub(crate) fn open(&self, path: &str, mut envelope: Vec<u8>) -> Result<Vec<u8>, OpenError> {
        if envelope.len() < HEADER_LEN + TAG_LEN || envelope[4] != ENVELOPE_VERSION {
            return Err(OpenError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&envelope[5..HEADER_LEN]);
        let plain_len = self
            .cipher
            .open_within(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(path.as_bytes()),
                &mut envelope,
                HEADER_LEN..,
            )
            .map_err(|_| OpenError)?
            .len();
        envelope.truncate(plain_len);
        Ok(envelope)
    }
}

/// The term number an envelope claims, if it is long enough to have one.
pub(crate) fn envelope_term(envelope: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = envelope.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// One data key of the keyring.
#[derive(Debug)]
pub(crate) struct Term {
    /// The term number (1-based, contiguous).
    pub(crate) number: u32,
    /// When the term was created.
    pub(crate) install_time: SystemTime,
    /// The data key.
    pub(crate) key: Key,
}

/// The data keys, terms `1..=N` in order; the last one is active.
#[derive(Debug, Clone)]
pub(crate) struct Keyring {
    terms: Vec<std::sync::Arc<Term>>,
}

impl Keyring {
    /// A keyring holding only term 1, with a fresh key.
    pub(crate) fn first() -> Self {
        Keyring {
            terms: vec![std::sync::Arc::new(Term {
                number: 1,
                install_time: SystemTime::now(),
                key: Key::generate(),
            })],
        }
    }

    /// The active (highest) term.
    pub(crate) fn active(&self) -> &Term {
        // Invariant: a keyring is only built by `first`, `decode` (which
        // refuses an empty list) or `with_new_term`, so it is never empty.
        #[allow(clippy::expect_used)]
        self.terms.last().expect("a keyring always holds a term")
    }

    /// The term with this number, if the keyring has it.
    pub(crate) fn term(&self, number: u32) -> Option<&Term> {
        let idx = usize::try_from(number.checked_sub(1)?).ok()?;
        self.terms.get(idx).map(|t| t.as_ref())
    }

    /// A copy of this keyring with one more term (fresh key) on top; `None`
    /// if the term counter would overflow.
    pub(crate) fn with_new_term(&self) -> Option<Self> {
        let number = self.active().number.checked_add(1)?;
        let mut terms = self.terms.clone();
        terms.push(std::sync::Arc::new(Term {
            number,
            install_time: SystemTime::now(),
            key: Key::generate(),
        }));
        Some(Keyring { terms })
    }

    /// Encodes the keyring and the active term's encryption count:
    /// magic, count u64, term count u32, then per term its number u32,
    /// install time (seconds u64, nanoseconds u32) and key, all big-endian.
    pub(crate) fn encode(&self, encryptions: u64) -> Zeroizing<Vec<u8>> {
        let len = KEYRING_MAGIC.len() + 8 + 4 + self.terms.len() * TERM_LEN;
        // Allocated once at its final size, so no reallocation leaves
        // unzeroed copies of keys behind.
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.extend_from_slice(KEYRING_MAGIC);
        out.extend_from_slice(&encryptions.to_be_bytes());
        // The term count fits: terms are numbered by u32.
        out.extend_from_slice(&(self.terms.len() as u32).to_be_bytes());
        for term in &self.terms {
            let since = term
                .install_time
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            out.extend_from_slice(&term.number.to_be_bytes());
            out.extend_from_slice(&since.as_secs().to_be_bytes());
            out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
            out.extend_from_slice(term.key.raw());
        }
        out
    }

    /// Decodes what [`Keyring::encode`] wrote: the keyring and the persisted
    /// encryption count. Errors describe what is malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, u64), String> {
        let rest = bytes
            .strip_prefix(KEYRING_MAGIC.as_slice())
            .ok_or("unknown keyring format")?;
        if rest.len() < 12 {
            return Err("keyring truncated".into());
        }
        let (count_bytes, rest) = rest.split_at(8);
        let (n_bytes, rest) = rest.split_at(4);
        let encryptions = u64::from_be_bytes(to_array(count_bytes)?);
        let n = u32::from_be_bytes(to_array(n_bytes)?) as usize;
        if n == 0 || rest.len() != n.checked_mul(TERM_LEN).ok_or("keyring too large")? {
            return Err("keyring length does not match its term count".into());
        }
        let mut terms = Vec::with_capacity(n);
        for (i, chunk) in rest.chunks_exact(TERM_LEN).enumerate() {
            let number = u32::from_be_bytes(to_array(&chunk[..4])?);
            if usize::try_from(number).ok() != Some(i + 1) {
                return Err(format!("keyring term {number} out of order"));
            }
            let secs = u64::from_be_bytes(to_array(&chunk[4..12])?);
            let nanos = u32::from_be_bytes(to_array(&chunk[12..16])?);
            if nanos >= 1_000_000_000 {
                return Err(format!("keyring term {number} has a bad install time"));
            }
            let install_time = UNIX_EPOCH
                .checked_add(Duration::new(secs, nanos))
                .ok_or_else(|| format!("keyring term {number} has a bad install time"))?;
            let key = Key::from_bytes(&chunk[16..]).ok_or("keyring key has a bad length")?;
            terms.push(std::sync::Arc::new(Term {
                number,
                install_time,
                key,
            }));
        }
        Ok((Keyring { terms }, encryptions))
    }
}

/// Copies a slice of known length into an array.
fn to_array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| "keyring field truncated".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_roundtrip_and_path_binding() {
        let key = Key::generate();
        let env = key.seal(7, "a/b", b"hello");
        assert_eq!(envelope_term(&env), Some(7));
        assert_eq!(env[4], ENVELOPE_VERSION);
        assert_eq!(env.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(key.open("a/b", env.clone()).as_deref(), Ok(&b"hello"[..]));
        assert_eq!(key.open("a/c", env.clone()), Err(OpenError));
        assert_eq!(Key::generate().open("a/b", env.clone()), Err(OpenError));
        let mut tampered = env.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(key.open("a/b", tampered), Err(OpenError));
        assert_eq!(
            key.open("a/b", env[..HEADER_LEN + 3].to_vec()),
            Err(OpenError)
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let key = Key::generate();
        let a = key.seal(1, "p", b"same");
        let b = key.seal(1, "p", b"same");
        assert_ne!(a[5..HEADER_LEN], b[5..HEADER_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn keyring_encoding_roundtrips() {
        let ring = Keyring::first()
            .with_new_term()
            .and_then(|r| r.with_new_term())
            .expect("terms");
        let encoded = ring.encode(42);
        let (decoded, count) = Keyring::decode(&encoded).expect("decode");
        assert_eq!(count, 42);
        assert_eq!(decoded.active().number, 3);
        for n in 1..=3 {
            let (a, b) = (ring.term(n).expect("a"), decoded.term(n).expect("b"));
            assert_eq!(a.key.raw(), b.key.raw());
            assert_eq!(a.install_time, b.install_time);
        }
        assert!(decoded.term(0).is_none() && decoded.term(4).is_none());
        assert_eq!(
            Keyring::decode(&encoded[..encoded.len() - 1])
                .err()
                .as_deref(),
            Some("keyring length does not match its term count")
        );
        assert_eq!(
            Keyring::decode(b"garbage").err().as_deref(),
            Some("unknown keyring format")
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let ring = Keyring::first();
        let raw = ring.active().key.raw();
        let shown = format!("{ring:?}");
        assert!(!shown.contains(&format!("{raw:?}")));
        assert!(!shown.contains(&hex::encode(raw)));
        assert!(shown.contains("redacted"));
    }
}
