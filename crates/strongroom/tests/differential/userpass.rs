//! Differential tests for the userpass auth method: the same requests sent
//! to OpenBao and to Strongroom (both with `auth/userpass` enabled), status
//! codes and response bodies compared by value (the login's token ids
//! normalised), and the values a client relies on (user parameters read
//! back with the older names, the login's auth block and token, the
//! lockout, CIDR binding) asserted on both servers.

use crate::differences;
use strongroom_test::diff::{on_both, Allow, Pair};
use strongroom_test::server::{Call, Reply};

use serde_json::{json, Value};

/// OpenBao's answer to a wrong password or an unknown user.
const INVALID: &str = "invalid username or password";

/// A bcrypt hash (cost 5, the lowest OpenBao imports) of `imported-pw`,
/// as OpenBao's `password_hash` takes it.
const IMPORTED_HASH: &str = "$2b$05$a1PwZ03lak7tZVLfZFOvLe1blpXib467r.pVNDMSGbIBq03FfztLG";

/// The same password hashed at cost 4, below what OpenBao imports.
const CHEAP_HASH: &str = "$2b$04$a1PwZ03lak7tZVLfZFOvLekJnU5DHifTDwjH/gtsN1FlBelizvlUm";

/// Enables userpass at `auth/userpass` on both servers.
async fn enable(p: &mut Pair) {
    let r = p
        .check(
            Call::post("sys/auth/userpass", json!({"type": "userpass"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable userpass");
}

fn user(name: &str) -> String {
    format!("auth/userpass/users/{name}")
}

/// Writes user `name` with `body` on both servers, expecting 204.
async fn write_user(p: &mut Pair, name: &str, body: Value) {
    let r = p.check(Call::post(&user(name), body.clone()), &[]).await;
    p.expect_status(&r, 204, &format!("write user {name} with {body}"));
}

/// The login call, without a token.
fn login_call(name: &str, password: &str) -> Call {
    Call::post(
        &format!("auth/userpass/login/{name}"),
        json!({ "password": password }),
    )
    .anonymous()
}

fn error_is(x: &Reply, msg: &str) -> bool {
    x.body["errors"] == json!([msg])
}

/// A client's mistake OpenBao answers with 500 (a Go error returned
/// without `ErrInvalidRequest`); Strongroom answers 400 with the same
/// message.
const CLIENT_ERROR_STATUS: &[Allow] = &[Allow {
    pattern: "#status",
    reason: "OpenBao answers a missing login password and a change of a missing user with 500; \
             Strongroom with 400, as for any bad input",
}];

#[tokio::test]
async fn user_crud_list_and_read_shapes() {
    let mut p = differences::pair();
    enable(&mut p).await;
    let r = p.check(Call::list("auth/userpass/users"), &[]).await;
    p.expect_status(&r, 404, "LIST users before any exists");

    // Every token parameter, in the forms clients send; a mixed-case name.
    write_user(
        &mut p,
        "Alice",
        json!({
            "password": "pw-alice",
            "token_ttl": "20m",
            "token_max_ttl": 1800,
            "token_policies": ["a", "b"],
            "token_bound_cidrs": "127.0.0.1/32,192.168.0.0/16",
            "token_explicit_max_ttl": "1h",
            "token_no_default_policy": true,
            "token_num_uses": 3,
            "token_period": "0",
            "token_type": "service",
            "token_strictly_bind_ip": false,
        }),
    )
    .await;
    for name in ["alice", "Alice", "ALICE"] {
        let r = p.check(Call::get(&user(name)), &[]).await;
        p.expect_status(&r, 200, &format!("read {name}"));
    }
    // The older names: set both values, shown while in use.
    write_user(
        &mut p,
        "bob",
        json!({"password": "pw", "policies": "x,y", "ttl": "1h", "max_ttl": "2h", "bound_cidrs": "10.0.0.1/32"}),
    )
    .await;
    let r = p.check(Call::get(&user("bob")), &[]).await;
    on_both(&mut p, &r, "older names shown", |x| {
        let d = &x.body["data"];
        d["policies"] == json!(["x", "y"])
            && d["token_policies"] == json!(["x", "y"])
            && d["ttl"] == json!(3600)
            && d["max_ttl"] == json!(7200)
            && d["bound_cidrs"] == json!(["10.0.0.1"])
            && d.get("period").is_none()
    });
    // Both names: the new value wins and the older name stays shown; the
    // new name alone forgets it. `period` is not a userpass parameter.
    write_user(
        &mut p,
        "bob",
        json!({"max_ttl": "3h", "token_max_ttl": "4h", "token_policies": "z", "period": 30}),
    )
    .await;
    let r = p.check(Call::get(&user("bob")), &[]).await;
    on_both(&mut p, &r, "upgraded names", |x| {
        let d = &x.body["data"];
        d["max_ttl"] == json!(14400)
            && d["token_max_ttl"] == json!(14400)
            && d.get("policies").is_none()
            && d["token_period"] == json!(0)
    });
    // An update needs no password; an empty one is ignored.
    write_user(&mut p, "bob", json!({"password": "", "token_num_uses": 1})).await;
    write_user(&mut p, "carol", json!({"password_hash": IMPORTED_HASH})).await;
    let r = p.check(Call::get(&user("carol")), &[]).await;
    p.expect_status(&r, 200, "read a user created from a hash");
    let r = p.check(Call::list("auth/userpass/users"), &[]).await;
    on_both(&mut p, &r, "LIST users, lowercased and sorted", |x| {
        x.body["data"]["keys"] == json!(["alice", "bob", "carol"])
    });

    // Refusals, which change nothing.
    for (body, msg) in [
        (json!({}), "must provide either password or password_hash"),
        (json!({"password": ""}), "must provide either password or password_hash"),
        (
            json!({"password": "a", "password_hash": IMPORTED_HASH}),
            "only one of password or password_hash may be provided",
        ),
        (json!({"password_hash": "nothash"}), "password_hash is not a valid bcrypt hash"),
        (
            json!({"password_hash": CHEAP_HASH}),
            "bcrypt cost of 4 is too low, want 5 at minimum",
        ),
        (
            json!({"password_hash": IMPORTED_HASH.replace("$05$", "$13$")}),
            "bcrypt cost of 13 exceeds maximum cost of 12",
        ),
        (
            json!({"password": "a", "token_ttl": 20, "token_max_ttl": 10}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            json!({"password": "a", "token_bound_cidrs": "nonsense"}),
            "error parsing address \"nonsense\": Unable to convert \"nonsense\" to an IPv4 or IPv6 address, or a UNIX Socket",
        ),
    ] {
        let r = p.check(Call::post(&user("dave"), body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("create dave with {body}"));
        on_both(&mut p, &r, &format!("error of {body}"), |x| error_is(x, msg));
    }
    let r = p.check(Call::get(&user("dave")), &[]).await;
    p.expect_status(&r, 404, "a refused create stores nothing");
    let r = p
        .check(Call::post(&user("a%20b"), json!({"password": "x"})), &[])
        .await;
    p.expect_status(&r, 404, "a name outside OpenBao's name pattern");

    let r = p.check(Call::delete(&user("Alice")), &[]).await;
    p.expect_status(&r, 204, "delete alice");
    let r = p.check(Call::get(&user("alice")), &[]).await;
    p.expect_status(&r, 404, "read a deleted user");
    let r = p.check(Call::delete(&user("nobody")), &[]).await;
    p.expect_status(&r, 204, "delete a missing user");
    p.finish();
}

#[tokio::test]
async fn password_and_policies_endpoints() {
    let mut p = differences::pair();
    enable(&mut p).await;
    write_user(&mut p, "erin", json!({"password": "old", "policies": "p0"})).await;
    let r = p
        .check(
            Call::post(&user("erin/password"), json!({"password": "new"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "reset the password");
    let r = p.check(login_call("erin", "old"), &[]).await;
    p.expect_status(&r, 400, "the old password after a reset");
    let r = p.check(login_call("erin", "new"), &[]).await;
    p.expect_status(&r, 200, "the new password");
    let r = p
        .check(
            Call::post(
                &user("erin/password"),
                json!({"password_hash": IMPORTED_HASH}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "set the password from a bcrypt hash");
    let r = p.check(login_call("erin", "imported-pw"), &[]).await;
    p.expect_status(&r, 200, "log in with the password of an imported hash");
    for (body, msg) in [
        (json!({}), "must provide either password or password_hash"),
        (
            json!({"password": "a", "password_hash": "b"}),
            "only one of password or password_hash may be provided",
        ),
        (
            json!({"password_hash": "b"}),
            "password_hash is not a valid bcrypt hash",
        ),
    ] {
        let r = p
            .check(Call::post(&user("erin/password"), body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("password with {body}"));
        on_both(&mut p, &r, &format!("error of {body}"), |x| {
            error_is(x, msg)
        });
    }
    let r = p
        .check(
            Call::post(&user("ghost/password"), json!({"password": "x"})),
            CLIENT_ERROR_STATUS,
        )
        .await;
    on_both(&mut p, &r, "password of a missing user", |x| {
        error_is(x, "username does not exist")
            || error_is(x, "1 error occurred:\n\t* username does not exist\n\n")
    });
    let r = p.check(Call::get(&user("erin/password")), &[]).await;
    p.expect_status(&r, 405, "read of the password path");

    // Policies: parsed as OpenBao parses them; `policies` alone is
    // remembered, `token_policies` alone forgets it.
    let r = p
        .check(
            Call::post(&user("erin/policies"), json!({"policies": "B, a,a"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "set policies");
    let r = p.check(Call::get(&user("erin")), &[]).await;
    on_both(&mut p, &r, "policies", |x| {
        x.body["data"]["policies"] == json!(["a", "b"])
            && x.body["data"]["token_policies"] == json!(["a", "b"])
    });
    let r = p
        .check(
            Call::post(&user("erin/policies"), json!({"token_policies": "Z,y"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "set token_policies");
    let r = p.check(Call::get(&user("erin")), &[]).await;
    on_both(&mut p, &r, "token_policies", |x| {
        x.body["data"].get("policies").is_none()
            && x.body["data"]["token_policies"] == json!(["y", "z"])
    });
    let r = p
        .check(
            Call::post(&user("ghost/policies"), json!({"policies": "a"})),
            CLIENT_ERROR_STATUS,
        )
        .await;
    on_both(&mut p, &r, "policies of a missing user", |x| {
        error_is(x, "username does not exist")
            || error_is(x, "1 error occurred:\n\t* username does not exist\n\n")
    });
    p.finish();
}

#[tokio::test]
async fn login_success_and_failures() {
    let mut p = differences::pair();
    enable(&mut p).await;
    write_user(
        &mut p,
        "frank",
        json!({"password": "pw-frank", "token_policies": "p1,p2", "token_ttl": "10m", "token_max_ttl": "30m"}),
    )
    .await;
    // Any case of the name logs in as the lowercased user.
    let r = p.check(login_call("Frank", "pw-frank"), &[]).await;
    p.expect_status(&r, 200, "login");
    on_both(&mut p, &r, "login auth block", |x| {
        let a = &x.body["auth"];
        a["client_token"].as_str().is_some_and(|t| !t.is_empty())
            && a["policies"] == json!(["default", "p1", "p2"])
            && a["token_policies"] == json!(["default", "p1", "p2"])
            && a["metadata"] == json!({"username": "frank"})
            && a["lease_duration"] == json!(600)
            && a["renewable"] == json!(true)
            && a["token_type"] == json!("service")
            && a["orphan"] == json!(true)
            && x.body["data"].is_null()
    });
    let tokens = (
        r.0.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        r.1.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let lookup = |t: &str| Call::get("auth/token/lookup-self").token(t);
    let r = p
        .check_each(lookup(&tokens.0), lookup(&tokens.1), &[])
        .await;
    p.expect_status(&r, 200, "lookup-self with the login token");
    on_both(&mut p, &r, "login token properties", |x| {
        let d = &x.body["data"];
        d["path"] == json!("auth/userpass/login/Frank")
            && d["meta"] == json!({"username": "frank"})
            && d["display_name"] == json!("userpass-frank")
            && d["creation_ttl"] == json!(600)
    });

    // A wrong password and an unknown user get the same answer.
    for call in [
        login_call("frank", "wrong"),
        login_call("nobody", "pw-frank"),
    ] {
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 400, "bad credentials");
        on_both(&mut p, &r, "bad credentials message", |x| {
            error_is(x, INVALID)
        });
    }
    let r = p
        .check(
            Call::post("auth/userpass/login/frank", json!({})).anonymous(),
            CLIENT_ERROR_STATUS,
        )
        .await;
    on_both(&mut p, &r, "missing password", |x| {
        error_is(x, "missing password")
    });

    // token_bound_cidrs: the right password from outside is refused.
    write_user(
        &mut p,
        "fenced",
        json!({"password": "pw", "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let r = p.check(login_call("fenced", "pw"), &[]).await;
    p.expect_status(&r, 403, "login from outside token_bound_cidrs");
    let r = p.check(login_call("fenced", "bad"), &[]).await;
    p.expect_status(&r, 400, "a wrong password is checked first");
    write_user(
        &mut p,
        "fenced",
        json!({"token_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    let r = p.check(login_call("fenced", "pw"), &[]).await;
    p.expect_status(&r, 200, "login from inside token_bound_cidrs");
    on_both(&mut p, &r, "bound token", |x| {
        x.body["auth"]["metadata"] == json!({"username": "fenced"})
    });
    p.finish();
}

/// OpenBao locks a user out after five wrong passwords: even the right
/// password is then refused with 403. Unknown users are never locked (their
/// failures are not counted), and other users are unaffected.
#[tokio::test]
async fn wrong_passwords_lock_the_user_out() {
    let mut p = differences::pair();
    enable(&mut p).await;
    write_user(&mut p, "gina", json!({"password": "good"})).await;
    write_user(&mut p, "hank", json!({"password": "good"})).await;
    for i in 1..=4 {
        let r = p.check(login_call("gina", "bad"), &[]).await;
        p.expect_status(&r, 400, &format!("failed login {i}"));
    }
    let r = p.check(login_call("gina", "good"), &[]).await;
    p.expect_status(
        &r,
        200,
        "four failures do not lock, and a success forgets them",
    );
    for i in 1..=5 {
        let r = p.check(login_call("GINA", "bad"), &[]).await;
        p.expect_status(&r, 400, &format!("failed login {i} after the success"));
    }
    let r = p.check(login_call("gina", "bad"), &[]).await;
    p.expect_status(&r, 403, "sixth failed login");
    on_both(&mut p, &r, "locked out", |x| {
        error_is(x, "permission denied")
    });
    let r = p.check(login_call("gina", "good"), &[]).await;
    p.expect_status(&r, 403, "the right password of a locked-out user");
    let r = p.check(login_call("hank", "good"), &[]).await;
    p.expect_status(&r, 200, "another user is not locked out");
    for i in 1..=7 {
        let r = p.check(login_call("ghost", "bad"), &[]).await;
        p.expect_status(&r, 400, &format!("unknown user, login {i}"));
    }
    p.finish();
}
