//! Gatekeeper: a task started by a scheduler asks for a Vault token with
//! its task id; Gatekeeper checks the task with the scheduler, picks the
//! AppRole its policy allows, logs in to the Vault-API server with the
//! answer wrapped, and returns the wrapping token, which only the task can
//! unwrap, once. A drop-in for the original Go vault-gatekeeper: the same
//! API, flags, environment variables and policy format.
//!
//! The crate owns the flags ([`args`]), the Vault-API client ([`vault`]),
//! policies ([`policy`]), usage counting ([`usage`]), unsealing
//! ([`unseal`]), the service logic ([`service`]), its HTTP API
//! ([`http`]), high availability ([`peers`]) and StatsD metrics
//! ([`statsd`]); [`run`] ties them together. [`client`] is `strongroom gatekeeper login`, which tasks run;
//! [`admin`] holds the operator commands (`seal`, `unseal`, `policy`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod args;
pub mod client;
pub mod http;
pub mod peers;
pub mod policy;
pub mod service;
pub mod statsd;
pub mod unseal;
pub mod usage;
pub mod vault;

use std::sync::Arc;

use anyhow::{bail, Context as _};
use arc_swap::ArcSwap;

pub use args::GatekeeperArgs;
pub use client::LoginArgs;
pub use service::Gatekeeper;

use crate::args::UsageStoreKind;
use crate::peers::{PeerSpec, Peers};
use crate::service::Config;
use crate::statsd::Statsd;
use crate::unseal::UnsealMethod;
use crate::usage::{MemoryStore, UsageStore, VaultStore};
use crate::vault::{VaultClient, VaultTls};

/// The unseal method the flags ask for at start, if any (in the original's
/// order of precedence).
pub fn startup_unseal(args: &GatekeeperArgs) -> Option<UnsealMethod> {
    args.creds.method()
}

/// The parsed `--peers`, if set; refuses `--peers` with the `memory`
/// usage store, whose counts peers would not share (as the original).
pub fn peer_spec(args: &GatekeeperArgs) -> anyhow::Result<Option<PeerSpec>> {
    let Some(p) = args
        .peers
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    if args.usage_store == UsageStoreKind::Memory {
        bail!(
            "--peers is set, but the usage store is memory, whose counts peers do not share; \
             use --usage-store vault"
        );
    }
    let default_scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(Some(
        peers::parse_peers(p, default_scheme).map_err(|e| anyhow::anyhow!("--peers: {e}"))?,
    ))
}

/// The TLS settings of the calls to the Vault-API server (and to peers).
pub fn vault_tls(args: &GatekeeperArgs) -> VaultTls {
    args.vault.tls()
}

