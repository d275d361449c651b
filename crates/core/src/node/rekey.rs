//! Rekeying (`sys/rekey/*`, `sys/rotate/root/*`): a quorum of the current
//! unseal key holders replaces the unseal key with a new one split into a
//! new number of shares. With `require_verification`, the new shares must be
//! given back (a quorum of them) before the new key takes effect.
//!
//! The new unseal key, a new root key, the re-encrypted keyring and the new
//! seal configuration are stored in one physical batch, so the old shares
//! stop unsealing exactly when the new ones start. The operation's state is
//! in memory only and is forgotten when the node seals.
//!
//! With `pgp_keys`, each new share is handed out encrypted to its key (see
//! [`super::pgp`]); with `backup` as well, the encrypted shares are also
//! kept, by key fingerprint and with the rekey's nonce, in barrier-encrypted
//! storage until `DELETE sys/rekey/backup`, as OpenBao keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::pgp::{self, PgpKey};
use super::rootgen::{already_given, check_share_length, combine_shares};
use super::{json_bytes, Core, SealConfig, SEAL_CONFIG_KEY};
use strongroom_barrier::{shamir, Barrier, BarrierError};
use strongroom_sdk::storage::{BatchOp, Storage};
use strongroom_sdk::{Error, Result};

/// Where the backup of the last PGP-encrypted rekey is kept (inside the
/// barrier; OpenBao's key for it).
pub const BACKUP_KEY: &str = "core/unseal-keys-backup";

/// A rekey in progress.
pub(crate) struct Rekey {
    shares: usize,
    threshold: usize,
    require_verification: bool,
    /// The keys to encrypt the new shares to (none: plain shares).
    pgp_keys: Vec<PgpKey>,
    /// Keep a backup of the encrypted shares.
    backup: bool,
    nonce: String,
    progress: Vec<Zeroizing<Vec<u8>>>,
    /// The new unseal key, once generated and awaiting verification.
    verification_key: Option<Zeroizing<Vec<u8>>>,
    verification_nonce: String,
    verification_progress: Vec<Zeroizing<Vec<u8>>>,
}

/// What the rekey status endpoints report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyStatus {
    /// Whether a rekey is in progress.
    pub started: bool,
    /// The rekey's nonce.
    pub nonce: String,
    /// The new threshold.
    pub t: usize,
    /// The new number of shares.
    pub n: usize,
    /// Current shares given so far.
    pub progress: usize,
    /// Current shares needed (the current threshold).
    pub required: usize,
    /// Whether the new shares must be verified before they take effect.
    pub verification_required: bool,
    /// The verification's nonce, once the new shares are out.
    pub verification_nonce: String,
    /// The fingerprints of the PGP keys the new shares go to (`None`
    /// without PGP keys).
    pub pgp_fingerprints: Option<Vec<String>>,
    /// Whether the encrypted shares are backed up (only with PGP keys).
    pub backup: bool,
}

/// The new shares, handed out once.
pub struct RekeyResult {
    /// The rekey's nonce.
    pub nonce: String,
    /// The new unseal key shares, or with PGP keys the binary OpenPGP
    /// messages that carry them.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The fingerprints of the PGP keys, in the order of `keys`.
    pub pgp_fingerprints: Option<Vec<String>>,
    /// Whether `backup` was asked for.
    pub backup: bool,
    /// Whether the shares still have to be verified.
    pub verification_required: bool,
    /// The verification's nonce (when required).
    pub verification_nonce: String,
}

/// The answer to one rekey share.
pub enum RekeyUpdate {
    /// More shares are needed.
    Progress(RekeyStatus),
    /// The threshold was reached: the new shares.
    Complete(RekeyResult),
}

/// What the verification status endpoints report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyStatus {
    /// Whether the new shares are awaiting verification.
    pub started: bool,
    /// The verification's nonce.
    pub nonce: String,
    /// The new threshold.
    pub t: usize,
    /// The new number of shares.
    pub n: usize,
    /// New shares given so far.
    pub progress: usize,
}

/// The answer to one verification share.
pub enum VerifyUpdate {
    /// More new shares are needed.
    Progress(VerifyStatus),
    /// Verified: the new key is in effect. Carries the verification nonce.
    Complete(String),
}

