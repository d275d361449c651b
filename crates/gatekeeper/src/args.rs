//! The `strongroom gatekeeper` flags. Every flag is also read from the
//! environment variable of the same name upper-cased with `-` turned into
//! `_` (`--task-grace` is `TASK_GRACE`), as the original vault-gatekeeper
//! did, and the defaults are the original's, so a deployment switches by
//! changing the binary.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use zeroize::Zeroizing;

use crate::unseal::{UnsealConfig, UnsealMethod};
use crate::vault::{Token, VaultClient, VaultTls};

/// A credential given on the command line or in the environment. Its
/// `Debug` never prints the value, and the memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretArg(pub Zeroizing<String>);

impl SecretArg {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(Zeroizing::new(s.to_string())))
    }
}

/// Where task usage counts are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UsageStoreKind {
    /// In this process only (one instance).
    Memory,
    /// One KV v2 entry per task on the Vault-API server (shared by peers).
    Vault,
}

/// Parses a Go/Vault duration (`2m`, `1h40m`, `90s`, `120`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    strongroom_sdk::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// Parses the KV version: `1`, `2`, `v1` or `v2` (the original's help said
/// "v1 or v2" while it compared against "2"; both spellings work here).
fn parse_kv_version(s: &str) -> Result<u8, String> {
    match s.trim().trim_start_matches(['v', 'V']) {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(format!("invalid KV version {s:?}: expected 1 or 2")),
    }
}

/// Parses a CIDR, or a bare address as a single-host network.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid CIDR or address {s:?}"))
}

/// How to reach the Vault-API server, and where Gatekeeper's policies and
/// login mounts are in it: shared by the service and the `policy`
/// commands.
#[derive(Debug, Clone, clap::Args)]
pub struct VaultArgs {
    /// The Vault-API server (Strongroom or OpenBao).
    #[arg(long, env = "VAULT_ADDR", default_value = "http://localhost:8200")]
    pub vault_addr: String,
    /// PEM CA bundle to verify the Vault-API server with.
    #[arg(long, env = "VAULT_CACERT", value_name = "FILE")]
    pub vault_cacert: Option<PathBuf>,
    /// Directory of PEM CA files (searched recursively) to verify the
    /// Vault-API server with; ignored when `--vault-cacert` is set, which
    /// takes precedence (as in the original and the Vault CLI).
    #[arg(long, env = "VAULT_CAPATH", value_name = "DIR")]
    pub vault_capath: Option<PathBuf>,
    /// PEM client certificate presented to the Vault-API server (mutual
    /// TLS; not the TLS certificates auth method). Needs `--vault-client-key`.
    #[arg(long, env = "VAULT_CLIENT_CERT", value_name = "FILE")]
    pub vault_client_cert: Option<PathBuf>,
    /// Unencrypted PEM private key of `--vault-client-cert`.
    #[arg(long, env = "VAULT_CLIENT_KEY", value_name = "FILE")]
    pub vault_client_key: Option<PathBuf>,
    /// Do not verify the Vault-API server's certificate (testing only).
    #[arg(long, env = "VAULT_SKIP_VERIFY")]
    pub vault_skip_verify: bool,
    /// Timeout of each call to the Vault-API server.
    #[arg(long, env = "VAULT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub vault_timeout: Duration,
    /// KV engine version at `--policy-path`: 1 or 2.
    #[arg(long, env = "VAULT_KV_VERSION", default_value = "2", value_parser = parse_kv_version)]
    pub vault_kv_version: u8,
    /// Where the AppRole auth method is mounted (tasks' logins and the
    /// `approle` unseal both use it).
    #[arg(long, env = "VAULT_APPROLE_MOUNT", default_value = "approle")]
    pub vault_approle_mount: String,
    /// Where the AWS auth method is mounted (the `aws` unseal).
    #[arg(long, env = "VAULT_AWS_MOUNT", default_value = "aws")]
    pub vault_aws_mount: String,
    /// Where the GitHub auth method is mounted (the `github` unseal).
    #[arg(long, env = "VAULT_GITHUB_MOUNT", default_value = "github")]
    pub vault_github_mount: String,

