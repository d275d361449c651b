//! The original vault-gatekeeper's operator commands, with its flags and
//! environment variables: `seal`, `unseal <method>` and `policy reload` ask
//! a running Gatekeeper; `policy` and `policy update` read and write the
//! policies at the Vault-API server with Gatekeeper's own credential.
//!
//! One difference, on purpose: the original's `/seal`, `/unseal` (of an
//! unsealed instance) and `/policies/reload` were open to anyone; here they
//! need a Vault token with `update` on the admin path (see
//! `--admin-path`), which these commands send as `X-Vault-Token`:
//! `--admin-token`, else `--vault-token`. Every failure exits non-zero
//! (the original logged a warning and exited 0 when Gatekeeper refused).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::args::{CredentialArgs, SecretArg, VaultArgs};
use crate::policy::{self, Policies};
use crate::unseal::UnsealMethod;

/// How to reach a running Gatekeeper.
#[derive(Debug, Clone, clap::Args)]
pub struct GatekeeperConn {
    /// The Gatekeeper instance.
    #[arg(
        long,
        env = "GATEKEEPER_ADDR",
        default_value = "http://localhost:9201",
        value_name = "URL"
    )]
    pub gatekeeper_addr: String,
    /// PEM CA bundle to verify Gatekeeper with.
    #[arg(long, env = "GATEKEEPER_CACERT", value_name = "FILE")]
    pub gatekeeper_cacert: Option<PathBuf>,
    /// Do not verify Gatekeeper's certificate (self-signed test clusters).
    #[arg(long, env = "INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    /// The Vault token sent as `X-Vault-Token` to the admin endpoints
    /// (`update` on Gatekeeper's `--admin-path`); default `--vault-token`.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretArg>,
}

/// `strongroom gatekeeper seal` (and `policy reload`).
#[derive(Debug, Clone, clap::Args)]
pub struct SealArgs {
    /// The instance, and the admin credential.
    #[command(flatten)]
    pub conn: GatekeeperConn,
    /// A Vault token: the admin credential unless `--admin-token` is given.
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<SecretArg>,
}

/// `strongroom gatekeeper unseal <method>`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnsealArgs {
    /// `token`, `token-wrapped`, `approle`, `aws` or `github`.
    #[arg(value_name = "METHOD")]
    pub method: String,
    /// For `approle`, the role id and secret id may be given here instead
    /// of `--auth-app-role` and `--auth-app-secret` (as the original).
    #[arg(value_name = "ROLE_ID SECRET_ID", num_args = 0..=2)]
    pub approle: Vec<SecretArg>,
    /// The instance, and the admin credential (needed when it is unsealed
    /// already: replacing its token is an admin act).
    #[command(flatten)]
    pub conn: GatekeeperConn,
    /// The credential sent.
    #[command(flatten)]
    pub creds: CredentialArgs,
}

/// `strongroom gatekeeper policy [update <file|-> | reload]`. Each
/// subcommand takes its flags after its name (`policy update FILE
/// --vault-token ...`), as the original's did.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PolicyArgs {
    /// Without a subcommand, print the merged policies.
    #[command(subcommand)]
    pub action: Option<PolicyAction>,
    /// Where the policies are, and the credential to read them with.
    #[command(flatten)]
    pub source: PolicySource,
}

/// The Vault-API server, the policy path, and Gatekeeper's credential
/// there (the `policy` view and `policy update`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicySource {
    /// The Vault-API server and the policy path.
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Gatekeeper's credential at the Vault-API server.
    #[command(flatten)]
    pub creds: CredentialArgs,
}

/// `strongroom gatekeeper policy` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PolicyAction {
    /// Validate a policy file and write it at `--policy-path` in the
    /// original's layout (`{"data": <policies>}`, for KV v1 and v2). `-`
    /// reads standard input.
    Update {
        /// The policy JSON file, or `-`.
        #[arg(value_name = "FILE")]
        file: String,
        /// Where to write, and the credential to write with.
        #[command(flatten)]
        source: Box<PolicySource>,
    },
    /// Ask the instance to reload its policies (it tells its unsealed
    /// peers too).
    Reload(SealArgs),
}

/// The admin credential: `--admin-token`, else the Vault token.
fn admin_token<'a>(
    conn: &'a GatekeeperConn,
    vault_token: Option<&'a SecretArg>,
) -> Option<&'a str> {
    conn.admin_token
        .as_ref()
        .or(vault_token)
        .map(SecretArg::expose)
        .filter(|t| !t.is_empty())
}

