//! Races at 1,000-way concurrency against a durable (redb) server, each
//! with an exact count: single-use and n-use secret ids, the AppRole
//! lockout threshold, KV v2 check-and-set, token use counts and
//! unwrapping.
//!
//! The AppRole races run against Strongroom only: OpenBao's lockout check
//! and count are not atomic, so its counts vary. The others follow
//! `STRONGROOM_TEST_TARGET`.
//!
//! Each request gets its own HTTP/1.1 connection, opened beforehand; the
//! requests are released together by a barrier, so all 1,000 are in
//! flight at once. One race runs at a time in this process, so a server
//! never holds more than ~1,000 of the test's connections.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use strongroom_test::server::{target, Call, Config, Kind, Reply, Server, Storage};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Mutex, Semaphore};

/// Requests in flight at once in each race.
const RACERS: usize = 1000;
/// Connections being opened at once while a race is set up (the listen
/// backlog is not the thing under test).
const CONNECTING: usize = 64;
/// How long a whole race may take before the test fails: a failsafe, not
/// a synchronisation.
const RACE_LIMIT: Duration = Duration::from_secs(60);
/// OpenBao's default user lockout threshold.
const LOCKOUT_THRESHOLD: usize = 5;

/// One race at a time in this process.
static ONE_RACE: Mutex<()> = Mutex::const_new(());

/// Raises this process's file-descriptor soft limit to its hard limit, once
/// (servers started afterwards inherit it).
fn raise_fd_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            if soft < hard {
                limit.current = Some(hard);
                setrlimit(Resource::Nofile, limit).expect("raise the fd soft limit");
            }
        }
        let now = getrlimit(Resource::Nofile).current;
        assert!(
            now.is_none_or(|n| n >= 2 * RACERS as u64 + 100),
            "the fd limit {now:?} is too low for {RACERS} connections"
        );
    });
}

/// A durable `kind` server (redb; raft for OpenBao), initialised and
/// unsealed, its data in `dir`.
async fn durable_server(kind: Kind, dir: &std::path::Path) -> Server {
    raise_fd_limit();
    let mut cfg = Config::inmem(dir);
    cfg.storage = Storage::Durable(dir.to_path_buf());
    let mut server = Server::with_config(kind, &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    wait_active(&server).await;
    server
}

/// Waits until the unsealed `server` reports itself active in
/// `sys/health` (at once for Strongroom; OpenBao's raft storage elects its
/// leader first).
pub(crate) async fn wait_active(server: &Server) {
    wait_for_200(server, Call::get("sys/health").anonymous()).await;
}

/// Sends `call` until it is answered 200, for at most 30 s: the wait for a
/// state OpenBao reaches in the background (Strongroom is there at once).
async fn wait_for_200(server: &Server, call: Call) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.send(&call).await;
        if r.status == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {}: still {r:?}",
            server.kind.label(),
            call.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `call` as root, asserting a 2xx.
async fn setup(server: &Server, call: Call) -> Reply {
    let describe = call.describe();
    let r = server.send(&call).await;
    assert!(r.status < 300, "{describe}: {r:?}");
    r
}

/// The answers to a race, counted by status and first error message.
#[derive(Debug, Default)]
struct Tally {
    answers: Vec<Reply>,
}

impl Tally {
    /// How many answers have this status.
    fn status(&self, status: u16) -> usize {
        self.answers.iter().filter(|r| r.status == status).count()
    }

    /// How many answers have this status and exactly this error.
    fn error(&self, status: u16, message: &str) -> usize {
        self.answers
            .iter()
            .filter(|r| r.status == status && r.body["errors"] == json!([message]))
            .count()
    }

    /// The answers with this status.
    fn with_status(&self, status: u16) -> impl Iterator<Item = (usize, &Reply)> {
        self.answers
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.status == status)
    }

    /// A summary for failure messages: status and errors -> count.
    fn summary(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in &self.answers {
            *m.entry(format!("{} {}", r.status, r.body["errors"]))
                .or_insert(0) += 1;
        }
        m
    }
}

