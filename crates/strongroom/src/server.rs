//! `strongroom server`: builds storage, the core and its engines from the
//! configuration, binds every listener, and serves until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use strongroom_config::{ListenerConfig, LogFormat, ServerConfig, StorageConfig};
use strongroom_core::mount::SystemTtls;
use strongroom_core::{Core, CoreConfig};
use strongroom_http::{ConnLimits, HttpOptions};
use strongroom_sdk::registry::Registry;
use strongroom_sdk::storage::Backend;
use tokio::net::TcpListener;

use crate::cli::ServerArgs;

/// Every backend type this build can mount.
pub fn registry() -> Registry {
    Registry::new()
        .secrets("kv", strongroom_kv::factory())
        .secrets("generic", strongroom_kv::factory())
        .auth("approle", strongroom_approle::factory())
        .auth("userpass", strongroom_userpass::factory())
        .auth("kubernetes", strongroom_kubernetes::factory())
        .auth("gcp", strongroom_gcp::factory())
}

fn load_config(args: &ServerArgs) -> anyhow::Result<ServerConfig> {
    match (&args.config, args.dev) {
        (Some(path), false) => Ok(strongroom_config::load(path)?),
        (Some(path), true) => {
            // Dev mode with a config file: the file's listeners and settings,
            // but always in-memory storage.
            let mut cfg = strongroom_config::load_dev(path)?;
            cfg.storage = StorageConfig::Inmem;
            if cfg.listeners.is_empty() {
                // A settings-only file (audit flags, ...): the dev listener.
                cfg.listeners.push(ListenerConfig {
                    address: args.dev_listen_address.clone(),
                    ..Default::default()
                });
            }
            Ok(cfg)
        }
        (None, true) => Ok(ServerConfig {
            storage: StorageConfig::Inmem,
            listeners: vec![ListenerConfig {
                address: args.dev_listen_address.clone(),
                ..Default::default()
            }],
            api_addr: None,
            cluster_addr: None,
            cluster_name: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            log_level: None,
            log_format: None,
            disable_mlock: true,
            ui: false,
            cache_size: None,
            disable_cache: false,
            audit: Vec::new(),
            unsafe_allow_api_audit_creation: false,
            allow_audit_log_prefixing: false,
            telemetry: Default::default(),
        }),
        (None, false) => bail!("a configuration file must be given with -config, or use -dev"),
    }
}

/// Installs the log subscriber: `level` as the filter (unless
/// `STRONGROOM_LOG` gives one), lines on stderr, ANSI colours only when
/// stderr is a terminal, one JSON object per line for [`LogFormat::Json`].
pub(crate) fn init_logging(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Standard => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// The stack of each async runtime worker (see `run`).
const WORKER_STACK_BYTES: usize = 8 << 20;

/// Runs the server until a shutdown signal.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let level = args
        .log_level
        .clone()
        .or_else(|| config.log_level.map(|l| l.as_str().to_string()))
        .unwrap_or_else(|| "info".into());
    let format = match &args.log_format {
        Some(name) => LogFormat::parse(name).ok_or_else(|| {
            anyhow::anyhow!("unknown log format {name:?} (expected standard or json)")
        })?,
        None => config.log_format.unwrap_or_default(),
    };
    init_logging(&level, format);
    // Every connection holds a descriptor: lift the soft limit to the hard
    // one before any listener is bound (the default caps derive from it).
    strongroom_http::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Request bodies may nest JSON up to `strongroom_sdk::json::MAX_DEPTH`
        // levels. Parsing and serialising grow their own stacks, but
        // dropping such a value recurses on the worker's: 8 MiB (reserved
        // address space, touched only when used) leaves several times the
        // room a 6,000-level drop needs, where tokio's 2 MiB default would
        // leave a thin margin.
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, config, &level))
}

/// The connection limits of listener `l`, one of `listeners` listeners.
fn conn_limits(l: &ListenerConfig, listeners: usize) -> ConnLimits {
    ConnLimits {
        idle_timeout: l.http_idle_timeout,
        read_header_timeout: l.http_read_header_timeout,
        read_timeout: l.http_read_timeout,
        write_timeout: l.http_write_timeout,
        max_connections: l
            .max_connections
            .unwrap_or_else(|| strongroom_http::default_max_connections(listeners)),
    }
}

