//! Many-token runs (issue 13): `seed-tokens` writes N live service tokens
//! straight into a new redb file through the real barrier and token store
//! (so the stored format is the server's), and `unseal-time` starts the
//! server binary on such a file and measures how soon after `sys/unseal`
//! it answers an authenticated request, when its token index is complete
//! (`LIST auth/token/accessors` waits for it), and its peak RSS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::Parser;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{call, token_header};
use crate::servers::parse_vm_hwm;
use strongroom_core::node::{CoreConfig, InitParams};
use strongroom_core::token::NewToken;
use strongroom_core::Core;

/// `seed-tokens`: a new redb file holding `count` live service tokens.
#[derive(Debug, Parser)]
#[command(name = "seed-tokens")]
pub struct SeedArgs {
    /// How many tokens to write.
    #[arg(long)]
    count: usize,
    /// The redb file to create (must not exist). The unseal key, the root
    /// token and one seeded token are written to `<path>.json`.
    #[arg(long)]
    path: PathBuf,
    /// The tokens' TTL in seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    ttl: u64,
    /// Make the tokens children of the root token instead of orphans.
    #[arg(long)]
    children_of_root: bool,
    /// Tokens per storage batch.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
}

/// What `seed-tokens` leaves next to the redb file.
fn keys_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".json");
    PathBuf::from(p)
}

