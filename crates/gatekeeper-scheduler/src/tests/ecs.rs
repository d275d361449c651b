//! The ECS scheduler against the emulated ECS API, agent, EC2 metadata and
//! container credentials endpoints, and its parsers on crafted answers.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::args;
use crate::ecs::{self, EcsScheduler};
use crate::emulator::{
    EcsEmulator, EmulatedEcsTask, Mode, ECS_ACCESS_KEY_ID, ECS_CLUSTER,
    ECS_CONTAINER_CREDENTIALS_PATH, ECS_DESCRIBE_PATH, ECS_REGION, ECS_SECRET_ACCESS_KEY,
};
use crate::{Scheduler, SchedulerArgs, SchedulerError, Secret};

const ID: &str = "0123456789abcdef0123456789abcdef";

/// Flags for the emulator with its static key, region and cluster given.
fn static_args(emulator: &EcsEmulator) -> SchedulerArgs {
    let mut args = args();
    args.ecs_endpoint = Some(emulator.url.clone());
    args.ecs_cluster = Some(ECS_CLUSTER.to_owned());
    args.aws_region = Some(ECS_REGION.to_owned());
    args.aws_access_key_id = Some(ECS_ACCESS_KEY_ID.to_owned());
    args.aws_secret_access_key = Some(Secret::new(ECS_SECRET_ACCESS_KEY));
    // Nothing may come from a real metadata service.
    args.aws_metadata_addr = emulator.url.clone();
    args
}

/// Flags with nothing but the endpoint, the agent and the metadata
/// service: region and credentials come from the instance.
fn instance_args(emulator: &EcsEmulator) -> SchedulerArgs {
    let mut args = args();
    args.ecs_endpoint = Some(emulator.url.clone());
    args.ecs_agent_addr = Some(emulator.url.clone());
    args.aws_metadata_addr = emulator.url.clone();
    args
}

fn scheduler(args: &SchedulerArgs) -> EcsScheduler {
    EcsScheduler::from_args(args)
        .unwrap()
        .with_pending_delays(Vec::new())
}

async fn with_web() -> EcsEmulator {
    let emulator = EcsEmulator::start().await;
    emulator.add_task(EmulatedEcsTask {
        started: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)),
        eni_ip: Some("10.0.3.17".parse().unwrap()),
        ..EmulatedEcsTask::running(ID, "web-api")
    });
    emulator
}

fn not_found(result: Result<crate::Task, SchedulerError>) -> bool {
    matches!(result, Err(SchedulerError::NotFound(_)))
}