/// The physical storage the config names. A durable backend gets the
/// physical read cache in front (OpenBao's `cache_size`, unless
/// `disable_cache`): its reads run off the runtime's workers, and the cache
/// answers hot keys without that hand-off. Memory storage needs no cache.
///
/// With `storage "postgresql" { ha_enabled = true }` this also returns the
/// lock's settings for the HA coordinator.
async fn open_storage(
    config: &ServerConfig,
) -> anyhow::Result<(Arc<dyn Backend>, Option<HaStorage>)> {
    let mut ha = None;
    let durable: Arc<dyn Backend> = match &config.storage {
        StorageConfig::Inmem => {
            return Ok((Arc::new(strongroom_storage::InmemBackend::new()), None))
        }
        StorageConfig::Redb { path } => Arc::new(
            strongroom_storage::RedbBackend::open(path)
                .with_context(|| format!("opening storage {}", path.display()))?,
        ),
        StorageConfig::Postgresql(pg) => {
            let (backend, node) = open_postgresql(pg).await?;
            ha = node;
            backend
        }
    };
    crate::migrate::refuse_while_migrating(&*durable).await?;
    // OpenBao's per-backend metrics (`vault.redb.get`, `vault.postgres.put`,
    // ...), timed below the read cache: cache hits cost nothing here. The
    // HA coordinator keeps its own handle on the PostgreSQL backend.
    let metered_name = match &config.storage {
        StorageConfig::Postgresql(_) => "postgres",
        _ => "redb",
    };
    let durable: Arc<dyn Backend> = Arc::new(strongroom_storage::MeteredBackend::new(
        durable,
        metered_name,
    ));
    if config.disable_cache {
        return Ok((durable, ha));
    }
    let size = config
        .cache_size
        .unwrap_or(strongroom_storage::DEFAULT_CACHE_SIZE);
    let cached = Arc::new(strongroom_storage::CachedBackend::new(durable, size));
    if let Some(ha) = ha.as_mut() {
        ha.cache = Some(cached.clone());
    }
    Ok((cached, ha))
}

/// HA storage, before the coordinator takes over (see [`crate::ha`]).
struct HaStorage {
    backend: Arc<strongroom_postgres::PostgresBackend>,
    lock_config: strongroom_postgres::LockConfig,
    /// The read cache in front of it, cleared at every activation.
    cache: Option<Arc<strongroom_storage::CachedBackend>>,
}

/// Connects to PostgreSQL (`BAO_PG_CONNECTION_URL`/`VAULT_PG_CONNECTION_URL`
/// override `connection_url`); with `ha_enabled`, also returns what the HA
/// coordinator needs.
async fn open_postgresql(
    pg: &strongroom_config::PostgresqlConfig,
) -> anyhow::Result<(Arc<dyn Backend>, Option<HaStorage>)> {
    let pg = pg.clone().with_env_overrides(|k| std::env::var(k).ok());
    let defaults = strongroom_postgres::LockConfig::default();
    let lock_config = strongroom_postgres::LockConfig {
        ttl: pg.lock_ttl.unwrap_or(defaults.ttl),
        renew_interval: pg.lock_renew_interval.unwrap_or(defaults.renew_interval),
        retry_interval: pg.lock_retry_interval.unwrap_or(defaults.retry_interval),
        margin: defaults.margin,
    };
    if pg.ha_enabled {
        lock_config
            .validate()
            .map_err(|e| anyhow!("storage \"postgresql\": {e}"))?;
    }
    let backend =
        strongroom_postgres::PostgresBackend::connect(strongroom_postgres::PostgresOptions {
            connection_url: pg.connection_url.clone(),
            table: pg.table.clone(),
            ha_enabled: pg.ha_enabled,
            ha_table: pg.ha_table.clone(),
            max_parallel: pg.max_parallel,
            skip_create_table: pg.skip_create_table,
            tls_ca_file: pg.tls_ca_file.clone(),
            // With HA, no statement may outlive the lock: a transaction
            // stuck on a dead link fails within a TTL, and the writer
            // serves the next holder's writes instead of waiting 30 s.
            timeout: if pg.ha_enabled {
                lock_config.ttl
            } else {
                strongroom_postgres::PostgresOptions::default().timeout
            },
            ..Default::default()
        })
        .await
        .context("opening PostgreSQL storage")?;
    // Keeps `operator migrate` off the table while this process runs
    // (standbys included). A migration in progress stops this server with
    // its migration lock, read after this claim (`open_storage`).
    let in_use =
        strongroom_postgres::InUse::claim_for_server(&strongroom_postgres::PostgresOptions {
            connection_url: pg.connection_url.clone(),
            table: pg.table.clone(),
            ha_table: pg.ha_table.clone(),
            tls_ca_file: pg.tls_ca_file.clone(),
            ..Default::default()
        })
        .await
        .context("storage \"postgresql\"")?;
    tokio::spawn(in_use.keep());
    let backend = Arc::new(backend);
    if !pg.ha_enabled {
        return Ok((backend, None));
    }
    Ok((
        backend.clone(),
        Some(HaStorage {
            backend,
            lock_config,
            cache: None,
        }),
    ))
}