/// The seal configuration check OpenBao applies to a rekey.
fn validate(shares: usize, threshold: usize) -> Result<()> {
    let problem = if shares < 1 {
        Some("shares must be at least one")
    } else if threshold < 1 {
        Some("threshold must be at least one")
    } else if shares > 1 && threshold == 1 {
        Some("threshold must be greater than one for multiple shares")
    } else if shares > 255 {
        Some("shares must be less than 256")
    } else if threshold > shares {
        Some("threshold cannot be larger than shares")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::bad_request(format!(
            "invalid rekey seal configuration: {p}"
        ))),
        None => Ok(()),
    }
}

fn status_of(r: Option<&Rekey>, required: usize) -> RekeyStatus {
    match r {
        None => RekeyStatus {
            required,
            ..Default::default()
        },
        Some(r) => RekeyStatus {
            started: true,
            nonce: r.nonce.clone(),
            t: r.threshold,
            n: r.shares,
            progress: r.progress.len(),
            required,
            verification_required: r.require_verification,
            verification_nonce: r.verification_nonce.clone(),
            pgp_fingerprints: (!r.pgp_keys.is_empty()).then(|| pgp::fingerprints(&r.pgp_keys)),
            backup: r.backup && !r.pgp_keys.is_empty(),
        },
    }
}

fn verify_status_of(r: &Rekey) -> VerifyStatus {
    VerifyStatus {
        started: r.verification_key.is_some(),
        nonce: r.verification_nonce.clone(),
        t: r.threshold,
        n: r.shares,
        progress: r.verification_progress.len(),
    }
}

impl Core {
    /// The status of the rekey (none: not started).
    pub async fn rekey_status(&self) -> Result<RekeyStatus> {
        self.active()?;
        let required = self.seal_threshold().await?;
        Ok(status_of(self.rekey.lock().await.as_ref(), required))
    }

    /// Starts a rekey to `shares` shares with threshold `threshold`; with
    /// `pgp_keys` (base64 binary public keys, one per share) the new shares
    /// are encrypted to them, and with `backup` kept encrypted too.
    ///
    /// `backup` without PGP keys is accepted and does nothing, as on
    /// OpenBao's `sys/rotate/root/init`; the legacy `sys/rekey/init`
    /// refuses it before calling this.
    pub async fn rekey_init(
        &self,
        shares: usize,
        threshold: usize,
        pgp_keys: &[String],
        backup: bool,
        require_verification: bool,
    ) -> Result<RekeyStatus> {
        validate(shares, threshold)?;
        if !pgp_keys.is_empty() && pgp_keys.len() != shares {
            return Err(Error::bad_request(
                "invalid rekey seal configuration: count mismatch between number of provided PGP keys and number of shares",
            ));
        }
        let pgp_keys = pgp::parse_keys(pgp_keys)
            .map_err(|e| Error::bad_request(format!("invalid rekey seal configuration: {e}")))?;
        let _admin = self.admin.lock().await;
        self.active()?;
        let required = self.seal_threshold().await?;
        let mut rekey = self.rekey.lock().await;
        if rekey.is_some() {
            return Err(Error::bad_request("rekey already in progress"));
        }
        let started = Rekey {
            shares,
            threshold,
            require_verification,
            pgp_keys,
            backup,
            nonce: uuid::Uuid::new_v4().to_string(),
            progress: Vec::new(),
            verification_key: None,
            verification_nonce: String::new(),
            verification_progress: Vec::new(),
        };
        tracing::info!(nonce = %started.nonce, shares, threshold, require_verification, pgp = !started.pgp_keys.is_empty(), backup, "core: rekey initialized");
        *rekey = Some(started);
        Ok(status_of(rekey.as_ref(), required))
    }

    /// Cancels the rekey in progress (none: nothing to do).
    pub async fn rekey_cancel(&self) -> Result<()> {
        let _admin = self.admin.lock().await;
        self.active()?;
        *self.rekey.lock().await = None;
        Ok(())
    }

