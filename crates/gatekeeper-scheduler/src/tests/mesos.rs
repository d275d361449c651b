//! The Mesos scheduler against two emulated masters.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use super::args;
use crate::emulator::{EmulatedMesosTask, MesosEmulator, Mode};
use crate::mesos::{find_task, parse_masters, parse_state, MesosScheduler};
use crate::{Scheduler, SchedulerError};

fn scheduler(emulator: &MesosEmulator) -> MesosScheduler {
    let mut args = args();
    args.mesos_master = emulator.url.clone();
    MesosScheduler::from_args(&args).unwrap()
}

const STATE: &str = "/master/state";

#[tokio::test]
async fn a_running_task_is_found_with_its_fields() {
    let emulator = MesosEmulator::start().await;
    let started = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
    emulator.add_task(EmulatedMesosTask {
        image: Some("registry.example/web:2".to_owned()),
        agent_ip: "10.0.0.5".parse().unwrap(),
        container_ip: Some("172.17.0.9".parse().unwrap()),
        started,
        ..EmulatedMesosTask::running("web.123", "marathon", "web")
    });
    let task = scheduler(&emulator).lookup("web.123").await.unwrap();
    assert_eq!(task.id, "web.123");
    assert_eq!(task.name, "web");
    assert_eq!(task.group.as_deref(), Some("marathon"));
    assert_eq!(task.image.as_deref(), Some("registry.example/web:2"));
    assert_eq!(task.started, started);
    let expected: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "172.17.0.9".parse().unwrap()];
    assert_eq!(task.addresses, expected);
}

#[tokio::test]
async fn a_mesos_containerizer_image_is_read() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask {
        image: Some("alpine:3".to_owned()),
        unified_container: true,
        ..EmulatedMesosTask::running("t1", "aurora", "job")
    });
    let task = scheduler(&emulator).lookup("t1").await.unwrap();
    assert_eq!(task.image.as_deref(), Some("alpine:3"));
    assert_eq!(task.addresses, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn unknown_staging_and_finished_tasks_are_not_found() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask::running("live", "fw", "live"));
    emulator.add_task(EmulatedMesosTask {
        state: "TASK_STAGING".to_owned(),
        ..EmulatedMesosTask::running("staging", "fw", "staging")
    });
    emulator.add_task(EmulatedMesosTask {
        state: "TASK_FINISHED".to_owned(),
        ..EmulatedMesosTask::running("done", "fw", "done")
    });
    let scheduler = scheduler(&emulator);
    for id in ["nope", "staging", "done", ""] {
        assert!(
            matches!(scheduler.lookup(id).await, Err(SchedulerError::NotFound(_))),
            "{id}"
        );
    }
    assert!(scheduler.lookup("live").await.is_ok());
    emulator.set_task_state("live", "TASK_KILLED");
    assert!(matches!(
        scheduler.lookup("live").await,
        Err(SchedulerError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_leader_is_found_and_remembered() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    emulator.set_leader(Some(1));
    let scheduler = scheduler(&emulator);
    assert!(scheduler.remembered_leader().is_none());
    for _ in 0..3 {
        scheduler.lookup("t1").await.unwrap();
    }
    // Master 0 redirected once; master 1 answered every lookup.
    assert_eq!(emulator.requests(0, STATE), 1);
    assert_eq!(emulator.requests(1, STATE), 3);
    assert_eq!(
        scheduler.remembered_leader().unwrap().as_str(),
        format!("{}/", emulator.masters[1])
    );
}

#[tokio::test]
async fn a_leader_switch_is_followed_and_the_new_leader_remembered() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    let scheduler = scheduler(&emulator);
    scheduler.lookup("t1").await.unwrap();
    assert_eq!(
        (emulator.requests(0, STATE), emulator.requests(1, STATE)),
        (1, 0)
    );
    emulator.set_leader(Some(1));
    scheduler.lookup("t1").await.unwrap();
    // Master 0 (remembered) redirected to master 1, which answered.
    assert_eq!(
        (emulator.requests(0, STATE), emulator.requests(1, STATE)),
        (2, 1)
    );
    scheduler.lookup("t1").await.unwrap();
    assert_eq!(
        (emulator.requests(0, STATE), emulator.requests(1, STATE)),
        (2, 2)
    );
}

#[tokio::test]
async fn legacy_followers_name_the_leader_in_their_state() {
    let emulator = MesosEmulator::start().await;
    emulator.set_legacy_followers(true);
    emulator.set_leader(Some(1));
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    let scheduler = scheduler(&emulator);
    assert_eq!(scheduler.lookup("t1").await.unwrap().name, "t1");
    scheduler.lookup("t1").await.unwrap();
    assert_eq!(
        (emulator.requests(0, STATE), emulator.requests(1, STATE)),
        (1, 2)
    );
}

#[tokio::test]
async fn a_dead_leader_fails_over_to_the_new_one() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    let scheduler = scheduler(&emulator);
    scheduler.lookup("t1").await.unwrap();
    emulator.set_mode(0, Mode::Down);
    emulator.set_leader(Some(1));
    scheduler.lookup("t1").await.unwrap();
    assert_eq!(
        scheduler.remembered_leader().unwrap().as_str(),
        format!("{}/", emulator.masters[1])
    );
}

