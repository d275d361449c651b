//! `sys/audit`, `sys/audit/:path`, `sys/audit-hash/:path` and
//! `sys/config/auditing/request-headers[/:header]`: audit devices and the
//! audited request headers, as OpenBao 2.x serves them (every one needs
//! sudo). The work is in [`crate::audit`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{legacy, obj, SysState, S};
use strongroom_audit::DeviceConfig;
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

/// The root paths (sudo) of this module.
pub(super) const ROOT: [&str; 5] = [
    "audit",
    "audit/*",
    "audit-hash/*",
    "config/auditing/request-headers",
    "config/auditing/request-headers/*",
];

/// The path of `sys/audit/:path` and `sys/audit-hash/:path`.
#[derive(Deserialize)]
struct DevicePath {
    #[serde(default)]
    path: String,
}

/// The body of `PUT sys/audit/:path`.
#[derive(Deserialize)]
struct EnableParams {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    options: BTreeMap<String, Value>,
}

/// The body of `sys/audit-hash/:path`.
#[derive(Deserialize)]
struct HashParams {
    #[serde(default)]
    input: String,
}

/// A header of `sys/config/auditing/request-headers/:header`.
#[derive(Deserialize)]
struct HeaderName {
    #[serde(default)]
    header: String,
}

/// The body of `POST sys/config/auditing/request-headers/:header`.
#[derive(Deserialize)]
struct HeaderParams {
    #[serde(default)]
    hmac: bool,
}

/// An option's value as OpenBao keeps it: a string (`true`, `0600`).
fn option_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn list(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    Ok(legacy(core.audit().list(&core).await?))
}

async fn enable(s: S, ctx: Ctx) -> Result<Response> {
    let DevicePath { path } = ctx.decode()?;
    let EnableParams {
        kind,
        description,
        local,
        options,
    } = ctx.decode()?;
    if kind.is_empty() {
        return Err(Error::bad_request("type is required"));
    }
    let mut options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.clone(), option_text(v)))
        .collect();
    // `skip_test` is an instruction, not a setting: not kept (OpenBao).
    let skip_test = options
        .remove("skip_test")
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"));
    let core = s.core()?;
    core.audit()
        .enable(
            &core,
            DeviceConfig {
                path,
                kind,
                description,
                local,
                options,
            },
            skip_test,
        )
        .await?;
    Ok(Response::empty())
}

async fn disable(s: S, ctx: Ctx) -> Result<Response> {
    let DevicePath { path } = ctx.decode()?;
    let core = s.core()?;
    core.audit().disable(&core, &path).await?;
    Ok(Response::empty())
}

async fn hash(s: S, ctx: Ctx) -> Result<Response> {
    let DevicePath { path } = ctx.decode()?;
    let HashParams { input } = ctx.decode()?;
    if input.is_empty() {
        return Err(Error::bad_request("the \"input\" parameter is empty"));
    }
    let core = s.core()?;
    let hash = core.audit().hash(&path, &input)?;
    Ok(legacy(obj(json!({ "hash": hash }))))
}

async fn headers_list(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let headers: serde_json::Map<String, Value> = core
        .audit()
        .headers()
        .iter()
        .map(|(name, hmac)| (name.clone(), json!({ "hmac": hmac })))
        .collect();
    Ok(legacy(obj(json!({ "headers": headers }))))
}

async fn header_read(s: S, ctx: Ctx) -> Result<Response> {
    let HeaderName { header } = ctx.decode()?;
    let core = s.core()?;
    let Some(hmac) = core
        .audit()
        .headers()
        .get(&header.to_ascii_lowercase())
        .copied()
    else {
        return Err(Error::bad_request("Could not find header in config"));
    };
    // Keyed by the name as asked for, as OpenBao answers.
    Ok(legacy(obj(json!({ header: { "hmac": hmac } }))))
}

async fn header_write(s: S, ctx: Ctx) -> Result<Response> {
    let HeaderName { header } = ctx.decode()?;
    let HeaderParams { hmac } = ctx.decode()?;
    if header.is_empty() {
        return Err(Error::bad_request("missing header name"));
    }
    let core = s.core()?;
    core.audit().set_header(&core, &header, hmac).await?;
    Ok(Response::empty())
}

async fn header_delete(s: S, ctx: Ctx) -> Result<Response> {
    let HeaderName { header } = ctx.decode()?;
    if header.is_empty() {
        return Err(Error::bad_request("missing header name"));
    }
    let core = s.core()?;
    core.audit().remove_header(&core, &header).await?;
    Ok(Response::empty())
}

fn path_field() -> Field {
    Field::new(
        "path",
        FieldType::String,
        "The name of the audit device (its path).",
    )
}

/// The paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    vec![
        Path::new("audit")
            .op(Operation::Read, handler(list), "List the enabled audit devices.")
            .help("List the enabled audit devices.", "Lists every audit device with its type, description, options and path. Requires sudo."),
        Path::new("audit/{path+}")
            .fields(vec![
                path_field(),
                Field::new("type", FieldType::String, "The type of the audit device: file, socket, syslog or http."),
                Field::new("description", FieldType::String, "User-friendly description for this audit device."),
                Field::new("local", FieldType::Bool, "Mark the device as local-only (kept for API compatibility)."),
                Field::new("options", FieldType::Map, "Configuration options for the audit device (strings)."),
            ])
            .decodes::<DevicePath>()
            .decodes::<EnableParams>()
            .op(Operation::Update, handler(enable), "Enable a new audit device at the supplied path.")
            .op(Operation::Delete, handler(disable), "Disable the audit device at the given path.")
            .help("Enable or disable audit devices.", "PUT enables a device after a test write (unless options.skip_test), with a new salt; it needs unsafe_allow_api_audit_creation = true in the server's configuration. DELETE disables one. Devices declared in the configuration cannot be changed here. Requires sudo."),
        Path::new("audit-hash/{path+}")
            .fields(vec![
                path_field(),
                Field::new("input", FieldType::String, "The input to hash with the device's salt."),
            ])
            .decodes::<DevicePath>()
            .decodes::<HashParams>()
            .op(Operation::Update, handler(hash), "The hash of the given string via the given audit backend.")
            .help("The hash of the given string via the given audit backend.", "Answers hmac-sha256:<hex> of the input with the device's salt: what the device writes for that value. Requires sudo."),
        Path::new("config/auditing/request-headers")
            .op(Operation::Read, handler(headers_list), "List the request headers that are configured to be audited.")
            .op(Operation::List, handler(headers_list), "List the request headers that are configured to be audited.")
            .help("Headers that are audited.", "Lists the request headers audit entries carry, and whether each is hashed. Requires sudo."),
        Path::new("config/auditing/request-headers/{header}")
            .fields(vec![
                Field::new("header", FieldType::String, "The name of the header (case-insensitive)."),
                Field::new("hmac", FieldType::Bool, "Whether the header's value is hashed."),
            ])
            .decodes::<HeaderName>()
            .decodes::<HeaderParams>()
            .op(Operation::Read, handler(header_read), "Read the configuration of an audited request header.")
            .op(Operation::Update, handler(header_write), "Enable auditing of a request header.")
            .op(Operation::Delete, handler(header_delete), "Disable auditing of a request header.")
            .help("Configure a request header to be audited.", "POST adds the header (hmac: whether its value is hashed); DELETE removes it. Requires sudo."),
    ]
}