    /// KV path of the policies; every key below it is merged in.
    #[arg(long, env = "POLICY_PATH", default_value = "secret/data/gatekeeper")]
    pub policy_path: String,
    /// The EC2 instance metadata service.
    #[arg(
        long,
        env = "AWS_METADATA_ADDR",
        default_value = "http://169.254.169.254"
    )]
    pub aws_metadata_addr: String,
}

/// Gatekeeper's own Vault credential, in the original's order of
/// precedence (a token, a wrapped token, AppRole, AWS EC2, GitHub): the
/// service unseals with it at start, the `policy` commands read and write
/// with it, `unseal` sends it to a running instance.
#[derive(Clone, clap::Args)]
pub struct CredentialArgs {
    /// Unseal at start with this Vault token.
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<SecretArg>,
    /// Unseal at start by unwrapping this wrapping token.
    #[arg(long, env = "AUTH_TOKEN_WRAPPED", hide_env_values = true)]
    pub auth_token_wrapped: Option<SecretArg>,
    /// Unseal at start with this AppRole role_id (and `--auth-app-secret`).
    #[arg(long, env = "AUTH_APP_ROLE", hide_env_values = true)]
    pub auth_app_role: Option<SecretArg>,
    /// The AppRole secret_id for `--auth-app-role`.
    #[arg(long, env = "AUTH_APP_SECRET", hide_env_values = true)]
    pub auth_app_secret: Option<SecretArg>,
    /// Unseal at start with an AWS EC2 instance identity login.
    #[arg(long, env = "AUTH_AWS_EC2")]
    pub auth_aws_ec2: bool,
    /// The role of the AWS EC2 login.
    #[arg(long, env = "AUTH_AWS_ROLE")]
    pub auth_aws_role: Option<String>,
    /// The original's name for the role of the EC2 login (it called the
    /// login "IAM"); setting it also selects the EC2 unseal, as it did.
    #[arg(long, env = "AUTH_AWS_IAM", hide = true)]
    pub auth_aws_iam: Option<String>,
    /// The nonce of the AWS EC2 login, for repeated logins.
    #[arg(long, env = "AUTH_AWS_NONCE", hide_env_values = true)]
    pub auth_aws_nonce: Option<SecretArg>,
    /// A GitHub personal token, logged in at `--vault-github-mount` (the
    /// `github` unseal).
    #[arg(long, env = "AUTH_GH_TOKEN", hide_env_values = true)]
    pub auth_gh_token: Option<SecretArg>,
}

impl fmt::Debug for CredentialArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every credential is a SecretArg, whose Debug is redacted.
        f.debug_struct("CredentialArgs")
            .field("vault_token", &self.vault_token)
            .field("auth_token_wrapped", &self.auth_token_wrapped)
            .field("auth_app_role", &self.auth_app_role)
            .field("auth_app_secret", &self.auth_app_secret)
            .field("auth_aws_ec2", &self.auth_aws_ec2)
            .field("auth_aws_role", &self.auth_aws_role)
            .field("auth_aws_nonce", &self.auth_aws_nonce)
            .field("auth_gh_token", &self.auth_gh_token)
            .finish()
    }
}

impl VaultArgs {
    /// The TLS settings of the calls to the Vault-API server (and to
    /// peers). `--vault-cacert` takes precedence over `--vault-capath`, as
    /// in the original (and the Vault CLI): with both, the directory is
    /// ignored.
    pub fn tls(&self) -> VaultTls {
        VaultTls {
            cacert: self.vault_cacert.clone(),
            capath: self
                .vault_capath
                .clone()
                .filter(|_| self.vault_cacert.is_none()),
            client_cert: self.vault_client_cert.clone(),
            client_key: self.vault_client_key.clone(),
            skip_verify: self.vault_skip_verify,
        }
    }

    /// A client of the Vault-API server with these settings.
    pub fn client(&self) -> anyhow::Result<VaultClient> {
        Ok(VaultClient::with_tls(
            &self.vault_addr,
            &self.tls(),
            self.vault_timeout,
        )?)
    }

