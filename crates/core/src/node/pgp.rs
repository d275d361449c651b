//! PGP encryption of unseal key shares and root tokens, as OpenBao's
//! `helper/pgpkeys` does it: `sys/init`'s `pgp_keys` and
//! `root_token_pgp_key`, the rekey's `pgp_keys` (and so its `backup`), and
//! generate-root's `pgp_key`.
//!
//! A key given to the API is the base64 of a binary (non-armored) OpenPGP
//! public key, which is what `bao operator init -pgp-keys=<file>` sends
//! after reading the file. A key's fingerprint is reported as OpenBao does:
//! the lower-case hex of its v4 fingerprint. Each message is encrypted to
//! one key: a public-key encrypted session key (v3) and a SEIPD v1
//! container (AES-256, with MDC) around a literal data packet, which every
//! OpenPGP implementation (GnuPG, go-crypto, rPGP) decrypts.
//!
//! Unlike OpenBao, a key is checked for a usable encryption key when it is
//! parsed, so a request with a key that can only sign is refused before
//! anything changes (OpenBao accepts it and fails once the shares or token
//! exist).

use std::io::Cursor;

use base64::Engine as _;
use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{DataMode, Signature, SignatureType};
use pgp::types::{KeyDetails, KeyVersion, Tag, Timestamp};
use zeroize::Zeroizing;

use strongroom_sdk::{Error, Result};

/// A parsed recipient key: the certificate and its encryption key.
#[derive(Debug, Clone)]
pub struct PgpKey {
    cert: SignedPublicKey,
    /// Which key of `cert` messages are encrypted to.
    target: Target,
    fingerprint: String,
}

/// The key of a certificate that can encrypt.
#[derive(Debug, Clone, Copy)]
enum Target {
    Primary,
    Subkey(usize),
}

fn decode_error(e: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("error decoding given PGP key: {e}"))
}

fn parse_error(e: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("error parsing given PGP key: {e}"))
}

/// Whether a signature made at `created` with the key-expiration subpacket
/// of `sig` leaves the key created at `key_created` expired at `now`.
fn key_expired(sig: &Signature, key_created: Timestamp, now: Timestamp) -> bool {
    match sig.key_expiration_time() {
        Some(d) if d.as_secs() > 0 => {
            u64::from(key_created.as_secs()) + u64::from(d.as_secs()) <= u64::from(now.as_secs())
        }
        _ => false,
    }
}

/// Whether `sig` itself has expired at `now`.
fn sig_expired(sig: &Signature, now: Timestamp) -> bool {
    match (sig.created(), sig.signature_expiration_time()) {
        (Some(c), Some(d)) if d.as_secs() > 0 => {
            u64::from(c.as_secs()) + u64::from(d.as_secs()) <= u64::from(now.as_secs())
        }
        _ => false,
    }
}

fn created_secs(sig: &Signature) -> u32 {
    sig.created().map_or(0, Timestamp::as_secs)
}

/// The primary key's newest valid self-signature (a user ID
/// certification or a direct-key signature), as go-crypto picks it.
fn primary_self_signature(cert: &SignedPublicKey) -> Option<&Signature> {
    let key = &cert.primary_key;
    let certifications = cert.details.users.iter().flat_map(|u| {
        u.signatures.iter().filter(move |s| {
            s.typ() != Some(SignatureType::CertRevocation)
                && s.verify_certification(key, Tag::UserId, &u.id).is_ok()
        })
    });
    let direct = cert
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(key).is_ok());
    certifications
        .chain(direct)
        .max_by_key(|s| (s.is_primary(), created_secs(s)))
}

/// The subkey's newest valid binding signature, unless a valid revocation
/// exists.
fn subkey_binding<'a>(
    cert: &SignedPublicKey,
    sub: &'a SignedPublicSubKey,
) -> Option<&'a Signature> {
    let valid = |s: &&Signature| s.verify_subkey_binding(&cert.primary_key, &sub.key).is_ok();
    if sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
        .any(|s| valid(&s))
    {
        return None;
    }
    sub.signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .filter(valid)
        .max_by_key(|s| created_secs(s))
}

