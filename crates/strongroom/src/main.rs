//! The `strongroom` binary: `strongroom server` runs the Vault-compatible
//! server (dev mode or from a config file), `strongroom version` prints the
//! version, `strongroom gatekeeper` runs Gatekeeper, `strongroom
//! gatekeeper login` is its client and `seal`/`unseal`/`policy` its
//! operator commands, `strongroom operator migrate`
//! copies storage between backends. Flags follow Vault's
//! single-dash style (`-dev`, `-config=FILE`); the GNU double-dash forms
//! work too.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use strongroom::{cli, migrate, server};

/// The process allocator. The request path allocates many small, short-lived
/// objects (JSON maps, strings, futures) from every worker thread, and the
/// token store's caches churn long-lived ones; glibc's malloc spent about a
/// fifth of a request's CPU time on that and fragmented as tokens came and
/// went (BENCHMARKS.md, issue 13). mimalloc's per-thread free lists keep
/// both cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::normalize_args(std::env::args_os()));
    match cli.command {
        cli::Command::Version => {
            println!("Strongroom v{}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Command::Gatekeeper(cmd) => {
            let cmd = *cmd;
            report(
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        use cli::GatekeeperAction as A;
                        use strongroom_gatekeeper::admin;
                        match cmd.action {
                            None => rt.block_on(strongroom_gatekeeper::run(cmd.server)),
                            Some(A::Server(args)) => rt.block_on(strongroom_gatekeeper::run(*args)),
                            Some(A::Login(args)) => {
                                rt.block_on(strongroom_gatekeeper::client::run_login(args))
                            }
                            Some(A::Seal(args)) => rt.block_on(admin::run_seal(args)),
                            Some(A::Unseal(args)) => rt.block_on(admin::run_unseal(*args)),
                            Some(A::Policy(args)) => rt.block_on(admin::run_policy(*args)),
                        }
                    }),
            )
        }
        cli::Command::Server(args) => report(server::run(args)),
        cli::Command::Operator(cli::OperatorCommand::Migrate(args)) => migrate::main(args),
        cli::Command::Audit(cli::AuditCommand::Verify(args)) => report(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(strongroom::audit_verify::run(args))),
        ),
    }
}

/// Exit status of a finished command; its error on one line, as operators
/// expect from a failed start.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("Error: {msg}");
            ExitCode::from(1)
        }
    }
}