    /// Adds one current unseal key share; at the threshold, checks the
    /// combined key and generates the new shares (applied at once, or after
    /// verification).
    pub async fn rekey_update(&self, key: Zeroizing<Vec<u8>>, nonce: &str) -> Result<RekeyUpdate> {
        let _admin = self.admin.lock().await;
        self.active()?;
        check_share_length(&key)?;
        let required = self.seal_threshold().await?;
        let mut guard = self.rekey.lock().await;
        let r = guard
            .as_mut()
            .ok_or_else(|| Error::bad_request("no barrier rekey in progress"))?;
        if r.verification_key.is_some() {
            return Err(Error::bad_request(format!(
                "rekey operation already finished; verification must be performed; nonce for the verification operation is {:?}",
                r.verification_nonce
            )));
        }
        if nonce != r.nonce {
            return Err(Error::bad_request(format!(
                "incorrect nonce supplied; nonce for this rekey operation is {:?}",
                r.nonce
            )));
        }
        if already_given(&r.progress, &key) {
            return Err(Error::bad_request(
                "given key has already been provided during this generation operation",
            ));
        }
        r.progress.push(key);
        if r.progress.len() < required {
            return Ok(RekeyUpdate::Progress(status_of(Some(r), required)));
        }
        let given = std::mem::take(&mut r.progress);
        let combined = combine_shares(&given, required, "root key")?;
        match self.barrier.check_unseal_key(&combined).await {
            Ok(()) => {}
            Err(BarrierError::InvalidKey) => {
                tracing::error!("core: rekey: the key shares do not unseal");
                return Err(Error::bad_request(
                    "failed to read root key: invalid key: failed to decrypt keys from storage: cipher: message authentication failed",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let new_key = Barrier::generate_key();
        let keys = if r.shares == 1 {
            vec![new_key.clone()]
        } else {
            shamir::split(&new_key, r.shares, r.threshold)
                .map_err(|e| Error::internal(format!("splitting the new unseal key: {e}")))?
        };
        let nonce = r.nonce.clone();
        let mut pgp_fingerprints = None;
        let keys = if r.pgp_keys.is_empty() {
            keys
        } else {
            let encrypted = pgp::encrypt_shares(&keys, &r.pgp_keys)?;
            let fingerprints = pgp::fingerprints(&r.pgp_keys);
            if r.backup {
                // Kept before the new key takes effect, as OpenBao does, so
                // that shares that unseal are never without their backup.
                self.store_rekey_backup(&nonce, &fingerprints, &encrypted)
                    .await?;
            }
            pgp_fingerprints = Some(fingerprints);
            encrypted.into_iter().map(Zeroizing::new).collect()
        };
        let backup = r.backup;
        if r.require_verification {
            r.verification_key = Some(new_key);
            r.verification_nonce = uuid::Uuid::new_v4().to_string();
            return Ok(RekeyUpdate::Complete(RekeyResult {
                nonce,
                keys,
                pgp_fingerprints,
                backup,
                verification_required: true,
                verification_nonce: r.verification_nonce.clone(),
            }));
        }
        self.apply_rekey(&new_key, r.shares, r.threshold).await?;
        *guard = None;
        Ok(RekeyUpdate::Complete(RekeyResult {
            nonce,
            keys,
            pgp_fingerprints,
            backup,
            verification_required: false,
            verification_nonce: String::new(),
        }))
    }

    /// Stores the backup of a rekey's encrypted shares, replacing any
    /// earlier one.
    async fn store_rekey_backup(
        &self,
        nonce: &str,
        fingerprints: &[String],
        encrypted: &[Vec<u8>],
    ) -> Result<()> {
        let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (fingerprint, message) in fingerprints.iter().zip(encrypted) {
            keys.entry(fingerprint.clone())
                .or_default()
                .push(hex::encode(message));
        }
        let backup = RekeyBackup {
            nonce: nonce.to_string(),
            keys,
        };
        self.gate
            .put(BACKUP_KEY, &json_bytes(&backup)?)
            .await
            .map_err(|e| Error::internal(format!("failed to save unseal key backup: {e}")))
    }

    /// The verification's status; `None` when no rekey is in progress.
    pub async fn rekey_verify_status(&self) -> Result<Option<VerifyStatus>> {
        self.active()?;
        Ok(self.rekey.lock().await.as_ref().map(verify_status_of))
    }

    /// Restarts the verification: forgets the new shares given so far and
    /// issues a new verification nonce.
    pub async fn rekey_verify_restart(&self) -> Result<VerifyStatus> {
        let _admin = self.admin.lock().await;
        self.active()?;
        let mut guard = self.rekey.lock().await;
        let r = guard
            .as_mut()
            .ok_or_else(|| Error::bad_request("no rekey configuration found"))?;
        r.verification_progress.clear();
        r.verification_nonce = uuid::Uuid::new_v4().to_string();
        Ok(verify_status_of(r))
    }

    /// Adds one new share; at the new threshold, checks that the shares
    /// combine to the new key and puts it into effect.
    pub async fn rekey_verify(&self, key: Zeroizing<Vec<u8>>, nonce: &str) -> Result<VerifyUpdate> {
        let _admin = self.admin.lock().await;
        self.active()?;
        check_share_length(&key)?;
        let mut guard = self.rekey.lock().await;
        let r = guard
            .as_mut()
            .ok_or_else(|| Error::bad_request("no rekey in progress"))?;
        if r.verification_key.is_none() {
            return Err(Error::bad_request("no rekey verification in progress"));
        }
        if nonce != r.verification_nonce {
            return Err(Error::bad_request(format!(
                "incorrect nonce supplied; nonce for this verify operation is {:?}",
                r.verification_nonce
            )));
        }
        if already_given(&r.verification_progress, &key) {
            return Err(Error::bad_request(
                "given key has already been provided during this verify operation",
            ));
        }
        r.verification_progress.push(key);
        if r.verification_progress.len() < r.threshold {
            return Ok(VerifyUpdate::Progress(verify_status_of(r)));
        }
        let given = std::mem::take(&mut r.verification_progress);
        let combined = combine_shares(&given, r.threshold, "key for verification");
        let matches = match (&combined, &r.verification_key) {
            (Ok(c), Some(k)) => already_given(std::slice::from_ref(k), c),
            _ => false,
        };
        if !matches {
            // A failed attempt starts over with a new nonce, as OpenBao does.
            r.verification_nonce = uuid::Uuid::new_v4().to_string();
            combined?;
            return Err(Error::bad_request(
                "rekey verification failed; incorrect key shares supplied",
            ));
        }
        let new_key = r
            .verification_key
            .clone()
            .ok_or_else(|| Error::internal("verification key vanished"))?;
        self.apply_rekey(&new_key, r.shares, r.threshold).await?;
        let nonce = r.verification_nonce.clone();
        *guard = None;
        Ok(VerifyUpdate::Complete(nonce))
    }

    /// Puts the new unseal key and seal configuration into effect, durably
    /// and together.
    async fn apply_rekey(&self, new_key: &[u8], shares: usize, threshold: usize) -> Result<()> {
        let mut config = self
            .seal_config()
            .await?
            .ok_or_else(|| Error::bad_request("server is not yet initialized"))?;
        config.secret_shares = shares;
        config.secret_threshold = threshold;
        let extra = vec![BatchOp::Put(
            SEAL_CONFIG_KEY.to_string(),
            json_bytes::<SealConfig>(&config)?,
        )];
        self.barrier.rekey(new_key, extra).await?;
        tracing::info!(shares, threshold, "core: security barrier rekeyed");
        Ok(())
    }

    /// The backup of the last rekey's PGP-encrypted shares, if one was
    /// asked for and not deleted since.
    pub async fn rekey_backup(&self) -> Result<Option<RekeyBackup>> {
        self.active()?;
        let Some(raw) = self.gate.get(BACKUP_KEY).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| Error::internal(format!("error decoding backup keys: {e}")))
    }

    /// Deletes the backup of the last rekey's shares (none: nothing to do).
    pub async fn rekey_delete_backup(&self) -> Result<()> {
        let _admin = self.admin.lock().await;
        self.active()?;
        self.gate
            .delete(BACKUP_KEY)
            .await
            .map_err(|e| Error::internal(format!("error deleting backup keys: {e}")))
    }
}

/// The stored backup of a rekey's PGP-encrypted shares (OpenBao's layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyBackup {
    /// The nonce of the rekey that made the shares.
    #[serde(rename = "Nonce")]
    pub nonce: String,
    /// Key fingerprint to the hex of each encrypted share sent to that
    /// key, in share order.
    #[serde(rename = "Keys")]
    pub keys: BTreeMap<String, Vec<String>>,
}
