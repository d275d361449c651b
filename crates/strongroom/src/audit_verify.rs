//! `strongroom audit verify`: checks a hash-chained audit log (one file, or
//! rotated files in order) and names the first entry that was altered,
//! removed or reordered.
//!
//! The links are HMACs with the device's salt, which never leaves the
//! server: each link is recomputed by the server that wrote the log, with
//! `sys/audit-hash/<device>` (a sudo endpoint) on the input
//! `previous link + entry`. Every link depends only on the stored previous
//! link, so the requests go out many at a time.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use strongroom_audit::chain;

/// Requests to `sys/audit-hash` in flight at once.
const PARALLEL: usize = 32;

/// `strongroom audit verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The server that wrote the log (its API address); it recomputes the
    /// links with the device's salt.
    #[arg(long = "salt-from", env = "VAULT_ADDR", value_name = "URL")]
    pub salt_from: String,
    /// The audit device that wrote the log (its path, e.g. `file`).
    #[arg(long = "device", default_value = "file", value_name = "PATH")]
    pub device: String,
    /// A token with sudo on `sys/audit-hash/<device>`.
    #[arg(long = "token", env = "VAULT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The device's `prefix` option, if it has one.
    #[arg(long = "prefix", default_value = "")]
    pub prefix: String,
    /// PEM CA bundle to verify the server with.
    #[arg(long = "ca-cert", env = "VAULT_CACERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The log files, oldest first (rotated files before the current one).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Runs the check; prints how many entries verified, or fails naming the
/// first broken one.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let mut texts = Vec::new();
    for f in &args.files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        texts.push((f.display().to_string(), bytes));
    }
    let lines = texts.iter().flat_map(|(name, bytes)| {
        bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(move |(i, l)| (name.as_str(), i + 1, l))
    });
    let links = chain::links(lines, &args.prefix).map_err(|e| anyhow::anyhow!("{e}"))?;
    if links.is_empty() {
        bail!("no audit entries in the given files");
    }

    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder.build()?;
    let url = format!(
        "{}/v1/sys/audit-hash/{}",
        args.salt_from.trim_end_matches('/'),
        args.device.trim_matches('/')
    );
    let hashes: Vec<String> = stream::iter(links.iter())
        .map(|l| {
            let http = &http;
            let url = &url;
            let token = &args.token;
            async move {
                let input = String::from_utf8_lossy(&l.input).into_owned();
                let resp = http
                    .post(url)
                    .header("X-Vault-Token", token)
                    .json(&serde_json::json!({ "input": input }))
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("asking {url}: {}", e.without_url()))?;
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                if !status.is_success() {
                    bail!("{url} answered {status}: {}", body["errors"]);
                }
                body["data"]["hash"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow::anyhow!("{url} answered no hash"))
            }
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    match chain::check(&links, &hashes) {
        Ok(n) => {
            println!("OK: {n} entries verified");
            Ok(())
        }
        Err(broken) => bail!("{broken}"),
    }
}
