//! Differential tests for the Kubernetes auth method: the same requests sent
//! to OpenBao and to Strongroom (both with `auth/kubernetes` enabled and
//! configured against ONE fake Kubernetes API server answering TokenReviews
//! over HTTPS), status codes and response bodies compared by value, and the values a
//! client relies on (config and roles read back, the login's auth block,
//! refusals) asserted on both servers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::kube;

use std::sync::Arc;

use crate::differences;
use kube::{legacy_claims, now, projected_claims, sa_uid, FakeKube, Mode, RsaSigner};
use serde_json::{json, Value};
use strongroom_test::diff::{on_both, same_value, Pair};
use strongroom_test::server::{errors_mention, target, Call, Kind, Reply};

/// The reviewer JWT both servers send to the fake API server.
const REVIEWER: &str = "reviewer-jwt-for-the-differential-tests";

/// Whether Strongroom (not OpenBao twice) is on the second side: the
/// deliberate differences only apply then.
fn strongroom_side() -> bool {
    target() == Kind::Strongroom
}

/// A string at JSON pointer `ptr` of each reply (empty when absent).
fn both(r: &(Reply, Reply), ptr: &str) -> (String, String) {
    let get = |x: &Reply| {
        x.body
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (get(&r.0), get(&r.1))
}

/// A refusal: a 4xx/5xx with an `errors` list and no token.
fn refused(x: &Reply) -> bool {
    x.status >= 400 && x.body["errors"].is_array() && x.body["auth"].is_null()
}

/// Enables `auth/kubernetes` on both servers.
async fn enable(p: &mut Pair) {
    let r = p
        .check(
            Call::post("sys/auth/kubernetes", json!({"type": "kubernetes"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable kubernetes");
}

/// The config body pointing at `kube` with the reviewer JWT.
fn config_body(kube: &FakeKube) -> Value {
    json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
           "token_reviewer_jwt": REVIEWER})
}

/// Enables the method and writes the config pointing at `kube` on both.
async fn configure(p: &mut Pair, kube: &FakeKube) {
    enable(p).await;
    kube.require_reviewer(REVIEWER);
    let r = p
        .check(Call::post("auth/kubernetes/config", config_body(kube)), &[])
        .await;
    p.expect_status(&r, 204, "write config");
}

/// Writes role `name` with `body` on both servers, expecting 204.
async fn write_role(p: &mut Pair, name: &str, body: Value) {
    let r = p
        .check(
            Call::post(&format!("auth/kubernetes/role/{name}"), body.clone()),
            &[],
        )
        .await;
    p.expect_status(&r, 204, &format!("write role {name} with {body}"));
}

/// The login call for `role` and `jwt`, without a token.
fn login_call(role: &str, jwt: &str) -> Call {
    Call::post("auth/kubernetes/login", json!({"role": role, "jwt": jwt})).anonymous()
}

/// Sends `call` to both servers for a documented, deliberate difference
/// (a root-level shape difference an `Allow` cannot express): OpenBao
/// must answer `bao_status`; Strongroom (when it is the second side) must
/// answer `sr_status` with an error naming `sr_msg`, and nothing else is
/// compared. `why` names the reason.
async fn deliberate(
    p: &mut Pair,
    call: Call,
    bao_status: u16,
    sr_status: u16,
    sr_msg: &str,
    why: &str,
) {
    let a = p.bao.send(&call).await;
    let b = p.sr.send(&call).await;
    p.expect(
        a.status == bao_status,
        format!("{why}: openbao answered {} {}", a.status, a.body),
    );
    let (want, msg_ok) = if strongroom_side() {
        (sr_status, errors_mention(&b, sr_msg))
    } else {
        (bao_status, true)
    };
    p.expect(
        b.status == want && msg_ok,
        format!(
            "{why}: {} answered {} {}",
            p.sr.kind.label(),
            b.status,
            b.body
        ),
    );
}

#[tokio::test]
async fn config_write_and_read() {
    let kube = FakeKube::start(Arc::new(RsaSigner::generate())).await;
    let mut p = differences::pair();
    enable(&mut p).await;
    let r = p.check(Call::get("auth/kubernetes/config"), &[]).await;
    on_both(&mut p, &r, "read config before any write", |x| {
        x.status == 404 || (x.status == 200 && x.body["data"].is_null())
    });

    // No host: refused on both.
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/config",
                json!({"kubernetes_ca_cert": kube.ca_pem}),
            ),
            &[],
        )
        .await;
    on_both(&mut p, &r, "config without a host", |x| {
        x.status == 400 && errors_mention(x, "no host provided")
    });

    let r = p
        .check(
            Call::post("auth/kubernetes/config", config_body(&kube)),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write config");
    let r = p.check(Call::get("auth/kubernetes/config"), &[]).await;
    p.expect_status(&r, 200, "read config");
    for ptr in [
        "/data/kubernetes_host",
        "/data/kubernetes_ca_cert",
        "/data/pem_keys",
        "/data/issuer",
        "/data/disable_iss_validation",
        "/data/disable_local_ca_jwt",
    ] {
        same_value(&mut p, &r, ptr, "config read back");
    }
    on_both(
        &mut p,
        &r,
        "config read never returns the reviewer JWT",
        |x| {
            x.body["data"].get("token_reviewer_jwt").is_none()
                && !x.body.to_string().contains(REVIEWER)
        },
    );
    on_both(&mut p, &r, "config read carries the written host", |x| {
        x.body["data"]["kubernetes_host"] == json!(kube.url)
    });

    // A host:port without a scheme is accepted and read back as given.
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/config",
                json!({"kubernetes_host": "127.0.0.1:6443", "kubernetes_ca_cert": kube.ca_pem}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "config with host:port");
    let r = p.check(Call::get("auth/kubernetes/config"), &[]).await;
    same_value(&mut p, &r, "/data/kubernetes_host", "host:port read back");

    // A CA that does not parse is stored on both (tools write
    // placeholders); Strongroom adds a warning naming it, and a login then
    // fails on both, on Strongroom with a message naming the setting.
    let bad_ca = json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": "not a PEM",
                        "token_reviewer_jwt": REVIEWER});
    let call = Call::post("auth/kubernetes/config", bad_ca);
    let a = p.bao.send(&call).await;
    let b = p.sr.send(&call).await;
    p.expect(
        a.status == 204,
        format!("openbao stores an unparsable CA: {} {}", a.status, a.body),
    );
    let warned = |x: &Reply| {
        x.status == 200
            && x.body["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|w| w.as_str().is_some_and(|w| w.contains("kubernetes_ca_cert")))
            })
    };
    p.expect(
        if strongroom_side() {
            warned(&b)
        } else {
            b.status == 204
        },
        format!(
            "{}: {}: {} {}",
            differences::KUBERNETES_INVALID_CA,
            p.sr.kind.label(),
            b.status,
            b.body
        ),
    );
    let r = p.check(Call::get("auth/kubernetes/config"), &[]).await;
    same_value(
        &mut p,
        &r,
        "/data/kubernetes_ca_cert",
        "unparsable CA read back",
    );
    on_both(&mut p, &r, "unparsable CA stored as given", |x| {
        x.body["data"]["kubernetes_ca_cert"] == json!("not a PEM")
    });
    write_role(
        &mut p,
        "ca",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "default"}),
    )
    .await;
    let signer = RsaSigner::generate();
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let a = p.bao.send(&login_call("ca", &jwt)).await;
    let b = p.sr.send(&login_call("ca", &jwt)).await;
    p.expect(
        refused(&a),
        format!(
            "openbao refuses a login with an unparsable CA: {} {}",
            a.status, a.body
        ),
    );
    p.expect(
        refused(&b)
            && (!strongroom_side()
                || (b.status == 400 && errors_mention(&b, "kubernetes_ca_cert does not parse"))),
        format!(
            "{}: login with an unparsable CA: {} {}",
            p.sr.kind.label(),
            b.status,
            b.body
        ),
    );
    p.finish();
}