/// Picks the key messages are encrypted to, with go-crypto's rule: the
/// newest valid, unexpired, unrevoked subkey flagged for encrypting
/// communications, else the primary key when it is so flagged itself.
fn encryption_target(cert: &SignedPublicKey, now: Timestamp) -> Result<Target> {
    let primary = &cert.primary_key;
    let self_sig = primary_self_signature(cert)
        .ok_or_else(|| parse_error("the key has no valid self-signature"))?;
    let revoked = cert
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(primary).is_ok());
    if revoked {
        return Err(parse_error("the key has been revoked"));
    }
    if key_expired(self_sig, primary.created_at(), now) || sig_expired(self_sig, now) {
        return Err(parse_error("the key has expired"));
    }
    let best = cert
        .public_subkeys
        .iter()
        .enumerate()
        .filter_map(|(i, sub)| subkey_binding(cert, sub).map(|sig| (i, sub, sig)))
        .filter(|(_, sub, sig)| {
            sig.key_flags().encrypt_comms()
                && sub.key.algorithm().can_encrypt()
                && !key_expired(sig, sub.key.created_at(), now)
                && !sig_expired(sig, now)
        })
        .max_by_key(|(_, _, sig)| created_secs(sig));
    if let Some((i, _, _)) = best {
        return Ok(Target::Subkey(i));
    }
    if self_sig.key_flags().encrypt_comms() && primary.algorithm().can_encrypt() {
        return Ok(Target::Primary);
    }
    Err(parse_error("the key has no valid encryption key"))
}

