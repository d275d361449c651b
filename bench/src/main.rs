//! `strongroom-bench`: starts Strongroom and OpenBao side by side, runs each
//! workload against both in turn with the same closed-loop load, and prints
//! a Markdown table of throughput, latency, peak RSS and their ratios.
//!
//! This file owns the command line and the order of the run; the servers,
//! the load, the workloads and the table live in their own modules.
#![forbid(unsafe_code)]
// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod client;
mod gatekeeper;
mod gcp;
mod ha;
mod kube;
mod load;
mod namespaces;
mod report;
mod seed;
mod servers;
mod workloads;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use serde_json::json;
use strongroom_test::postgres::{Options as PgOptions, Postgres};

use crate::report::{Row, RunInfo};
use crate::servers::{Flavor, Server, Side, Storage};
use crate::workloads::{Front, Pairing, Runtime, Workload};

/// The policy name `--token-policy` installs.
const BENCH_POLICY: &str = "strongroom-bench";

/// The GCP role the bench's login JWTs are made for.
const GCP_ROLE: &str = "bench";

/// The cold-login rate (logins per second) the pool of cold GCP JWTs is
/// sized for: the pool covers warm-up plus window at this rate. Each cold
/// JWT costs an RSA signature (~1 ms) before the run, so the pool is not
/// made much larger than Strongroom can use; should Strongroom go faster,
/// the run stops when the pool runs out (every measured login stays a
/// cold one, and the rate covers the time up to the last answer) and the
/// table's notes say so.
const COLD_POOL_RATE: f64 = 4000.0;
/// The cold pool's bounds, whatever the durations.
const COLD_POOL_MIN: usize = 1000;
/// The largest cold pool (tens of seconds of signing on one core).
const COLD_POOL_MAX: usize = 48_000;

/// The number of cold JWTs to sign for a run of this shape.
fn cold_pool_size(shape: &load::Shape) -> usize {
    let secs = (shape.warmup + shape.duration).as_secs_f64();
    // Float to integer saturates; the clamp bounds it anyway.
    ((secs * COLD_POOL_RATE).ceil() as usize).clamp(COLD_POOL_MIN, COLD_POOL_MAX)
}

/// Examples printed after the options in `--help`.
const AFTER_HELP: &str = "\
Examples:
  Every workload in every pairing:
    strongroom-bench --strongroom target/release/strongroom --bao \"$(which bao)\"

  Namespace scale only (issue 19): 10,000 namespaces with a KV v2 mount each on a
  dev server of each side, the LIST of them, and KV reads in the root namespace, in
  the deepest of 8 nested namespaces (header and path prefix) and across all 10,000:
    taskset -c 1 strongroom-bench --strongroom target/release/strongroom \\
        --bao \"$(which bao)\" --server-cpus 0 --workloads none --namespace-scale \\
        [--namespace-count 10000] [--namespace-depth 8] [--namespace-clients 8]
  (OpenBao 2.7.2 took 7.5 min to create 10,000 and reached 16 GiB peak RSS on the
  2-core machine; the servers run one at a time.)

Other subcommands: seed-tokens, unseal-time (each with its own --help).";

