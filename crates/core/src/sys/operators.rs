//! Operator quorum endpoints: root token generation and rekeying.
//!
//! Two families, as in OpenBao 2.x:
//! - the legacy unauthenticated `sys/generate-root/{attempt,update}` and
//!   `sys/rekey/{init,update,verify}`, which answer OpenBao's raw HTTP
//!   bodies (every field, no response envelope). The HTTP listener answers
//!   them with 405 unless its `disable_unauthed_generate_root_endpoints` /
//!   `disable_unauthed_rekey_endpoints` is set to false (OpenBao's default
//!   is to disable them);
//! - the authenticated `sys/generate-root-token/*`, `sys/rotate/root/*` and
//!   `sys/rekey/backup`, answered as ordinary logical responses, and
//!   `sys/decode-token` (unauthenticated).

use base64::Engine as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{legacy, obj, SysState, S};
use crate::node::rekey::{
    RekeyBackup, RekeyResult, RekeyStatus, RekeyUpdate, VerifyStatus, VerifyUpdate,
};
use crate::node::rootgen::{decode_root_token, RootGenStatus};
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

/// Decodes a key share as OpenBao does: hex when it decodes to 16..=33
/// bytes, else base64.
fn decode_share(key: &str) -> Result<Zeroizing<Vec<u8>>> {
    let key = key.trim();
    if let Ok(k) = hex::decode(key) {
        if (16..=33).contains(&k.len()) {
            return Ok(Zeroizing::new(k));
        }
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(Zeroizing::new)
        .map_err(|_| Error::bad_request("'key' must be a valid hex or base64 string"))
}

fn legacy_ok(body: Value) -> Response {
    Response::raw(200, body)
}

// ---- generate-root ----------------------------------------------------

/// The legacy (HTTP) status body: every field, always.
fn rootgen_legacy(s: &RootGenStatus) -> Value {
    json!({
        "nonce": s.nonce,
        "started": s.started,
        "progress": s.progress,
        "required": s.required,
        "complete": s.complete,
        "encoded_token": s.encoded_token,
        "encoded_root_token": s.encoded_token,
        "pgp_fingerprint": s.pgp_fingerprint,
        "otp": s.otp,
        "otp_length": s.otp_length,
    })
}

/// The authenticated status body (`generate-root-token/attempt`).
fn rootgen_status_data(s: &RootGenStatus) -> Response {
    let mut v = json!({
        "started": s.started,
        "complete": false,
        "progress": s.progress,
        "required": s.required,
        "otp": s.otp,
        "otp_length": s.otp_length,
    });
    if s.started {
        v["nonce"] = json!(s.nonce);
        v["pgp_fingerprint"] = json!(s.pgp_fingerprint);
    }
    Response::data(obj(v))
}

/// The authenticated update body (`generate-root-token/update`).
fn rootgen_update_data(s: &RootGenStatus) -> Response {
    Response::data(obj(json!({
        "started": true,
        "complete": s.complete,
        "progress": s.progress,
        "required": s.required,
        "nonce": s.nonce,
        "encoded_token": s.encoded_token,
        "pgp_fingerprint": s.pgp_fingerprint,
    })))
}

async fn rootgen_init(s: &S, ctx: &Ctx) -> Result<RootGenStatus> {
    let otp = ctx.fields.str_or_empty("otp")?;
    let pgp_key = ctx.fields.str_or_empty("pgp_key")?;
    s.core()?.generate_root_init(&otp, &pgp_key).await
}

async fn rootgen_update(s: &S, ctx: &Ctx, legacy: bool) -> Result<RootGenStatus> {
    let key = ctx.fields.str_or_empty("key")?;
    let nonce = ctx.fields.str_or_empty("nonce")?;
    if legacy && key.is_empty() {
        return Err(Error::bad_request(
            "'key' must be specified in request body as JSON",
        ));
    }
    if nonce.is_empty() {
        return Err(Error::bad_request("nonce is required"));
    }
    if key.is_empty() {
        return Err(Error::bad_request("key is required"));
    }
    let key = decode_share(&key)?;
    s.core()?.generate_root_update(key, &nonce).await
}

async fn gr_legacy_read(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(legacy_ok(rootgen_legacy(
        &s.core()?.generate_root_status().await?,
    )))
}

async fn gr_legacy_init(s: S, ctx: Ctx) -> Result<Response> {
    Ok(legacy_ok(rootgen_legacy(&rootgen_init(&s, &ctx).await?)))
}

async fn gr_cancel(s: S, _ctx: Ctx) -> Result<Response> {
    s.core()?.generate_root_cancel().await?;
    Ok(Response::empty())
}

async fn gr_legacy_update(s: S, ctx: Ctx) -> Result<Response> {
    let status = rootgen_update(&s, &ctx, true).await?;
    Ok(legacy_ok(rootgen_legacy(&status)))
}

async fn gr_read(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(rootgen_status_data(
        &s.core()?.generate_root_status().await?,
    ))
}

async fn gr_init(s: S, ctx: Ctx) -> Result<Response> {
    Ok(rootgen_status_data(&rootgen_init(&s, &ctx).await?))
}

async fn gr_update(s: S, ctx: Ctx) -> Result<Response> {
    Ok(rootgen_update_data(&rootgen_update(&s, &ctx, false).await?))
}

async fn decode_token(_s: S, ctx: Ctx) -> Result<Response> {
    let encoded = ctx.fields.str_or_empty("encoded_token")?;
    let otp = ctx.fields.str_or_empty("otp")?;
    if encoded.is_empty() || otp.is_empty() {
        return Err(Error::bad_request(
            "provided 'encoded_token' or 'otp' is empty",
        ));
    }
    let token = decode_root_token(&encoded, &otp)?;
    Ok(Response::data(obj(json!({ "token": token }))))
}

// ---- rekey ----------------------------------------------------------------

fn rekey_status_legacy(s: &RekeyStatus) -> Value {
    let mut v = json!({
        "nonce": s.nonce,
        "started": s.started,
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
        "required": s.required,
        "pgp_fingerprints": s.pgp_fingerprints,
        "backup": s.backup,
        "verification_required": s.verification_required,
    });
    if !s.verification_nonce.is_empty() {
        v["verification_nonce"] = json!(s.verification_nonce);
    }
    v
}

fn rekey_status_data(s: &RekeyStatus) -> Value {
    let mut v = json!({
        "started": s.started,
        "t": s.t,
        "n": s.n,
        "required": s.required,
    });
    if s.started {
        v["nonce"] = json!(s.nonce);
        v["progress"] = json!(s.progress);
        v["verification_required"] = json!(s.verification_required);
        v["verification_nonce"] = json!(s.verification_nonce);
        if let Some(fingerprints) = &s.pgp_fingerprints {
            v["pgp_fingerprints"] = json!(fingerprints);
            v["backup"] = json!(s.backup);
        }
    }
    v
}

fn rekey_result(r: &RekeyResult) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let keys: Vec<String> = r.keys.iter().map(hex::encode).collect();
    let keys_b64: Vec<String> = r.keys.iter().map(|k| engine.encode(k)).collect();
    let mut v = json!({
        "nonce": r.nonce,
        "complete": true,
        "keys": keys,
        "keys_base64": keys_b64,
        "pgp_fingerprints": r.pgp_fingerprints,
        "backup": r.backup,
        "verification_required": r.verification_required,
    });
    if !r.verification_nonce.is_empty() {
        v["verification_nonce"] = json!(r.verification_nonce);
    }
    v
}

