//! Root token generation (`sys/generate-root*`, `sys/generate-root-token/*`):
//! a quorum of unseal key holders proves possession of the shares and gets a
//! new root token, encoded with a one-time password as OpenBao does (the
//! token XOR the OTP, base64 without padding), so that
//! `bao operator generate-root -decode=... -otp=...` recovers it. With a
//! `pgp_key` instead, the token is encrypted to that key (raw, not
//! hex-encoded) and handed out as the base64 of the OpenPGP message.
//!
//! One generation runs at a time; its state lives in memory only and is
//! forgotten when the node seals.

use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::pgp::PgpKey;
use super::Core;
use crate::token::random_base62;
use strongroom_barrier::{shamir, BarrierError};
use strongroom_sdk::{Error, Result};

/// The length of a root token (`s.` and 24 base62 characters), and so of
/// the one-time password that encodes it.
pub const OTP_LENGTH: usize = 26;

/// A root generation in progress.
pub(crate) struct RootGeneration {
    nonce: String,
    /// The one-time password (empty when the token goes to `pgp_key`).
    otp: Zeroizing<String>,
    /// The key to encrypt the token to, when no OTP was given.
    pgp_key: Option<PgpKey>,
    progress: Vec<Zeroizing<Vec<u8>>>,
}

/// What the generate-root endpoints report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootGenStatus {
    /// Whether a generation is in progress (or just finished).
    pub started: bool,
    /// The generation's nonce (empty when none is in progress).
    pub nonce: String,
    /// Shares given so far.
    pub progress: usize,
    /// Shares needed (the seal threshold).
    pub required: usize,
    /// Whether this answer completes the generation.
    pub complete: bool,
    /// The new root token XOR the OTP, base64 without padding, or the
    /// base64 of the PGP-encrypted token (on completion).
    pub encoded_token: String,
    /// The fingerprint of the PGP key the token goes to (empty with an OTP).
    pub pgp_fingerprint: String,
    /// The OTP the server generated when the caller gave none (once).
    pub otp: String,
    /// The OTP length the server expects.
    pub otp_length: usize,
}

/// XORs `token` with `otp` (same length) and encodes the result in base64
/// without padding, OpenBao's root token encoding.
pub fn encode_root_token(token: &str, otp: &str) -> Result<String> {
    if token.len() != otp.len() {
        return Err(Error::bad_request(format!(
            "xor of root token failed: length of byte slices is not equivalent: {} != {}",
            otp.len(),
            token.len()
        )));
    }
    let xored: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored))
}

/// Reverses [`encode_root_token`], with OpenBao's error messages.
pub fn decode_root_token(encoded: &str, otp: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded)
        .map_err(|e| Error::bad_request(format!("error decoding base64'd token: {e}")))?;
    if bytes.len() != otp.len() {
        return Err(Error::bad_request(format!(
            "error xoring token: length of byte slices is not equivalent: {} != {}",
            bytes.len(),
            otp.len()
        )));
    }
    let plain: Vec<u8> = bytes.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
    String::from_utf8(plain)
        .map_err(|_| Error::bad_request("error xoring token: the result is not a token"))
}

/// Checks an unseal key share's length as OpenBao does (16 to 32 bytes,
/// plus one for a Shamir share's x coordinate).
pub(crate) fn check_share_length(key: &[u8]) -> Result<()> {
    if key.len() < 16 {
        return Err(Error::bad_request(
            "invalid key: key is shorter than minimum 16 bytes",
        ));
    }
    if key.len() > 33 {
        return Err(Error::bad_request(
            "invalid key: key is longer than maximum 33 bytes",
        ));
    }
    Ok(())
}

/// Combines `shares` (or takes the single key when the threshold is one).
pub(crate) fn combine_shares(
    shares: &[Zeroizing<Vec<u8>>],
    threshold: usize,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    if threshold == 1 {
        return shares
            .first()
            .cloned()
            .ok_or_else(|| Error::internal("no key share given"));
    }
    let parts: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    shamir::combine(&parts)
        .map_err(|e| Error::bad_request(format!("failed to compute {what}: {e}")))
}

/// Whether `key` is already among `given` (constant time per comparison).
pub(crate) fn already_given(given: &[Zeroizing<Vec<u8>>], key: &[u8]) -> bool {
    given.iter().any(|s| bool::from(s.as_slice().ct_eq(key)))
}

impl Core {
    /// The seal threshold, or OpenBao's error when not initialised.
    pub(crate) async fn seal_threshold(&self) -> Result<usize> {
        self.seal_config()
            .await?
            .map(|c| c.secret_threshold)
            .ok_or_else(|| Error::bad_request("server is not yet initialized"))
    }