/// Side-by-side benchmark of Strongroom and OpenBao.
#[derive(Debug, Parser)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// The strongroom binary (e.g. target/release/strongroom).
    #[arg(long)]
    strongroom: PathBuf,
    /// The OpenBao binary (e.g. "$(which bao)").
    #[arg(long)]
    bao: PathBuf,
    /// Measured seconds per workload and server.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up seconds before each measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Concurrent connections, one closed-loop worker each.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Workloads to run (default: all): health, kv1-read, kv1-write,
    /// kv2-read, kv2-write, approle-login, userpass-login, k8s-login-pem,
    /// k8s-login-review,
    /// gcp-login-cached, gcp-login-cold (Strongroom only), token-lookup-self,
    /// token-create, wrap, wrap-unwrap, gatekeeper-token,
    /// gatekeeper-token-ecs; or `none`, to run only the extra measurements
    /// (--namespace-scale, --failover-rounds, --standby-rows).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    workloads: Vec<String>,
    /// Pairings to run (default: all): dev, durable, postgresql.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pairings: Vec<String>,
    /// Time this many failovers per server (kill -9 of the active node of
    /// two on one PostgreSQL database, until the other answers
    /// `sys/health` with 200); 0 skips the measurement.
    #[arg(long, default_value_t = 0)]
    failover_rounds: usize,
    /// Also run kv1-read, kv1-write and kv2-read against two nodes per
    /// server on PostgreSQL, once through the active node and once
    /// through the standby (rows `postgresql-ha-active` and
    /// `postgresql-ha-standby`), with the root token.
    #[arg(long)]
    standby_rows: bool,
    /// Spread the kills over this many seconds after the previous
    /// takeover: round i of n waits (i - 0.5) / n of it before its kill, so
    /// that the kills fall evenly over the lock's renewal period (5 s for
    /// OpenBao's default lock, 1 s for Strongroom's) instead of always
    /// just after a renewal.
    #[arg(long, default_value_t = 5.0)]
    failover_spread: f64,
    /// Whether the throw-away PostgreSQL cluster syncs its commits to disk
    /// (`fsync`, `synchronous_commit`), as a production one does; `false`
    /// runs it with the test suite's unsafe speed settings.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    postgres_fsync: bool,
    /// Also run the namespace scale scenario (issue 19) on a fresh dev
    /// server of each side, with the root token: --namespace-count
    /// namespaces, each created with a KV v2 mount and one secret by
    /// --namespace-clients concurrent clients (namespaces/s, p50/p99 of a
    /// create+mount); LIST sys/namespaces; then closed-loop KV reads
    /// (--connections, --warmup, --duration) in the root namespace, in the
    /// deepest of --namespace-depth nested namespaces through the
    /// X-Vault-Namespace header and through the path prefix, and across
    /// all the namespaces, each set against the root read (the issue's
    /// bar: at most 1.2x). Printed as its own two tables. A side that
    /// fails is reported with the refused request, and the run exits
    /// non-zero after printing.
    #[arg(long)]
    namespace_scale: bool,
    /// How many namespaces --namespace-scale creates.
    #[arg(long, default_value_t = 10_000)]
    namespace_count: usize,
    /// How many levels the nested chain of --namespace-scale has (its
    /// deepest level is read).
    #[arg(long, default_value_t = 8)]
    namespace_depth: usize,
    /// How many concurrent clients (one connection each) create the
    /// namespaces of --namespace-scale.
    #[arg(long, default_value_t = 8)]
    namespace_clients: usize,
    /// Also write the table to this Markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Run the workloads with a token holding only this ACL policy (an HCL
    /// file) instead of the root token. Setup still uses the root token.
    #[arg(long)]
    token_policy: Option<PathBuf>,
    /// Keep servers' configs, data and logs here instead of a temp dir.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Pin every server to these CPUs (a `taskset -c` list, e.g. `0`), so
    /// that the servers and the load generator do not share cores: run the
    /// bench itself under `taskset -c 1`. Both sides get the same CPUs.
    #[arg(long, value_name = "CPUS")]
    server_cpus: Option<String>,
    /// Development aid: start the --strongroom binary as if it were OpenBao
    /// (raft for durable), to check the tool before Strongroom serves.
    #[arg(long, hide = true)]
    strongroom_as_bao: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The many-token subcommands (issue 13) have their own arguments.
    let sub = std::env::args().nth(1);
    let outcome = match sub.as_deref() {
        Some("seed-tokens") => {
            Some(seed::seed(seed::SeedArgs::parse_from(std::env::args().skip(1))).await)
        }
        Some("unseal-time") => {
            Some(seed::unseal_time(seed::UnsealArgs::parse_from(std::env::args().skip(1))).await)
        }
        _ => None,
    };
    if let Some(outcome) = outcome {
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    // Dropping `run` on Ctrl-C drops the servers, which kills them, and the
    // temp dir, which removes their files.
    tokio::select! {
        result = run(args) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: stopping servers");
            ExitCode::from(130)
        }
    }
}

