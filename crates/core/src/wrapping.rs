//! Response wrapping: instead of its answer, a client gets a single-use
//! wrapping token whose cubbyhole holds the answer. The wrapping token is an
//! orphan with the `response-wrapping` policy, one use, and the requested
//! TTL; the core lets it do nothing but unwrap, look up and rewrap.
//! Spending its one use is atomic (the token store's use count), so of two
//! concurrent unwraps exactly one gets the answer. The wrapping token is
//! made in the request's namespace, and its answer kept in that
//! namespace's cubbyhole.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::node::{Active, Core};
use crate::token::{NewToken, TokenEntry, RESPONSE_WRAPPING_POLICY};
use strongroom_sdk::logical::{Data, Response, WrapInfo};
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::{Error, Result};

/// The key of the wrapped answer in the wrapping token's cubbyhole.
const RESPONSE_KEY: &str = "response";

/// What the wrapping token's cubbyhole holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrapped {
    /// The answer, as the HTTP envelope would have carried it.
    #[serde(serialize_with = "strongroom_sdk::json::serialize_deep")]
    response: Value,
    /// RFC 3339 time of wrapping.
    creation_time: String,
    /// The wrapping token's TTL.
    creation_ttl: u64,
    /// The path whose answer was wrapped.
    creation_path: String,
}

fn invalid() -> Error {
    Error::bad_request("wrapping token is not valid or does not exist")
}

