//! `strongroom gatekeeper login`: the client a task runs. It owns finding
//! the task id in the scheduler's environment, asking Gatekeeper for the
//! wrapping token, unwrapping it at the Vault-API server, and handing the
//! token over on stdout or in a file only the user can read. The token is
//! never logged, and no error message carries it.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::vault::{Token, VaultClient};

/// `strongroom gatekeeper login` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The task's id. Default: `MESOS_TASK_ID`, else
    /// `NOMAD_ALLOC_ID[/NOMAD_TASK_NAME]` (with scheduler `nomad`).
    #[arg(long, value_name = "ID")]
    pub task_id: Option<String>,
    /// The scheduler to ask (`mesos`, `kubernetes`, `nomad`). Default:
    /// the one the task id came from (`MESOS_TASK_ID`: mesos,
    /// `NOMAD_ALLOC_ID`: nomad), else Gatekeeper's default.
    #[arg(long)]
    pub scheduler: Option<String>,
    /// The role to ask for (one of those the task's policy allows).
    #[arg(long)]
    pub role: Option<String>,
    /// Gatekeeper's address.
    #[arg(long, env = "GATEKEEPER_ADDR", value_name = "URL")]
    pub gatekeeper_addr: String,
    /// PEM CA bundle to verify Gatekeeper with.
    #[arg(long, env = "GATEKEEPER_CACERT", value_name = "FILE")]
    pub gatekeeper_cacert: Option<PathBuf>,
    /// The Vault-API server to unwrap at. Default: the `vault_addr`
    /// Gatekeeper answers.
    #[arg(long, env = "VAULT_ADDR", value_name = "URL")]
    pub vault_addr: Option<String>,
    /// PEM CA bundle to verify the Vault-API server with.
    #[arg(long, env = "VAULT_CACERT", value_name = "FILE")]
    pub vault_cacert: Option<PathBuf>,
    /// Write the token to this file (mode 0600, created or truncated; a
    /// symlink or another user's file is refused) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Timeout of each call.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    strongroom_sdk::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// The task id and the scheduler it implies: the flag first, then the
/// schedulers' environment variables (read through `env`).
pub fn task_from(
    args: &LoginArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(String, Option<String>)> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let (task, implied) = if let Some(t) = args.task_id.clone().filter(|t| !t.is_empty()) {
        (t, None)
    } else if let Some(t) = env("MESOS_TASK_ID") {
        (t, Some("mesos"))
    } else if let Some(alloc) = env("NOMAD_ALLOC_ID") {
        match env("NOMAD_TASK_NAME") {
            Some(task) => (format!("{alloc}/{task}"), Some("nomad")),
            None => (alloc, Some("nomad")),
        }
    } else {
        bail!("no task id: give --task-id or set MESOS_TASK_ID or NOMAD_ALLOC_ID");
    };
    let scheduler = args
        .scheduler
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| implied.map(String::from));
    Ok((task, scheduler))
}

fn http_client(cacert: Option<&Path>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().use_rustls_tls().timeout(timeout);
    if let Some(path) = cacert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Asks Gatekeeper for a token and unwraps it: the task's Vault token.
/// `env` reads the environment (the task id, see [`task_from`]).
pub async fn login(
    args: &LoginArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Token> {
    let (task_id, scheduler) = task_from(args, env)?;
    let mut body = json!({ "task_id": task_id });
    if let Some(s) = &scheduler {
        body["scheduler"] = json!(s);
    }
    if let Some(r) = args.role.as_ref().filter(|r| !r.is_empty()) {
        body["role"] = json!(r);
    }
    let http = http_client(args.gatekeeper_cacert.as_deref(), args.timeout)?;
    let url = format!("{}/token", args.gatekeeper_addr.trim_end_matches('/'));
    let resp = http.post(&url).json(&body).send().await.map_err(|e| {
        anyhow::anyhow!(
            "Gatekeeper at {url} could not be reached: {}",
            e.without_url()
        )
    })?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("reading Gatekeeper's answer: {}", e.without_url()))?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error message");
        bail!("Gatekeeper answered {}: {msg}", status.as_u16());
    }
    let wrapping = answer
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Token::new)
        .context("Gatekeeper's answer has no token")?;
    let vault_addr = match (
        &args.vault_addr,
        answer.get("vault_addr").and_then(Value::as_str),
    ) {
        (Some(a), _) if !a.is_empty() => a.clone(),
        (_, Some(a)) if !a.is_empty() => a.to_string(),
        _ => bail!("no Vault-API server address: Gatekeeper gave none; set --vault-addr"),
    };
    let vault = VaultClient::new(
        &vault_addr,
        args.vault_cacert.as_deref(),
        false,
        args.timeout,
    )?;
    let auth = vault
        .unwrap(&wrapping)
        .await
        .context("unwrapping the token Gatekeeper gave")?;
    Ok(auth.token)
}