/// Sends every call to `server` at once, each on its own connection, and
/// returns the answers in call order. The connections are all open before
/// the first request goes out.
async fn race(server: &Server, calls: Vec<Call>) -> Tally {
    let _one = ONE_RACE.lock().await;
    let host = server
        .addr
        .strip_prefix("http://")
        .expect("races run over plain HTTP")
        .to_string();
    let gate = Arc::new(Barrier::new(calls.len()));
    let connecting = Arc::new(Semaphore::new(CONNECTING));
    let mut tasks = Vec::with_capacity(calls.len());
    for call in calls {
        let request = to_request(server, &host, &call);
        let (host, gate, connecting) = (host.clone(), gate.clone(), connecting.clone());
        tasks.push(tokio::spawn(async move {
            let sender = {
                let _permit = connecting.acquire().await.expect("semaphore open");
                connect(&host).await
            };
            // Every task reaches the barrier, connected or not, so that a
            // failed connection fails the test instead of hanging it.
            gate.wait().await;
            let mut sender = sender?;
            let resp = sender
                .send_request(request)
                .await
                .map_err(|e| format!("{}: {e}", call.describe()))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{}: body: {e}", call.describe()))?
                .to_bytes();
            let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            };
            Ok::<_, String>(Reply { status, body })
        }));
    }
    let all = async {
        let mut answers = Vec::with_capacity(tasks.len());
        for t in tasks {
            match t.await.expect("race task") {
                Ok(r) => answers.push(r),
                Err(e) => panic!(
                    "race request failed: {e}\nserver output:\n{}",
                    server.output.text()
                ),
            }
        }
        answers
    };
    let answers = tokio::time::timeout(RACE_LIMIT, all)
        .await
        .unwrap_or_else(|_| panic!("the race did not finish within {RACE_LIMIT:?}"));
    Tally { answers }
}

/// An open HTTP/1.1 connection to `host`, ready for one request.
async fn connect(
    host: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(host)
        .await
        .map_err(|e| format!("connect {host}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {host}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// `call` as a request to `host`, with the server's root token where the
/// call asks for it.
fn to_request(server: &Server, host: &str, call: &Call) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder()
        .method(call.method.as_str())
        .uri(format!("/v1/{}", call.path))
        .header(http::header::HOST, host);
    match &call.auth {
        strongroom_test::server::Auth::Root => {
            if let Some(t) = &server.root_token {
                b = b.header("X-Vault-Token", t);
            }
        }
        strongroom_test::server::Auth::Token(t) => b = b.header("X-Vault-Token", t),
        _ => {}
    }
    for (k, v) in &call.headers {
        b = b.header(k, v);
    }
    let body = call.body.clone().unwrap_or_default();
    b.body(Full::new(Bytes::from(body))).expect("valid request")
}

/// An AppRole login call.
fn login(role_id: &str, secret_id: &str) -> Call {
    Call::post(
        "auth/approle/login",
        json!({"role_id": role_id, "secret_id": secret_id}),
    )
    .anonymous()
}

/// Enables AppRole and creates role `name` with role id `role_id`.
async fn approle_role(server: &Server, name: &str, role_id: &str) {
    if server.send(&Call::get("sys/auth")).await.body["approle/"].is_null() {
        setup(
            server,
            Call::post("sys/auth/approle", json!({"type": "approle"})),
        )
        .await;
    }
    setup(
        server,
        Call::post(
            &format!("auth/approle/role/{name}"),
            json!({"role_id": role_id, "token_policies": ["default"]}),
        ),
    )
    .await;
}

/// A new secret id of role `name` good for `uses` logins (0: unlimited).
async fn secret_id(server: &Server, name: &str, uses: u64) -> String {
    let r = setup(
        server,
        Call::post(
            &format!("auth/approle/role/{name}/secret-id"),
            json!({"num_uses": uses}),
        ),
    )
    .await;
    r.data("secret_id")
        .as_str()
        .expect("secret_id in the answer")
        .to_string()
}

/// Checks a login race with a secret id good for `uses` logins: exactly
/// `uses` logins succeed, each with its own valid token; exactly the
/// lockout threshold fail as bad credentials; the rest find the role id
/// locked out.
async fn secret_id_race(uses: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = durable_server(Kind::Strongroom, dir.path()).await;
    let (name, role_id) = (format!("r{uses}"), format!("race-role-{uses}"));
    approle_role(&server, &name, &role_id).await;
    let secret = secret_id(&server, &name, uses as u64).await;

    let tally = race(&server, vec![login(&role_id, &secret); RACERS]).await;
    let summary = tally.summary();
    assert_eq!(tally.status(200), uses, "{summary:?}");
    assert_eq!(
        tally.error(400, "invalid role or secret ID"),
        LOCKOUT_THRESHOLD,
        "{summary:?}"
    );
    assert_eq!(
        tally.error(403, "permission denied"),
        RACERS - uses - LOCKOUT_THRESHOLD,
        "{summary:?}"
    );
    let mut tokens = HashSet::new();
    for (_, r) in tally.with_status(200) {
        let token = r.body["auth"]["client_token"]
            .as_str()
            .expect("client_token in a successful login");
        assert!(tokens.insert(token.to_string()), "token issued twice");
        let me = server
            .send(&Call::get("auth/token/lookup-self").token(token))
            .await;
        assert_eq!(me.status, 200, "a token from the race: {me:?}");
        assert_eq!(me.data("meta")["role_name"], json!(name), "{me:?}");
    }
    // The secret id is used up: nothing is left to list.
    let r = server
        .send(&Call::list(&format!("auth/approle/role/{name}/secret-id")))
        .await;
    assert_eq!(r.status, 404, "secret ids left after the race: {r:?}");
    // The role id stays locked, even for a fresh secret id.
    let fresh = secret_id(&server, &name, 0).await;
    let r = server.send(&login(&role_id, &fresh)).await;
    assert_eq!(
        (r.status, &r.body["errors"]),
        (403, &json!(["permission denied"])),
        "a fresh secret id of the locked role id: {r:?}"
    );
}

/// 1,000 logins with one single-use secret id: one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_secret_id_logs_in_exactly_once() {
    secret_id_race(1).await;
}

/// 1,000 logins with one secret id good for 50: 50 succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_use_secret_id_logs_in_exactly_n_times() {
    secret_id_race(50).await;
}

