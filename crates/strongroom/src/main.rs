//! The `strongroom` binary: `strongroom server` runs the Vault-compatible
//! server (dev mode or from a config file), `strongroom version` prints the
//! version. Flags follow Vault's single-dash style (`-dev`, `-config=FILE`);
//! the GNU double-dash forms work too.
#![forbid(unsafe_code)]

mod cli;
mod server;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::normalize_args(std::env::args_os()));
    match cli.command {
        cli::Command::Version => {
            println!("Strongroom v{}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        cli::Command::Server(args) => match server::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // One line, as operators expect from a failed start.
                let msg = format!("{e:#}").replace('\n', " ");
                eprintln!("Error: {msg}");
                ExitCode::from(1)
            }
        },
    }
}