fn verify_status_body(s: &VerifyStatus) -> Value {
    json!({
        "nonce": s.nonce,
        "started": s.started,
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
    })
}

fn usize_field(ctx: &Ctx, name: &str) -> Result<usize> {
    let n = ctx.fields.get_int(name)?.unwrap_or(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

async fn rekey_init(s: &S, ctx: &Ctx, legacy: bool) -> Result<RekeyStatus> {
    let f = &ctx.fields;
    let pgp_keys = f.get_strings("pgp_keys")?.unwrap_or_default();
    let shares = usize_field(ctx, "secret_shares")?;
    let backup = f.get_bool("backup")?.unwrap_or(false);
    // The legacy endpoint's own checks, before the seal configuration's.
    if legacy && backup && pgp_keys.is_empty() {
        return Err(Error::bad_request(
            "cannot request a backup of the new keys without providing PGP keys for encryption",
        ));
    }
    if legacy && !pgp_keys.is_empty() && pgp_keys.len() != shares {
        return Err(Error::bad_request("incorrect number of PGP keys for rekey"));
    }
    s.core()?
        .rekey_init(
            shares,
            usize_field(ctx, "secret_threshold")?,
            &pgp_keys,
            backup,
            f.get_bool("require_verification")?.unwrap_or(false),
        )
        .await
}

/// The key and nonce of an update or verify request.
fn key_and_nonce(ctx: &Ctx, legacy: bool) -> Result<(Zeroizing<Vec<u8>>, String)> {
    let key = ctx.fields.str_or_empty("key")?;
    let nonce = ctx.fields.str_or_empty("nonce")?;
    if key.is_empty() {
        return Err(Error::bad_request(if legacy {
            "'key' must be specified in request body as JSON"
        } else {
            "missing required field 'key'"
        }));
    }
    if !legacy && nonce.is_empty() {
        return Err(Error::bad_request("missing required field 'nonce'"));
    }
    Ok((decode_share(&key)?, nonce))
}

async fn rk_legacy_read(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(legacy_ok(rekey_status_legacy(
        &s.core()?.rekey_status().await?,
    )))
}

async fn rk_legacy_init(s: S, ctx: Ctx) -> Result<Response> {
    Ok(legacy_ok(rekey_status_legacy(
        &rekey_init(&s, &ctx, true).await?,
    )))
}

async fn rk_cancel(s: S, _ctx: Ctx) -> Result<Response> {
    s.core()?.rekey_cancel().await?;
    Ok(Response::empty())
}

async fn rk_legacy_update(s: S, ctx: Ctx) -> Result<Response> {
    let (key, nonce) = key_and_nonce(&ctx, true)?;
    Ok(legacy_ok(
        match s.core()?.rekey_update(key, &nonce).await? {
            RekeyUpdate::Progress(st) => rekey_status_legacy(&st),
            RekeyUpdate::Complete(r) => rekey_result(&r),
        },
    ))
}

async fn rk_legacy_verify_read(s: S, _ctx: Ctx) -> Result<Response> {
    let status = s.core()?.rekey_verify_status().await?;
    let status = status.ok_or_else(|| Error::bad_request("no rekey configuration found"))?;
    Ok(legacy_ok(verify_status_body(&status)))
}

async fn rk_legacy_verify_restart(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(legacy_ok(verify_status_body(
        &s.core()?.rekey_verify_restart().await?,
    )))
}

async fn rk_legacy_verify(s: S, ctx: Ctx) -> Result<Response> {
    let (key, nonce) = key_and_nonce(&ctx, true)?;
    Ok(legacy_ok(
        match s.core()?.rekey_verify(key, &nonce).await? {
            VerifyUpdate::Progress(st) => verify_status_body(&st),
            VerifyUpdate::Complete(nonce) => json!({"nonce": nonce, "complete": true}),
        },
    ))
}

async fn rk_read(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(Response::data(obj(rekey_status_data(
        &s.core()?.rekey_status().await?,
    ))))
}

async fn rk_init(s: S, ctx: Ctx) -> Result<Response> {
    Ok(Response::data(obj(rekey_status_data(
        &rekey_init(&s, &ctx, false).await?,
    ))))
}

async fn rk_update(s: S, ctx: Ctx) -> Result<Response> {
    let (key, nonce) = key_and_nonce(&ctx, false)?;
    Ok(Response::data(obj(
        match s.core()?.rekey_update(key, &nonce).await? {
            RekeyUpdate::Progress(st) => rekey_status_data(&st),
            RekeyUpdate::Complete(r) => {
                let mut v = rekey_result(&r);
                v["verification_nonce"] = json!(r.verification_nonce);
                v
            }
        },
    )))
}

async fn rk_verify_read(s: S, _ctx: Ctx) -> Result<Response> {
    let status = s.core()?.rekey_verify_status().await?;
    let status = status.ok_or_else(|| Error::bad_request("no rotation configuration found"))?;
    Ok(Response::data(obj(verify_status_body(&status))))
}

async fn rk_verify_restart(s: S, _ctx: Ctx) -> Result<Response> {
    Ok(Response::data(obj(verify_status_body(
        &s.core()?.rekey_verify_restart().await?,
    ))))
}

async fn rk_verify(s: S, ctx: Ctx) -> Result<Response> {
    let (key, nonce) = key_and_nonce(&ctx, false)?;
    Ok(Response::data(obj(
        match s.core()?.rekey_verify(key, &nonce).await? {
            VerifyUpdate::Progress(st) => verify_status_body(&st),
            VerifyUpdate::Complete(nonce) => json!({"nonce": nonce, "complete": true}),
        },
    )))
}

/// The backup body: the nonce, and per key fingerprint the encrypted
/// shares as hex (`keys`) and base64 (`keys_base64`), in `data` and, as
/// OpenBao answers this legacy path, at the top level too.
fn backup_body(b: &RekeyBackup) -> Result<Response> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut keys_b64 = serde_json::Map::new();
    for (fingerprint, shares) in &b.keys {
        let encoded = shares
            .iter()
            .map(|h| hex::decode(h).map(|bytes| engine.encode(bytes)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("error decoding hex-encoded backup key: {e}")))?;
        keys_b64.insert(fingerprint.clone(), json!(encoded));
    }
    Ok(legacy(obj(json!({
        "nonce": b.nonce,
        "keys": b.keys,
        "keys_base64": keys_b64,
    }))))
}

async fn rk_backup_read(s: S, _ctx: Ctx) -> Result<Response> {
    match s.core()?.rekey_backup().await? {
        Some(b) => backup_body(&b),
        None => Err(Error::bad_request("no backed-up keys found")),
    }
}

async fn rk_backup_delete(s: S, _ctx: Ctx) -> Result<Response> {
    s.core()?.rekey_delete_backup().await?;
    Ok(Response::empty())
}

fn rootgen_fields() -> Vec<Field> {
    vec![
        Field::new(
            "otp",
            FieldType::String,
            "One-time password for encoding the root token.",
        ),
        Field::new(
            "pgp_key",
            FieldType::String,
            "A base64 binary PGP public key to encrypt the root token to (instead of otp).",
        ),
    ]
}

fn update_fields() -> Vec<Field> {
    vec![
        Field::new(
            "key",
            FieldType::String,
            "An unseal key share, hex or base64.",
        ),
        Field::new("nonce", FieldType::String, "The nonce of the operation."),
    ]
}

fn rekey_fields() -> Vec<Field> {
    vec![
        Field::new(
            "secret_shares",
            FieldType::Int,
            "Number of key shares to split the new unseal key into.",
        ),
        Field::new(
            "secret_threshold",
            FieldType::Int,
            "Number of key shares required to reconstruct the new unseal key.",
        ),
        Field::new(
            "pgp_keys",
            FieldType::CommaStringSlice,
            "Base64 binary PGP public keys, one per new share, to encrypt the shares to (in order).",
        ),
        Field::new(
            "backup",
            FieldType::Bool,
            "Store a backup of the PGP-encrypted shares (needs pgp_keys).",
        ),
        Field::new(
            "require_verification",
            FieldType::Bool,
            "Require the new shares to be given back before they take effect.",
        ),
    ]
}

/// The special paths that are unauthenticated (the listener may still
/// refuse the legacy ones).
pub(super) const UNAUTHENTICATED: &[&str] = &[
    "generate-root/attempt",
    "generate-root/update",
    "rekey/init",
    "rekey/update",
    "rekey/verify",
    "decode-token",
];

/// The generate-root, rekey and decode-token paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    const GR_HELP: (&str, &str) = (
        "Reads status, initializes, or cancels a root token generation process.",
        "GET reads the progress of the current attempt; PUT starts one (with an otp, with a pgp_key, or else an otp is generated and returned once); DELETE cancels it. Unseal key holders then submit their shares to the update path; the last one receives the new root token XOR the otp, base64-encoded, or the base64 of the token encrypted to the pgp_key.",
    );
    const RK_HELP: (&str, &str) = (
        "Reads status, initializes, or cancels a rekey of the unseal key.",
        "GET reads the progress of the current rekey; PUT starts one with the new secret_shares and secret_threshold; DELETE cancels it. Holders of the current shares then submit them to the update path; the last one receives the new shares.",
    );
    const VERIFY_HELP: (&str, &str) = (
        "Verifies the new shares of a rekey that requires verification.",
        "GET reads the verification progress; PUT submits one new share; DELETE restarts the verification with a new nonce. The new key takes effect once a threshold of new shares has been given back.",
    );
    vec![
        Path::new("generate-root/attempt")
            .fields(rootgen_fields())
            .op(Operation::Read, handler(gr_legacy_read), "Read the configuration and progress of the current root generation attempt.")
            .op(Operation::Update, handler(gr_legacy_init), "Initializes a new root generation attempt.")
            .op(Operation::Delete, handler(gr_cancel), "Cancels any in-progress root generation attempt.")
            .help(GR_HELP.0, GR_HELP.1),
        Path::new("generate-root/update")
            .fields(update_fields())
            .op(Operation::Update, handler(gr_legacy_update), "Enter a single unseal key share to progress the root generation attempt.")
            .help("Enter a single unseal key share to progress the root generation attempt.", "The last share completes the attempt and returns the encoded root token."),
        Path::new("generate-root-token/attempt")
            .fields(rootgen_fields())
            .op(Operation::Read, handler(gr_read), "Read the status of root token generation.")
            .op(Operation::Update, handler(gr_init), "Initialize root token generation.")
            .op(Operation::Delete, handler(gr_cancel), "Cancel root token generation.")
            .help(GR_HELP.0, GR_HELP.1),
        Path::new("generate-root-token/update")
            .fields(update_fields())
            .op(Operation::Update, handler(gr_update), "Enter a single unseal key share to progress the root generation attempt.")
            .help("Enter a single unseal key share to progress the root generation attempt.", "The last share completes the attempt and returns the encoded root token."),
        Path::new("decode-token")
            .fields(vec![
                Field::new("encoded_token", FieldType::String, "Specifies the encoded token (result from generate-root-token call)."),
                Field::new("otp", FieldType::String, "Specifies the otp code used for decoding."),
            ])
            .op(Operation::Update, handler(decode_token), "Decodes the encoded token with the otp.")
            .help("Decodes an encoded root token.", "Decodes a root token encoded by sys/generate-root-token or the unauthenticated sys/generate-root, with the otp used for it."),
        Path::new("rekey/init")
            .fields(rekey_fields())
            .op(Operation::Read, handler(rk_legacy_read), "Reads the configuration and progress of the current rekey attempt.")
            .op(Operation::Update, handler(rk_legacy_init), "Initializes a new rekey attempt.")
            .op(Operation::Delete, handler(rk_cancel), "Cancels any in-progress rekey.")
            .help(RK_HELP.0, RK_HELP.1),
        Path::new("rekey/update")
            .fields(update_fields())
            .op(Operation::Update, handler(rk_legacy_update), "Enter a single unseal key share to progress the rekey of the Vault.")
            .help("Enter a single unseal key share to progress the rekey.", "The last current share completes the rekey and returns the new shares."),
        Path::new("rekey/verify")
            .fields(update_fields())
            .op(Operation::Read, handler(rk_legacy_verify_read), "Read the configuration and progress of the current rekey verification attempt.")
            .op(Operation::Update, handler(rk_legacy_verify), "Enter a single new key share to progress the rekey verification operation.")
            .op(Operation::Delete, handler(rk_legacy_verify_restart), "Cancel any in-progress rekey verification operation.")
            .help(VERIFY_HELP.0, VERIFY_HELP.1),
        Path::new("rekey/backup")
            .op(Operation::Read, handler(rk_backup_read), "Return the backup copy of PGP-encrypted unseal keys.")
            .op(Operation::Delete, handler(rk_backup_delete), "Delete the backup copy of PGP-encrypted unseal keys.")
            .help("Allows fetching or deleting the backup of the rotated unseal keys.", "A rekey with pgp_keys and backup keeps the PGP-encrypted new shares, by key fingerprint, until this backup is deleted."),
        Path::new("rotate/root/init")
            .fields(rekey_fields())
            .op(Operation::Read, handler(rk_read), "Reads the configuration and progress of the current root key rotation attempt.")
            .op(Operation::Update, handler(rk_init), "Initializes a new root key rotation attempt.")
            .op(Operation::Delete, handler(rk_cancel), "Cancels any in-progress root key rotation operation.")
            .help(RK_HELP.0, RK_HELP.1),
        Path::new("rotate/root/update")
            .fields(update_fields())
            .op(Operation::Update, handler(rk_update), "Enter a single unseal key share to progress the root key rotation.")
            .help("Enter a single unseal key share to progress the rotation.", "The last current share completes the rotation and returns the new shares."),
        Path::new("rotate/root/verify")
            .fields(update_fields())
            .op(Operation::Read, handler(rk_verify_read), "Read the configuration and progress of the current root key rotation verification.")
            .op(Operation::Update, handler(rk_verify), "Enter a single new key share to progress the verification.")
            .op(Operation::Delete, handler(rk_verify_restart), "Restart the verification with a new nonce.")
            .help(VERIFY_HELP.0, VERIFY_HELP.1),
        Path::new("rotate/root/backup")
            .op(Operation::Read, handler(rk_backup_read), "Return the backup copy of PGP-encrypted unseal keys.")
            .op(Operation::Delete, handler(rk_backup_delete), "Delete the backup copy of PGP-encrypted unseal keys.")
            .help("Allows fetching or deleting the backup of the rotated unseal keys.", "A rekey with pgp_keys and backup keeps the PGP-encrypted new shares, by key fingerprint, until this backup is deleted."),
    ]
}