/// POSTs `body` to `path` on the instance with the admin credential, and
/// answers the standard response's `message` (or a generic one) on 2xx;
/// the instance's `error` otherwise.
async fn call(
    conn: &GatekeeperConn,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(60))
        .danger_accept_invalid_certs(conn.insecure_skip_tls_verify);
    if let Some(path) = &conn.gatekeeper_cacert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder.build()?;
    let url = format!("{}{path}", conn.gatekeeper_addr.trim_end_matches('/'));
    let mut req = http.post(&url).json(body);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!(
            "Gatekeeper at {url} could not be reached: {}",
            e.without_url()
        )
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("Gatekeeper answered HTTP {status} with no JSON"))?;
    if !status.is_success() {
        let why = answer
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .unwrap_or("no error given");
        bail!("Gatekeeper refused (HTTP {}): {why}", status.as_u16());
    }
    Ok(answer)
}

/// `seal`: seals the instance.
pub async fn run_seal(args: SealArgs) -> anyhow::Result<()> {
    let token = admin_token(&args.conn, args.vault_token.as_ref());
    call(&args.conn, "/seal", &json!({}), token).await?;
    eprintln!("Sealed.");
    Ok(())
}

/// The `/unseal` body for `method` from the flags (and, for `approle`,
/// the positional role id and secret id), in the field names of the API.
pub fn unseal_body(args: &UnsealArgs) -> anyhow::Result<Value> {
    let c = &args.creds;
    let val = |s: &Option<SecretArg>| {
        s.as_ref()
            .map(|v| v.expose().to_string())
            .filter(|v| !v.is_empty())
    };
    let need = |v: Option<String>, flag: &str| {
        v.ok_or_else(|| anyhow::anyhow!("the '{}' method needs --{flag}", args.method))
    };
    Ok(match args.method.as_str() {
        "token" => json!({"method": "token", "token": need(val(&c.vault_token), "vault-token")?}),
        "token-wrapped" => json!({
            "method": "token-wrapped",
            "token": need(val(&c.auth_token_wrapped), "auth-token-wrapped")?,
        }),
        "approle" => {
            let positional = |i: usize| {
                args.approle
                    .get(i)
                    .map(|v| v.expose().to_string())
                    .filter(|v| !v.is_empty())
            };
            let (role_id, secret_id) = match val(&c.auth_app_role) {
                Some(r) => (Some(r), val(&c.auth_app_secret)),
                None => (positional(0), positional(1)),
            };
            let mut body = json!({"method": "approle", "role_id": need(role_id, "auth-app-role")?});
            if let Some(s) = secret_id {
                body["secret_id"] = json!(s);
            }
            body
        }
        "aws" => {
            let mut body = json!({"method": "aws"});
            if let Some(r) = c
                .auth_aws_role
                .clone()
                .or_else(|| c.auth_aws_iam.clone())
                .filter(|r| !r.is_empty())
            {
                body["aws_role"] = json!(r);
            }
            if let Some(n) = val(&c.auth_aws_nonce) {
                body["aws_nonce"] = json!(n);
            }
            body
        }
        "github" => json!({
            "method": "github",
            "personal_token": need(val(&c.auth_gh_token), "auth-gh-token")?,
        }),
        other => {
            bail!("invalid method {other:?}: one of token, token-wrapped, approle, aws, github")
        }
    })
}

/// `unseal <method>`: asks the instance to unseal with the credential.
pub async fn run_unseal(args: UnsealArgs) -> anyhow::Result<()> {
    let body = unseal_body(&args)?;
    let token = admin_token(&args.conn, args.creds.vault_token.as_ref());
    call(&args.conn, "/unseal", &body, token).await?;
    eprintln!("Unsealed.");
    Ok(())
}

/// `policy`, `policy update`, `policy reload`.
pub async fn run_policy(args: PolicyArgs) -> anyhow::Result<()> {
    match &args.action {
        Some(PolicyAction::Reload(r)) => {
            let token = admin_token(&r.conn, r.vault_token.as_ref());
            call(&r.conn, "/policies/reload", &json!({}), token).await?;
            eprintln!("Policies reloaded.");
            Ok(())
        }
        Some(PolicyAction::Update { file, source }) => update_policies(source, file).await,
        None => {
            let merged = view_policies(&args.source).await?;
            println!("{}", serde_json::to_string_pretty(&merged)?);
            Ok(())
        }
    }
}