    /// The status of the root generation (none: not started).
    pub async fn generate_root_status(&self) -> Result<RootGenStatus> {
        self.active()?;
        let required = self.seal_threshold().await?;
        let gen = self.root_gen.lock().await;
        Ok(Self::root_gen_status(gen.as_ref(), required))
    }

    fn root_gen_status(gen: Option<&RootGeneration>, required: usize) -> RootGenStatus {
        RootGenStatus {
            started: gen.is_some(),
            nonce: gen.map(|g| g.nonce.clone()).unwrap_or_default(),
            progress: gen.map_or(0, |g| g.progress.len()),
            required,
            otp_length: OTP_LENGTH,
            pgp_fingerprint: gen
                .and_then(|g| g.pgp_key.as_ref())
                .map(|k| k.fingerprint().to_string())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Starts a root generation with `otp`, or else with `pgp_key` (a
    /// base64 binary public key), or else with an OTP generated here and
    /// returned once. As in OpenBao, an `otp` wins over a `pgp_key` given
    /// with it.
    pub async fn generate_root_init(&self, otp: &str, pgp_key: &str) -> Result<RootGenStatus> {
        self.active()?;
        let mut key = None;
        if !otp.is_empty() {
            if otp.len() != OTP_LENGTH {
                return Err(Error::bad_request("OTP string has incorrect length"));
            }
        } else if !pgp_key.is_empty() {
            key = Some(
                PgpKey::parse(pgp_key)
                    .map_err(|e| Error::bad_request(format!("error parsing PGP key: {e}")))?,
            );
        }
        let required = self.seal_threshold().await?;
        let generated = otp.is_empty() && key.is_none();
        let otp = if generated {
            random_base62(OTP_LENGTH)
        } else {
            otp.to_string()
        };
        let mut gen = self.root_gen.lock().await;
        if gen.is_some() {
            return Err(Error::bad_request(
                "root generation already in progress for this namespace",
            ));
        }
        let started = RootGeneration {
            nonce: uuid::Uuid::new_v4().to_string(),
            otp: Zeroizing::new(otp.clone()),
            pgp_key: key,
            progress: Vec::new(),
        };
        tracing::info!(nonce = %started.nonce, "core: root generation initialized");
        *gen = Some(started);
        let mut status = Self::root_gen_status(gen.as_ref(), required);
        if generated {
            status.otp = otp;
        }
        Ok(status)
    }

    /// Adds one unseal key share; at the threshold, checks the combined key
    /// and creates the new root token.
    pub async fn generate_root_update(
        &self,
        key: Zeroizing<Vec<u8>>,
        nonce: &str,
    ) -> Result<RootGenStatus> {
        let active = self.active()?;
        check_share_length(&key)?;
        let required = self.seal_threshold().await?;
        let mut guard = self.root_gen.lock().await;
        let gen = guard
            .as_mut()
            .ok_or_else(|| Error::bad_request("no root generation in progress"))?;
        if nonce != gen.nonce {
            return Err(Error::bad_request(format!(
                "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                gen.nonce
            )));
        }
        if already_given(&gen.progress, &key) {
            return Err(Error::bad_request(
                "given key has already been provided during this generation operation",
            ));
        }
        gen.progress.push(key);
        let progress = gen.progress.len();
        let mut status = RootGenStatus {
            started: true,
            nonce: nonce.to_string(),
            progress,
            required,
            pgp_fingerprint: gen
                .pgp_key
                .as_ref()
                .map(|k| k.fingerprint().to_string())
                .unwrap_or_default(),
            ..Default::default()
        };
        if progress < required {
            return Ok(status);
        }
        let shares = std::mem::take(&mut gen.progress);
        let combined = combine_shares(&shares, required, "root key")?;
        match self.barrier.check_unseal_key(&combined).await {
            Ok(()) => {}
            Err(BarrierError::InvalidKey) => {
                tracing::error!("core: root generation aborted: the key shares do not unseal");
                return Err(Error::bad_request(
                    "root generation aborted: unable to authenticate: unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let token = Zeroizing::new(active.tokens.create_root(None, false).await?);
        status.encoded_token = match &gen.pgp_key {
            Some(key) => {
                base64::engine::general_purpose::STANDARD.encode(key.encrypt(token.as_bytes())?)
            }
            None => encode_root_token(&token, &gen.otp)?,
        };
        status.complete = true;
        tracing::info!(nonce = %gen.nonce, "core: root generation finished");
        *guard = None;
        Ok(status)
    }

    /// Cancels the root generation in progress (none: nothing to do).
    pub async fn generate_root_cancel(&self) -> Result<()> {
        self.active()?;
        *self.root_gen.lock().await = None;
        Ok(())
    }
}