/// 1,000 logins with a wrong secret id: exactly the threshold are counted
/// (400), the rest find the role id locked (403), as OpenBao counts. A
/// role id that does not exist is never locked (OpenBao does not count
/// it), and other role ids are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_threshold_is_exact_under_concurrency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = durable_server(Kind::Strongroom, dir.path()).await;
    approle_role(&server, "target", "target-id").await;
    approle_role(&server, "bystander", "bystander-id").await;
    let good = secret_id(&server, "target", 0).await;
    let bystander = secret_id(&server, "bystander", 0).await;

    let tally = race(&server, vec![login("target-id", "wrong"); RACERS]).await;
    let summary = tally.summary();
    assert_eq!(
        tally.error(400, "invalid role or secret ID"),
        LOCKOUT_THRESHOLD,
        "{summary:?}"
    );
    assert_eq!(
        tally.error(403, "permission denied"),
        RACERS - LOCKOUT_THRESHOLD,
        "{summary:?}"
    );
    let r = server.send(&login("target-id", &good)).await;
    assert_eq!(
        (r.status, &r.body["errors"]),
        (403, &json!(["permission denied"])),
        "the right secret id of the locked role id: {r:?}"
    );
    let r = server.send(&login("bystander-id", &bystander)).await;
    assert_eq!(r.status, 200, "another role id: {r:?}");

    let tally = race(&server, vec![login("no-such-role-id", "wrong"); RACERS]).await;
    assert_eq!(
        tally.error(400, "invalid role or secret ID"),
        RACERS,
        "{:?}",
        tally.summary()
    );
}