#[tokio::test]
async fn role_crud_and_list() {
    let mut p = differences::pair();
    enable(&mut p).await;
    let r = p.check(Call::list("auth/kubernetes/role"), &[]).await;
    p.expect_status(&r, 404, "LIST role before any exists");

    write_role(
        &mut p,
        "full",
        json!({"bound_service_account_names": ["app", "web"],
               "bound_service_account_namespaces": "default,prod",
               "audience": "vault", "alias_name_source": "serviceaccount_name",
               "token_policies": "p1,p2", "token_ttl": "1h", "token_max_ttl": "2h",
               "token_num_uses": 3, "token_bound_cidrs": ["127.0.0.1/32"]}),
    )
    .await;
    write_role(
        &mut p,
        "legacy",
        json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "*",
               "policies": ["x"], "ttl": 600, "max_ttl": "20m", "period": "5m"}),
    )
    .await;
    for name in ["full", "legacy"] {
        let r = p
            .check(Call::get(&format!("auth/kubernetes/role/{name}")), &[])
            .await;
        p.expect_status(&r, 200, &format!("read role {name}"));
        let obj = r.0.body["data"].as_object().cloned().unwrap_or_default();
        for key in obj.keys() {
            same_value(&mut p, &r, &format!("/data/{key}"), &format!("role {name}"));
        }
    }
    let r = p.check(Call::get("auth/kubernetes/role/full"), &[]).await;
    on_both(&mut p, &r, "role full read back", |x| {
        let d = &x.body["data"];
        d["bound_service_account_names"] == json!(["app", "web"])
            && d["bound_service_account_namespaces"] == json!(["default", "prod"])
            && d["token_policies"] == json!(["p1", "p2"])
            && d["token_ttl"] == json!(3600)
            && d["token_max_ttl"] == json!(7200)
            && d["audience"] == json!("vault")
    });

    // An update changes only what it names.
    write_role(&mut p, "full", json!({"token_ttl": "30m"})).await;
    let r = p.check(Call::get("auth/kubernetes/role/full"), &[]).await;
    on_both(&mut p, &r, "partial update", |x| {
        x.body["data"]["token_ttl"] == json!(1800)
            && x.body["data"]["token_policies"] == json!(["p1", "p2"])
    });

    let r = p.check(Call::list("auth/kubernetes/role"), &[]).await;
    p.expect_status(&r, 200, "LIST role");
    same_value(&mut p, &r, "/data/keys", "LIST role");
    on_both(&mut p, &r, "LIST role keys", |x| {
        x.body["data"]["keys"] == json!(["full", "legacy"])
    });
    let r = p
        .check(Call::get("auth/kubernetes/role?list=true"), &[])
        .await;
    same_value(&mut p, &r, "/data/keys", "GET role?list=true");

    // The seed's `roles` list: Strongroom only when OpenBao lacks it.
    let bao = p.bao.send(&Call::list("auth/kubernetes/roles")).await;
    let sr = p.sr.send(&Call::list("auth/kubernetes/roles")).await;
    if bao.status == 200 {
        p.expect(
            sr.status == 200 && sr.body["data"] == bao.body["data"],
            format!(
                "LIST roles: openbao {} {}, strongroom {} {}",
                bao.status, bao.body, sr.status, sr.body
            ),
        );
    } else if strongroom_side() {
        p.expect(
            sr.status == 200 && sr.body["data"]["keys"] == json!(["full", "legacy"]),
            format!(
                "LIST roles on strongroom (the seed's path): {} {}",
                sr.status, sr.body
            ),
        );
    }

    // Missing namespaces or names on a new role.
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/role/bad",
                json!({"bound_service_account_names": "a"}),
            ),
            &[],
        )
        .await;
    on_both(&mut p, &r, "role without namespaces", |x| {
        x.status == 400
            && errors_mention(x, "\"bound_service_account_namespaces\" can not be empty")
    });
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/role/bad",
                json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "x",
                       "alias_name_source": "pod"}),
            ),
            &[],
        )
        .await;
    on_both(&mut p, &r, "bad alias_name_source", |x| x.status == 400);
    let r = p.check(Call::get("auth/kubernetes/role/bad"), &[]).await;
    p.expect_status(&r, 404, "refused role not stored");

    // Deliberate difference: `*` on both sides is refused on Strongroom.
    deliberate(
        &mut p,
        Call::post(
            "auth/kubernetes/role/star",
            json!({"bound_service_account_names": "*",
                   "bound_service_account_namespaces": "*"}),
        ),
        204,
        400,
        "can not both be \"*\"",
        differences::KUBERNETES_STAR_ROLE,
    )
    .await;

    let r = p
        .check(Call::delete("auth/kubernetes/role/legacy"), &[])
        .await;
    p.expect_status(&r, 204, "delete role");
    let r = p.check(Call::get("auth/kubernetes/role/legacy"), &[]).await;
    p.expect_status(&r, 404, "read deleted role");
    let r = p
        .check(Call::delete("auth/kubernetes/role/none"), &[])
        .await;
    p.expect_status(&r, 204, "delete a role that does not exist");
    p.finish();
}