fn unavailable(result: Result<crate::Task, SchedulerError>) -> String {
    match result {
        Err(SchedulerError::Unavailable(m)) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_running_task_is_found_by_id_and_by_arn_as_one_task() {
    let emulator = with_web().await;
    let scheduler = scheduler(&static_args(&emulator));
    let arn = format!("arn:aws:ecs:{ECS_REGION}:123456789012:task/{ECS_CLUSTER}/{ID}");
    for asked in [ID, arn.as_str()] {
        let task = scheduler.lookup(asked).await.unwrap();
        assert_eq!(task.id, ID, "asked with {asked}");
        assert_eq!(task.name, "web-api");
        assert_eq!(task.group, None);
        assert_eq!(task.image, None);
        assert_eq!(
            task.started,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
        );
        assert_eq!(task.addresses, vec!["10.0.3.17".parse::<IpAddr>().unwrap()]);
    }
    assert_eq!(emulator.requests(ECS_DESCRIBE_PATH), 2);
    assert_eq!(emulator.refused(), 0);
}

#[tokio::test]
async fn pending_stopped_and_unknown_tasks_are_not_running() {
    let emulator = with_web().await;
    let pending = "11111111111111111111111111111111";
    let stopped = "22222222222222222222222222222222";
    emulator.add_task(EmulatedEcsTask::pending(pending, "web-api"));
    emulator.add_task(EmulatedEcsTask::stopped(stopped, "web-api"));
    let scheduler = scheduler(&static_args(&emulator));
    for id in [pending, stopped, "33333333333333333333333333333333"] {
        assert!(not_found(scheduler.lookup(id).await), "{id}");
    }
    assert!(scheduler.lookup(ID).await.is_ok());
    emulator.set_status(ID, "DEACTIVATING");
    assert!(not_found(scheduler.lookup(ID).await));
    emulator.remove_task(ID);
    assert!(not_found(scheduler.lookup(ID).await));
}

#[tokio::test]
async fn a_starting_task_is_asked_again_as_the_original_did() {
    let emulator = EcsEmulator::start().await;
    let scheduler = EcsScheduler::from_args(&static_args(&emulator))
        .unwrap()
        .with_pending_delays(vec![Duration::ZERO; 3]);
    // PENDING for two answers, then RUNNING: found on the third.
    emulator.add_task(EmulatedEcsTask {
        pending_answers: 2,
        ..EmulatedEcsTask::running(ID, "web-api")
    });
    let task = scheduler.lookup(ID).await.unwrap();
    assert_eq!(task.name, "web-api");
    assert_eq!(emulator.requests(ECS_DESCRIBE_PATH), 3);
    // Never starting: asked four times in all, then not running.
    let never = "44444444444444444444444444444444";
    emulator.add_task(EmulatedEcsTask::pending(never, "web-api"));
    assert!(not_found(scheduler.lookup(never).await));
    assert_eq!(emulator.requests(ECS_DESCRIBE_PATH), 3 + 4);
}

#[tokio::test]
async fn a_bridge_network_task_has_no_address_of_its_own() {
    let emulator = EcsEmulator::start().await;
    emulator.add_task(EmulatedEcsTask {
        eni_ip: None,
        ..EmulatedEcsTask::running(ID, "batch")
    });
    let task = scheduler(&static_args(&emulator)).lookup(ID).await.unwrap();
    assert_eq!(task.name, "batch");
    assert!(task.addresses.is_empty(), "{:?}", task.addresses);
}

#[tokio::test]
async fn ids_that_cannot_be_tasks_are_not_sent() {
    let emulator = with_web().await;
    let scheduler = scheduler(&static_args(&emulator));
    for id in [
        "",
        "a b",
        "../x",
        "arn:aws:ecs:us-east-1:123456789012:service/gatekeeper/web",
        "arn:aws:ec2:us-east-1:123456789012:task/gatekeeper/abc",
        "arn:aws:ecs:us-east-1:123456789012:task/",
        "arn:aws:ecs:us-east-1:123456789012:task/a b/abc",
        "arn:aws:ecs:us-east-1",
        &"f".repeat(65),
    ] {
        assert!(not_found(scheduler.lookup(id).await), "{id:?}");
    }
    assert_eq!(emulator.total_requests(), 0);
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_key_is_refused_and_unavailable() {
    let emulator = with_web().await;
    let mut args = static_args(&emulator);
    args.aws_secret_access_key = Some(Secret::new("not-the-secret"));
    let m = unavailable(scheduler(&args).lookup(ID).await);
    assert!(
        m.contains("403") && m.contains("InvalidSignatureException"),
        "{m}"
    );
    // The message says where the keys came from and never what they are.
    assert!(
        m.contains("static keys") && !m.contains("not-the-secret"),
        "{m}"
    );
    args.aws_access_key_id = Some("AKIAUNKNOWN000000000".to_owned());
    let m = unavailable(scheduler(&args).lookup(ID).await);
    assert!(m.contains("UnrecognizedClientException"), "{m}");
    // Another region in the signature's scope is refused too.
    let mut args = static_args(&emulator);
    args.aws_region = Some("eu-west-1".to_owned());
    let m = unavailable(scheduler(&args).lookup(ID).await);
    assert!(m.contains("InvalidSignatureException"), "{m}");
    assert_eq!(emulator.refused(), 3);
}

#[tokio::test]
async fn the_cluster_comes_from_the_agent_once() {
    let emulator = with_web().await;
    let mut args = static_args(&emulator);
    args.ecs_cluster = None;
    args.ecs_agent_addr = Some(emulator.url.clone());
    let scheduler = scheduler(&args);
    scheduler.lookup(ID).await.unwrap();
    scheduler.lookup(ID).await.unwrap();
    assert_eq!(emulator.requests("/v1/metadata"), 1);
}

#[tokio::test]
async fn region_and_credentials_come_from_the_instance_with_imdsv2() {
    let emulator = with_web().await;
    emulator.set_imds_v1(false);
    let scheduler = scheduler(&instance_args(&emulator));
    let task = scheduler.lookup(ID).await.unwrap();
    assert_eq!(task.name, "web-api");
    assert!(emulator.requests("/latest/api/token") >= 2);
    assert_eq!(emulator.credentials_issued(), 1);
    // Credentials valid for an hour are kept.
    scheduler.lookup(ID).await.unwrap();
    assert_eq!(emulator.credentials_issued(), 1);
    assert_eq!(emulator.requests("/latest/meta-data/placement/region"), 1);
}

#[tokio::test]
async fn imdsv1_serves_when_the_service_gives_no_session_token() {
    let emulator = with_web().await;
    emulator.disable_imds_v2();
    let task = scheduler(&instance_args(&emulator))
        .lookup(ID)
        .await
        .unwrap();
    assert_eq!(task.name, "web-api");
    assert_eq!(emulator.credentials_issued(), 1);
}

#[tokio::test]
async fn credentials_about_to_expire_are_fetched_again() {
    let emulator = with_web().await;
    // Inside the refresh margin from the start: fetched for each request.
    emulator.set_credentials_lifetime(ecs_refresh_margin() - Duration::from_secs(60));
    let scheduler = scheduler(&instance_args(&emulator));
    for expected in 1..=3 {
        scheduler.lookup(ID).await.unwrap();
        assert_eq!(emulator.credentials_issued(), expected);
    }
}

#[tokio::test]
async fn refused_instance_credentials_are_fetched_again() {
    let emulator = with_web().await;
    let scheduler = scheduler(&instance_args(&emulator));
    scheduler.lookup(ID).await.unwrap();
    emulator.revoke_issued();
    // The request signed with the revoked key fails; the next one is
    // signed with new credentials.
    let m = unavailable(scheduler.lookup(ID).await);
    assert!(m.contains("UnrecognizedClientException"), "{m}");
    assert!(m.contains("the EC2 instance role"), "{m}");
    scheduler.lookup(ID).await.unwrap();
    assert_eq!(emulator.credentials_issued(), 2);
}

#[tokio::test]
async fn a_static_session_token_is_signed_along() {
    let emulator = with_web().await;
    emulator.add_temporary_key(
        "ASIASTATIC0000000001",
        "static/temporary/secret",
        "static-session",
    );
    let mut args = static_args(&emulator);
    args.aws_access_key_id = Some("ASIASTATIC0000000001".to_owned());
    args.aws_secret_access_key = Some(Secret::new("static/temporary/secret"));
    let m = unavailable(scheduler(&args).lookup(ID).await);
    assert!(
        m.contains("UnrecognizedClientException"),
        "without the token: {m}"
    );
    args.aws_session_token = Some(Secret::new("static-session"));
    scheduler(&args).lookup(ID).await.unwrap();
    args.aws_session_token = Some(Secret::new("another-session"));
    unavailable(scheduler(&args).lookup(ID).await);
}

fn ecs_refresh_margin() -> Duration {
    ecs::refresh_margin()
}

#[tokio::test]
async fn container_credentials_with_an_authorization_token() {
    let emulator = with_web().await;
    emulator.set_container_token(Some("container-auth-secret"));
    let mut args = instance_args(&emulator);
    args.aws_region = Some(ECS_REGION.to_owned());
    args.aws_container_credentials_full_uri =
        Some(format!("{}{ECS_CONTAINER_CREDENTIALS_PATH}", emulator.url));
    let m = unavailable(scheduler(&args).lookup(ID).await);
    assert!(
        m.contains("container credentials: answered HTTP 401"),
        "{m}"
    );
    args.aws_container_authorization_token = Some(Secret::new("container-auth-secret"));
    scheduler(&args).lookup(ID).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "container-auth-secret\n").unwrap();
    args.aws_container_authorization_token = None;
    args.aws_container_authorization_token_file = Some(file);
    scheduler(&args).lookup(ID).await.unwrap();
    assert_eq!(emulator.credentials_issued(), 2);
}

#[tokio::test]
async fn failures_are_unavailable_bad_answers_or_timeouts() {
    let emulator = with_web().await;
    let scheduler = scheduler(&static_args(&emulator));
    emulator.set_mode(Mode::Down);
    unavailable(scheduler.lookup(ID).await);
    emulator.set_mode(Mode::ServerError);
    let m = unavailable(scheduler.lookup(ID).await);
    assert!(m.contains("500"), "{m}");
    emulator.set_mode(Mode::Garbage);
    assert!(matches!(
        scheduler.lookup(ID).await,
        Err(SchedulerError::BadAnswer(_))
    ));
    emulator.set_mode(Mode::Normal);
    assert!(scheduler.lookup(ID).await.is_ok());

    // An endpoint that accepts and never answers: a timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut args = static_args(&emulator);
    args.ecs_endpoint = Some(format!("http://{}", silent.local_addr().unwrap()));
    args.scheduler_timeout = Duration::from_millis(300);
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    assert!(matches!(
        self::scheduler(&args).lookup(ID).await,
        Err(SchedulerError::TimedOut(_))
    ));
    keep.abort();
}

#[tokio::test]
async fn the_metadata_service_gives_the_agent_address() {
    let emulator = EcsEmulator::start().await;
    emulator.set_instance_ip("10.1.2.3".parse().unwrap());
    let imds = ecs::Imds::new(&emulator.url).unwrap();
    let client = reqwest::Client::new();
    assert_eq!(
        imds.local_ip(&client).await.unwrap(),
        "10.1.2.3".parse::<IpAddr>().unwrap()
    );
    assert_eq!(imds.region(&client).await.unwrap(), ECS_REGION);
}

#[test]
fn bad_configuration_is_refused_at_build() {
    let message = |args: &SchedulerArgs| match EcsScheduler::from_args(args) {
        Err(SchedulerError::Unavailable(m)) => m,
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("a bad configuration was accepted"),
    };
    let mut a = args();
    a.aws_access_key_id = Some("AKIA1".to_owned());
    assert!(message(&a).contains("aws-secret-access-key is not"));
    let mut a = args();
    a.aws_secret_access_key = Some(Secret::new("s3cr3t"));
    let m = message(&a);
    assert!(
        m.contains("aws-access-key-id is not") && !m.contains("s3cr3t"),
        "{m}"
    );
    let mut a = args();
    a.aws_region = Some("us-east-1.evil.example/".to_owned());
    assert!(message(&a).contains("is not an AWS region"));
    let mut a = args();
    a.ecs_cluster = Some("bad cluster".to_owned());
    assert!(message(&a).contains("is not a cluster name or ARN"));
    let mut a = args();
    a.ecs_endpoint = Some("ftp://ecs".to_owned());
    assert!(message(&a).contains("ecs-endpoint \"ftp://ecs\""));
    let mut a = args();
    a.aws_container_credentials_full_uri = Some("http://203.0.113.9/creds".to_owned());
    assert!(message(&a).contains("must be https"));
    let mut a = args();
    a.aws_container_credentials_relative_uri = Some("v2/credentials".to_owned());
    assert!(message(&a).contains("does not start with /"));
    // Good ones, each alone.
    let mut a = args();
    a.ecs_cluster = Some("arn:aws:ecs:us-east-1:123456789012:cluster/prod_1".to_owned());
    a.aws_default_region = Some("eu-central-1".to_owned());
    a.aws_container_credentials_full_uri = Some("http://127.0.0.1:9/creds".to_owned());
    EcsScheduler::from_args(&a).unwrap();
}

/// A `DescribeTasks` answer with one awsvpc task.
fn answer(status: &str, started: Option<f64>) -> serde_json::Value {
    let mut task = json!({
        "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{ID}"),
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web_api-2:12",
        "lastStatus": status,
        "attachments": [{"type": "ElasticNetworkInterface", "details": [
            {"name": "privateIPv4Address", "value": "10.0.0.5"},
            {"name": "ipv6Address", "value": "2600:1f18::5"},
        ]}],
        "containers": [{"networkInterfaces": [{"privateIpv4Address": "10.0.0.5"}]}],
    });
    if let Some(at) = started {
        task["startedAt"] = json!(at);
    }
    json!({"tasks": [task], "failures": []})
}

fn read(value: &serde_json::Value) -> Result<crate::Task, SchedulerError> {
    ecs::read_describe_tasks(&serde_json::to_vec(value).unwrap(), ID)
}

#[test]
fn answers_are_read_as_the_api_sends_them() {
    let task = read(&answer("RUNNING", Some(1_700_000_000.5))).unwrap();
    assert_eq!(task.id, ID);
    assert_eq!(task.name, "web_api-2");
    assert_eq!(
        task.started,
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)
    );
    let expected: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "2600:1f18::5".parse().unwrap()];
    assert_eq!(task.addresses, expected);
    // Not running in every other state, started or not.
    for (status, started) in [
        ("PENDING", None),
        ("PROVISIONING", None),
        ("RUNNING", None),
        ("STOPPED", Some(1.0)),
        ("DEPROVISIONING", Some(1.0)),
        ("", Some(1.0)),
    ] {
        assert!(
            matches!(
                read(&answer(status, started)),
                Err(SchedulerError::NotFound(_))
            ),
            "{status}"
        );
    }
    let mut stopping = answer("RUNNING", Some(1.0));
    stopping["tasks"][0]["stoppedAt"] = json!(2.0);
    assert!(matches!(read(&stopping), Err(SchedulerError::NotFound(_))));
}

