//! Every parser fed garbage: random bytes, truncated answers, and valid
//! answers with each value in turn replaced by an odd one. None may panic;
//! what is not JSON is a bad answer.

use serde_json::{json, Value};

use crate::common::parse_rfc3339;
use crate::{ecs, kubernetes, mesos, nomad, SchedulerError};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % max as u64) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1e308),
        json!(-1.5),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("x"),
        json!("é\u{0}:@[]"),
        json!("0001-01-01T00:00:00Z"),
        json!([]),
        json!([null]),
        json!({}),
        json!({"": null}),
    ]
}

/// JSON pointers to every node of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Feeds `run` garbage around the valid answer `doc`; `run` must succeed
/// on `doc` itself (else this test proves nothing) and never panic.
fn fuzz(doc: Value, run: impl Fn(&[u8]) -> Result<(), SchedulerError>) {
    let valid = serde_json::to_vec(&doc).unwrap();
    run(&valid).expect("the valid answer is accepted");

    for end in 0..valid.len() {
        assert!(
            matches!(run(&valid[..end]), Err(SchedulerError::BadAnswer(_))),
            "truncated at {end}"
        );
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let bytes = rng.bytes(256);
        if serde_json::from_slice::<Value>(&bytes).is_err() {
            assert!(matches!(run(&bytes), Err(SchedulerError::BadAnswer(_))));
        }
    }
    let mut all = Vec::new();
    pointers(&doc, String::new(), &mut all);
    for pointer in all {
        for odd in odd_values() {
            let mut mutated = doc.clone();
            if pointer.is_empty() {
                mutated = odd.clone();
            } else if let Some(slot) = mutated.pointer_mut(&pointer) {
                *slot = odd.clone();
            }
            // Any outcome but a panic.
            let _ = run(&serde_json::to_vec(&mutated).unwrap());
        }
    }
}

#[test]
fn mesos_state_parser_survives_garbage() {
    let doc = json!({
        "leader": "master@10.0.0.1:5050",
        "pid": "master@10.0.0.1:5050",
        "leader_info": {"hostname": "m1", "port": 5050},
        "slaves": [{"id": "a1", "pid": "slave(1)@10.0.0.5:5051", "hostname": "agent1"}],
        "frameworks": [{
            "name": "marathon",
            "tasks": [{
                "id": "t1", "name": "web", "state": "TASK_RUNNING", "slave_id": "a1",
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1700000000.5,
                    "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "172.17.0.2"}]}]}}],
                "container": {"type": "DOCKER", "docker": {"image": "web:1"},
                    "mesos": {"image": {"docker": {"name": "web:1"}}}}
            }],
            "completed_tasks": [{"id": "t0", "state": "TASK_FINISHED"}]
        }]
    });
    fuzz(doc, |body| {
        let state = mesos::parse_state("fuzz", body)?;
        let _ = state.leader_hint("https");
        mesos::find_task(&state, "t1").map(|_| ())
    });
}

#[test]
fn kubernetes_pod_list_parser_survives_garbage() {
    let doc = json!({
        "kind": "PodList",
        "metadata": {"continue": "abc"},
        "items": [{
            "metadata": {"name": "api", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "api:1"}]},
            "status": {"phase": "Running", "startTime": "2024-05-01T10:00:00Z",
                "podIP": "10.1.0.1", "podIPs": [{"ip": "10.1.0.1"}],
                "hostIP": "192.168.0.1", "hostIPs": [{"ip": "192.168.0.1"}]}
        }]
    });
    fuzz(doc, |body| {
        let list = kubernetes::parse_pod_list(body)?;
        let mut found = Err(SchedulerError::NotFound("u1".to_owned()));
        for pod in list.pods() {
            found = kubernetes::pod_task(pod, "u1").map(|_| ());
        }
        found
    });
}

#[test]
fn nomad_parsers_survive_garbage() {
    let alloc = json!({
        "ID": "a1", "NodeID": "n1", "JobID": "shop", "TaskGroup": "web",
        "ClientStatus": "running",
        "TaskStates": {"web": {"State": "running", "StartedAt": "2024-05-01T10:00:00.5+02:00"}},
        "Job": {"TaskGroups": [{"Name": "web", "Tasks": [{"Name": "web", "Config": {"image": "nginx"}}]}]},
        "AllocatedResources": {"Shared": {"Networks": [{"IP": "10.0.0.9"}]}},
        "NetworkStatus": {"Address": "172.26.0.4"}
    });
    fuzz(alloc, |body| {
        let alloc = nomad::parse_allocation(body)?;
        let _ = nomad::alloc_task(&alloc, "a1", None);
        nomad::alloc_task(&alloc, "a1/web", Some("web")).map(|_| ())
    });
    let node = json!({
        "HTTPAddr": "10.0.0.7:4646",
        "Attributes": {"unique.network.ip-address": "10.0.0.7"}
    });
    fuzz(node, |body| {
        let node = nomad::parse_node(body)?;
        let _ = nomad::node_addresses(&node);
        Ok(())
    });
}

#[test]
fn ecs_parsers_survive_garbage() {
    let id = "0123456789abcdef0123456789abcdef";
    let answer = json!({
        "tasks": [{
            "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
            "lastStatus": "RUNNING",
            "startedAt": 1700000000.5,
            "attachments": [{"type": "ElasticNetworkInterface", "details": [
                {"name": "privateIPv4Address", "value": "10.0.0.5"}]}],
            "containers": [{"networkInterfaces": [{"privateIpv4Address": "10.0.0.5"}]}]
        }],
        "failures": [{"arn": "x", "reason": "MISSING"}]
    });
    fuzz(answer, |body| {
        ecs::read_describe_tasks(body, id).map(|_| ())
    });
    fuzz(json!({"Cluster": "prod", "Version": "v1"}), |body| {
        ecs::read_agent_metadata(body).map(|_| ())
    });
    let credentials = json!({
        "Code": "Success", "AccessKeyId": "ASIA1", "SecretAccessKey": "s",
        "Token": "t", "Expiration": "2030-01-01T00:00:00Z"
    });
    fuzz(credentials, |body| {
        ecs::read_credentials(body, "fuzz").map(|_| ())
    });
}

#[test]
fn text_fields_survive_garbage() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let text = String::from_utf8_lossy(&rng.bytes(40)).into_owned();
        let _ = parse_rfc3339(&text);
        let _ = nomad::split_task_id(&text);
        let _ = mesos::parse_masters(&text);
        let _ = ecs::task_ref(&text);
    }
    assert_eq!(
        nomad::split_task_id("abc-1/web"),
        Some(("abc-1", Some("web")))
    );
    assert_eq!(nomad::split_task_id("abc-1"), Some(("abc-1", None)));
    assert_eq!(nomad::split_task_id("abc-1/"), None);
}