/// 1,000 KV v2 writers with `cas` values 0..10: exactly one writer wins
/// each version. The first version has a winner for certain (only `cas=0`
/// creates the key); each later one at most one, and the winners form a
/// chain: the writer with `cas=k` won version k+1, and version k+1 holds
/// its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_check_and_set_has_one_winner_per_version() {
    const CAS_VALUES: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = durable_server(target(), dir.path()).await;
    setup(
        &server,
        Call::post(
            "sys/mounts/kv",
            json!({"type": "kv", "options": {"version": "2"}}),
        ),
    )
    .await;
    // OpenBao upgrades a new KV v2 mount in the background first.
    wait_for_200(&server, Call::get("kv/config")).await;
    let calls = (0..RACERS)
        .map(|i| {
            Call::post(
                "kv/data/contested",
                json!({"data": {"writer": i}, "options": {"cas": i % CAS_VALUES}}),
            )
        })
        .collect();

    let tally = race(&server, calls).await;
    let summary = tally.summary();
    let mut winners = BTreeMap::new();
    for (i, r) in tally.with_status(200) {
        let cas = i % CAS_VALUES;
        assert_eq!(
            r.data("version"),
            &json!(cas + 1),
            "writer {i} (cas={cas}) won: {r:?}"
        );
        assert!(
            winners.insert(cas, i).is_none(),
            "two writers won version {}: {summary:?}",
            cas + 1
        );
    }
    let won = winners.len();
    assert!(won >= 1, "nobody created the key: {summary:?}");
    assert_eq!(
        winners.keys().copied().collect::<Vec<_>>(),
        (0..won).collect::<Vec<_>>(),
        "the winners are not a chain of versions: {summary:?}"
    );
    assert_eq!(
        tally.error(
            400,
            "check-and-set parameter did not match the current version"
        ),
        RACERS - won,
        "{summary:?}"
    );
    let meta = server.send(&Call::get("kv/metadata/contested")).await;
    assert_eq!(meta.data("current_version"), &json!(won), "{meta:?}");
    for (cas, writer) in &winners {
        let version = cas + 1;
        let r = server
            .send(&Call::get(&format!("kv/data/contested?version={version}")))
            .await;
        assert_eq!(
            r.body["data"]["data"],
            json!({"writer": writer}),
            "version {version}: {r:?}"
        );
    }
}

/// A token with `num_uses = 100` used by 1,000 requests at once: exactly
/// 100 are served, the rest refused, and the token is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_num_uses_are_spent_exactly() {
    const USES: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = durable_server(target(), dir.path()).await;
    let r = setup(
        &server,
        Call::post(
            "auth/token/create",
            json!({"policies": ["default"], "num_uses": USES}),
        ),
    )
    .await;
    let token = r.body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();

    let calls = vec![Call::get("auth/token/lookup-self").token(&token); RACERS];
    let tally = race(&server, calls).await;
    let summary = tally.summary();
    assert_eq!(tally.status(200), USES, "{summary:?}");
    // OpenBao answers some of the excess with a 500 while the used-up
    // token is being revoked; Strongroom refuses them all with 403.
    let internal = match target() {
        Kind::Bao => tally.status(500),
        Kind::Strongroom => 0,
    };
    assert_eq!(
        tally.error(403, "permission denied") + internal,
        RACERS - USES,
        "{summary:?}"
    );
    let r = server
        .send(&Call::post("auth/token/lookup", json!({"token": token})))
        .await;
    assert_eq!(r.status, 403, "the used-up token still exists: {r:?}");
}

/// A response-wrapping token unwrapped by 1,000 requests at once: exactly
/// one gets the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapping_token_unwraps_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = durable_server(target(), dir.path()).await;
    let r = setup(
        &server,
        Call::post("sys/wrapping/wrap", json!({"secret": "only once"}))
            .header("X-Vault-Wrap-TTL", "300"),
    )
    .await;
    let wrapped = r.body["wrap_info"]["token"]
        .as_str()
        .expect("wrap_info.token")
        .to_string();

    // Half present the wrapping token as their own, half in the body.
    let calls = (0..RACERS)
        .map(|i| {
            if i % 2 == 0 {
                Call::post("sys/wrapping/unwrap", json!({})).token(&wrapped)
            } else {
                Call::post("sys/wrapping/unwrap", json!({"token": wrapped}))
            }
        })
        .collect();
    let tally = race(&server, calls).await;
    let summary = tally.summary();
    assert_eq!(tally.status(200), 1, "{summary:?}");
    let (_, winner) = tally.with_status(200).next().expect("one winner");
    assert_eq!(winner.data("secret"), &json!("only once"), "{winner:?}");
    let refused = tally.error(400, "wrapping token is not valid or does not exist")
        + tally.error(403, "permission denied");
    assert_eq!(refused, RACERS - 1, "{summary:?}");
}
