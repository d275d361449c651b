//! Fuzz target: the schedulers' answers Gatekeeper reads (Mesos master
//! state, a Kubernetes pods page, a Nomad allocation and node, an ECS
//! `DescribeTasks` answer, the ECS agent's metadata and an AWS credentials
//! document), each read as a lookup reads it once the answer has arrived.
//! The first input byte picks the answer and the task id asked about
//! (bit 0x40 set: the ECS answers); the rest is the body.
//!
//! For any body: no panic; a body that is not JSON syntax is a bad answer; every
//! error is one line; a task found has the id asked for, a start time,
//! no duplicate address, and the name shape of its scheduler; Kubernetes
//! tasks always have an address, Mesos ones an address or an agent host
//! to resolve; a Mesos leader hint keeps the scheme asked for. An ECS task
//! found has the id part of the ARN or id asked, a family name (no `/` nor
//! `:`) and no group nor image; credentials read have a key id and a
//! secret.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use strongroom_gatekeeper_scheduler::{ecs, kubernetes, mesos, nomad, SchedulerError, Task};

/// Task ids asked about (the seeds use these).
const IDS: [&str; 4] = ["t1", "u1", "a1/web", "a1"];

/// ECS task ids asked about: a bare id and ARNs (new and old form).
const ECS_IDS: [&str; 4] = [
    "0123456789abcdef0123456789abcdef",
    "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef",
    "arn:aws:ecs:us-east-1:123456789012:task/5a3f9e2c-1b7d-4c8e-9f00-123456789abc",
    "t1",
];

/// Checks an error: one line, and a bad answer when the body is no JSON.
fn check_error(e: &SchedulerError, json: bool) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    if !json {
        assert!(matches!(e, SchedulerError::BadAnswer(_)), "{msg:?}");
    }
}

/// Checks what every found task shares.
fn check_task(task: &Task, id: &str) {
    assert_eq!(task.id, id);
    assert!(task.started >= std::time::UNIX_EPOCH);
    no_duplicates(&task.addresses);
}

fn no_duplicates(addresses: &[IpAddr]) {
    for (i, a) in addresses.iter().enumerate() {
        assert!(!addresses[..i].contains(a), "duplicate address {a}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // Whether the body is JSON syntax at all: the parsers skip unknown
    // fields without checking their strings are UTF-8, so a refusal of
    // `Value` (e.g. bytes 0xff in an ignored field) proves nothing.
    let json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if selector & 0x40 != 0 {
        ecs_answer(selector, body, json);
        return;
    }
    let id = IDS[usize::from(selector >> 2) % IDS.len()];
    match selector % 4 {
        0 => {
            let scheme = if selector & 0x80 == 0 {
                "http"
            } else {
                "https"
            };
            match mesos::read_state(body, scheme, id) {
                Ok((hint, found)) => {
                    assert!(json);
                    if let Some(url) = hint {
                        assert_eq!(url.scheme(), scheme);
                    }
                    match found {
                        Ok((task, agent_host)) => {
                            check_task(&task, id);
                            assert!(!task.addresses.is_empty() || agent_host.is_some());
                            assert!(task.group.as_ref().is_none_or(|g| !g.is_empty()));
                            assert!(task.image.as_ref().is_none_or(|i| !i.is_empty()));
                        }
                        Err(e) => check_error(&e, json),
                    }
                }
                Err(e) => check_error(&e, json),
            }
        }
        1 => match kubernetes::read_pod_page(body, id) {
            Ok((found, next)) => {
                assert!(json);
                assert!(next.is_none_or(|c| !c.is_empty()));
                match found {
                    Some(Ok(task)) => {
                        check_task(&task, id);
                        assert!(!task.addresses.is_empty());
                        // `<namespace>/<name>`, both non-empty.
                        assert!(task.name.len() >= 3 && task.name.contains('/'));
                    }
                    Some(Err(e)) => check_error(&e, json),
                    None => {}
                }
            }
            Err(e) => check_error(&e, json),
        },
        2 => match nomad::read_allocation(body, id) {
            Ok((task, _node_id)) => {
                assert!(json);
                check_task(&task, id);
                assert!(task.name.split('/').count() >= 3, "job/group/task");
            }
            Err(e) => check_error(&e, json),
        },
        _ => match nomad::read_node(body) {
            Ok(addresses) => {
                assert!(json);
                no_duplicates(&addresses);
            }
            Err(e) => check_error(&e, json),
        },
    }
});

/// The ECS answers: `DescribeTasks` (twice as likely), the agent's
/// metadata, a credentials document.
fn ecs_answer(selector: u8, body: &[u8], json: bool) {
    let id = ECS_IDS[usize::from(selector >> 2) % ECS_IDS.len()];
    match selector % 4 {
        0 | 1 => match ecs::read_describe_tasks(body, id) {
            Ok(task) => {
                assert!(json);
                let short = ecs::task_ref(id).expect("a task found for a valid id");
                assert_eq!(task.id, short);
                assert!(task.started >= std::time::UNIX_EPOCH);
                no_duplicates(&task.addresses);
                assert!(!task.name.is_empty() && !task.name.contains(['/', ':']));
                assert!(task.group.is_none() && task.image.is_none());
            }
            Err(e) => check_error(&e, json),
        },
        2 => match ecs::read_agent_metadata(body) {
            Ok(cluster) => {
                assert!(json);
                assert!(!cluster.is_empty() && !cluster.contains(char::is_whitespace));
            }
            Err(e) => check_error(&e, json),
        },
        _ => match ecs::read_credentials(body, "fuzz") {
            Ok(credentials) => {
                assert!(json);
                assert!(!credentials.access_key_id().is_empty());
                assert!(!credentials.secret_access_key().is_empty());
            }
            Err(e) => check_error(&e, json),
        },
    }
}
