//! The GCP auth method in the real `strongroom` binary, against the Google
//! API emulator (tests/gcp): the production factory trusts the emulator's
//! CA only through `SSL_CERT_FILE` (as Go's Vault does), a login over HTTP
//! with configured credentials, and application default credentials from
//! `GOOGLE_APPLICATION_CREDENTIALS` or the GCE metadata server when the
//! config has none.
//!
//! The servers here get their own environment (`Server::dev_with_env`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::gcp;

use gcp::{now, Emulator, Endpoint};
use serde_json::{json, Value};
use strongroom_test::server::{Call, Kind, Server, DEV_ROOT_TOKEN};

/// A `strongroom server -dev` process with a chosen environment.
struct DevServer(Server);

impl DevServer {
    /// Starts the binary in dev mode with `env` added to a clean Google
    /// environment (no inherited ADC, metadata host or CA overrides).
    fn start(env: &[(&str, &str)]) -> DevServer {
        DevServer(Server::dev_with_env(Kind::Strongroom, env))
    }

    fn text(&self) -> String {
        self.0.output.text()
    }

    /// One call to `/v1/<path>`: (status, JSON body or null).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut call = Call::new(method, path);
        call = match token {
            Some(t) => call.token(t),
            None => call.anonymous(),
        };
        if let Some(b) = body {
            call = call.json(&b);
        }
        let reply = self.0.send(&call).await;
        (reply.status, reply.body)
    }

    async fn root(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(DEV_ROOT_TOKEN), body).await
    }
}

/// Enables gcp, writes `config`, and a role `r` for `email` in `proj-a`.
async fn setup(server: &DevServer, config: Value, email: &str) {
    let (s, v) = server
        .root("POST", "sys/auth/gcp", Some(json!({"type": "gcp"})))
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = server.root("POST", "auth/gcp/config", Some(config)).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = server
        .root(
            "POST",
            "auth/gcp/role/r",
            Some(json!({"type": "iam", "project_id": "proj-a",
                        "service_accounts": [email], "policies": "dev"})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
}

/// Logs in as a fresh service account of `emu` and returns (status, body).
async fn login(server: &DevServer, emu: &Emulator, email: &str, kid: &str) -> (u16, Value) {
    let jwt = emu.sign_login(email, kid, "vault/r", now() + 300);
    server
        .call(
            "POST",
            "auth/gcp/login",
            None,
            Some(json!({"role": "r", "jwt": jwt})),
        )
        .await
}

/// Asserts a successful login whose token works.
async fn assert_logged_in(server: &DevServer, s: u16, v: &Value, email: &str) {
    assert_eq!(s, 200, "{v}\nserver output:\n{}", server.text());
    assert_eq!(v["auth"]["metadata"]["service_account_email"], json!(email));
    assert_eq!(v["auth"]["policies"], json!(["default", "dev"]));
    let token = v["auth"]["client_token"].as_str().unwrap();
    let (s, v) = server
        .call("GET", "auth/token/lookup-self", Some(token), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["path"], "auth/gcp/login", "{v}");
}

#[tokio::test]
async fn login_with_configured_credentials_trusting_ssl_cert_file() {
    let emu = Emulator::start().await;
    let ca = emu.ca_file.to_string_lossy().into_owned();
    let server = DevServer::start(&[("SSL_CERT_FILE", &ca)]);
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    setup(
        &server,
        json!({"credentials": emu.credentials_json(), "custom_endpoint": emu.custom_endpoint()}),
        &sa.email,
    )
    .await;
    let (s, v) = server.root("GET", "auth/gcp/config", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["client_email"], json!(emu.admin.email));
    assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");

    let (s, v) = login(&server, &emu, &sa.email, &kid).await;
    assert_logged_in(&server, s, &v, &sa.email).await;
    assert_eq!(emu.count(Endpoint::Token), 1);
    assert_eq!(emu.count(Endpoint::Key), 1);
    assert_eq!(emu.count(Endpoint::ServiceAccount), 1);

    // Secrets never reach the server's output.
    let creds: Value = serde_json::from_str(&emu.credentials_json()).unwrap();
    let key_line = creds["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let text = server.text();
    assert!(!text.contains(&key_line), "the private key was logged");
    assert!(!text.contains("ya29.emu"), "an access token was logged");
}

#[tokio::test]
async fn without_the_ca_google_is_unreachable() {
    let emu = Emulator::start().await;
    let server = DevServer::start(&[]);
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    setup(
        &server,
        json!({"credentials": emu.credentials_json(), "custom_endpoint": emu.custom_endpoint()}),
        &sa.email,
    )
    .await;
    let (s, v) = login(&server, &emu, &sa.email, &kid).await;
    assert_eq!(s, 502, "an untrusted Google certificate: {v}");
    assert!(v["auth"].is_null(), "{v}");
    assert_eq!(emu.issued_tokens(), 0);
}

#[tokio::test]
async fn application_default_credentials_from_a_file() {
    let emu = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("adc.json");
    std::fs::write(&creds, emu.credentials_json()).unwrap();
    let ca = emu.ca_file.to_string_lossy().into_owned();
    let creds = creds.to_string_lossy().into_owned();
    let server = DevServer::start(&[
        ("SSL_CERT_FILE", &ca),
        ("GOOGLE_APPLICATION_CREDENTIALS", &creds),
    ]);
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    // No credentials in the config: only where Google is.
    setup(
        &server,
        json!({"custom_endpoint": emu.custom_endpoint()}),
        &sa.email,
    )
    .await;
    let (s, v) = login(&server, &emu, &sa.email, &kid).await;
    assert_logged_in(&server, s, &v, &sa.email).await;
    // The access token came from an assertion of the ADC file's account.
    let seen = emu.seen();
    let token = seen
        .iter()
        .find(|s| s.endpoint == Endpoint::Token)
        .expect("an OAuth2 call");
    let assertion = token
        .body
        .split('&')
        .find_map(|kv| kv.strip_prefix("assertion="))
        .unwrap();
    let (header, claims) = gcp::decode_jwt(assertion);
    assert_eq!(header["kid"], json!(emu.admin_kid()));
    assert_eq!(claims["iss"], json!(emu.admin.email));
    assert_eq!(claims["scope"], gcp::SCOPE);
    assert_eq!(claims["aud"], json!(format!("{}/token", emu.url)));
}

#[tokio::test]
async fn application_default_credentials_from_the_metadata_server() {
    let emu = Emulator::start().await;
    let ca = emu.ca_file.to_string_lossy().into_owned();
    let host = emu.metadata_host();
    let server = DevServer::start(&[("SSL_CERT_FILE", &ca), ("GCE_METADATA_HOST", &host)]);
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    setup(
        &server,
        json!({"custom_endpoint": emu.custom_endpoint()}),
        &sa.email,
    )
    .await;
    let (s, v) = login(&server, &emu, &sa.email, &kid).await;
    assert_logged_in(&server, s, &v, &sa.email).await;
    assert_eq!(emu.count(Endpoint::Token), 0);
    assert!(emu.count(Endpoint::Metadata) >= 1, "{:?}", emu.seen());
}