#[tokio::test]
async fn failures_are_unavailable_or_bad_answers() {
    let emulator = MesosEmulator::start().await;
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    let scheduler = scheduler(&emulator);
    let cases = [
        (Mode::Down, "unavailable"),
        (Mode::ServerError, "unavailable"),
        (Mode::Garbage, "bad"),
    ];
    for (mode, expected) in cases {
        emulator.set_mode(0, mode);
        emulator.set_mode(1, mode);
        let got = scheduler.lookup("t1").await;
        let ok = match expected {
            "bad" => matches!(got, Err(SchedulerError::BadAnswer(_))),
            _ => matches!(got, Err(SchedulerError::Unavailable(_))),
        };
        assert!(ok, "{mode:?}: {got:?}");
    }
    emulator.set_mode(0, Mode::Normal);
    emulator.set_mode(1, Mode::Normal);
    emulator.set_leader(None);
    assert!(matches!(
        scheduler.lookup("t1").await,
        Err(SchedulerError::Unavailable(_))
    ));
    emulator.set_leader(Some(0));
    assert!(scheduler.lookup("t1").await.is_ok());
}

#[test]
fn master_lists_in_every_accepted_form() {
    let urls = |list: &str| -> Vec<String> {
        parse_masters(list)
            .unwrap()
            .iter()
            .map(|u| u.to_string())
            .collect()
    };
    assert_eq!(
        urls("http://m1:5050,m2:5050/"),
        ["http://m1:5050/", "http://m2:5050/"]
    );
    assert_eq!(
        urls("m1:5050, https://m2:5050"),
        ["http://m1:5050/", "https://m2:5050/"]
    );
    assert_eq!(urls("https://proxy/mesos"), ["https://proxy/mesos/"]);
    for bad in ["", " , ", "zk://z1:2181/mesos", "ftp://m1", "http://"] {
        match parse_masters(bad) {
            Err(SchedulerError::Unavailable(m)) => {
                assert!(m.starts_with(&format!("mesos-master {bad:?}: ")), "{m}")
            }
            other => panic!("{bad:?}: expected Unavailable, got {other:?}"),
        }
    }
}

#[test]
fn an_agent_without_an_ip_is_left_to_resolve() {
    let state = serde_json::json!({
        "leader": "master@10.0.0.1:5050", "pid": "master@10.0.0.1:5050",
        "slaves": [{"id": "a1", "pid": "slave(1)@agent-one.example:5051", "hostname": "agent-one.example"},
                   {"id": "a2", "pid": "slave(1)@[fd00::5]:5051", "hostname": "agent-two"}],
        "frameworks": [{"name": "fw", "tasks": [
            {"id": "t1", "name": "n1", "state": "TASK_RUNNING", "slave_id": "a1",
             "statuses": [{"state": "TASK_RUNNING", "timestamp": 20.0}, {"state": "TASK_STARTING", "timestamp": 10.0}]},
            {"id": "t2", "name": "n2", "state": "TASK_RUNNING", "slave_id": "a2",
             "statuses": [{"state": "TASK_RUNNING", "timestamp": 10.0}]}]}]
    });
    let state = parse_state("test", state.to_string().as_bytes()).unwrap();
    let (task, unresolved) = find_task(&state, "t1").unwrap();
    assert_eq!(unresolved.as_deref(), Some("agent-one.example"));
    assert!(task.addresses.is_empty());
    assert_eq!(task.started, UNIX_EPOCH + Duration::from_secs(10));
    let (task, unresolved) = find_task(&state, "t2").unwrap();
    assert_eq!(unresolved, None);
    assert_eq!(task.addresses, vec!["fd00::5".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn masters_over_tls_with_a_custom_ca() {
    let emulator = MesosEmulator::start_tls().await;
    emulator.set_leader(Some(1));
    emulator.add_task(EmulatedMesosTask::running("t1", "fw", "t1"));
    assert!(emulator.url.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem.as_deref().unwrap()).unwrap();
    let mut args = args();
    args.mesos_master = emulator.url.clone();
    args.mesos_cacert = Some(ca);
    let scheduler = MesosScheduler::from_args(&args).unwrap();
    assert_eq!(scheduler.lookup("t1").await.unwrap().name, "t1");
    // Without the CA the masters' certificates are not trusted.
    args.mesos_cacert = None;
    let untrusting = MesosScheduler::from_args(&args).unwrap();
    assert!(matches!(
        untrusting.lookup("t1").await,
        Err(SchedulerError::Unavailable(_))
    ));
}