/// Logs in with the credential the flags give.
async fn login(
    args: &PolicySource,
) -> anyhow::Result<(crate::vault::VaultClient, crate::vault::Token)> {
    let method: UnsealMethod = args.creds.method().context(
        "no credential: give --vault-token, --auth-token-wrapped, --auth-app-role, \
         --auth-aws-ec2 or --auth-gh-token",
    )?;
    let vault = args.vault.client()?;
    let auth = method
        .login(&vault, &args.vault.unseal_config())
        .await
        .with_context(|| format!("logging in with the '{}' method", method.name()))?;
    Ok((vault, auth.token))
}

/// The merged policies at the policy path, as the service loads them.
async fn view_policies(args: &PolicySource) -> anyhow::Result<Value> {
    let (vault, token) = login(args).await?;
    let path = args.vault.policy_path.trim_matches('/');
    let merged = policy::load_merged(&vault, &token, path, args.vault.vault_kv_version).await?;
    Ok(Value::Object(merged))
}

/// Reads the policy text from `file` (`-`: standard input).
fn read_policy_file(file: &str) -> anyhow::Result<Vec<u8>> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the policy from standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("could not open file '{file}'"))
    }
}

async fn update_policies(args: &PolicySource, file: &str) -> anyhow::Result<()> {
    let text = read_policy_file(file)?;
    Policies::from_json(&text).context("validation of the policy file failed")?;
    // Valid JSON (just checked): written as given, inside `data`.
    let policies: Value = serde_json::from_slice(&text)?;
    let (vault, token) = login(args).await?;
    let path = args.vault.policy_path.trim_matches('/');
    vault
        .write(&token, path, &json!({ "data": policies }))
        .await
        .with_context(|| format!("failed to write the policy at {path}"))?;
    eprintln!("Wrote policy successfully.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: UnsealArgs,
    }

    fn body(argv: &[&str]) -> anyhow::Result<Value> {
        let mut v = vec!["gk"];
        v.extend_from_slice(argv);
        unseal_body(&Cli::try_parse_from(v).unwrap().args)
    }

    #[test]
    fn unseal_bodies_carry_the_apis_field_names() {
        assert_eq!(
            body(&["token", "--vault-token", "t0k"]).unwrap(),
            json!({"method": "token", "token": "t0k"})
        );
        assert_eq!(
            body(&["token-wrapped", "--auth-token-wrapped", "w"]).unwrap(),
            json!({"method": "token-wrapped", "token": "w"})
        );
        assert_eq!(
            body(&["approle", "--auth-app-role", "r", "--auth-app-secret", "s"]).unwrap(),
            json!({"method": "approle", "role_id": "r", "secret_id": "s"})
        );
        // The original's positional form.
        assert_eq!(
            body(&["approle", "r2", "s2"]).unwrap(),
            json!({"method": "approle", "role_id": "r2", "secret_id": "s2"})
        );
        assert_eq!(
            body(&["aws", "--auth-aws-iam", "gk-role", "--auth-aws-nonce", "n"]).unwrap(),
            json!({"method": "aws", "aws_role": "gk-role", "aws_nonce": "n"})
        );
        assert_eq!(
            body(&["github", "--auth-gh-token", "ghp"]).unwrap(),
            json!({"method": "github", "personal_token": "ghp"})
        );
        for (argv, why) in [
            (&["token"][..], "the 'token' method needs --vault-token"),
            (&["github"][..], "the 'github' method needs --auth-gh-token"),
            (
                &["approle"][..],
                "the 'approle' method needs --auth-app-role",
            ),
            (&["kerberos"][..], "invalid method \"kerberos\""),
        ] {
            let err = body(argv).unwrap_err().to_string();
            assert!(err.starts_with(why), "{argv:?}: {err}");
        }
    }

    #[test]
    fn the_admin_token_defaults_to_the_vault_token() {
        let args = Cli::try_parse_from(["gk", "token", "--vault-token", "v"])
            .unwrap()
            .args;
        assert_eq!(
            admin_token(&args.conn, args.creds.vault_token.as_ref()),
            Some("v")
        );
        let args = Cli::try_parse_from(["gk", "token", "--vault-token", "v", "--admin-token", "a"])
            .unwrap()
            .args;
        assert_eq!(
            admin_token(&args.conn, args.creds.vault_token.as_ref()),
            Some("a")
        );
    }
}
