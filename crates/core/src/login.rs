//! Logins: an auth method that accepted a login answers with a
//! [`TokenIssue`]; the core turns it into a token under the login path,
//! with OpenBao's rules for policies, token type and TTLs (bounded by the
//! auth mount's settings), and answers with the `auth` block. The token is
//! an orphan: nothing above it revokes it.
//!
//! A login that names an alias ([`TokenIssue::alias`]) belongs to the
//! entity of that alias on the auth mount, in the login's namespace: found
//! in memory, or made with its alias in one write (concurrent first logins
//! make one). A disabled entity cannot log in; the entity's identity
//! policies are shown beside the token's own.

use std::net::IpAddr;

use crate::mount::MountEntry;
use crate::node::{Active, Core};
use crate::token::{initial_ttl, now_unix, NewToken};
use strongroom_sdk::cidr::BoundCidr;
use strongroom_sdk::logical::{Auth, TokenIssue};
use strongroom_sdk::token_type::TokenType;
use strongroom_sdk::{Error, Result};

impl Core {
    /// Issues the token a login from `remote` asked for, on the auth mount
    /// `entry` of namespace `namespace_id` at `namespace_path` (`""`, `""`:
    /// root), where the token is made.
    #[allow(clippy::too_many_arguments)] // What a login token is made of.
    pub(crate) async fn issue_login_token(
        &self,
        unsealed: &Active,
        namespace_id: &str,
        namespace_path: &str,
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
        let batch = match (mount_type.as_str(), issue.token_type) {
            ("service", _) => false,
            ("batch", _) => true,
            (_, TokenType::Service) => false,
            (_, TokenType::Batch) => true,
            (m, TokenType::Default) => m == "default-batch",
            (_, other @ (TokenType::DefaultService | TokenType::DefaultBatch)) => {
                return Err(Error::bad_request(format!(
                    "invalid 'token_type' value {:?}",
                    other.as_str()
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
        // OpenBao names the token after the mount point: `approle` at the
        // root, `ns1-auth-approle` in `ns1/`.
        let mount_point = if namespace_path.is_empty() {
            entry.path.clone()
        } else {
            format!("{namespace_path}auth/{}", entry.path)
        };
        let mount_name = mount_point.trim_end_matches('/').replace('/', "-");
        let display_name = match issue.display_name.trim() {
            "" => mount_name,
            d => format!("{mount_name}-{d}"),
        };
        let (entity_id, identity_policies) = match &issue.alias {
            Some(alias) => {
                let tenant = unsealed
                    .namespaces
                    .by_id(namespace_id)
                    .ok_or_else(|| Error::bad_request("namespace not found"))?;
                let entity = tenant.identity.login(&entry.accessor, alias).await?;
                if entity.disabled {
                    return Err(Error::Forbidden("permission denied".into()));
                }
                let policies = tenant
                    .identity
                    .resolve(&entity.id)
                    .map(|r| r.policies.clone())
                    .unwrap_or_default();
                (entity.id.clone(), policies)
            }
            None => (String::new(), Vec::new()),
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
                namespace_id: namespace_id.to_string(),
                entity_id: entity_id.clone(),
            })
            .await?;
        let lease_duration = token
            .expires_at()
            .map_or(0, |at| at.saturating_sub(now_unix()));
        let mut all_policies = policies.clone();
        all_policies.extend(identity_policies.iter().cloned());
        all_policies.sort();
        all_policies.dedup();
        Ok(Auth {
            client_token: id,
            accessor: token.accessor.clone(),
            policies: all_policies,
            token_policies: policies,
            identity_policies,
            metadata: meta,
            lease_duration,
            renewable: token.renewable,
            entity_id,
            token_type: token.token_type,
            orphan: true,
            mfa_requirement: None,
            num_uses: issue.num_uses,
        })
    }
}