/// The whole run: for each pairing, each side in turn runs every workload
/// of the pairing; then the table.
async fn run(args: Args) -> anyhow::Result<()> {
    let shape = load::Shape {
        connections: args.connections.max(1),
        warmup: seconds(args.warmup, "--warmup")?,
        duration: seconds(args.duration, "--duration")?,
    };
    if shape.duration.is_zero() {
        bail!("--duration must be above zero");
    }
    let failover_spread = seconds(args.failover_spread, "--failover-spread")?;
    let namespace_plan = namespaces::Plan {
        count: args.namespace_count,
        depth: args.namespace_depth,
        clients: args.namespace_clients,
        shape,
    };
    if args.namespace_scale {
        namespace_plan.validate()?;
    }
    let mut selected = workloads::select(&args.workloads)?;
    let pairings: Vec<Pairing> = if args.pairings.is_empty() {
        Pairing::ALL.to_vec()
    } else {
        let wanted = args
            .pairings
            .iter()
            .map(|p| Pairing::parse(p))
            .collect::<anyhow::Result<HashSet<_>>>()?;
        Pairing::ALL
            .into_iter()
            .filter(|p| wanted.contains(p))
            .collect()
    };
    // A workload none of the chosen pairings runs needs nothing prepared
    // (JWT pools, emulators) and gets no note.
    selected.retain(|w| w.pairings.iter().any(|p| pairings.contains(p)));
    let policy = match &args.token_policy {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };

    // The stand-ins for a Kubernetes cluster and for Google: they run in
    // this process, on the bench's CPUs, for the whole run.
    let signer = kube::Signer::generate()?;
    let jwt = signer.sign(&kube::legacy_claims())?;
    let fake_kube = kube::FakeKube::start(jwt.clone()).await?;
    let account = gcp::Account::generate()?;
    let fake_google = gcp::FakeGoogle::start(&account).await?;
    // Only a side running Strongroom as itself runs the Strongroom-only
    // (GCP) workloads.
    let runs_strongroom_only = !args.strongroom_as_bao;
    let cold_jwts = if runs_strongroom_only && selected.iter().any(Workload::uses_cold_pool) {
        let count = cold_pool_size(&shape);
        eprintln!("signing {count} cold GCP login JWTs");
        account.cold_jwts(GCP_ROLE, count)?
    } else {
        Vec::new()
    };
    let cold_pool = cold_jwts.len();
    // The Mesos cluster Gatekeeper asks about the bench task: in this
    // process, on the bench's CPUs, for the whole run.
    let uses_gatekeeper = selected.iter().any(|w| w.front == Front::Gatekeeper);
    let mesos = if uses_gatekeeper {
        Some(gatekeeper::Mesos::start().await)
    } else {
        None
    };
    // The ECS API it asks about the ECS bench task, likewise.
    let ecs = if uses_gatekeeper {
        Some(gatekeeper::Ecs::start().await)
    } else {
        None
    };
    let gatekeeper_binary = program(&args.strongroom)?;
    let runtime = Runtime {
        k8s_url: fake_kube.url().to_string(),
        k8s_ca: fake_kube.ca_pem().to_string(),
        k8s_pem: signer.public_pem()?,
        k8s_jwt: jwt,
        gcp_url: fake_google.url().to_string(),
        gcp_credentials: account.credentials_json(fake_google.token_uri())?,
        gcp_jwt: account.login_jwt(gcp::CACHED_KID, GCP_ROLE)?,
        gcp_cold_jwts: cold_jwts,
    };

    let temp;
    let root_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("strongroom-bench-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    // Strongroom trusts the fake Google through the system roots, which
    // SSL_CERT_FILE names (as for Go's Vault).
    std::fs::create_dir_all(&root_dir)
        .with_context(|| format!("creating {}", root_dir.display()))?;
    let google_ca = root_dir.join("fake-google-ca.pem");
    std::fs::write(&google_ca, fake_google.ca_pem())
        .with_context(|| format!("writing {}", google_ca.display()))?;

    let sides = [
        Side {
            label: "strongroom".into(),
            binary: program(&args.strongroom)?,
            cpus: args.server_cpus.clone(),
            flavor: if args.strongroom_as_bao {
                Flavor::OpenBao
            } else {
                Flavor::Strongroom
            },
            is_strongroom: true,
            env: vec![("SSL_CERT_FILE".into(), google_ca.clone().into_os_string())],
        },
        Side {
            label: "openbao".into(),
            binary: program(&args.bao)?,
            flavor: Flavor::OpenBao,
            is_strongroom: false,
            cpus: args.server_cpus.clone(),
            env: vec![],
        },
    ];

    // One PostgreSQL cluster for the postgresql pairing and the failover
    // measurement, on the servers' CPUs; each server gets its own database.
    let needs_postgres = args.failover_rounds > 0
        || args.standby_rows
        || (pairings.contains(&Pairing::Postgres)
            && selected
                .iter()
                .any(|w| w.pairings.contains(&Pairing::Postgres)));
    let postgres = if needs_postgres {
        eprintln!("starting PostgreSQL");
        Some(start_postgres(args.server_cpus.clone(), args.postgres_fsync).await?)
    } else {
        None
    };

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if let Some(pg) = &postgres {
        notes.push(postgres_note(
            pg,
            args.postgres_fsync,
            args.server_cpus.as_deref(),
        ));
    }
    let stand_in_note = args.strongroom_as_bao.then(|| {
        format!(
            "The strongroom rows are a stand-in: {} started as OpenBao (raft when durable).",
            args.strongroom.display()
        )
    });
    notes.extend(stand_in_note.iter().cloned());
    notes.extend(selected.iter().filter_map(Workload::operation_note));
    if uses_gatekeeper {
        notes.push(format!(
            "gatekeeper-token: POST /token with a task id to a `strongroom gatekeeper` in front \
             of each server (the same {} on both sides; unsealed with the root token, usage \
             counts in memory, log level warn){}; each operation makes it ask the Mesos \
             emulator (in the bench process) for the task, then the server for the role id, a \
             new secret id and a response-wrapped AppRole login; gatekeeper-token-ecs is the \
             same with `\"scheduler\": \"ecs\"`, Gatekeeper asking the ECS emulator (a SigV4-signed \
             DescribeTasks, whose signature the emulator verifies in full) instead. Peak RSS is \
             the server's, without Gatekeeper's.",
            args.strongroom.display(),
            match &args.server_cpus {
                Some(cpus) => format!(", pinned like the servers to CPUs {cpus}"),
                None => String::new(),
            },
        ));
    }
    if args.strongroom_as_bao {
        for workload in selected.iter().filter(|w| w.strongroom_only.is_some()) {
            notes.push(format!(
                "{} skipped: Strongroom-only ({}), and --strongroom-as-bao starts Strongroom as OpenBao.",
                workload.name,
                workload.strongroom_only.unwrap_or_default()
            ));
        }
    }
    let mut rss_reset_failed = false;
    for pairing in pairings {
        let runs: Vec<&Workload> = selected
            .iter()
            .filter(|w| w.pairings.contains(&pairing))
            .collect();
        if runs.is_empty() {
            continue;
        }
        for side in &sides {
            // OpenBao (or Strongroom started as OpenBao) cannot run the
            // Strongroom-only workloads: the table says so.
            let runs: Vec<&Workload> = runs
                .iter()
                .copied()
                .filter(|w| w.strongroom_only.is_none() || side.flavor == Flavor::Strongroom)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let dir = root_dir.join(format!("{}-{}", side.label, pairing));
            eprintln!("starting {} ({pairing})", side.label);
            let url;
            let storage = match pairing {
                Pairing::Dev => Storage::Dev,
                Pairing::DevAudit => Storage::DevAudit,
                Pairing::Durable => Storage::Durable,
                Pairing::Postgres => {
                    let pg = postgres.as_ref().context("PostgreSQL was not started")?;
                    url = fresh_database(pg).await?;
                    Storage::Postgres(&url)
                }
                Pairing::HaActive | Pairing::HaStandby => {
                    bail!("{pairing} runs only with --standby-rows")
                }
            };
            let server = Server::start(side, storage, &dir).await?;
            let note = format!(
                "{} ran {}",
                side.label,
                server
                    .exe()
                    .unwrap_or_else(|| side.binary.clone())
                    .display()
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
            let token = match &policy {
                Some(policy) => policy_token(&server, policy).await?,
                None => server.root().clone(),
            };
            let mut done = HashSet::new();
            // Started for the first workload that goes through it, after
            // that workload's setup (it loads its policies at start).
            let mut gatekeeper: Option<gatekeeper::Gatekeeper> = None;
            for workload in &runs {
                for step in &workload.setup {
                    if done.insert(step.name) {
                        step.run(server.addr(), server.root(), &runtime)
                            .await
                            .with_context(|| {
                                format!(
                                    "setup {} for {} on {}",
                                    step.name, workload.name, side.label
                                )
                            })?;
                    }
                }
                let addr = match workload.front {
                    Front::Server => server.addr(),
                    Front::Gatekeeper => match &gatekeeper {
                        Some(running) => running.addr(),
                        None => {
                            let mesos = mesos
                                .as_ref()
                                .context("the Mesos emulator was not started")?;
                            mesos.restart_task();
                            let ecs = ecs.as_ref().context("the ECS emulator was not started")?;
                            ecs.restart_task();
                            let started = gatekeeper::Gatekeeper::start(
                                &gatekeeper_binary,
                                side.cpus.as_deref(),
                                server.addr(),
                                server.root(),
                                mesos.url(),
                                ecs.url(),
                                &dir,
                            )
                            .await
                            .with_context(|| format!("gatekeeper for {}", side.label))?;
                            gatekeeper.insert(started).addr()
                        }
                    },
                };
                rss_reset_failed |= !server.reset_peak_rss();
                let reviews_before = fake_kube.reviews();
                let google_before = fake_google.counts();
                let mesos_before = mesos.as_ref().map_or(0, |m| m.state_requests());
                let ecs_before = ecs
                    .as_ref()
                    .map_or((0, 0), |e| (e.describe_requests(), e.refused()));
                let outcome = load::run(target(addr, workload, &token, &runtime)?, shape).await?;
                let reviews = fake_kube.reviews() - reviews_before;
                let google = fake_google.counts() - google_before;
                let mesos_states = mesos.as_ref().map_or(0, |m| m.state_requests()) - mesos_before;
                let (ecs_describes, ecs_refused) = ecs.as_ref().map_or((0, 0), |e| {
                    (
                        e.describe_requests() - ecs_before.0,
                        e.refused() - ecs_before.1,
                    )
                });
                let row = measured_row(workload, pairing, side, &outcome, server.peak_rss_kib());
                eprintln!(
                    "  {:<20} {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
                    row.workload, row.requests_per_sec, row.p50_ms, row.p99_ms, row.errors
                );
                if reviews > 0 {
                    eprintln!("  {:<20} {reviews} TokenReviews answered", "");
                }
                if ecs_describes > 0 {
                    eprintln!(
                        "  {:<20} ECS: {ecs_describes} DescribeTasks answered, {ecs_refused} \
                         refused for their signature (warm-up included)",
                        ""
                    );
                }
                if mesos_states > 0 {
                    eprintln!(
                        "  {:<20} Mesos: {mesos_states} state requests answered (warm-up included)",
                        ""
                    );
                }
                if google != gcp::Counts::default() {
                    eprintln!(
                        "  {:<20} Google: {} key fetches, {} account lookups, {} access tokens \
                         (warm-up included)",
                        "", google.key_fetches, google.lookups, google.grants
                    );
                }
                if outcome.exhausted {
                    notes.push(format!(
                        "{} / {pairing} / {}: the {cold_pool} single-use login JWTs ran out \
                         {:.1} s into the {:.0} s window (warm-up used some); the rate covers \
                         the {} logins measured, all cold ({} key fetches in all, warm-up \
                         included).",
                        workload.name,
                        side.label,
                        outcome.elapsed.as_secs_f64(),
                        shape.duration.as_secs_f64(),
                        outcome.requests,
                        google.key_fetches,
                    ));
                }
                rows.push(row);
            }
            if let Some(running) = gatekeeper {
                running.stop().await?;
            }
            server.stop().await?;
        }
    }
    if rss_reset_failed {
        notes.push(
            "Peak RSS could not be reset between workloads: it covers each server's life so far."
                .into(),
        );
    }

    if args.standby_rows {
        let pg = postgres.as_ref().context("PostgreSQL was not started")?;
        let catalogue = workloads::all();
        let ha_workloads: Vec<&Workload> = ["kv1-read", "kv1-write", "kv2-read"]
            .iter()
            .filter_map(|name| catalogue.iter().find(|w| w.name == *name))
            .collect();
        for side in &sides {
            let url = fresh_database(pg).await?;
            let dir = root_dir.join(format!("{}-ha-rows", side.label));
            eprintln!("standby rows: {} (two nodes)", side.label);
            let cluster = ha::HaCluster::start(side, &url, &dir, 2).await?;
            let root = cluster.root().clone();
            let targets = [
                (Pairing::HaActive, cluster.active_addr()),
                (Pairing::HaStandby, cluster.standby_addrs()[0]),
            ];
            let mut done = HashSet::new();
            for workload in &ha_workloads {
                for step in &workload.setup {
                    if done.insert(step.name) {
                        step.run(cluster.active_addr(), &root, &runtime).await?;
                    }
                }
                for (pairing, addr) in targets {
                    let outcome =
                        load::run(target(addr, workload, &root, &runtime)?, shape).await?;
                    rows.push(measured_row(workload, pairing, side, &outcome, None));
                }
            }
            cluster.stop().await?;
        }
        notes.push(
            "postgresql-ha-active / postgresql-ha-standby: two nodes per server on one \
             database; the same workload sent to the active node, then to the standby (root \
             token). A Strongroom standby answers reads itself under a read lease (the active \
             node pushes it every write before acknowledging, so it never answers older than an \
             acknowledged write) and forwards writes over its cluster link; an OpenBao standby \
             also answers reads itself, without that guarantee, and forwards writes."
                .into(),
        );
    }

    let mut failovers = Vec::new();
    if args.failover_rounds > 0 {
        let pg = postgres.as_ref().context("PostgreSQL was not started")?;
        for side in &sides {
            let url = fresh_database(pg).await?;
            let dir = root_dir.join(format!("{}-failover", side.label));
            eprintln!(
                "failover: {} (two nodes, {} rounds)",
                side.label, args.failover_rounds
            );
            let times =
                measure_failover(side, &url, &dir, args.failover_rounds, failover_spread).await?;
            failovers.push(report::FailoverRow {
                server: side.label.clone(),
                is_strongroom: side.is_strongroom,
                times,
            });
        }
    }

    let mut namespace_results = Vec::new();
    if args.namespace_scale {
        for side in &sides {
            let dir = root_dir.join(format!("{}-namespaces", side.label));
            eprintln!(
                "namespace scale: {} ({} namespaces, depth {})",
                side.label, namespace_plan.count, namespace_plan.depth
            );
            let result = namespaces::run(side, &dir, &namespace_plan)
                .await
                .with_context(|| format!("namespace scale on {}", side.label))?;
            if let Err(err) = &result.outcome {
                eprintln!("  FAILED: {err}");
            }
            namespace_results.push(result);
        }
    }

    let info = RunInfo {
        connections: shape.connections,
        warmup_secs: shape.warmup.as_secs_f64(),
        duration_secs: shape.duration.as_secs_f64(),
        token: match &args.token_policy {
            Some(path) => format!("policy {} ({})", BENCH_POLICY, path.display()),
            None => "root".into(),
        },
        notes,
    };
    // With `--workloads none`, only the extra measurements' tables.
    let mut parts = Vec::new();
    if !rows.is_empty() || (failovers.is_empty() && namespace_results.is_empty()) {
        parts.push(report::render(&info, &rows));
    }
    if !failovers.is_empty() {
        parts.push(report::render_failover(&failovers));
    }
    if !namespace_results.is_empty() {
        parts.push(namespaces::render(
            &namespace_plan,
            &namespace_results,
            stand_in_note.as_slice(),
        ));
    }
    let table = parts.join("\n");
    println!("{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    namespaces::failures(&namespace_results)
}

/// Starts the throw-away PostgreSQL cluster (the test harness's), pinned to
/// `cpus` when given, syncing commits to disk when `fsync`.
async fn start_postgres(cpus: Option<String>, fsync: bool) -> anyhow::Result<Arc<Postgres>> {
    let mut settings = vec![
        // Room for every server's pool (128 each by default) during a
        // failover or standby run of several nodes.
        ("max_connections".to_string(), "1000".to_string()),
        ("shared_buffers".to_string(), "128MB".to_string()),
    ];
    if fsync {
        for name in ["fsync", "full_page_writes", "synchronous_commit"] {
            settings.push((name.to_string(), "on".to_string()));
        }
    }
    let options = PgOptions { cpus, settings };
    // The harness panics (with the reason on stderr) when PostgreSQL is
    // missing or fails; the panic stays in the blocking task.
    tokio::task::spawn_blocking(move || Postgres::start_with_options(&options))
        .await
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("starting PostgreSQL failed: {e}"))
}

/// A new, empty database on `pg`, as a URL.
async fn fresh_database(pg: &Arc<Postgres>) -> anyhow::Result<String> {
    let pg = Arc::clone(pg);
    tokio::task::spawn_blocking(move || pg.fresh_url())
        .await
        .map_err(|e| anyhow::anyhow!("creating a PostgreSQL database failed: {e}"))
}

/// The table's note on the PostgreSQL cluster.
fn postgres_note(pg: &Postgres, fsync: bool, cpus: Option<&str>) -> String {
    format!(
        "postgresql: one throw-away PostgreSQL cluster ({}), a database per server, \
         `ha_enabled = \"true\"` and each server's default lock timings; {}{}.",
        pg.version().unwrap_or_else(|| "version unknown".into()),
        if fsync {
            "fsync and synchronous_commit on"
        } else {
            "fsync off (--postgres-fsync false)"
        },
        match cpus {
            Some(cpus) => format!(", pinned with the servers to CPUs {cpus}"),
            None => String::new(),
        },
    )
}

/// Two nodes of `side` on the database at `url`; `rounds` failovers, each
/// killing whichever node is active after the round's pause (see
/// [`failover_pause`]). Every time is printed as it comes.
async fn measure_failover(
    side: &Side,
    url: &str,
    dir: &Path,
    rounds: usize,
    spread: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let mut cluster = ha::HaCluster::start(side, url, dir, 2).await?;
    let mut times = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        tokio::time::sleep(failover_pause(spread, round, rounds)).await;
        let result = cluster.failover().await;
        let failover = match result {
            Ok(f) => f,
            Err(e) => {
                cluster.stop().await?;
                return Err(e.context(format!("failover round {round} of {}", side.label)));
            }
        };
        eprintln!(
            "  failover {round:>2}: {:.3} s{}",
            failover.elapsed.as_secs_f64(),
            if failover.unsealed {
                " (the new active node unsealed by the bench)"
            } else {
                ""
            }
        );
        times.push(failover.elapsed);
    }
    cluster.stop().await?;
    Ok(times)
}

/// A table row: `side`'s measured `outcome` of `workload` in `pairing`.
fn measured_row(
    workload: &Workload,
    pairing: Pairing,
    side: &Side,
    outcome: &load::Outcome,
    peak_rss_kib: Option<u64>,
) -> Row {
    Row {
        workload: workload.name,
        pairing,
        server: side.label.clone(),
        is_strongroom: side.is_strongroom,
        requests_per_sec: outcome.requests_per_sec(),
        p50_ms: outcome.latency_ms(0.5),
        p99_ms: outcome.latency_ms(0.99),
        peak_rss_kib,
        requests: outcome.requests,
        errors: outcome.errors,
        first_error: outcome.first_error.clone(),
    }
}

/// The pause before round `round` (from 1) of `rounds` kills the active
/// node: `(round - 0.5) / rounds` of `spread`, so the kills sweep evenly
/// over it.
fn failover_pause(spread: Duration, round: usize, rounds: usize) -> Duration {
    let rounds = u32::try_from(rounds.max(1)).unwrap_or(u32::MAX);
    let round = u32::try_from(round.max(1)).unwrap_or(u32::MAX).min(rounds);
    (spread * (2 * round - 1))
        .checked_div(2 * rounds)
        .unwrap_or_default()
}

/// A binary given on the command line, made absolute when it is a relative
/// path (`target/release/strongroom`): servers start in their own working
/// directory, where a relative path would not resolve. A bare name (`bao`)
/// is left for the `PATH` lookup.
fn program(path: &Path) -> anyhow::Result<PathBuf> {
    if path.components().count() > 1 && path.is_relative() {
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
    } else {
        Ok(path.to_path_buf())
    }
}

/// A command-line number of seconds as a duration.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} {value} is not a duration"))
}