/// The cluster listener's address: the first listener's `cluster_address`,
/// else its address with the port plus one (OpenBao's default).
fn cluster_listen_address(l: &ListenerConfig) -> anyhow::Result<String> {
    if let Some(a) = &l.cluster_address {
        return Ok(a.clone());
    }
    let (host, port) = l
        .address
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("listener address {:?} has no port", l.address))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("listener address {:?} has no valid port", l.address))?;
    let next = port
        .checked_add(1)
        .ok_or_else(|| anyhow!("listener port {port} leaves no room for the cluster port"))?;
    Ok(format!("{host}:{next}"))
}

/// The core's audit settings from the config file.
fn audit_settings(config: &ServerConfig) -> strongroom_core::audit::AuditSettings {
    strongroom_core::audit::AuditSettings {
        allow_api: config.unsafe_allow_api_audit_creation,
        allow_prefix: config.allow_audit_log_prefixing,
        declared: config
            .audit
            .iter()
            .map(|d| strongroom_audit::DeviceConfig {
                path: d.path.clone(),
                kind: d.kind.clone(),
                description: d.description.clone(),
                local: d.local,
                options: d.options.clone(),
            })
            .collect(),
    }
}

/// SIGHUP, as OpenBao: the config file is read again and its audit
/// settings applied (declared devices added, changed or removed), and every
/// audit device reopens its destination (log rotation). A config file that
/// no longer parses is reported and the running settings stay.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    core: Arc<Core>,
    config_path: Option<std::path::PathBuf>,
) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading");
        let settings = match &config_path {
            Some(path) => match strongroom_config::load_dev(path) {
                Ok(cfg) => audit_settings(&cfg),
                Err(e) => {
                    tracing::error!(error = %e, "reloading the config file failed; the running settings stay");
                    continue;
                }
            },
            None => core.config().audit.clone(),
        };
        if let Err(e) = core.audit().reload(&core, settings).await {
            tracing::error!(error = %e, "reloading the audit devices failed");
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Installs the process-wide metrics recorder from the `telemetry` stanza
/// (OpenBao serves `sys/metrics` without one too). `None` when a recorder
/// is already installed (a second server in one process: tests).
fn install_telemetry(config: &ServerConfig) -> Option<strongroom_telemetry::exporter::Telemetry> {
    let t = &config.telemetry;
    let settings = strongroom_telemetry::exporter::Settings {
        prefix: t.metrics_prefix.clone(),
        prometheus_retention: t.prometheus_retention_time,
        disable_hostname: t.disable_hostname,
    };
    match strongroom_telemetry::exporter::Telemetry::install(&settings) {
        Ok(telemetry) => Some(telemetry),
        Err(e) => {
            tracing::warn!(error = %e, "telemetry: sys/metrics is not served");
            None
        }
    }
}

/// Wires the recorder into `core`: the pipeline's metrics observer, the
/// `sys/metrics` renderer, and the upkeep thread sampling the gauges
/// (every interval) and the usage gauges (every `usage_gauge_period`).
fn start_telemetry(
    core: &Arc<Core>,
    telemetry: strongroom_telemetry::exporter::Telemetry,
    config: &strongroom_config::TelemetryConfig,
) {
    core.set_observer(Arc::new(strongroom_core::telemetry::MetricsObserver));
    core.set_metrics(Arc::new(telemetry.clone()));
    let weak = Arc::downgrade(core);
    let usage_every = config.usage_gauge_period;
    let max_cardinality = config.maximum_gauge_cardinality;
    // The upkeep thread is not a runtime worker: the (async) token count
    // runs as a task of the runtime the server was started on.
    let runtime = tokio::runtime::Handle::try_current().ok();
    let last_usage = std::sync::Mutex::new(None::<std::time::Instant>);
    let sample = move || {
        let Some(core) = weak.upgrade() else { return };
        core.sample_gauges();
        if let Some(every) = usage_every {
            // Only the upkeep thread takes this lock.
            let mut last = last_usage.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| t.elapsed() >= every) {
                *last = Some(std::time::Instant::now());
                if let Some(rt) = &runtime {
                    let core = core.clone();
                    rt.spawn(async move { core.sample_usage_gauges(max_cardinality).await });
                }
            }
        }
    };
    sample();
    if let Err(e) = telemetry.spawn_upkeep(sample) {
        tracing::warn!(error = %e, "telemetry: the upkeep thread did not start");
    }
}