/// Runs `seed-tokens`.
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    if args.path.exists() {
        bail!(
            "{} exists: seed-tokens makes a new file",
            args.path.display()
        );
    }
    let physical = strongroom_storage::RedbBackend::open(&args.path)
        .map_err(|e| anyhow!("opening {}: {e}", args.path.display()))?;
    let core = Core::new(
        Arc::new(physical),
        CoreConfig {
            ttls: Default::default(),
            cluster_name: None,
            storage_type: "redb".into(),
            ..Default::default()
        },
        Default::default(),
    );
    let init = core
        .initialize(InitParams {
            secret_shares: 1,
            secret_threshold: 1,
            root_token_id: None,
            dev: false,
            pgp_keys: Vec::new(),
            root_token_pgp_key: None,
        })
        .await
        .map_err(|e| anyhow!("initialize: {e}"))?;
    let key = init.keys.first().context("no unseal key")?;
    core.submit_unseal_key(key.clone())
        .await
        .map_err(|e| anyhow!("unseal: {e}"))?;
    let unsealed = core.active().map_err(|e| anyhow!("{e}"))?;
    let store = unsealed.tokens.clone();
    let parent = args
        .children_of_root
        .then(|| store.hash(init.root_token.as_str()));
    let template = NewToken {
        policies: vec!["default".into()],
        display_name: "token".into(),
        ttl: args.ttl,
        renewable: true,
        parent,
        path: "auth/token/create".into(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut sample = String::new();
    let mut done = 0;
    while done < args.count {
        let n = args.batch.max(1).min(args.count - done);
        let ids = store
            .create_many(&vec![template.clone(); n])
            .await
            .map_err(|e| anyhow!("writing tokens: {e}"))?;
        if sample.is_empty() {
            sample = ids.first().cloned().unwrap_or_default();
        }
        done += n;
        eprintln!("{done} tokens written ({:.1?})", started.elapsed());
    }
    core.seal().await;
    let keys = json!({
        "unseal_key": base64::engine::general_purpose::STANDARD.encode(key.as_slice()),
        "root_token": init.root_token.as_str(),
        "sample_token": sample,
        "count": args.count,
    });
    std::fs::write(keys_path(&args.path), serde_json::to_vec_pretty(&keys)?)?;
    eprintln!(
        "seeded {} tokens in {:.1?}; keys in {}",
        args.count,
        started.elapsed(),
        keys_path(&args.path).display()
    );
    Ok(())
}

/// `unseal-time`: start the server on a seeded file and time its unseal.
#[derive(Debug, Parser)]
#[command(name = "unseal-time")]
pub struct UnsealArgs {
    /// The strongroom binary (e.g. target/release/strongroom).
    #[arg(long)]
    strongroom: PathBuf,
    /// A redb file made by `seed-tokens` (with its `.json` beside it).
    #[arg(long)]
    path: PathBuf,
    /// The listener address (default: a free port on 127.0.0.1).
    #[arg(long)]
    addr: Option<SocketAddr>,
}

/// Runs `unseal-time`.
pub async fn unseal_time(mut args: UnsealArgs) -> anyhow::Result<()> {
    let addr = match args.addr.take() {
        Some(a) => a,
        None => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?,
    };
    let keys: Value = serde_json::from_slice(
        &std::fs::read(keys_path(&args.path)).context("reading the seed's .json")?,
    )?;
    let field = |name: &str| {
        keys[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{name} missing from the seed's .json"))
    };
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("server.hcl");
    let path = args.path.canonicalize()?;
    std::fs::write(
        &config,
        format!(
            "storage \"redb\" {{\n  path = {path:?}\n}}\n\nlistener \"tcp\" {{\n  address = \"{}\"\n  tls_disable = true\n}}\n",
            addr,
            path = path.display().to_string(),
        ),
    )?;
    let mut child = tokio::process::Command::new(&args.strongroom)
        .arg("server")
        .arg("-config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let pid = child.id().context("server pid")?;
    let hwm = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| parse_vm_hwm(&s))
    };
    // Wait for the listener (sealed: any answer will do).
    let mut up = false;
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited: {status}");
        }
        if call(addr, Method::GET, "sys/seal-status", None, None)
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        bail!("the server did not listen on {}", addr);
    }
    let sealed_rss = hwm();
    let unseal_body = json!({ "key": field("unseal_key")? });
    let t0 = Instant::now();
    let (status, body) = call(addr, Method::PUT, "sys/unseal", None, Some(&unseal_body)).await?;
    let unsealed_at = t0.elapsed();
    if status != StatusCode::OK || body["sealed"] != json!(false) {
        bail!("unseal answered {status}: {body}");
    }
    let sample = token_header(&field("sample_token")?)?;
    let (status, _) = call(
        addr,
        Method::GET,
        "auth/token/lookup-self",
        Some(&sample),
        None,
    )
    .await?;
    let first_auth = t0.elapsed();
    if status != StatusCode::OK {
        bail!("lookup-self with a seeded token answered {status}");
    }
    let root = token_header(&field("root_token")?)?;
    let (status, _) = call(
        addr,
        Method::GET,
        "auth/token/lookup-self",
        Some(&root),
        None,
    )
    .await?;
    if status != StatusCode::OK {
        bail!("lookup-self with the root token answered {status}");
    }
    // An accessor lookup that misses waits for the whole index, then
    // answers 400: a cheap signal that the index is complete.
    let probe = json!({ "accessor": "strongroom-bench-no-such-accessor" });
    loop {
        match call(
            addr,
            Method::POST,
            "auth/token/lookup-accessor",
            Some(&root),
            Some(&probe),
        )
        .await
        {
            Ok((StatusCode::BAD_REQUEST, _)) => break,
            Ok((status, body)) => bail!("lookup-accessor answered {status}: {body}"),
            // The call's own timeout while the index loads: ask again.
            Err(_) => continue,
        }
    }
    let indexed = t0.elapsed();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
            })
    };
    let (peak, current) = (hwm(), rss());
    let (status, body) = call(
        addr,
        Method::from_bytes(b"LIST")?,
        "auth/token/accessors",
        Some(&root),
        None,
    )
    .await?;
    if status != StatusCode::OK {
        bail!("accessors answered {status}: {body}");
    }
    let listed = body["data"]["keys"].as_array().map_or(0, Vec::len);
    let after_list = hwm();
    // SIGTERM for a clean shutdown (a killed redb needs a repair on the
    // next open, which would weigh on the next run's figures).
    let stopped = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    if stopped.is_ok_and(|s| s.success()) {
        child.wait().await.ok();
    } else {
        child.kill().await.ok();
    }
    let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0));
    println!("tokens stored:                     {}", keys["count"]);
    println!("unseal answered after:             {unsealed_at:.1?}");
    println!("first authenticated request after: {first_auth:.1?} (lookup-self, seeded token)");
    println!("index complete after:              {indexed:.1?}");
    println!("peak RSS sealed:                   {}", mib(sealed_rss));
    println!("peak RSS when indexed:             {}", mib(peak));
    println!("RSS when indexed:                  {}", mib(current));
    println!(
        "peak RSS after LIST accessors:     {} ({listed} listed)",
        mib(after_list)
    );
    Ok(())
}