/// Writes `token` to `path` for the current user only: creates it with
/// mode 0600, or truncates an existing regular file the user owns (and
/// sets it to 0600). Never follows a symlink at `path`.
pub fn write_token_file(path: &Path, token: &Token) -> anyhow::Result<()> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow)
        .open(path);
    let mut file: File = match created {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // O_NONBLOCK: a FIFO planted there must not hang the open.
            let flags = nofollow | rustix::fs::OFlags::NONBLOCK.bits() as i32;
            let f = OpenOptions::new()
                .write(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|e| {
                    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                        anyhow::anyhow!(
                            "{} is a symlink: refusing to write through it",
                            path.display()
                        )
                    } else {
                        anyhow::anyhow!("opening {}: {e}", path.display())
                    }
                })?;
            let meta = f.metadata()?;
            if !meta.file_type().is_file() {
                bail!("{} is not a regular file", path.display());
            }
            if meta.uid() != rustix::process::geteuid().as_raw() {
                bail!("{} belongs to another user", path.display());
            }
            f.set_permissions(Permissions::from_mode(0o600))?;
            f.set_len(0)?;
            f
        }
        Err(e) => return Err(anyhow::anyhow!("creating {}: {e}", path.display())),
    };
    file.write_all(token.expose().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Runs `strongroom gatekeeper login`: the token on stdout, or in
/// `--output`.
pub async fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let token = login(&args, |k| std::env::var(k).ok()).await?;
    match &args.output {
        Some(path) => write_token_file(path, &token),
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.expose())?;
            out.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoginArgs,
    }

    fn args(extra: &[&str]) -> LoginArgs {
        let mut v = vec!["login", "--gatekeeper-addr", "http://gk:9201"];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).unwrap().args
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_task_id_comes_from_the_flag_or_the_schedulers_environment() {
        let mesos = env(&[("MESOS_TASK_ID", "web.1"), ("NOMAD_ALLOC_ID", "a1")]);
        assert_eq!(
            task_from(&args(&[]), &mesos).unwrap(),
            ("web.1".into(), Some("mesos".into()))
        );
        assert_eq!(
            task_from(
                &args(&["--task-id", "pod-uid", "--scheduler", "kubernetes"]),
                &mesos
            )
            .unwrap(),
            ("pod-uid".into(), Some("kubernetes".into()))
        );
        assert_eq!(
            task_from(&args(&["--task-id", "x"]), &mesos).unwrap(),
            ("x".into(), None)
        );
        let nomad = env(&[("NOMAD_ALLOC_ID", "a1"), ("NOMAD_TASK_NAME", "api")]);
        assert_eq!(
            task_from(&args(&[]), nomad).unwrap(),
            ("a1/api".into(), Some("nomad".into()))
        );
        assert_eq!(
            task_from(&args(&[]), env(&[("NOMAD_ALLOC_ID", "a1")])).unwrap(),
            ("a1".into(), Some("nomad".into()))
        );
        assert_eq!(
            task_from(&args(&[]), env(&[("MESOS_TASK_ID", " ")]))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("no task id: give --task-id or set MESOS_TASK_ID or NOMAD_ALLOC_ID")
        );
    }

    #[test]
    fn token_files_are_private_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::new("s.private");
        let path = dir.path().join("token");
        write_token_file(&path, &token).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s.private");

        // An existing, longer, world-readable file of the user: truncated
        // and made private.
        std::fs::write(&path, "a much longer previous content").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_token_file(&path, &token).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s.private");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A symlink (to an existing file, or dangling) is refused and its
        // target untouched.
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_token_file(&link, &token).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let err = write_token_file(&dangling, &token)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.ends_with("is a symlink: refusing to write through it")),
            "{err:?}"
        );
        assert!(!dir.path().join("nowhere").exists());

        // A directory is not a token file.
        let err = write_token_file(dir.path(), &token)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref().is_some_and(|e| e.contains("Is a directory")),
            "{err:?}"
        );
    }
}