/// Serves `config` until a shutdown signal; `log_level` is the level in
/// force (from `-log-level`, else the config's `log_level`, else `info`).
async fn serve(args: ServerArgs, config: ServerConfig, log_level: &str) -> anyhow::Result<()> {
    if config.listeners.is_empty() {
        bail!("no listener is configured: add a listener \"tcp\" block");
    }
    if config.ui {
        tracing::warn!("ui = true: this build has no web UI yet; only the API is served");
    }
    if !config.disable_mlock {
        // Strongroom never calls mlock: keys live in zeroized buffers, and
        // swap should be disabled or encrypted on hosts that run it.
        tracing::info!("memory locking is not used; disable or encrypt swap on this host");
    }
    // The metrics recorder goes in before anything records (storage,
    // the core), so that every metric lands in it.
    let telemetry = install_telemetry(&config);
    let (physical, ha) = open_storage(&config).await?;
    let core = Core::new(
        physical,
        CoreConfig {
            ttls: SystemTtls {
                default: config.effective_default_lease_ttl(),
                max: config.effective_max_lease_ttl(),
            },
            cluster_name: config.cluster_name.clone(),
            storage_type: config.storage.kind().to_string(),
            api_addr: config.api_addr.clone(),
            periodic_interval: None,
            ha_enabled: ha.is_some(),
            audit: audit_settings(&config),
        },
        registry(),
    );
    if let Some(telemetry) = telemetry {
        start_telemetry(&core, telemetry, &config.telemetry);
    }

    // Bind every listener before announcing anything, so a port conflict
    // fails the start instead of leaving a half-served server.
    let mut bound = Vec::new();
    for l in &config.listeners {
        let tls = match &l.tls {
            Some(files) => Some(strongroom_http::load_tls(
                &files.cert_file,
                &files.key_file,
            )?),
            None => None,
        };
        let listener = TcpListener::bind(&l.address)
            .await
            .with_context(|| format!("binding listener {}", l.address))?;
        let addr: SocketAddr = listener.local_addr()?;
        let opts = HttpOptions {
            max_request_size: l.max_request_size,
            unauthed_generate_root: !l.disable_unauthed_generate_root_endpoints,
            unauthed_rekey: !l.disable_unauthed_rekey_endpoints,
            metrics: strongroom_http::MetricsAccess {
                unauthenticated: l.telemetry.unauthenticated_metrics_access,
                disallow: l.telemetry.disallow_metrics,
                only: l.telemetry.metrics_only,
            },
        };
        let limits = conn_limits(l, config.listeners.len());
        bound.push((listener, tls, addr, opts, limits));
    }

    // HA: the cluster listener (mutual TLS, forwarding from standbys).
    let cluster = match &ha {
        Some(_) => {
            let address = cluster_listen_address(&config.listeners[0])?;
            let listener = TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding the cluster listener {address}"))?;
            let bound_addr = listener.local_addr()?;
            let advertised = config
                .cluster_addr
                .clone()
                .unwrap_or_else(|| format!("https://{bound_addr}"));
            Some((listener, advertised))
        }
        None => None,
    };

    let scheme = |tls: bool| if tls { "https" } else { "http" };
    let first = &bound[0];
    let api_addr = config
        .api_addr
        .clone()
        .unwrap_or_else(|| format!("{}://{}", scheme(first.1.is_some()), first.2));

    println!("==> Strongroom server configuration:\n");
    println!("             Api Address: {api_addr}");
    if let Some((_, cluster_addr)) = &cluster {
        println!("         Cluster Address: {cluster_addr}");
    }
    for (_, tls, addr, opts, limits) in &bound {
        let max = opts.max_request_size;
        println!(
            "                Listener: tcp (addr: \"{addr}\", max_request_size: \"{max}\", max_connections: \"{}\", tls: \"{}\")",
            limits.max_connections,
            if tls.is_some() { "enabled" } else { "disabled" }
        );
    }
    println!("               Log Level: {log_level}");
    println!("                 Storage: {}", config.storage.kind());
    println!(
        "                 Version: Strongroom v{}\n",
        env!("CARGO_PKG_VERSION")
    );

    if args.dev {
        let out = core
            .init_dev(args.dev_root_token_id.clone())
            .await
            .map_err(|e| anyhow!("initialising dev mode: {e}"))?;
        let key = out
            .keys
            .first()
            .ok_or_else(|| anyhow!("dev mode produced no unseal key"))?;
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(key.as_slice());
        if !args.dev_no_store_token {
            store_cli_token(out.root_token.as_str())?;
        }
        println!("WARNING! dev mode is enabled! In this mode, Strongroom runs entirely in-memory");
        println!("and starts unsealed with a single unseal key. The root token is already");
        println!("authenticated to the CLI, so you can immediately begin using Strongroom.\n");
        println!("You may need to set the following environment variables:\n");
        println!("    $ export VAULT_ADDR='{api_addr}'");
        println!("    $ export BAO_ADDR='{api_addr}'\n");
        println!("The unseal key and root token are displayed below in case you want to");
        println!("seal/unseal the Vault or re-authenticate.\n");
        println!("Unseal Key: {key_b64}");
        println!("Root Token: {}\n", out.root_token.as_str());
        println!("Development mode should NOT be used in production installations!\n");
    }

    // Where this node is reached, for sys/ha-status: the cluster address
    // as configured, else (as OpenBao) the API address's port plus one.
    let advertised_cluster = match &cluster {
        Some((_, addr)) => addr.clone(),
        None => config
            .cluster_addr
            .clone()
            .unwrap_or_else(|| next_port_url(&api_addr)),
    };
    core.set_advertised(api_addr.clone(), advertised_cluster);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let coordinator = match (ha, cluster) {
        (Some(ha), Some((listener, cluster_addr))) => {
            let me = crate::ha::Advert {
                node_id: uuid::Uuid::new_v4().to_string(),
                hostname: strongroom_core::node::ha::hostname(),
                api_addr: api_addr.clone(),
                cluster_addr,
            };
            let coordinator = crate::ha::Coordinator::new(
                core.clone(),
                ha.backend,
                ha.cache,
                ha.lock_config,
                me,
            )?;
            core.set_ha(coordinator.clone());
            coordinator.start(listener, stop_rx.clone());
            Some(coordinator)
        }
        _ => None,
    };
    let mut tasks = Vec::new();
    for (listener, tls, addr, opts, limits) in bound {
        let extras = strongroom_http::RouterExtras {
            forward: coordinator
                .clone()
                .map(|c| c as Arc<dyn strongroom_http::Forward>),
            cluster: false,
        };
        let app = strongroom_http::router_with(core.clone(), opts, extras);
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) = strongroom_http::serve_with(listener, tls, app, limits, shutdown).await
            {
                tracing::error!(%addr, error = %e, "listener failed");
            }
        }));
    }
    // Registered before the start is announced: SIGHUP's default action
    // ends the process.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(hup, core.clone(), args.config.clone()));
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP handler unavailable"),
    }
    println!("==> Strongroom server started! Log data will stream in below:\n");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    shutdown_signal().await;
    tracing::info!("shutdown requested");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    core.seal().await;
    if let Some(coordinator) = coordinator {
        coordinator.shutdown().await;
    }
    Ok(())
}