    /// Where the unseal methods log in.
    pub fn unseal_config(&self) -> UnsealConfig {
        UnsealConfig {
            approle_mount: self.vault_approle_mount.trim_matches('/').to_string(),
            aws_mount: self.vault_aws_mount.trim_matches('/').to_string(),
            github_mount: self.vault_github_mount.trim_matches('/').to_string(),
            aws_metadata_addr: self.aws_metadata_addr.clone(),
        }
    }
}

impl CredentialArgs {
    /// The credential given, as an unseal method, if any: the first set of
    /// a token, a wrapped token, an AppRole role id, an AWS EC2 login
    /// (`--auth-aws-ec2`, or the original's `--auth-aws-iam` role), a
    /// GitHub token.
    pub fn method(&self) -> Option<UnsealMethod> {
        let set = |s: &Option<SecretArg>| {
            s.as_ref()
                .filter(|t| !t.expose().is_empty())
                .map(|t| Token::new(t.expose()))
        };
        if let Some(t) = set(&self.vault_token) {
            return Some(UnsealMethod::Token(t));
        }
        if let Some(t) = set(&self.auth_token_wrapped) {
            return Some(UnsealMethod::TokenWrapped(t));
        }
        if let Some(role_id) = set(&self.auth_app_role) {
            return Some(UnsealMethod::AppRole {
                role_id,
                secret_id: set(&self.auth_app_secret),
            });
        }
        let iam = self.auth_aws_iam.as_ref().filter(|r| !r.is_empty());
        if self.auth_aws_ec2 || iam.is_some() {
            return Some(UnsealMethod::AwsEc2 {
                role: self
                    .auth_aws_role
                    .clone()
                    .filter(|r| !r.is_empty())
                    .or_else(|| iam.cloned()),
                nonce: set(&self.auth_aws_nonce),
            });
        }
        set(&self.auth_gh_token).map(UnsealMethod::GitHub)
    }
}

