//! The userpass auth method in the real `strongroom` binary: a burst of
//! concurrent logins (right passwords, unknown users, wrong passwords) is
//! answered in full while other requests are served, the lockout counts
//! exactly under that concurrency, and no password reaches the server's
//! log. The request-by-request behaviour is compared with OpenBao in
//! `differential/userpass.rs`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use futures::future::join_all;
use serde_json::json;
use strongroom_test::server::{Call, Kind, Server};

fn login(name: &str, password: &str) -> Call {
    Call::post(
        &format!("auth/userpass/login/{name}"),
        json!({ "password": password }),
    )
    .anonymous()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_burst_is_answered_in_full_and_locks_out_exactly() {
    let server = Server::dev(Kind::Strongroom);
    let r = server
        .send(&Call::post(
            "sys/auth/userpass",
            json!({"type": "userpass"}),
        ))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    for name in ["alice", "bob"] {
        let r = server
            .send(&Call::post(
                &format!("auth/userpass/users/{name}"),
                json!({"password": format!("{name}-Secret-Pw"), "token_policies": "default"}),
            ))
            .await;
        assert_eq!(r.status, 204, "{r:?}");
    }

    // 16 right passwords, 16 unknown users, 16 wrong passwords for bob,
    // and health checks, all at once.
    let mut calls = Vec::new();
    for i in 0..16 {
        calls.push(("ok", login("alice", "alice-Secret-Pw")));
        calls.push(("unknown", login(&format!("ghost{i}"), "Ghost-Secret-Pw")));
        calls.push(("wrong", login("bob", "Wrong-Secret-Pw")));
        calls.push(("health", Call::get("sys/health").anonymous()));
    }
    let replies = join_all(calls.iter().map(|(_, c)| server.send(c))).await;
    let mut wrong = (0, 0);
    for ((kind, _), r) in calls.iter().zip(&replies) {
        match *kind {
            "ok" => {
                assert_eq!(r.status, 200, "{r:?}");
                assert_eq!(r.body["auth"]["metadata"]["username"], "alice");
            }
            "unknown" => {
                assert_eq!(r.status, 400, "{r:?}");
                assert_eq!(r.errors(), ["invalid username or password"]);
            }
            "wrong" => match r.status {
                400 => wrong.0 += 1,
                403 => wrong.1 += 1,
                _ => panic!("wrong password: {r:?}"),
            },
            _ => assert_eq!(r.status, 200, "{r:?}"),
        }
    }
    // Exactly five failures are counted; the rest find bob locked out.
    assert_eq!(wrong, (5, 11));
    let r = server.send(&login("bob", "bob-Secret-Pw")).await;
    assert_eq!(r.status, 403, "bob is locked out: {r:?}");
    let r = server.send(&login("alice", "alice-Secret-Pw")).await;
    assert_eq!(r.status, 200, "alice is not: {r:?}");

    let log = server.output.text();
    for pw in [
        "alice-Secret-Pw",
        "bob-Secret-Pw",
        "Ghost-Secret-Pw",
        "Wrong-Secret-Pw",
    ] {
        assert!(!log.contains(pw), "the log holds a password:\n{log}");
    }
}
