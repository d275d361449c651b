//! Command-line arguments. Vault's CLI uses Go's flag package, where
//! `-flag` and `--flag` are the same; clap wants `--flag` for long names,
//! so [`normalize_args`] rewrites single-dash long flags before parsing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Strongroom: a Vault/OpenBao-compatible secrets server.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server.
    Server(ServerArgs),
    /// Run Gatekeeper, which hands scheduled tasks a response-wrapped
    /// Vault token, once (a drop-in for vault-gatekeeper's `server`);
    /// `strongroom gatekeeper login` is the client a task runs.
    Gatekeeper(Box<GatekeeperCommand>),
    /// Operator commands that work on storage directly, without a server.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the version.
    Version,
}

/// `strongroom gatekeeper [flags]` (or `strongroom gatekeeper server
/// [flags]`, the original's form) runs the service; `login` gets a task
/// its token; `seal`, `unseal`, `policy` are the original's operator
/// commands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatekeeperCommand {
    /// A client action instead of the service.
    #[command(subcommand)]
    pub action: Option<GatekeeperAction>,
    /// The service's flags.
    #[command(flatten)]
    pub server: strongroom_gatekeeper::GatekeeperArgs,
}

/// `strongroom gatekeeper` subcommands.
#[derive(Debug, Subcommand)]
pub enum GatekeeperAction {
    /// Run the service (the same as `strongroom gatekeeper [flags]`; the
    /// original's `gatekeeper server`).
    Server(Box<strongroom_gatekeeper::GatekeeperArgs>),
    /// Ask Gatekeeper for this task's token, unwrap it at the Vault-API
    /// server and print it (or write it to `--output`, mode 0600).
    Login(strongroom_gatekeeper::LoginArgs),
    /// Seal a running Gatekeeper.
    Seal(strongroom_gatekeeper::admin::SealArgs),
    /// Unseal a running Gatekeeper with the given method's credential:
    /// token, token-wrapped, approle, aws or github.
    Unseal(Box<strongroom_gatekeeper::admin::UnsealArgs>),
    /// Print the merged policies at `--policy-path` (read with the
    /// credential given), or `update` them from a file, or `reload` them
    /// on a running Gatekeeper.
    Policy(Box<strongroom_gatekeeper::admin::PolicyArgs>),
}

/// `strongroom audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a hash-chained audit log (`hash_chain = true`), rotated files
    /// in order, against the server that wrote it; names the first entry
    /// that was altered, removed or reordered.
    Verify(crate::audit_verify::VerifyArgs),
}

/// `strongroom operator` subcommands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Copy every storage entry from one storage to another (OpenBao's
    /// `operator migrate`): the entries stay barrier-encrypted, so no
    /// unseal is needed. Every server on either storage must be stopped.
    Migrate(MigrateArgs),
}

/// `strongroom operator migrate` flags (the names OpenBao's
/// `bao operator migrate` uses).
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The migration config file (HCL or JSON): one `storage_source` and
    /// one `storage_destination` block.
    #[arg(long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Only copy keys at or after this one (in byte order), to resume an
    /// interrupted migration.
    #[arg(long = "start", value_name = "KEY", default_value = "")]
    pub start: String,
    /// Only remove the migration lock (`core/migration`) from the source,
    /// left behind by a migration that was killed; nothing is copied.
    #[arg(long = "reset")]
    pub reset: bool,
    /// The most keys copied at once.
    #[arg(long = "max-parallel", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: u32,
    /// Log level: trace, debug, info, warn, error.
    #[arg(
        long = "log-level",
        env = "VAULT_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: String,
}