/// Gatekeeper's flags (`strongroom gatekeeper --help`).
#[derive(Clone, clap::Args)]
pub struct GatekeeperArgs {
    /// Address to listen on (`:9201` means every interface).
    #[arg(long, env = "LISTEN_ADDR", default_value = ":9201")]
    pub listen_addr: String,
    /// PEM certificate; with `--tls-key`, Gatekeeper serves only TLS. The
    /// pair is re-read on SIGHUP.
    #[arg(long, env = "TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Comma-separated schedulers to enable; the first is the default for
    /// requests that name none.
    #[arg(
        long,
        env = "SCHEDULERS",
        default_value = "mesos",
        value_delimiter = ','
    )]
    pub schedulers: Vec<String>,
    /// Require the caller's address to be one of the task's addresses.
    #[arg(long, env = "HOST_CHECK")]
    pub host_check: bool,
    /// Match policies on the container image rather than the task name.
    #[arg(long, env = "USE_IMAGE_NAME")]
    pub use_image_name: bool,
    /// Comma-separated CIDRs of reverse proxies whose `X-Forwarded-For` is
    /// believed for the host check; from anyone else it is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Peers for high availability: the original's
    /// `[http(s)://]gk1,gk2,gk3:9201` (one port for every host) or
    /// `[http(s)://]host:port[,host:port...]`, each host resolved to all its
    /// addresses (this instance included is
    /// fine: it is recognised by its id). Without a scheme, `https` when
    /// `--tls-cert` is set, else `http`. A sealed instance forwards
    /// `/token` to an unsealed peer; needs `--usage-store vault`.
    #[arg(long, env = "PEERS")]
    pub peers: Option<String>,
    /// How often the peers are looked up again.
    #[arg(long, env = "PEER_REFRESH", default_value = "30s", value_parser = parse_duration)]
    pub peer_refresh: Duration,

    /// The Vault-API server, and where Gatekeeper's things are in it.
    #[command(flatten)]
    pub vault: VaultArgs,

    /// How long after its start a task may ask for a token.
    #[arg(long, env = "TASK_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub task_grace: Duration,
    /// TTL of the wrapping token handed to a task. The original fixed it at
    /// 100 minutes, which stays the default.
    #[arg(long, env = "WRAP_TTL", default_value = "100m", value_parser = parse_duration)]
    pub wrap_ttl: Duration,

    /// Where use counts are kept: `memory` or `vault`.
    #[arg(long, env = "USAGE_STORE", value_enum, default_value = "memory")]
    pub usage_store: UsageStoreKind,
    /// KV v2 folder of the `vault` usage store: one entry per task below it.
    /// Must not be under `--policy-path`.
    #[arg(
        long,
        env = "USAGE_STORE_VAULT_PATH",
        default_value = "secret/data/gatekeeper-store"
    )]
    pub usage_store_vault_path: String,

    /// Gatekeeper's own credential, to unseal with at start.
    #[command(flatten)]
    pub creds: CredentialArgs,

    /// Vault path on which a token needs `update` to call `/seal`,
    /// `/policies/reload`, or `/unseal` while unsealed (checked with
    /// `sys/capabilities-self`; a root token passes).
    #[arg(long, env = "ADMIN_PATH", default_value = "gatekeeper/admin")]
    pub admin_path: String,
    /// DANGEROUS: let anyone call `/seal`, `/policies/reload` and `/unseal`
    /// without a credential, as the original did.
    #[arg(long, env = "INSECURE_OPEN_ADMIN")]
    pub insecure_open_admin: bool,

    /// How often the gauges (`peers`, `unsealed_peers`, `sealed`,
    /// `unsealed`, `in_service`) are sent to StatsD.
    #[arg(long, env = "METRICS_TICKER", default_value = "10s", value_parser = parse_duration)]
    pub metrics_ticker: Duration,
    /// StatsD server (`host:port`, UDP) to send metrics to; none when unset.
    #[arg(long, env = "METRICS_STATSD", value_name = "HOST:PORT")]
    pub metrics_statsd: Option<String>,
    /// Prefix of the StatsD metric names (`<prefix>.requests`).
    #[arg(long, env = "METRICS_STATSD_PREFIX", default_value = "gatekeeper")]
    pub metrics_statsd_prefix: String,
    /// Tag StatsD metrics with `host` in the InfluxDB format
    /// (`name,host=h:1|c`); wins over `--metrics-statsd-datadog`.
    #[arg(long, env = "METRICS_STATSD_INFLUX")]
    pub metrics_statsd_influx: bool,
    /// Tag StatsD metrics with `host` in the Datadog format
    /// (`name:1|c|#host:h`).
    #[arg(long, env = "METRICS_STATSD_DATADOG")]
    pub metrics_statsd_datadog: bool,

    /// Log level: trace, debug, info, warn, error.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// The schedulers' own flags (`--mesos-master`, ...).
    #[command(flatten)]
    pub scheduler: strongroom_gatekeeper_scheduler::SchedulerArgs,
}

impl fmt::Debug for GatekeeperArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are SecretArg, whose Debug is redacted.
        f.debug_struct("GatekeeperArgs")
            .field("listen_addr", &self.listen_addr)
            .field("schedulers", &self.schedulers)
            .field("vault", &self.vault)
            .field("metrics_statsd", &self.metrics_statsd)
            .field("usage_store", &self.usage_store)
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