#[tokio::test]
async fn login_via_token_review() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    configure(&mut p, &kube).await;
    write_role(
        &mut p,
        "app",
        json!({"bound_service_account_names": "app,web",
               "bound_service_account_namespaces": ["default", "prod"],
               "token_policies": "read-app", "token_ttl": "1h"}),
    )
    .await;

    let legacy = signer.sign(&legacy_claims("default", "app"));
    let r = p.check(login_call("app", &legacy), &[]).await;
    p.expect_status(&r, 200, "legacy login");
    for ptr in [
        "/auth/policies",
        "/auth/token_policies",
        "/auth/metadata",
        "/auth/lease_duration",
        "/auth/renewable",
        "/auth/token_type",
        "/auth/orphan",
    ] {
        same_value(&mut p, &r, ptr, "legacy login auth block");
    }
    on_both(&mut p, &r, "legacy login auth block", |x| {
        let a = &x.body["auth"];
        a["client_token"].as_str().is_some_and(|t| !t.is_empty())
            && a["policies"] == json!(["default", "read-app"])
            && a["lease_duration"] == json!(3600)
            && a["renewable"] == json!(true)
            && a["metadata"]
                == json!({"role": "app", "service_account_name": "app",
                          "service_account_namespace": "default",
                          "service_account_secret_name": "app-token-abcde",
                          "service_account_uid": sa_uid("default", "app")})
    });
    // Each server sent its TokenReview with the reviewer JWT.
    let seen = kube.seen();
    p.expect(
        seen.len() == 2
            && seen.iter().all(|s| {
                s.authorization.as_deref() == Some(&format!("Bearer {REVIEWER}"))
                    && s.body["spec"]["token"] == json!(legacy)
            }),
        format!("two TokenReviews with the reviewer JWT: {seen:?}"),
    );
    // The token works and carries the metadata.
    let tok = both(&r, "/auth/client_token");
    let r = p
        .check_each(
            Call::get("auth/token/lookup-self").token(&tok.0),
            Call::get("auth/token/lookup-self").token(&tok.1),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "lookup-self with the login token");
    same_value(&mut p, &r, "/data/meta", "token meta");
    same_value(&mut p, &r, "/data/path", "token path");

    // A projected token: no secret name.
    let projected = signer.sign(&projected_claims("prod", "web", "vault", now() + 600));
    let r = p.check(login_call("app", &projected), &[]).await;
    p.expect_status(&r, 200, "projected login");
    same_value(&mut p, &r, "/auth/metadata", "projected login metadata");
    on_both(&mut p, &r, "projected login metadata", |x| {
        let m = &x.body["auth"]["metadata"];
        m["service_account_namespace"] == json!("prod")
            && m["service_account_name"] == json!("web")
            && m["service_account_secret_name"] == json!("")
            && m["service_account_uid"] == json!(sa_uid("prod", "web"))
    });

    // A role without TTLs: the mount's default lease.
    write_role(
        &mut p,
        "plain",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "default"}),
    )
    .await;
    let r = p.check(login_call("plain", &legacy), &[]).await;
    p.expect_status(&r, 200, "login to a role without TTLs");
    same_value(&mut p, &r, "/auth/lease_duration", "default lease");
    same_value(&mut p, &r, "/auth/policies", "default policies");
    p.finish();
}