/// The service settings the flags give.
pub fn config_from_args(args: &GatekeeperArgs) -> anyhow::Result<Config> {
    let default_scheduler = args
        .schedulers
        .iter()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .context("no schedulers were given (--schedulers)")?
        .to_string();
    let v = &args.vault;
    if v.policy_path.trim_matches('/').is_empty() {
        bail!("invalid policy path (--policy-path)");
    }
    Ok(Config {
        default_scheduler,
        task_grace: args.task_grace,
        host_check: args.host_check,
        use_image_name: args.use_image_name,
        policy_path: v.policy_path.trim_matches('/').to_string(),
        kv_version: v.vault_kv_version,
        approle_mount: v.vault_approle_mount.trim_matches('/').to_string(),
        wrap_ttl: args.wrap_ttl,
        unseal: v.unseal_config(),
        admin_path: args.admin_path.trim_matches('/').to_string(),
        admin_open: args.insecure_open_admin,
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A TLS certificate resolver whose certificate can be swapped (SIGHUP).
#[derive(Debug)]
struct ReloadableCert(ArcSwap<rustls::ServerConfig>);

impl rustls::server::ResolvesServerCert for ReloadableCert {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.load().cert_resolver.resolve(hello)
    }
}

/// Runs Gatekeeper until SIGINT or SIGTERM.
pub async fn run(args: GatekeeperArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    // Lift the open-file soft limit before the listener's default
    // connection cap is derived from it.
    strongroom_http::raise_fd_limit();
    let peer_spec = peer_spec(&args)?;
    let config = config_from_args(&args)?;
    let tls = vault_tls(&args);
    if tls.cacert.is_some() && args.vault.vault_capath.is_some() {
        tracing::warn!("--vault-capath is ignored: --vault-cacert takes precedence");
    }
    let vault = VaultClient::with_tls(&args.vault.vault_addr, &tls, args.vault.vault_timeout)?;
    let statsd = Statsd::from_args(&args).await?.map(Arc::new);
    let mut schedulers = Vec::new();
    // One EC2 metadata address for the `aws` unseal and the ECS
    // scheduler's region and instance credentials (`--aws-metadata-addr`).
    let mut scheduler_args = args.scheduler.clone();
    scheduler_args.aws_metadata_addr = args.vault.aws_metadata_addr.clone();
    for name in args
        .schedulers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let s = strongroom_gatekeeper_scheduler::build(name, &scheduler_args)
            .with_context(|| format!("scheduler {name}"))?;
        schedulers.push(s);
    }
    let state = service::new_seal_state();
    let usage: Arc<dyn UsageStore> = match args.usage_store {
        UsageStoreKind::Memory => Arc::new(MemoryStore::new()),
        UsageStoreKind::Vault => {
            let st = state.clone();
            let store = Arc::new(VaultStore::new(
                vault.clone(),
                &args.usage_store_vault_path,
                Arc::new(move || st.load().as_ref().map(|s| s.token.clone())),
            ));
            VaultStore::spawn_sweeper(&store, usage::SWEEP_EVERY, usage::SWEEP_BATCH);
            store
        }
    };
    let mut gk = Gatekeeper::new(config, vault, schedulers, usage, state);
    if let Some(s) = &statsd {
        gk = gk.with_statsd(s.clone());
    }
    let gk = Arc::new(gk);
    if let Some(method) = startup_unseal(&args) {
        // A failed start-up unseal leaves Gatekeeper sealed but serving,
        // so that an operator can unseal it over the API (as the original).
        if let Err(e) = gk.unseal(&method).await {
            tracing::warn!(error = %e, "not unsealed at start");
        }
    }
    let version = env!("CARGO_PKG_VERSION").to_string();
    let peers = match peer_spec {
        None => None,
        Some(spec) => {
            let client = peers::http_client_tls(&tls, args.vault.vault_timeout)?;
            let p = Arc::new(Peers::new(spec, gk.id.clone(), version.clone(), client));
            // Before listening, as the original: this instance is not
            // found (it does not answer yet), the others are.
            p.refresh().await;
            tracing::info!(peers = p.list().len(), "peers found");
            p.spawn_refresh(args.peer_refresh);
            Some(p)
        }
    };
    if let Some(s) = statsd {
        statsd::spawn_gauges(s, Arc::downgrade(&gk), peers.clone(), args.metrics_ticker);
    }
    let app = http::router(http::AppState {
        gk: gk.clone(),
        trusted_proxies: Arc::new(args.trusted_proxies.clone()),
        version,
        peers,
    });

    // Registered before listening, with or without TLS: SIGHUP's default
    // action ends the process, and operators send it to reload (a
    // handler registered later, inside a spawned task, raced with the
    // listener).
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP handler unavailable");
            None
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let initial = strongroom_http::load_tls(cert, key)?;
            let resolver = Arc::new(ReloadableCert(ArcSwap::new(initial.clone())));
            let mut cfg = (*initial).clone();
            cfg.cert_resolver = resolver.clone();
            let (cert, key) = (cert.clone(), key.clone());
            let hup = hup.take();
            tokio::spawn(async move {
                let Some(mut hup) = hup else {
                    return;
                };
                while hup.recv().await.is_some() {
                    match strongroom_http::load_tls(&cert, &key) {
                        Ok(new) => {
                            resolver.0.store(new);
                            tracing::info!("TLS certificate reloaded");
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                        }
                    }
                }
            });
            Some(Arc::new(cfg))
        }
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key must be given together"),
    };
    if let Some(mut hup) = hup {
        // Without TLS there is nothing to reload: a SIGHUP is noted, not fatal.
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received; no TLS files to reload");
            }
        });
    }
    let addr = args.bind_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, tls = tls.is_some(), "Gatekeeper listening");
    strongroom_http::serve(listener, tls, app, shutdown_signal()).await?;
    gk.seal();
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GatekeeperArgs,
    }

    fn args(flags: &[&str]) -> GatekeeperArgs {
        let mut v = vec!["gk"];
        v.extend_from_slice(flags);
        Cli::try_parse_from(v).unwrap().args
    }

    #[test]
    fn peers_need_the_shared_usage_store() {
        assert!(peer_spec(&args(&[])).unwrap().is_none());
        let err = peer_spec(&args(&["--peers", "gk:9201"])).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let spec = peer_spec(&args(&["--peers", "gk:9201", "--usage-store", "vault"]))
            .unwrap()
            .unwrap();
        assert_eq!(spec.scheme, "http");
        assert_eq!(spec.hosts, [("gk".to_string(), 9201)]);
        // Serving TLS, scheme-less peers are asked over TLS.
        let tls = args(&[
            "--peers",
            "gk:9201",
            "--usage-store",
            "vault",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        assert_eq!(peer_spec(&tls).unwrap().unwrap().scheme, "https");
        assert_eq!(
            peer_spec(&args(&["--peers", "ftp://gk:1", "--usage-store", "vault"]))
                .err()
                .map(|e| format!("{e:#}"))
                .as_deref(),
            Some("--peers: invalid option for peers: invalid protocol \"ftp\"")
        );
    }

    #[test]
    fn the_ca_file_takes_precedence_over_the_ca_directory() {
        let both = vault_tls(&args(&[
            "--vault-cacert",
            "/ca.pem",
            "--vault-capath",
            "/ca.d",
            "--vault-client-cert",
            "/c.pem",
            "--vault-client-key",
            "/k.pem",
        ]));
        assert_eq!(
            both.cacert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert_eq!(both.capath, None);
        assert_eq!(
            both.client_cert.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        assert_eq!(
            both.client_key.as_deref(),
            Some(std::path::Path::new("/k.pem"))
        );
        let dir = vault_tls(&args(&["--vault-capath", "/ca.d", "--vault-skip-verify"]));
        assert_eq!(dir.capath.as_deref(), Some(std::path::Path::new("/ca.d")));
        assert!(dir.skip_verify);
    }
}