/// The load target of `workload` against `addr` (the server, or the
/// Gatekeeper in front of it), authenticating with `token` where the
/// workload sends the bench's token, and
/// with the bodies' placeholders filled from `runtime`.
fn target(
    addr: SocketAddr,
    workload: &Workload,
    token: &HeaderValue,
    runtime: &Runtime,
) -> anyhow::Result<load::Target> {
    let single_use_keys = workload
        .uses_cold_pool()
        .then_some(runtime.gcp_cold_jwts.len());
    let keys = single_use_keys.unwrap_or(workload.keys);
    let calls = workload
        .calls
        .iter()
        .map(|call| {
            let mut headers = HeaderMap::new();
            for (name, value) in &call.headers {
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes())
                        .with_context(|| format!("{}: header name {name:?}", workload.name))?,
                    HeaderValue::from_str(value)
                        .with_context(|| format!("{}: header {name} value", workload.name))?,
                );
            }
            Ok(load::PreparedCall {
                method: call.method.clone(),
                uris: call
                    .paths(keys)
                    .iter()
                    .map(|p| workload.front.uri(p))
                    .collect::<anyhow::Result<_>>()?,
                bodies: match &call.body {
                    None => vec![],
                    Some(body) => {
                        let bodies: Vec<Bytes> = runtime
                            .fill_bodies(body)
                            .iter()
                            .map(|b| Bytes::from(b.to_string()))
                            .collect();
                        if bodies.is_empty() {
                            bail!("{}: the pool of cold GCP JWTs is empty", workload.name);
                        }
                        bodies
                    }
                },
                headers,
                token: call.token,
                expect: call.expect.clone(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(load::Target {
        addr,
        calls,
        token: token.clone(),
        single_use_keys,
    })
}

/// Installs `policy` as [`BENCH_POLICY`] and creates a token holding it
/// (plus `default`), for runs that must pass the ACL check.
async fn policy_token(server: &Server, policy: &str) -> anyhow::Result<HeaderValue> {
    let addr = server.addr();
    client::call_ok(
        addr,
        Method::PUT,
        &format!("sys/policies/acl/{BENCH_POLICY}"),
        Some(server.root()),
        Some(&json!({ "policy": policy })),
    )
    .await
    .context("installing the --token-policy policy")?;
    let mut created = client::call_ok(
        addr,
        Method::POST,
        "auth/token/create",
        Some(server.root()),
        Some(&json!({ "policies": [BENCH_POLICY], "ttl": "2h" })),
    )
    .await
    .context("creating the --token-policy token")?;
    let token = match created.pointer_mut("/auth/client_token") {
        Some(serde_json::Value::String(s)) => zeroize::Zeroizing::new(std::mem::take(s)),
        _ => bail!("auth/token/create answered without auth.client_token"),
    };
    client::token_header(&token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_accepts_lists_in_both_spellings() {
        let args = Args::try_parse_from([
            "bench",
            "--strongroom",
            "sr",
            "--bao",
            "bao",
            "--workloads",
            "health,kv1-read",
            "kv1-write",
            "--duration",
            "0.5",
        ])
        .unwrap();
        assert_eq!(args.workloads, ["health", "kv1-read", "kv1-write"]);
        assert_eq!(args.duration, 0.5);
        assert_eq!(args.connections, 32);
        assert!(!args.strongroom_as_bao);
        assert!(args.token_policy.is_none(), "root token unless asked");
        assert!(
            !args.namespace_scale,
            "the namespace scenario only when asked"
        );
    }

    #[test]
    fn the_namespace_scenario_runs_alone_with_the_issue_sizes_by_default() {
        let args = Args::try_parse_from([
            "bench",
            "--strongroom",
            "sr",
            "--bao",
            "bao",
            "--workloads",
            "none",
            "--namespace-scale",
        ])
        .unwrap();
        assert!(args.namespace_scale);
        assert_eq!(
            (
                args.namespace_count,
                args.namespace_depth,
                args.namespace_clients
            ),
            (10_000, 8, 8)
        );
        assert!(workloads::select(&args.workloads).unwrap().is_empty());
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(help.contains("--namespace-scale"), "{help}");
        assert!(
            help.contains("--workloads none --namespace-scale"),
            "{help}"
        );
    }

    #[test]
    fn every_workload_prepares_into_a_runnable_target() {
        let addr: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let token = client::token_header("tok").unwrap();
        let runtime = workloads::tests::runtime();
        for workload in workloads::all() {
            let target = target(addr, &workload, &token, &runtime).unwrap();
            assert_eq!(
                target.calls.len(),
                workload.calls.len(),
                "{}",
                workload.name
            );
            let want = match workload.front {
                Front::Server => load::TokenFrom::Bench,
                Front::Gatekeeper => load::TokenFrom::Nowhere,
            };
            assert_eq!(target.calls[0].token, want, "{}", workload.name);
        }
        let pair = workloads::select(&["wrap-unwrap".into()])
            .unwrap()
            .remove(0);
        let target = target(addr, &pair, &token, &runtime).unwrap();
        let (wrap, unwrap) = (&target.calls[0], &target.calls[1]);
        assert_eq!(wrap.uris, ["/v1/sys/wrapping/wrap"]);
        assert_eq!(wrap.headers["x-vault-wrap-ttl"], "5m");
        assert_eq!(wrap.bodies, [&br#"{"secret":"value"}"#[..]]);
        assert_eq!(unwrap.uris, ["/v1/sys/wrapping/unwrap"]);
        assert_eq!(unwrap.token, load::TokenFrom::Answer("/wrap_info/token"));
        assert!(unwrap.bodies.is_empty() && unwrap.headers.is_empty());
        assert_eq!(target.single_use_keys, None, "keys cycle");

        // The k8s login carries the runtime's JWT, not the placeholder.
        let login = workloads::select(&["k8s-login-review".into()])
            .unwrap()
            .remove(0);
        let prepared = super::target(addr, &login, &token, &runtime).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&prepared.calls[0].bodies[0]).unwrap();
        assert_eq!(body, json!({"role": "bench", "jwt": *runtime.k8s_jwt}));
        assert_eq!(prepared.calls[0].uris, ["/v1/auth/kubernetes-review/login"]);

        // Gatekeeper's own path, not one below /v1/, with the task id.
        let gk = workloads::select(&["gatekeeper-token".into()])
            .unwrap()
            .remove(0);
        let prepared = super::target(addr, &gk, &token, &runtime).unwrap();
        assert_eq!(prepared.calls[0].uris, ["/token"]);
        assert_eq!(
            prepared.calls[0].bodies,
            [&br#"{"task_id":"bench-task"}"#[..]]
        );
    }

    #[test]
    fn cold_gcp_logins_use_each_pool_jwt_once() {
        let addr: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let token = client::token_header("tok").unwrap();
        let runtime = workloads::tests::runtime();
        let cold = workloads::select(&["gcp-login-cold".into()])
            .unwrap()
            .remove(0);
        let prepared = target(addr, &cold, &token, &runtime).unwrap();
        assert_eq!(prepared.single_use_keys, Some(runtime.gcp_cold_jwts.len()));
        let jwts: Vec<serde_json::Value> = prepared.calls[0]
            .bodies
            .iter()
            .map(|b| serde_json::from_slice::<serde_json::Value>(b).unwrap()["jwt"].clone())
            .collect();
        assert_eq!(jwts, ["gcp.cold-0.jwt", "gcp.cold-1.jwt", "gcp.cold-2.jwt"]);
        assert_eq!(prepared.calls[0].uris, ["/v1/auth/gcp/login"]);

        let empty = Runtime {
            gcp_cold_jwts: vec![],
            ..workloads::tests::runtime()
        };
        let err = target(addr, &cold, &token, &empty).unwrap_err();
        assert!(err.to_string().contains("pool"), "{err}");
    }

    #[test]
    fn cold_pool_covers_the_run_at_the_planned_rate_within_bounds() {
        let shape = |warmup, duration| load::Shape {
            connections: 32,
            warmup: Duration::from_secs(warmup),
            duration: Duration::from_secs(duration),
        };
        assert_eq!(cold_pool_size(&shape(2, 10)), 48_000);
        assert_eq!(cold_pool_size(&shape(1, 2)), 12_000);
        assert_eq!(cold_pool_size(&shape(0, 0)), COLD_POOL_MIN);
        assert_eq!(cold_pool_size(&shape(60, 600)), COLD_POOL_MAX);
    }

    #[test]
    fn failover_pauses_sweep_the_spread_evenly() {
        let spread = Duration::from_secs(5);
        let pauses: Vec<_> = (1..=10).map(|r| failover_pause(spread, r, 10)).collect();
        assert_eq!(pauses[0], Duration::from_millis(250));
        assert_eq!(pauses[1], Duration::from_millis(750));
        assert_eq!(pauses[9], Duration::from_millis(4750));
        assert_eq!(failover_pause(Duration::ZERO, 3, 10), Duration::ZERO);
        assert_eq!(failover_pause(spread, 1, 1), Duration::from_millis(2500));
    }

    #[test]
    fn relative_binaries_are_made_absolute_and_bare_names_kept() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            program(Path::new("target/release/strongroom")).unwrap(),
            cwd.join("target/release/strongroom")
        );
        assert_eq!(program(Path::new("bao")).unwrap(), Path::new("bao"));
        assert_eq!(
            program(Path::new("/usr/bin/bao")).unwrap(),
            Path::new("/usr/bin/bao")
        );
    }

    #[test]
    fn negative_seconds_are_rejected() {
        let err = seconds(-1.0, "--duration").err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("--duration -1 is not a duration")),
            "{err:?}"
        );
        assert_eq!(
            seconds(1.5, "--duration").unwrap(),
            Duration::from_millis(1500)
        );
    }
}