#[tokio::test]
async fn login_refusals() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    configure(&mut p, &kube).await;
    write_role(
        &mut p,
        "app",
        json!({"bound_service_account_names": "app",
               "bound_service_account_namespaces": "default"}),
    )
    .await;
    write_role(
        &mut p,
        "aud",
        json!({"bound_service_account_names": "web", "bound_service_account_namespaces": "prod",
               "audience": "vault"}),
    )
    .await;

    let cases: Vec<(&str, &str, String)> = vec![
        (
            "wrong namespace",
            "app",
            signer.sign(&legacy_claims("other", "app")),
        ),
        (
            "wrong service account name",
            "app",
            signer.sign(&legacy_claims("default", "db")),
        ),
        (
            "wrong audience",
            "aud",
            signer.sign(&projected_claims("prod", "web", "other", now() + 600)),
        ),
        (
            "expired projected token",
            "aud",
            signer.sign(&projected_claims("prod", "web", "vault", now() - 3600)),
        ),
        ("not a JWT", "app", "not-a-jwt".to_string()),
        ("three garbage segments", "app", "a.b.c".to_string()),
        (
            "signed by another key",
            "app",
            RsaSigner::generate().sign(&legacy_claims("default", "app")),
        ),
        (
            "unknown role",
            "nope",
            signer.sign(&legacy_claims("default", "app")),
        ),
    ];
    for (what, role, jwt) in cases {
        let r = p.check(login_call(role, &jwt), &[]).await;
        same_value(&mut p, &r, "/errors", what);
        on_both(&mut p, &r, what, refused);
    }
    let r = p
        .check(
            Call::post("auth/kubernetes/login", json!({"role": "app"})).anonymous(),
            &[],
        )
        .await;
    same_value(&mut p, &r, "/errors", "missing jwt");
    on_both(&mut p, &r, "missing jwt", refused);
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let r = p
        .check(
            Call::post("auth/kubernetes/login", json!({"jwt": jwt})).anonymous(),
            &[],
        )
        .await;
    same_value(&mut p, &r, "/errors", "missing role");
    on_both(&mut p, &r, "missing role", refused);
    p.finish();
}

