//! The Nomad scheduler against the emulated agent.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use super::args;
use crate::emulator::{EmulatedAllocation, EmulatedNode, EmulatedNomadTask, Mode, NomadEmulator};
use crate::nomad::NomadScheduler;
use crate::{Scheduler, SchedulerError, Secret};

const ALLOC: &str = "5a3f9e2c-1b7d-4c8e-9f00-123456789abc";
const NODE: &str = "0b1c2d3e-0000-4000-8000-00000000node";

fn scheduler(emulator: &NomadEmulator, token: Option<&str>) -> NomadScheduler {
    let mut args = args();
    args.nomad_addr = emulator.url.clone();
    args.nomad_token = token.map(Secret::new);
    NomadScheduler::from_args(&args).unwrap()
}

async fn with_web() -> NomadEmulator {
    let emulator = NomadEmulator::start().await;
    emulator.add_node(EmulatedNode::new(NODE, "10.0.0.7".parse().unwrap()));
    emulator.add_allocation(EmulatedAllocation {
        network_ip: Some("172.26.64.9".parse().unwrap()),
        ..EmulatedAllocation::running(
            ALLOC,
            "shop",
            "frontend",
            NODE,
            vec![EmulatedNomadTask {
                started: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
                ..EmulatedNomadTask::running("web", Some("nginx:1.25"))
            }],
        )
    });
    emulator
}

#[tokio::test]
async fn a_running_task_is_found_by_allocation_and_by_allocation_and_task() {
    let emulator = with_web().await;
    let scheduler = scheduler(&emulator, None);
    for id in [ALLOC.to_owned(), format!("{ALLOC}/web")] {
        let task = scheduler.lookup(&id).await.unwrap();
        assert_eq!(task.id, id);
        assert_eq!(task.name, "shop/frontend/web");
        assert_eq!(task.group, None);
        assert_eq!(task.image.as_deref(), Some("nginx:1.25"));
        assert_eq!(
            task.started,
            UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789)
        );
        let expected: Vec<IpAddr> =
            vec!["10.0.0.7".parse().unwrap(), "172.26.64.9".parse().unwrap()];
        assert_eq!(task.addresses, expected);
    }
}

#[tokio::test]
async fn several_tasks_need_the_task_name() {
    let emulator = NomadEmulator::start().await;
    emulator.add_node(EmulatedNode::local(NODE));
    emulator.add_allocation(EmulatedAllocation::running(
        ALLOC,
        "shop",
        "backend",
        NODE,
        vec![
            EmulatedNomadTask::running("api", None),
            EmulatedNomadTask::running("sidecar", Some("envoy:1")),
        ],
    ));
    let scheduler = scheduler(&emulator, None);
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::NotFound(_))
    ));
    let task = scheduler.lookup(&format!("{ALLOC}/api")).await.unwrap();
    assert_eq!(task.name, "shop/backend/api");
    assert_eq!(task.image, None);
    assert_eq!(task.addresses, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert!(matches!(
        scheduler.lookup(&format!("{ALLOC}/nope")).await,
        Err(SchedulerError::NotFound(_))
    ));
}

#[tokio::test]
async fn unknown_pending_and_dead_tasks_are_not_found() {
    let emulator = with_web().await;
    let pending = "11111111-2222-3333-4444-555555555555";
    emulator.add_allocation(EmulatedAllocation {
        client_status: "pending".to_owned(),
        ..EmulatedAllocation::running(
            pending,
            "shop",
            "frontend",
            NODE,
            vec![EmulatedNomadTask {
                state: "pending".to_owned(),
                ..EmulatedNomadTask::running("web", None)
            }],
        )
    });
    let dead = "66666666-2222-3333-4444-555555555555";
    emulator.add_allocation(EmulatedAllocation::running(
        dead,
        "shop",
        "frontend",
        NODE,
        vec![EmulatedNomadTask {
            state: "dead".to_owned(),
            ..EmulatedNomadTask::running("web", None)
        }],
    ));
    let scheduler = scheduler(&emulator, None);
    for id in ["99999999-0000-0000-0000-000000000000", pending, dead] {
        assert!(
            matches!(scheduler.lookup(id).await, Err(SchedulerError::NotFound(_))),
            "{id}"
        );
    }
    assert!(scheduler.lookup(ALLOC).await.is_ok());
    emulator.set_client_status(ALLOC, "complete");
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::NotFound(_))
    ));
    emulator.remove_allocation(ALLOC);
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::NotFound(_))
    ));
}

#[tokio::test]
async fn ids_that_cannot_be_allocations_are_not_sent() {
    let emulator = with_web().await;
    let scheduler = scheduler(&emulator, None);
    for id in [
        "",
        "../../v1/node/x",
        "a b",
        "/web",
        &format!("{ALLOC}/"),
        "a?b",
    ] {
        assert!(
            matches!(scheduler.lookup(id).await, Err(SchedulerError::NotFound(_))),
            "{id:?}"
        );
    }
    assert_eq!(emulator.total_requests(), 0);
}

#[tokio::test]
async fn the_acl_token_is_sent() {
    let emulator = with_web().await;
    emulator.set_token(Some("nomad-acl-secret"));
    assert!(matches!(
        scheduler(&emulator, None).lookup(ALLOC).await,
        Err(SchedulerError::Unavailable(_))
    ));
    assert!(matches!(
        scheduler(&emulator, Some("wrong")).lookup(ALLOC).await,
        Err(SchedulerError::Unavailable(_))
    ));
    let task = scheduler(&emulator, Some("nomad-acl-secret"))
        .lookup(ALLOC)
        .await
        .unwrap();
    assert_eq!(task.name, "shop/frontend/web");
}

#[tokio::test]
async fn failures_are_unavailable_or_bad_answers() {
    let emulator = with_web().await;
    let scheduler = scheduler(&emulator, None);
    emulator.set_mode(Mode::Down);
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::Unavailable(_))
    ));
    emulator.set_mode(Mode::ServerError);
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::Unavailable(_))
    ));
    emulator.set_mode(Mode::Garbage);
    assert!(matches!(
        scheduler.lookup(ALLOC).await,
        Err(SchedulerError::BadAnswer(_))
    ));
    emulator.set_mode(Mode::Normal);
    assert!(scheduler.lookup(ALLOC).await.is_ok());
}