impl PgpKey {
    /// Parses a base64-encoded binary OpenPGP public key, with OpenBao's
    /// messages ("error decoding given PGP key: ..." for bad base64, "error
    /// parsing given PGP key: ..." for a bad key). The key must be a v4 key
    /// with a usable encryption key.
    pub fn parse(encoded: &str) -> Result<PgpKey> {
        // `keybase:<user>` is expanded by the CLI (it fetches the user's
        // key from keybase.io); the server never fetches keys over the
        // network, so such a value is refused here with a clear message.
        if let Some(user) = encoded.trim().strip_prefix("keybase:") {
            return Err(decode_error(format!(
                "keybase key {user:?} was not expanded: the server does not fetch keys from keybase; give the base64 of the public key"
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(decode_error)?;
        let cert =
            SignedPublicKey::from_bytes(Cursor::new(data.as_slice())).map_err(parse_error)?;
        if cert.primary_key.version() != KeyVersion::V4 {
            return Err(parse_error(format!(
                "unsupported key version {:?}: only OpenPGP v4 keys are supported",
                cert.primary_key.version()
            )));
        }
        let target = encryption_target(&cert, Timestamp::now())?;
        let fingerprint = format!("{:x}", cert.primary_key.fingerprint());
        Ok(PgpKey {
            cert,
            target,
            fingerprint,
        })
    }

    /// The key's fingerprint as OpenBao reports it: lower-case hex of the
    /// primary key's v4 fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Encrypts `plaintext` to this key; the binary OpenPGP message.
    ///
    /// The caller keeps the plaintext in a zeroizing buffer; rPGP reads it
    /// from there in chunks, and its own short-lived chunk buffers are not
    /// zeroized.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut rng = rand08::rngs::OsRng;
        // The plaintext is read from the caller's buffer, not copied into
        // a builder-owned one.
        let mut builder = MessageBuilder::from_reader("", plaintext);
        builder
            .data_mode(DataMode::Utf8)
            .map_err(|e| Error::internal(format!("error encrypting PGP message: {e}")))?;
        let mut builder = builder.seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
        let added = match self.target {
            Target::Primary => builder.encrypt_to_key(&mut rng, &self.cert.primary_key),
            Target::Subkey(i) => match self.cert.public_subkeys.get(i) {
                Some(sub) => builder.encrypt_to_key(&mut rng, &sub.key),
                None => return Err(Error::internal("PGP encryption subkey vanished")),
            },
        };
        added.map_err(|e| {
            Error::internal(format!("error setting up encryption for PGP message: {e}"))
        })?;
        builder
            .to_vec(rng)
            .map_err(|e| Error::internal(format!("error encrypting PGP message: {e}")))
    }
}

/// Parses each of `keys` ([`PgpKey::parse`]).
pub fn parse_keys(keys: &[String]) -> Result<Vec<PgpKey>> {
    keys.iter().map(|k| PgpKey::parse(k)).collect()
}

/// The fingerprints of `keys`, in order.
pub fn fingerprints(keys: &[PgpKey]) -> Vec<String> {
    keys.iter().map(|k| k.fingerprint.clone()).collect()
}

/// Encrypts each share to the key at the same position, as OpenBao does:
/// the share is hex-encoded and the hex text encrypted. The caller has
/// checked that there are as many keys as shares.
pub fn encrypt_shares(shares: &[Zeroizing<Vec<u8>>], keys: &[PgpKey]) -> Result<Vec<Vec<u8>>> {
    if shares.len() != keys.len() {
        return Err(Error::internal(
            "mismatch between number items to encrypt and number of PGP keys",
        ));
    }
    shares
        .iter()
        .zip(keys)
        .map(|(share, key)| {
            let hex_share = Zeroizing::new(hex::encode(share.as_slice()));
            key.encrypt(hex_share.as_bytes())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use pgp::composed::{
        EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedSecretKey,
        SubkeyParamsBuilder,
    };
    use pgp::crypto::ecc_curve::ECCCurve;
    use pgp::ser::Serialize as _;
    use pgp::types::Password;

    /// A fresh v4 key pair: an Ed25519 primary key and, unless
    /// `sign_only`, a Curve25519 encryption subkey (GnuPG's default shape).
    fn key_pair(sign_only: bool) -> SignedSecretKey {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("Operator <op@example.com>".into());
        if !sign_only {
            let mut sub = SubkeyParamsBuilder::default();
            sub.key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
                .can_encrypt(EncryptionCaps::All);
            params.subkeys(vec![sub.build().unwrap()]);
        }
        params
            .build()
            .unwrap()
            .generate(rand08::thread_rng())
            .unwrap()
    }

    fn public_b64(secret: &SignedSecretKey) -> String {
        let public = SignedPublicKey::from(secret.clone());
        base64::engine::general_purpose::STANDARD.encode(public.to_bytes().unwrap())
    }

    fn decrypt(secret: &SignedSecretKey, message: &[u8]) -> Vec<u8> {
        let msg = Message::from_bytes(Cursor::new(message)).unwrap();
        let mut plain = msg.decrypt(&Password::empty(), secret).unwrap();
        plain.as_data_vec().unwrap()
    }

    #[test]
    fn a_share_encrypts_to_its_key_as_hex_text() {
        let secrets = [key_pair(false), key_pair(false)];
        let keys = parse_keys(&secrets.iter().map(public_b64).collect::<Vec<_>>()).unwrap();
        let shares = vec![
            Zeroizing::new(vec![0x01, 0xab, 0xff]),
            Zeroizing::new(vec![0x10; 33]),
        ];
        let encrypted = encrypt_shares(&shares, &keys).unwrap();
        assert_eq!(encrypted.len(), 2);
        assert_eq!(decrypt(&secrets[0], &encrypted[0]), b"01abff");
        assert_eq!(
            decrypt(&secrets[1], &encrypted[1]),
            "10".repeat(33).as_bytes()
        );
        assert_ne!(
            encrypted[0], b"01abff",
            "the share is not sent in the clear"
        );
    }

    #[test]
    fn a_token_encrypts_raw_and_the_fingerprint_is_lower_hex_v4() {
        let secret = key_pair(false);
        let key = PgpKey::parse(&public_b64(&secret)).unwrap();
        let message = key.encrypt(b"s.abcdefghijklmnopqrstuvwx").unwrap();
        assert_eq!(decrypt(&secret, &message), b"s.abcdefghijklmnopqrstuvwx");
        let expected = hex::encode(secret.primary_key.fingerprint().as_bytes());
        assert_eq!(key.fingerprint(), expected);
        assert_eq!(key.fingerprint().len(), 40);
        assert!(key
            .fingerprint()
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(
            fingerprints(&[key.clone(), key]),
            vec![expected.clone(), expected]
        );
    }

    /// Through the core: `initialize` refuses a bad root token key before
    /// storing anything, hands out encrypted shares and token that unseal
    /// and authenticate; a rekey with `backup` keeps the encrypted shares
    /// inside the barrier (the physical entry is ciphertext) until deleted.
    #[tokio::test]
    async fn init_and_a_rekey_backup_through_the_core() {
        use crate::node::rekey::{RekeyUpdate, BACKUP_KEY};
        use crate::node::{Core, CoreConfig, InitParams};
        use std::sync::Arc;
        use strongroom_sdk::registry::Registry;
        use strongroom_sdk::storage::Backend as _;
        use strongroom_storage::InmemBackend;

        let secrets = [key_pair(false), key_pair(false)];
        let keys: Vec<String> = secrets.iter().map(public_b64).collect();
        let fps: Vec<String> = parse_keys(&keys)
            .unwrap()
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect();
        let physical = Arc::new(InmemBackend::new());
        let core = Core::new(physical.clone(), CoreConfig::default(), Registry::new());
        let params = |root_key: &str| InitParams {
            secret_shares: 2,
            secret_threshold: 2,
            root_token_id: None,
            dev: false,
            pgp_keys: keys.clone(),
            root_token_pgp_key: Some(root_key.to_string()),
        };
        let bad = core.initialize(params("aGVsbG8=")).await;
        assert!(
            matches!(&bad, Err(Error::BadRequest(m)) if m.starts_with("error parsing given PGP key: ")),
            "{:?}",
            bad.err()
        );
        assert!(!core.is_initialized().await.unwrap(), "nothing stored");

        let out = core.initialize(params(&keys[1])).await.unwrap();
        let token = String::from_utf8(decrypt(
            &secrets[1],
            &base64::engine::general_purpose::STANDARD
                .decode(out.root_token.as_str())
                .unwrap(),
        ))
        .unwrap();
        assert!(token.starts_with("s."), "a root token: {token}");
        let shares: Vec<Zeroizing<Vec<u8>>> = out
            .keys
            .iter()
            .zip(&secrets)
            .map(|(m, s)| Zeroizing::new(hex::decode(decrypt(s, m)).unwrap()))
            .collect();
        for share in &shares {
            core.submit_unseal_key(share.clone()).await.unwrap();
        }
        assert!(!core.is_sealed(), "the decrypted shares unseal");

        let status = core.rekey_init(2, 2, &keys, true, false).await.unwrap();
        assert_eq!(status.pgp_fingerprints.as_ref(), Some(&fps));
        assert!(status.backup);
        let mut result = None;
        for share in &shares {
            if let RekeyUpdate::Complete(r) = core
                .rekey_update(share.clone(), &status.nonce)
                .await
                .unwrap()
            {
                result = Some(r);
            }
        }
        let result = result.expect("the rekey completes");
        assert_eq!(result.pgp_fingerprints.as_ref(), Some(&fps));
        let backup = core.rekey_backup().await.unwrap().expect("a backup");
        assert_eq!(backup.nonce, status.nonce);
        for (i, fp) in fps.iter().enumerate() {
            assert_eq!(
                backup.keys[fp],
                vec![hex::encode(result.keys[i].as_slice())]
            );
        }
        let raw = physical.get(BACKUP_KEY).await.unwrap().expect("stored");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&raw).is_err()
                && !raw.windows(fps[0].len()).any(|w| w == fps[0].as_bytes()),
            "the backup is barrier-encrypted"
        );
        core.rekey_delete_backup().await.unwrap();
        assert!(core.rekey_backup().await.unwrap().is_none());
    }

    fn message_of(r: Result<PgpKey>) -> String {
        match r {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn bad_keys_get_openbao_style_400s() {
        let m = message_of(PgpKey::parse("not base64!"));
        assert!(m.starts_with("error decoding given PGP key: "), "{m}");
        let m = message_of(PgpKey::parse("aGVsbG8="));
        assert!(m.starts_with("error parsing given PGP key: "), "{m}");
        let m = message_of(PgpKey::parse("keybase:alice"));
        assert!(
            m.starts_with("error decoding given PGP key: ") && m.contains("keybase"),
            "{m}"
        );
        // An armored key, base64-encoded, is not a binary key.
        let secret = key_pair(false);
        let armored = SignedPublicKey::from(secret.clone())
            .to_armored_string(Default::default())
            .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(armored);
        let m = message_of(PgpKey::parse(&encoded));
        assert!(m.starts_with("error parsing given PGP key: "), "{m}");
        // A key that can only sign cannot receive a share.
        let m = message_of(PgpKey::parse(&public_b64(&key_pair(true))));
        assert_eq!(
            m,
            "error parsing given PGP key: the key has no valid encryption key"
        );
        let m = message_of(
            parse_keys(&[public_b64(&secret), "aGVsbG8=".into()]).map(|mut v| v.remove(0)),
        );
        assert!(m.starts_with("error parsing given PGP key: "), "{m}");
    }
}