#[tokio::test]
async fn login_follows_the_token_review() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    configure(&mut p, &kube).await;
    write_role(
        &mut p,
        "app",
        json!({"bound_service_account_names": "app",
               "bound_service_account_namespaces": "default"}),
    )
    .await;
    let jwt = signer.sign(&legacy_claims("default", "app"));

    // The service account's token was invalidated.
    let mut claims = legacy_claims("default", "app");
    claims["jti"] = json!("revoked");
    let revoked = signer.sign(&claims);
    kube.revoke(&revoked);
    let r = p.check(login_call("app", &revoked), &[]).await;
    same_value(&mut p, &r, "/errors", "review unauthenticated");
    on_both(&mut p, &r, "review unauthenticated", refused);

    for (what, mode) in [
        (
            "review 401",
            Mode::Fixed(
                401,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
                .to_string(),
            ),
        ),
        ("review 500", Mode::Fixed(500, "internal error".into())),
        (
            "review garbage",
            Mode::Fixed(201, "this is not json".into()),
        ),
    ] {
        kube.set_mode(mode);
        let r = p.check(login_call("app", &jwt), &[]).await;
        same_value(&mut p, &r, "/errors", what);
        on_both(&mut p, &r, what, refused);
    }
    kube.set_mode(Mode::Review);
    let r = p.check(login_call("app", &jwt), &[]).await;
    p.expect_status(&r, 200, "login once the API server answers again");

    // The API server refuses the reviewer's credentials.
    kube.require_reviewer("another-reviewer");
    let r = p.check(login_call("app", &jwt), &[]).await;
    same_value(&mut p, &r, "/errors", "reviewer JWT refused");
    on_both(&mut p, &r, "reviewer JWT refused", refused);
    p.finish();
}

#[tokio::test]
async fn kubernetes_down() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    enable(&mut p).await;
    let down = kube::closed_url().await;
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/config",
                json!({"kubernetes_host": down, "kubernetes_ca_cert": kube.ca_pem,
                       "token_reviewer_jwt": REVIEWER}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "config pointing at a closed port");
    write_role(
        &mut p,
        "app",
        json!({"bound_service_account_names": "app",
               "bound_service_account_namespaces": "default"}),
    )
    .await;
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let r = p
        .check(login_call("app", &jwt), differences::KUBERNETES_DOWN)
        .await;
    on_both(&mut p, &r, "Kubernetes down", refused);
    if strongroom_side() {
        p.expect(
            r.1.status == 502,
            format!(
                "strongroom: Kubernetes down is a 502: {} {}",
                r.1.status, r.1.body
            ),
        );
    }
    on_both(&mut p, &r, "no secret in the error", |x| {
        !x.body.to_string().contains(REVIEWER) && !x.body.to_string().contains(&jwt)
    });
    p.finish();
}