impl GatekeeperArgs {
    /// The socket address to bind: Go's `:9201` is every interface.
    pub fn bind_addr(&self) -> String {
        if self.listen_addr.starts_with(':') {
            format!("0.0.0.0{}", self.listen_addr)
        } else {
            self.listen_addr.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: GatekeeperArgs,
    }

    #[test]
    fn defaults_are_the_originals() {
        let cli = Cli::try_parse_from(["gk"]).unwrap();
        let a = cli.args;
        assert_eq!(a.listen_addr, ":9201");
        assert_eq!(a.bind_addr(), "0.0.0.0:9201");
        assert_eq!(a.task_grace, Duration::from_secs(120));
        assert_eq!(a.wrap_ttl, Duration::from_secs(6000));
        assert_eq!(a.vault.vault_approle_mount, "approle");
        assert_eq!(a.usage_store, UsageStoreKind::Memory);
        assert_eq!(a.vault.vault_kv_version, 2);
        assert_eq!(a.vault.policy_path, "secret/data/gatekeeper");
        assert_eq!(a.usage_store_vault_path, "secret/data/gatekeeper-store");
        assert_eq!(a.schedulers, vec!["mesos".to_string()]);
        assert!(!a.insecure_open_admin);
        assert_eq!(a.peer_refresh, Duration::from_secs(30));
        assert_eq!(a.peers, None);
        assert_eq!(a.metrics_ticker, Duration::from_secs(10));
        assert_eq!(a.metrics_statsd, None);
        assert_eq!(a.metrics_statsd_prefix, "gatekeeper");
        assert!(!a.metrics_statsd_influx && !a.metrics_statsd_datadog);
        assert_eq!(a.vault.vault_capath, None);
        assert_eq!(a.vault.vault_client_cert, None);
        assert_eq!(a.vault.vault_client_key, None);
    }

    #[test]
    fn the_originals_tls_and_metrics_flags_parse() {
        let a = Cli::try_parse_from([
            "gk",
            "--vault-capath",
            "/etc/vault/ca.d",
            "--vault-client-cert",
            "/etc/vault/client.pem",
            "--vault-client-key",
            "/etc/vault/client-key.pem",
            "--metrics-ticker",
            "1m30s",
            "--metrics-statsd",
            "statsd.local:8125",
            "--metrics-statsd-prefix",
            "gk-prod",
            "--metrics-statsd-influx",
            "--metrics-statsd-datadog",
        ])
        .unwrap()
        .args;
        assert_eq!(
            a.vault.vault_capath.as_deref(),
            Some(Path::new("/etc/vault/ca.d"))
        );
        assert_eq!(
            a.vault.vault_client_cert.as_deref(),
            Some(Path::new("/etc/vault/client.pem"))
        );
        assert_eq!(
            a.vault.vault_client_key.as_deref(),
            Some(Path::new("/etc/vault/client-key.pem"))
        );
        assert_eq!(a.metrics_ticker, Duration::from_secs(90));
        assert_eq!(a.metrics_statsd.as_deref(), Some("statsd.local:8125"));
        assert_eq!(a.metrics_statsd_prefix, "gk-prod");
        assert!(a.metrics_statsd_influx && a.metrics_statsd_datadog);
        let err = Cli::try_parse_from(["gk", "--metrics-ticker", "soon"])
            .expect_err("a bad ticker is refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains("invalid duration \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn environment_variables_are_the_flag_names() {
        // Read from clap's declaration rather than by setting variables:
        // tests share the process environment, and every parse reads it.
        use clap::{Args, Command};
        let cmd = GatekeeperArgs::augment_args(Command::new("gk"));
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "auth-aws-iam" {
                // The original's misnamed flag, kept as a hidden alias.
                continue;
            }
            let want = long.to_ascii_uppercase().replace('-', "_");
            let env = arg.get_env().and_then(|e| e.to_str());
            assert_eq!(env, Some(want.as_str()), "--{long}");
            checked += 1;
        }
        assert!(checked > 40, "only {checked} flags");
    }

    #[test]
    fn flags_parse_and_secrets_stay_out_of_debug() {
        let cli = Cli::try_parse_from([
            "gk",
            "--schedulers",
            "kubernetes,mesos",
            "--task-grace",
            "90s",
            "--vault-kv-version",
            "v1",
            "--trusted-proxies",
            "10.0.0.0/8,192.168.1.7",
            "--vault-token",
            "s.supersecret",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.schedulers, ["kubernetes", "mesos"]);
        assert_eq!(a.task_grace, Duration::from_secs(90));
        assert_eq!(a.vault.vault_kv_version, 1);
        assert_eq!(a.trusted_proxies.len(), 2);
        assert!(a
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&"192.168.1.7".parse::<std::net::IpAddr>().unwrap())));
        assert_eq!(
            a.creds.vault_token.as_ref().unwrap().expose(),
            "s.supersecret"
        );
        assert!(!format!("{a:?}").contains("supersecret"));
        for (flag, value, why) in [
            (
                "--vault-kv-version",
                "3",
                "invalid KV version \"3\": expected 1 or 2",
            ),
            (
                "--trusted-proxies",
                "nope",
                "invalid CIDR or address \"nope\"",
            ),
        ] {
            let err = Cli::try_parse_from(["gk", flag, value]).expect_err("a bad value is refused");
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(err.to_string().contains(why), "{err}");
        }
    }
}
