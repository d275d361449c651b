//! Logins: an auth method that accepted a login answers with a
//! [`TokenIssue`]; the core turns it into a token under the login path,
//! with OpenBao's rules for policies, token type and TTLs (bounded by the
//! auth mount's settings), and answers with the `auth` block. The token is
//! an orphan: nothing above it revokes it. The role side of the same
//! parameters, [`TokenParams`], lives in [`params`].

pub mod params;

use std::net::IpAddr;

use crate::core::{Core, Unsealed};
use crate::framework::{Field, FieldType};
use crate::logical::{Auth, TokenIssue};
use crate::mount::MountEntry;
use crate::token::role::BoundCidr;
use crate::token::{initial_ttl, now_unix, NewToken};
use crate::{Error, Result};

pub use params::{Echo, Legacy, TokenParams};

impl Core {
    /// Issues the token a login from `remote` asked for, on the auth mount
    /// `entry`.
    pub(crate) async fn issue_login_token(
        &self,
        unsealed: &Unsealed,
        entry: &MountEntry,
        full_path: &str,
        issue: TokenIssue,
        remote: Option<IpAddr>,
    ) -> Result<Auth> {
        let mut policies: Vec<String> = issue
            .policies
            .iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if policies.iter().any(|p| p == "root") {
            return Err(Error::bad_request("auth methods cannot create root tokens"));
        }
        if !issue.no_default_policy {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();

        let mount_type = entry
            .config
            .token_type
            .clone()
            .unwrap_or_else(|| "default-service".into());
        let batch = match (mount_type.as_str(), issue.token_type.as_str()) {
            ("service", _) => false,
            ("batch", _) => true,
            (_, "service") => false,
            (_, "batch") => true,
            (m, "" | "default") => m == "default-batch",
            (_, other) => {
                return Err(Error::bad_request(format!(
                    "invalid 'token_type' value {other:?}"
                )))
            }
        };

        let (mount_default, mount_max) = self.effective_ttls(entry);
        let max = match issue.max_ttl.as_secs() {
            0 => mount_max,
            m if mount_max == 0 => m,
            m => m.min(mount_max),
        };
        let period = issue.period.as_secs();
        let explicit_max_ttl = issue.explicit_max_ttl.as_secs();
        let ttl = initial_ttl(
            issue.ttl.as_secs(),
            period,
            explicit_max_ttl,
            mount_default,
            max,
            false,
        );
        if batch && (issue.num_uses > 0 || period > 0) {
            return Err(Error::bad_request(
                "batch tokens cannot have a use limit or a period",
            ));
        }
        let bound_cidrs = if issue.strictly_bind_ip {
            // `token_strictly_bind_ip`: only the address that logged in.
            let ip =
                remote.ok_or_else(|| Error::bad_request("failed to get connection information"))?;
            vec![BoundCidr::parse(&ip.to_string()).map_err(Error::bad_request)?]
        } else {
            issue
                .bound_cidrs
                .iter()
                .map(|c| BoundCidr::parse(c).map_err(Error::bad_request))
                .collect::<Result<Vec<_>>>()?
        };
        let mount_name = entry.path.trim_end_matches('/').replace('/', "-");
        let display_name = match issue.display_name.trim() {
            "" => mount_name,
            d => format!("{mount_name}-{d}"),
        };
        let meta = (!issue.metadata.is_empty()).then(|| issue.metadata.clone());
        let (id, token) = unsealed
            .tokens
            .create(NewToken {
                policies: policies.clone(),
                meta: meta.clone(),
                display_name,
                ttl,
                explicit_max_ttl,
                period,
                renewable: ttl > 0 && !batch,
                parent: None,
                path: full_path.to_string(),
                num_uses: i64::try_from(issue.num_uses).unwrap_or(i64::MAX),
                role: String::new(),
                bound_cidrs,
                batch,
                id: None,
                max_ttl: issue.max_ttl.as_secs(),
            })
            .await?;
        let lease_duration = token
            .expires_at()
            .map_or(0, |at| at.saturating_sub(now_unix()));
        Ok(Auth {
            client_token: id,
            accessor: token.accessor.clone(),
            policies: policies.clone(),
            token_policies: policies,
            metadata: meta,
            lease_duration,
            renewable: token.renewable,
            entity_id: String::new(),
            token_type: token.token_type.clone(),
            orphan: true,
            mfa_requirement: None,
            num_uses: issue.num_uses,
        })
    }
}

/// The common token parameters of auth method roles (OpenBao's
/// `tokenutil`), with the older `policies` and `period` names; methods add
/// their own older names.
pub fn token_fields() -> Vec<Field> {
    vec![
        Field::new("token_ttl", FieldType::DurationSecond, "The initial ttl of the token to generate."),
        Field::new("token_max_ttl", FieldType::DurationSecond, "The maximum lifetime of the generated token."),
        Field::new("token_policies", FieldType::CommaStringSlice, "Comma-separated list of policies."),
        Field::new("token_bound_cidrs", FieldType::CommaStringSlice, "Comma separated string or JSON list of CIDR blocks. If set, specifies the blocks of IP addresses which are allowed to use the generated token."),
        Field::new("token_explicit_max_ttl", FieldType::DurationSecond, "If set, tokens created via this role carry an explicit maximum TTL."),
        Field::new("token_no_default_policy", FieldType::Bool, "If true, the 'default' policy will not automatically be added to generated tokens."),
        Field::new("token_num_uses", FieldType::Int, "The maximum number of times a token may be used, a value of zero means unlimited."),
        Field::new("token_period", FieldType::DurationSecond, "If set, tokens created via this role will have no max lifetime; instead, their renewal period will be fixed to this value."),
        Field::new("token_type", FieldType::String, "The type of token to generate, service or batch."),
        Field::new("token_strictly_bind_ip", FieldType::Bool, "Bind issued tokens to the address that logged in."),
        Field::new("policies", FieldType::CommaStringSlice, "Use \"token_policies\" instead. If this and \"token_policies\" are both specified, only \"token_policies\" will be used."),
        Field::new("period", FieldType::DurationSecond, "Use \"token_period\" instead. If this and \"token_period\" are both specified, only \"token_period\" will be used."),
    ]
}
