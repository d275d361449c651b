//! The crate's tests: each scheduler against its emulator, the flags and
//! [`crate::build`], and the parsers fed garbage.

mod ecs;
mod fuzz;
mod kubernetes;
mod mesos;
mod mesos_zk;
mod nomad;

use std::time::Duration;

use clap::Parser;

use crate::{build, SchedulerArgs, SchedulerError};

/// Arguments with a short timeout, so a dead emulator fails fast.
pub(crate) fn args() -> SchedulerArgs {
    SchedulerArgs {
        scheduler_timeout: Duration::from_secs(3),
        ..SchedulerArgs::default()
    }
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    schedulers: SchedulerArgs,
}

#[test]
fn flags_parse_like_the_original_and_hide_the_nomad_token() {
    let cli = Cli::try_parse_from([
        "gatekeeper",
        "--mesos-master",
        "http://m1:5050,m2:5050/",
        "--scheduler-timeout",
        "250ms",
        "--nomad-token",
        "s3cr3t-nomad",
        "--kubernetes-api",
        "https://k8s:6443",
    ])
    .unwrap();
    let args = cli.schedulers;
    assert_eq!(args.mesos_master, "http://m1:5050,m2:5050/");
    assert_eq!(args.scheduler_timeout, Duration::from_millis(250));
    assert_eq!(args.nomad_token.as_ref().unwrap().expose(), "s3cr3t-nomad");
    assert_eq!(args.kubernetes_api.as_deref(), Some("https://k8s:6443"));
    assert!(!format!("{args:?}").contains("s3cr3t-nomad"));
    let err = Cli::try_parse_from(["gatekeeper", "--scheduler-timeout", "soon"])
        .expect_err("a bad duration is refused");
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
}

#[test]
fn ecs_flags_parse_and_hide_the_aws_secrets() {
    let cli = Cli::try_parse_from([
        "gatekeeper",
        "--ecs-cluster",
        "prod",
        "--ecs-endpoint",
        "http://127.0.0.1:4566",
        "--ecs-agent-addr",
        "http://10.0.0.1:51678",
        "--aws-region",
        "eu-west-1",
        "--aws-access-key-id",
        "AKIAEXAMPLE",
        "--aws-secret-access-key",
        "s3cr3t-aws",
        "--aws-session-token",
        "s3ss10n-aws",
    ])
    .unwrap();
    let args = cli.schedulers;
    assert_eq!(args.ecs_cluster.as_deref(), Some("prod"));
    assert_eq!(args.ecs_endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(
        args.ecs_agent_addr.as_deref(),
        Some("http://10.0.0.1:51678")
    );
    assert_eq!(args.aws_region.as_deref(), Some("eu-west-1"));
    assert_eq!(args.aws_access_key_id.as_deref(), Some("AKIAEXAMPLE"));
    assert_eq!(
        args.aws_secret_access_key.as_ref().unwrap().expose(),
        "s3cr3t-aws"
    );
    assert_eq!(args.aws_metadata_addr, crate::DEFAULT_METADATA_ADDR);
    let shown = format!("{args:?}");
    assert!(!shown.contains("s3cr3t-aws") && !shown.contains("s3ss10n-aws"));
    build("ecs", &args).unwrap();
}

#[test]
fn flag_defaults_match_default() {
    let cli = Cli::try_parse_from(["gatekeeper"]).unwrap();
    let defaults = SchedulerArgs::default();
    // The environment may set some variables; these are rarely set.
    assert_eq!(cli.schedulers.scheduler_timeout, defaults.scheduler_timeout);
    assert_eq!(cli.schedulers.scheduler_timeout, Duration::from_secs(5));
}

#[tokio::test]
async fn build_knows_the_four_schedulers_and_refuses_others() {
    let mut args = args();
    args.kubernetes_api = Some("https://127.0.0.1:6443".to_owned());
    for name in crate::SCHEDULERS {
        let scheduler = build(name, &args).unwrap();
        assert_eq!(scheduler.name(), *name);
    }
    assert!(matches!(
        build("marathon", &args),
        Err(SchedulerError::Unavailable(m)) if m.contains("marathon") && m.contains("ecs")
    ));
}

#[tokio::test]
async fn build_refuses_bad_configuration() {
    let mut args = args();
    args.mesos_master = "zk://zoo1:2181".to_owned();
    let unavailable = |name: &str, args: &SchedulerArgs| match build(name, args) {
        Err(SchedulerError::Unavailable(m)) => m,
        Err(e) => panic!("{name}: expected Unavailable, got {e}"),
        Ok(_) => panic!("{name}: a bad configuration was accepted"),
    };
    let m = unavailable("mesos", &args);
    assert!(m.contains("no ZooKeeper path"), "{m}");
    let mut args = self::args();
    args.mesos_cacert = Some("/nonexistent/ca.pem".into());
    let m = unavailable("mesos", &args);
    assert!(m.contains("reading CA file /nonexistent/ca.pem"), "{m}");
    let mut args = self::args();
    args.nomad_addr = "not a url".to_owned();
    let m = unavailable("nomad", &args);
    assert!(m.contains("nomad-addr \"not a url\""), "{m}");
    let mut args = self::args();
    args.kubernetes_api = Some("https://127.0.0.1:6443".to_owned());
    args.kubernetes_token_file = Some("/nonexistent/token".into());
    let m = unavailable("kubernetes", &args);
    assert!(
        m.contains("reading the token file /nonexistent/token"),
        "{m}"
    );
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let mut args = self::args();
    args.nomad_cacert = Some(not_pem);
    let m = unavailable("nomad", &args);
    assert!(m.contains("holds no certificate"), "{m}");
}
