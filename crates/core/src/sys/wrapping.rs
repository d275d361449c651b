//! `sys/wrapping/*`: wrap arbitrary data, unwrap, look up and rewrap
//! wrapping tokens. The work is the core's ([`crate::wrapping`]); these are
//! the path declarations.

use serde::Deserialize;

use super::{SysState, S};
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

/// The `token` parameter of unwrap, lookup and rewrap.
#[derive(Deserialize)]
struct TokenParam {
    #[serde(default)]
    token: String,
}

/// The wrapping token: the `token` field, else the request's token.
fn wrapping_token(ctx: &Ctx) -> Result<String> {
    let TokenParam { token } = ctx.decode()?;
    if !token.is_empty() {
        return Ok(token);
    }
    Ok(ctx
        .request
        .client_token
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default())
}

async fn wrap(_s: S, ctx: Ctx) -> Result<Response> {
    if ctx.request.wrap_ttl.is_none() {
        return Err(Error::bad_request(
            "endpoint requires response wrapping to be used",
        ));
    }
    // The core wraps the answer: the data given is the data wrapped.
    Ok(Response::data(strongroom_sdk::json::clone_map(
        &ctx.request.data,
    )))
}

async fn unwrap(s: S, ctx: Ctx) -> Result<Response> {
    let token = wrapping_token(&ctx)?;
    s.core()?.unwrap(&token).await
}

async fn rewrap(s: S, ctx: Ctx) -> Result<Response> {
    let token = wrapping_token(&ctx)?;
    s.core()?.rewrap(&token).await
}

async fn lookup(s: S, ctx: Ctx) -> Result<Response> {
    let token = wrapping_token(&ctx)?;
    Ok(Response::data(s.core()?.wrapping_lookup(&token).await?))
}

fn token_field() -> Vec<Field> {
    vec![Field::new(
        "token",
        FieldType::String,
        "The wrapping token (default: the request's token).",
    )]
}

/// The `sys/wrapping/*` paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    vec![
        Path::new("wrapping/wrap")
            .arbitrary_input()
            .op(Operation::Update, handler(wrap), "Response-wraps an arbitrary JSON object.")
            .help("Response-wraps an arbitrary JSON object.", "Round trips the given input data into a response-wrapped token. Requires X-Vault-Wrap-TTL."),
        Path::new("wrapping/unwrap")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Update, handler(unwrap), "Unwraps a response-wrapped token.")
            .help("Unwraps a response-wrapped token.", "Returns the original response inside the given wrapping token, once. The token may be given in the body, or be the request's token."),
        Path::new("wrapping/lookup")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Read, handler(lookup), "Looks up the properties of a response-wrapped token.")
            .op(Operation::Update, handler(lookup), "Looks up the properties of a response-wrapped token.")
            .help("Looks up the properties of a response-wrapped token.", "Returns the creation TTL, creation time and creation path of the wrapping token without spending it."),
        Path::new("wrapping/rewrap")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Update, handler(rewrap), "Rotates a response-wrapped token.")
            .help("Rotates a response-wrapped token.", "Spends the given wrapping token and wraps its response again under a new one with the same TTL."),
    ]
}