#[tokio::test]
async fn pem_keys_login() {
    // Both servers are configured with the signer's key (and a working
    // API server): the signature is checked locally and the TokenReview is
    // always sent, so the same logins succeed and fail on both.
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    enable(&mut p).await;
    kube.require_reviewer(REVIEWER);
    let r = p
        .check(
            Call::post(
                "auth/kubernetes/config",
                json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
                       "token_reviewer_jwt": REVIEWER, "pem_keys": [signer.public_pem()]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "config with pem_keys");
    let r = p.check(Call::get("auth/kubernetes/config"), &[]).await;
    same_value(&mut p, &r, "/data/pem_keys", "pem_keys read back");
    write_role(
        &mut p,
        "app",
        json!({"bound_service_account_names": "app",
               "bound_service_account_namespaces": "default"}),
    )
    .await;
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let r = p.check(login_call("app", &jwt), &[]).await;
    p.expect_status(&r, 200, "login with pem_keys configured");
    same_value(&mut p, &r, "/auth/metadata", "pem_keys login metadata");
    // Both servers checked the signature and then asked Kubernetes.
    let reviews = |t: &str| {
        kube.seen()
            .iter()
            .filter(|s| s.body["spec"]["token"] == json!(t))
            .count()
    };
    p.expect(
        reviews(&jwt) == 2,
        format!(
            "both servers send the TokenReview with pem_keys set: {} reviews",
            reviews(&jwt)
        ),
    );
    // A token signed by another key is refused before any review.
    let bad = RsaSigner::generate().sign(&legacy_claims("default", "app"));
    let r = p.check(login_call("app", &bad), &[]).await;
    on_both(&mut p, &r, "pem_keys login with a foreign key", refused);
    p.expect(
        reviews(&bad) == 0,
        format!(
            "a foreign signature is never reviewed: {} reviews",
            reviews(&bad)
        ),
    );
    // The service account was deleted: its legacy token is still validly
    // signed (it never expires), but the review refuses it, and so do both.
    let mut claims = legacy_claims("default", "app");
    claims["jti"] = json!("deleted-service-account");
    let deleted = signer.sign(&claims);
    kube.revoke(&deleted);
    let r = p.check(login_call("app", &deleted), &[]).await;
    same_value(
        &mut p,
        &r,
        "/errors",
        "pem_keys login of a deleted service account",
    );
    on_both(
        &mut p,
        &r,
        "pem_keys login of a deleted service account",
        refused,
    );
    p.finish();
}

#[tokio::test]
async fn wrapped_login() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let mut p = differences::pair();
    configure(&mut p, &kube).await;
    write_role(
        &mut p,
        "w",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "default",
               "token_ttl": "10m", "token_policies": "default"}),
    )
    .await;
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let r = p
        .check(login_call("w", &jwt).header("X-Vault-Wrap-TTL", "2m"), &[])
        .await;
    p.expect_status(&r, 200, "wrapped login");
    on_both(&mut p, &r, "wrap_info of a login", |x| {
        let w = &x.body["wrap_info"];
        w["token"].as_str().is_some_and(|t| !t.is_empty())
            && w["ttl"] == json!(120)
            && w["creation_path"] == json!("auth/kubernetes/login")
            && w["wrapped_accessor"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            && x.body["auth"].is_null()
    });
    let wrapped_acc = both(&r, "/wrap_info/wrapped_accessor");
    let wt = both(&r, "/wrap_info/token");
    let unwrap = |t: &str| Call::post("sys/wrapping/unwrap", json!({ "token": t }));
    let r = p.check_each(unwrap(&wt.0), unwrap(&wt.1), &[]).await;
    p.expect_status(&r, 200, "unwrap the login");
    same_value(&mut p, &r, "/auth/metadata", "unwrapped metadata");
    on_both(&mut p, &r, "unwrapped auth block", |x| {
        let a = &x.body["auth"];
        a["client_token"].is_string()
            && a["policies"] == json!(["default"])
            && a["metadata"]["service_account_name"] == json!("app")
            && a["lease_duration"] == json!(600)
    });
    p.expect(
        both(&r, "/auth/accessor") == wrapped_acc,
        "wrapped_accessor is the accessor of the unwrapped token",
    );
    let r = p.check_each(unwrap(&wt.0), unwrap(&wt.1), &[]).await;
    p.expect_status(&r, 400, "unwrap twice");
    p.finish();
}