/// `https://host:(port+1)` for an API address `scheme://host:port` (the
/// cluster address OpenBao derives); the address itself when it has no
/// port.
fn next_port_url(api_addr: &str) -> String {
    let rest = api_addr
        .split_once("://")
        .map_or(api_addr, |(_, r)| r)
        .trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>().ok().and_then(|p| p.checked_add(1)) {
            Some(next) => format!("https://{host}:{next}"),
            None => format!("https://{rest}"),
        },
        None => format!("https://{rest}"),
    }
}

/// Where the `bao`/`vault` CLI's built-in token helper keeps its token:
/// `$BAO_TOKEN_PATH` (or `$VAULT_TOKEN_PATH`), else `~/.vault-token`;
/// `None` when neither is set nor `HOME` known.
fn cli_token_path() -> Option<std::path::PathBuf> {
    for var in ["BAO_TOKEN_PATH", "VAULT_TOKEN_PATH", "HOME"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            let p = std::path::PathBuf::from(p);
            return Some(if var == "HOME" {
                p.join(".vault-token")
            } else {
                p
            });
        }
    }
    None
}

/// Dev mode: stores the root token where the CLI's token helper reads it,
/// as OpenBao's dev mode does, so that `bao kv put ...` works right away.
/// Written to a fresh 0600 temporary file and renamed over the old one; a
/// write failure stops the server (as OpenBao's does), an unknown home only
/// warns.
fn store_cli_token(token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let Some(path) = cli_token_path() else {
        println!("WARNING! HOME is not set: the root token was not stored for the CLI.\n");
        return Ok(());
    };
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        // A stale temporary file would keep its permissions through
        // truncation: start from a new one.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create_new(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("storing the dev root token in {}: {e}", path.display())
    })
}