impl Core {
    /// Wraps `resp` (the answer to `creation_path` on a mount of type
    /// `mount_type`) for `ttl` seconds. `wrap_info.wrapped_accessor` is the
    /// accessor of a wrapped token or, as in OpenBao, of an approle
    /// secret id.
    #[allow(clippy::too_many_arguments)] // What a wrapping is made of.
    pub(crate) async fn wrap_response(
        &self,
        unsealed: &Active,
        namespace_id: &str,
        resp: &Response,
        ttl: u64,
        creation_path: &str,
        request_id: &str,
        mount_type: &str,
    ) -> Result<Response> {
        let wrapped = Wrapped {
            response: resp.envelope(request_id),
            creation_time: humantime::format_rfc3339_nanos(std::time::SystemTime::now())
                .to_string(),
            creation_ttl: ttl,
            creation_path: creation_path.to_string(),
        };
        let secret_id_accessor = || {
            resp.data
                .as_ref()
                .filter(|_| mount_type == "approle")
                .and_then(|d| d.get("secret_id_accessor"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let wrapped_accessor = match &resp.auth {
            Some(a) => a.accessor.clone(),
            None => secret_id_accessor().unwrap_or_default(),
        };
        self.store_wrapped(unsealed, namespace_id, wrapped, wrapped_accessor)
            .await
    }

    async fn store_wrapped(
        &self,
        unsealed: &Active,
        namespace_id: &str,
        wrapped: Wrapped,
        wrapped_accessor: String,
    ) -> Result<Response> {
        let bytes = serde_json::to_vec(&wrapped).map_err(Error::internal)?;
        // The token and its answer are written in one atomic batch: no
        // token without an answer, no answer without a token.
        let (id, entry) = unsealed
            .tokens
            .create_with(
                NewToken {
                    policies: vec![RESPONSE_WRAPPING_POLICY.into()],
                    display_name: "response-wrapping".into(),
                    ttl: wrapped.creation_ttl,
                    explicit_max_ttl: wrapped.creation_ttl,
                    path: wrapped.creation_path.clone(),
                    num_uses: 1,
                    namespace_id: namespace_id.to_string(),
                    ..Default::default()
                },
                |entry| {
                    Ok(vec![BatchOp::Put(
                        self.response_key(unsealed, entry)?,
                        bytes,
                    )])
                },
            )
            .await?;
        Ok(Response {
            wrap_info: Some(WrapInfo {
                token: id,
                accessor: entry.accessor.clone(),
                ttl: wrapped.creation_ttl,
                creation_time: wrapped.creation_time,
                creation_path: wrapped.creation_path,
                wrapped_accessor,
            }),
            ..Default::default()
        })
    }

    /// The barrier-absolute key of a wrapping token's answer.
    fn response_key(&self, unsealed: &Active, entry: &TokenEntry) -> Result<String> {
        Ok(format!(
            "{}{RESPONSE_KEY}",
            self.cubbyhole_of(unsealed, entry)?.prefix()
        ))
    }

    /// A token's cubbyhole, in its namespace's.
    fn cubbyhole_of(
        &self,
        unsealed: &Active,
        entry: &TokenEntry,
    ) -> Result<strongroom_sdk::storage::View> {
        let tenant = unsealed
            .namespaces
            .by_id(&entry.namespace_id)
            .ok_or_else(invalid)?;
        Ok(tenant
            .cubbyhole
            .sub_view(&format!("{}/", entry.cubbyhole_id)))
    }

    /// The live wrapping token `token`, or OpenBao's 400.
    async fn wrapping_entry(
        &self,
        unsealed: &Active,
        token: &str,
    ) -> Result<std::sync::Arc<TokenEntry>> {
        if token.is_empty() {
            return Err(invalid());
        }
        let entry = unsealed.tokens.lookup(token).await?.ok_or_else(invalid)?;
        if !entry.is_wrapping() {
            return Err(invalid());
        }
        Ok(entry)
    }

    /// The stored answer of a wrapping token.
    async fn wrapped_bytes(&self, unsealed: &Active, entry: &TokenEntry) -> Result<Vec<u8>> {
        self.cubbyhole_of(unsealed, entry)?
            .get(RESPONSE_KEY)
            .await?
            .ok_or_else(invalid)
    }

    /// Spends the wrapping token `token` and takes its answer out: the
    /// token and its answer are deleted in one write, and of concurrent
    /// calls exactly one succeeds.
    async fn take_wrapped(&self, token: &str) -> Result<(Wrapped, String)> {
        let unsealed = self.active()?;
        let entry = self.wrapping_entry(&unsealed, token).await?;
        let bytes = self.wrapped_bytes(&unsealed, &entry).await?;
        unsealed
            .tokens
            .claim(
                &entry,
                vec![BatchOp::Delete(self.response_key(&unsealed, &entry)?)],
            )
            .await
            .map_err(|e| match e {
                Error::PermissionDenied => invalid(),
                e => e,
            })?;
        let wrapped = strongroom_sdk::json::from_stored(&bytes)
            .map_err(|e| Error::internal(format!("corrupt wrapped response: {e}")))?;
        Ok((wrapped, entry.namespace_id.clone()))
    }

    /// `sys/wrapping/unwrap`: the wrapped answer, once.
    pub async fn unwrap(&self, token: &str) -> Result<Response> {
        let (wrapped, _) = self.take_wrapped(token).await?;
        Ok(Response::raw(200, wrapped.response))
    }

    /// `sys/wrapping/rewrap`: the same answer under a new wrapping token
    /// with the same TTL; the old token is spent.
    pub async fn rewrap(&self, token: &str) -> Result<Response> {
        let unsealed = self.active()?;
        let (mut wrapped, namespace_id) = self.take_wrapped(token).await?;
        wrapped.creation_time =
            humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let accessor = wrapped
            .response
            .get("auth")
            .and_then(|a| a.get("accessor"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.store_wrapped(&unsealed, &namespace_id, wrapped, accessor)
            .await
    }

    /// `sys/wrapping/lookup`: when and where a wrapping token was made,
    /// without spending it.
    pub async fn wrapping_lookup(&self, token: &str) -> Result<Data> {
        let unsealed = self.active()?;
        let entry = self.wrapping_entry(&unsealed, token).await?;
        let bytes = self.wrapped_bytes(&unsealed, &entry).await?;
        let wrapped: Wrapped = strongroom_sdk::json::from_stored(&bytes)
            .map_err(|e| Error::internal(format!("corrupt wrapped response: {e}")))?;
        let mut data = Data::new();
        data.insert("creation_path".into(), wrapped.creation_path.into());
        data.insert("creation_time".into(), wrapped.creation_time.into());
        data.insert("creation_ttl".into(), wrapped.creation_ttl.into());
        Ok(data)
    }
}
