//! The Kubernetes scheduler against the emulated API server.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::args;
use crate::emulator::{EmulatedPod, KubernetesEmulator, Mode, KUBERNETES_TOKEN};
use crate::kubernetes::KubernetesScheduler;
use crate::{Scheduler, SchedulerError};

const PODS: &str = "/api/v1/pods";

fn scheduler(emulator: &KubernetesEmulator, token_file: &Path) -> KubernetesScheduler {
    let mut args = args();
    args.kubernetes_api = Some(emulator.url.clone());
    args.kubernetes_token_file = Some(token_file.to_owned());
    KubernetesScheduler::from_args(&args).unwrap()
}

fn token_file(dir: &tempfile::TempDir, token: &str) -> std::path::PathBuf {
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    path
}

#[tokio::test]
async fn a_running_pod_is_found_with_its_fields() {
    let emulator = KubernetesEmulator::start().await;
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    emulator.add_pod(EmulatedPod {
        started,
        pod_ip: "10.244.1.7".parse().unwrap(),
        host_ip: "192.168.1.20".parse().unwrap(),
        image: "ghcr.io/acme/api:3".to_owned(),
        ..EmulatedPod::running("7f1c-uid", "payments", "api-5d9f")
    });
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler(&emulator, &token_file(&dir, KUBERNETES_TOKEN));
    let task = scheduler.lookup("7f1c-uid").await.unwrap();
    assert_eq!(task.id, "7f1c-uid");
    assert_eq!(task.name, "payments/api-5d9f");
    assert_eq!(task.group, None);
    assert_eq!(task.image.as_deref(), Some("ghcr.io/acme/api:3"));
    assert_eq!(task.started, started);
    let expected: Vec<IpAddr> = vec![
        "10.244.1.7".parse().unwrap(),
        "192.168.1.20".parse().unwrap(),
    ];
    assert_eq!(task.addresses, expected);
}

#[tokio::test]
async fn unknown_pending_and_finished_pods_are_not_found() {
    let emulator = KubernetesEmulator::start().await;
    emulator.add_pod(EmulatedPod::running("live", "ns", "live"));
    emulator.add_pod(EmulatedPod {
        phase: "Pending".to_owned(),
        ..EmulatedPod::running("pending", "ns", "pending")
    });
    emulator.add_pod(EmulatedPod {
        phase: "Succeeded".to_owned(),
        ..EmulatedPod::running("done", "ns", "done")
    });
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler(&emulator, &token_file(&dir, KUBERNETES_TOKEN));
    for uid in ["nope", "pending", "done", ""] {
        assert!(
            matches!(
                scheduler.lookup(uid).await,
                Err(SchedulerError::NotFound(_))
            ),
            "{uid}"
        );
    }
    assert!(scheduler.lookup("live").await.is_ok());
    emulator.set_phase("live", "Failed");
    assert!(matches!(
        scheduler.lookup("live").await,
        Err(SchedulerError::NotFound(_))
    ));
}

#[tokio::test]
async fn pages_are_followed_until_the_pod_is_found() {
    let emulator = KubernetesEmulator::start().await;
    for i in 0..5 {
        emulator.add_pod(EmulatedPod::running(
            &format!("uid-{i}"),
            "ns",
            &format!("pod-{i}"),
        ));
    }
    emulator.set_max_page(Some(2));
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler(&emulator, &token_file(&dir, KUBERNETES_TOKEN));
    assert_eq!(scheduler.lookup("uid-4").await.unwrap().name, "ns/pod-4");
    assert_eq!(emulator.requests(PODS), 3);
    // A pod on the first page needs one request.
    assert!(scheduler.lookup("uid-1").await.is_ok());
    assert_eq!(emulator.requests(PODS), 4);
    // An unknown pod reads every page, then is not found.
    assert!(matches!(
        scheduler.lookup("uid-9").await,
        Err(SchedulerError::NotFound(_))
    ));
    assert_eq!(emulator.requests(PODS), 7);

    // The client's own page size paginates too.
    emulator.set_max_page(None);
    let scheduler = scheduler.with_page_size(4);
    assert!(scheduler.lookup("uid-4").await.is_ok());
    assert_eq!(emulator.requests(PODS), 9);
}

#[tokio::test]
async fn the_token_is_required_and_reread_when_it_rotates() {
    let emulator = KubernetesEmulator::start().await;
    emulator.add_pod(EmulatedPod::running("u1", "ns", "p1"));
    let dir = tempfile::tempdir().unwrap();
    let path = token_file(&dir, "an-old-token");
    let scheduler = scheduler(&emulator, &path);
    assert!(matches!(
        scheduler.lookup("u1").await,
        Err(SchedulerError::Unavailable(_))
    ));
    // The kubelet rotates the projected token: the new one is used.
    token_file(&dir, KUBERNETES_TOKEN);
    assert_eq!(scheduler.lookup("u1").await.unwrap().name, "ns/p1");

    // Without any token the API server refuses too.
    let mut no_token = args();
    no_token.kubernetes_api = Some(emulator.url.clone());
    let anonymous = KubernetesScheduler::from_args(&no_token).unwrap();
    assert!(matches!(
        anonymous.lookup("u1").await,
        Err(SchedulerError::Unavailable(_))
    ));
}

#[tokio::test]
async fn failures_are_unavailable_or_bad_answers() {
    let emulator = KubernetesEmulator::start().await;
    emulator.add_pod(EmulatedPod::running("u1", "ns", "p1"));
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler(&emulator, &token_file(&dir, KUBERNETES_TOKEN));
    emulator.set_mode(Mode::Down);
    assert!(matches!(
        scheduler.lookup("u1").await,
        Err(SchedulerError::Unavailable(_))
    ));
    emulator.set_mode(Mode::ServerError);
    assert!(matches!(
        scheduler.lookup("u1").await,
        Err(SchedulerError::Unavailable(_))
    ));
    emulator.set_mode(Mode::Garbage);
    assert!(matches!(
        scheduler.lookup("u1").await,
        Err(SchedulerError::BadAnswer(_))
    ));
    emulator.set_mode(Mode::Normal);
    assert!(scheduler.lookup("u1").await.is_ok());
}