/// `strongroom server` flags (the names OpenBao's `bao server` uses).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Path to a configuration file (HCL or JSON). May be given more than
    /// once in Vault; Strongroom takes exactly one.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Development mode: in-memory storage, initialised and unsealed at
    /// start, root token and unseal key printed. Never for production.
    #[arg(long = "dev")]
    pub dev: bool,
    /// Dev mode: the initial root token's id.
    #[arg(
        long = "dev-root-token-id",
        env = "VAULT_DEV_ROOT_TOKEN_ID",
        value_name = "ID"
    )]
    pub dev_root_token_id: Option<String>,
    /// Dev mode: the address to listen on.
    #[arg(
        long = "dev-listen-address",
        env = "VAULT_DEV_LISTEN_ADDRESS",
        default_value = "127.0.0.1:8200",
        value_name = "ADDR"
    )]
    pub dev_listen_address: String,
    /// Dev mode: do not write the root token to the CLI's token file
    /// (`~/.vault-token`, or `$BAO_TOKEN_PATH`); only print it.
    #[arg(long = "dev-no-store-token")]
    pub dev_no_store_token: bool,
    /// Log level: trace, debug, info, warn, error (overrides the config).
    #[arg(long = "log-level", env = "VAULT_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: standard or json (overrides the config's `log_format`).
    #[arg(long = "log-format", env = "VAULT_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Rewrites `-name` and `-name=value` (a single dash and a name of two or
/// more characters) to `--name...`, so Vault-style invocations parse.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some(s)
                if s.starts_with('-')
                    && !s.starts_with("--")
                    && s.len() > 2
                    && s.as_bytes()[1].is_ascii_alphabetic() =>
            {
                OsString::from(format!("-{s}"))
            }
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatekeeper_runs_the_service_unless_login_is_asked() {
        let cli =
            Cli::try_parse_from(["strongroom", "gatekeeper", "--listen-addr", ":9300"]).unwrap();
        let Command::Gatekeeper(g) = cli.command else {
            panic!("not gatekeeper")
        };
        assert!(g.action.is_none());
        assert_eq!(g.server.listen_addr, ":9300");
        let cli = Cli::try_parse_from([
            "strongroom",
            "gatekeeper",
            "login",
            "--gatekeeper-addr",
            "http://gk:9201",
            "--task-id",
            "t1",
        ])
        .unwrap();
        let Command::Gatekeeper(g) = cli.command else {
            panic!("not gatekeeper")
        };
        let Some(GatekeeperAction::Login(login)) = g.action else {
            panic!("not login")
        };
        assert_eq!(login.task_id.as_deref(), Some("t1"));
        // Service flags do not mix with the client.
        let err = Cli::try_parse_from([
            "strongroom",
            "gatekeeper",
            "--listen-addr",
            ":9300",
            "login",
            "--gatekeeper-addr",
            "http://gk:9201",
        ])
        .expect_err("service flags and login do not mix");
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{err}"
        );
    }

    #[test]
    fn operator_migrate_takes_openbaos_flags() {
        let args = [
            "strongroom",
            "operator",
            "migrate",
            "-config=migrate.hcl",
            "-start",
            "logical/",
            "-max-parallel=4",
        ]
        .map(OsString::from);
        let cli = Cli::parse_from(normalize_args(args));
        let Command::Operator(OperatorCommand::Migrate(m)) = cli.command else {
            panic!("not operator migrate")
        };
        assert_eq!(m.config, PathBuf::from("migrate.hcl"));
        assert_eq!(m.start, "logical/");
        assert_eq!(m.max_parallel, 4);
        assert!(!m.reset);
        let err = Cli::try_parse_from([
            "strongroom",
            "operator",
            "migrate",
            "--config",
            "m.hcl",
            "--max-parallel",
            "0",
        ])
        .expect_err("at least one at a time");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
    }

    #[test]
    fn single_dash_flags_parse() {
        let args = [
            "strongroom",
            "server",
            "-dev",
            "-dev-root-token-id=root",
            "-dev-listen-address",
            "127.0.0.1:9",
        ]
        .map(OsString::from);
        let cli = Cli::parse_from(normalize_args(args));
        let Command::Server(s) = cli.command else {
            panic!("not server")
        };
        assert!(s.dev);
        assert_eq!(s.dev_root_token_id.as_deref(), Some("root"));
        assert_eq!(s.dev_listen_address, "127.0.0.1:9");
        // Short flags and values are left alone.
        assert_eq!(
            normalize_args([OsString::from("-h")]),
            vec![OsString::from("-h")]
        );
    }
}