#[test]
fn failures_and_odd_answers_are_sorted() {
    let missing = json!({"tasks": [], "failures": [{"arn": ID, "reason": "MISSING"}]});
    assert!(matches!(read(&missing), Err(SchedulerError::NotFound(_))));
    assert!(matches!(
        read(&json!({"tasks": null, "failures": null})),
        Err(SchedulerError::NotFound(_))
    ));
    let other = json!({"tasks": [], "failures": [{"arn": ID, "reason": "ACCESS_DENIED\nx", "detail": "no"}]});
    match read(&other) {
        Err(SchedulerError::Unavailable(m)) => {
            assert!(m.contains("ACCESS_DENIED") && !m.contains('\n'), "{m}")
        }
        r => panic!("{r:?}"),
    }
    let mut wrong_task = answer("RUNNING", Some(1.0));
    wrong_task["tasks"][0]["taskArn"] = json!("arn:aws:ecs:us-east-1:1:task/prod/ffff");
    assert!(matches!(
        read(&wrong_task),
        Err(SchedulerError::BadAnswer(_))
    ));
    for definition in [
        json!("arn:aws:ecs:us-east-1:1:task-definition/web"),
        json!("arn:aws:ecs:us-east-1:1:task-definition/:3"),
        json!("web:3"),
        json!(null),
    ] {
        let mut odd = answer("RUNNING", Some(1.0));
        odd["tasks"][0]["taskDefinitionArn"] = definition.clone();
        assert!(
            matches!(read(&odd), Err(SchedulerError::BadAnswer(_))),
            "{definition}"
        );
    }
    for started in [json!(-5.0), json!(1e300)] {
        let mut odd = answer("RUNNING", None);
        odd["tasks"][0]["startedAt"] = started.clone();
        assert!(
            matches!(read(&odd), Err(SchedulerError::BadAnswer(_))),
            "{started}"
        );
    }
    let mut bad_ip = answer("RUNNING", Some(1.0));
    bad_ip["tasks"][0]["attachments"][0]["details"][0]["value"] = json!("not-an-ip");
    bad_ip["tasks"][0]["containers"] = json!(null);
    let task = read(&bad_ip).unwrap();
    assert_eq!(
        task.addresses,
        vec!["2600:1f18::5".parse::<IpAddr>().unwrap()]
    );
    for garbage in [&b"<html>"[..], b"", b"{\"tasks\": {}}", b"\xff\xfe"] {
        assert!(
            matches!(
                ecs::read_describe_tasks(garbage, ID),
                Err(SchedulerError::BadAnswer(_))
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn agent_metadata_and_credentials_documents() {
    assert_eq!(
        ecs::read_agent_metadata(br#"{"Cluster": "prod", "Version": "x"}"#).unwrap(),
        "prod"
    );
    for bad in [
        &br#"{"Cluster": ""}"#[..],
        br#"{"Cluster": "a/b"}"#,
        br#"{}"#,
    ] {
        assert!(matches!(
            ecs::read_agent_metadata(bad),
            Err(SchedulerError::BadAnswer(_))
        ));
    }
    let doc = br#"{"Code": "Success", "AccessKeyId": "ASIA1", "SecretAccessKey": "sekrit",
        "Token": "tok", "Expiration": "2030-01-01T00:00:00Z"}"#;
    let credentials = ecs::read_credentials(doc, "instance").unwrap();
    assert_eq!(credentials.access_key_id(), "ASIA1");
    assert_eq!(credentials.session_token(), Some("tok"));
    assert!(credentials.expiry().is_some());
    let shown = format!("{credentials:?}");
    assert!(
        !shown.contains("sekrit") && !shown.contains("tok\""),
        "{shown}"
    );
    let failed = br#"{"Code": "AssumeRoleUnauthorizedAccess"}"#;
    assert!(matches!(
        ecs::read_credentials(failed, "instance"),
        Err(SchedulerError::Unavailable(_))
    ));
    let no_secret = br#"{"AccessKeyId": "ASIA1"}"#;
    assert!(matches!(
        ecs::read_credentials(no_secret, "container"),
        Err(SchedulerError::BadAnswer(_))
    ));
    let bad_expiry = br#"{"AccessKeyId": "A", "SecretAccessKey": "s", "Expiration": "soon"}"#;
    assert!(matches!(
        ecs::read_credentials(bad_expiry, "container"),
        Err(SchedulerError::BadAnswer(_))
    ));
}

#[test]
fn task_references() {
    assert_eq!(ecs::task_ref(ID), Some(ID));
    let new = format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{ID}");
    assert_eq!(ecs::task_ref(&new), Some(ID));
    let old = "arn:aws-cn:ecs:cn-north-1:123456789012:task/5a3f9e2c-1b7d-4c8e-9f00-123456789abc";
    assert_eq!(
        ecs::task_ref(old),
        Some("5a3f9e2c-1b7d-4c8e-9f00-123456789abc")
    );
    for bad in [
        "",
        "task/x",
        "arn::ecs:r:a:task/x",
        "arn:aws:ecs:r:a:task/c/d/e",
        "x y",
    ] {
        assert_eq!(ecs::task_ref(bad), None, "{bad:?}");
    }
}
