//! The userpass auth method, with OpenBao's HTTP API: users with a
//! password and token parameters (`users/:username`, `.../password`,
//! `.../policies`, LIST `users`), and `login/:username`, whose token
//! carries the `username` metadata and the username as entity alias.
//!
//! Passwords are hashed with **bcrypt at cost 10**, OpenBao's choice, from
//! the `bcrypt` crate. bcrypt rather than argon2 was chosen for parity:
//! OpenBao's `password_hash` parameter takes a bcrypt hash, so users can
//! be moved from OpenBao with their hashes and a hash made here verifies
//! there; a login then costs what it costs on OpenBao. Argon2id is the
//! stronger design (memory-hard), but its memory per hash would also have
//! to be bounded under a login flood, and it would break that
//! compatibility. bcrypt reads at most 72 bytes: longer passwords are
//! refused rather than silently truncated. The clear password is never
//! stored or logged; the check compares in constant time (the `bcrypt`
//! crate's `subtle` comparison), runs off the async workers and is bounded
//! per CPU ([`hash`]).
#![forbid(unsafe_code)]

mod hash;
mod login;
mod state;
mod users;

use std::sync::Arc;

use strongroom_sdk::framework::{
    existence, handler, Backend, Field, FieldType, LogicalBackend, Path, PathSet, SpecialPaths,
};
use strongroom_sdk::logical::Operation;
use strongroom_sdk::login::Legacy;
use strongroom_sdk::registry::{Factory, FactoryInput};
use strongroom_sdk::Result;

pub use hash::{Hasher, COST};
pub use state::Userpass;
pub use users::UserEntry;

/// The factory for the `userpass` auth type.
pub fn factory() -> Factory {
    Arc::new(|_input: FactoryInput| -> Result<Arc<dyn LogicalBackend>> { Ok(Arc::new(backend())) })
}

fn username_field() -> Field {
    Field::new("username", FieldType::String, "Username for this user.")
}

fn password_fields() -> Vec<Field> {
    vec![
        Field::new("password", FieldType::String, "Password for this user."),
        Field::new(
            "password_hash",
            FieldType::String,
            "Pre-hashed password in bcrypt format for this user.",
        ),
    ]
}

/// The userpass backend.
pub fn backend() -> Backend<Userpass> {
    backend_with(Userpass::default())
}

/// The userpass backend over the given state.
pub fn backend_with(state: Userpass) -> Backend<Userpass> {
    let mut user_fields = vec![username_field()];
    user_fields.extend(password_fields());
    user_fields.extend(Legacy::USERPASS.fields());
    let mut password_path_fields = vec![username_field()];
    password_path_fields.extend(password_fields());
    let paths = vec![
        Path::new("login/{username}")
            .fields(vec![
                Field::new("username", FieldType::String, "Username of the user."),
                Field::new("password", FieldType::String, "Password for this user."),
            ])
            .decodes::<users::UserPath>()
            .decodes::<login::PasswordParam>()
            .op(Operation::Update, handler(login::login), "Log in with a username and password.")
            .help("Log in with a username and password.", "This endpoint authenticates using a username and password."),
        Path::new("users/?")
            .op(Operation::List, handler(users::list), "List the users.")
            .help("Manage users allowed to authenticate.", "This endpoint allows you to create, read, update, and delete users that are allowed to authenticate."),
        Legacy::USERPASS
            .decodes(Path::new("users/{username}"))
            .fields(user_fields)
            .decodes::<users::UserPath>()
            .decodes::<users::PasswordParams>()
            .exists(existence(users::exists))
            .op(Operation::Read, handler(users::read), "Read the user.")
            .op(Operation::Create, handler(users::write), "Create the user.")
            .op(Operation::Update, handler(users::write), "Update the user.")
            .op(Operation::Delete, handler(users::delete), "Delete the user.")
            .help("Manage users allowed to authenticate.", "This endpoint allows you to create, read, update, and delete users that are allowed to authenticate. Deleting a user will not revoke auth for prior authenticated users with that name."),
        Path::new("users/{username}/password")
            .fields(password_path_fields)
            .decodes::<users::UserPath>()
            .decodes::<users::PasswordParams>()
            .op(Operation::Update, handler(users::write_password), "Reset the user's password.")
            .help("Reset user's password.", "This endpoint allows resetting the user's password."),
        Path::new("users/{username}/policies")
            .fields(vec![
                username_field(),
                Field::new("policies", FieldType::CommaStringSlice, "Use \"token_policies\" instead. If this and \"token_policies\" are both specified, only \"token_policies\" will be used."),
                Field::new("token_policies", FieldType::CommaStringSlice, "Comma-separated list of policies"),
            ])
            .decodes::<users::UserPath>()
            .decodes::<users::PoliciesParams>()
            .op(Operation::Update, handler(users::write_policies), "Update the user's policies.")
            .help("Update the policies associated with the username.", "This endpoint allows updating the policies associated with the username."),
    ];
    Backend::new(
        Arc::new(state),
        paths,
        "The \"userpass\" credential provider allows authentication using a combination of a username and password. No additional factors are supported. The username/password combination is configured using the \"users/\" endpoints by a user with root access. Authentication is then done by supplying the two fields for \"login\".",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(&["login/*"]),
        root: PathSet::default(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use serde_json::{json, Value};
    use strongroom_sdk::framework::{BackendRequest, MountContext};
    use strongroom_sdk::logical::{Request, Response};
    use strongroom_sdk::storage::{MemoryStorage, View};
    use strongroom_sdk::Error;

    use super::*;

    /// A backend whose hashes cost bcrypt's minimum (4), for speed.
    fn cheap() -> Backend<Userpass> {
        backend_with(Userpass::with_hasher(Hasher::with_cost(4)))
    }

    async fn call_from(
        b: &Backend<Userpass>,
        storage: &View,
        op: Operation,
        path: &str,
        data: Value,
        from: Option<IpAddr>,
    ) -> Result<Response> {
        let Value::Object(data) = data else {
            panic!("test data must be an object")
        };
        let mut req = Request::new(op, path).with_data(data);
        req.remote_addr = from;
        b.handle(BackendRequest::new(
            req,
            storage.clone(),
            Arc::new(MountContext::default()),
        ))
        .await
    }

    async fn call(
        b: &Backend<Userpass>,
        storage: &View,
        op: Operation,
        path: &str,
        data: Value,
    ) -> Result<Response> {
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        call_from(b, storage, op, path, data, local).await
    }

    fn message(e: Error) -> (u16, String) {
        (e.status(), e.to_string())
    }

    #[tokio::test]
    async fn a_login_issues_the_users_token_with_username_metadata_and_alias() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        call(
            &b,
            &s,
            Operation::Create,
            "users/Alice",
            json!({"password": "pw", "token_policies": "dev", "token_ttl": "10m"}),
        )
        .await
        .unwrap();
        let resp = call(
            &b,
            &s,
            Operation::Update,
            "login/ALICE",
            json!({"password": "pw"}),
        )
        .await
        .unwrap();
        let issue = resp.issue.expect("a login issues a token");
        assert_eq!(issue.policies, ["dev"]);
        assert_eq!(
            issue.metadata,
            json!({"username": "alice"}).as_object().cloned().unwrap()
        );
        assert_eq!(issue.display_name, "alice");
        assert_eq!(issue.ttl.as_secs(), 600);
        let alias = issue.alias.expect("the username is the entity alias");
        assert_eq!(alias.name, "alice");
        // The stored record holds a bcrypt hash, never the password.
        let stored = s.get("user/alice").await.unwrap().unwrap();
        let stored = String::from_utf8(stored).unwrap();
        assert!(
            stored.contains("$2b$04$") && !stored.contains("\"pw\""),
            "{stored}"
        );
    }

    #[tokio::test]
    async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        call(
            &b,
            &s,
            Operation::Create,
            "users/bob",
            json!({"password": "pw"}),
        )
        .await
        .unwrap();
        for (path, pw) in [("login/bob", "nope"), ("login/ghost", "pw")] {
            let e = call(&b, &s, Operation::Update, path, json!({"password": pw}))
                .await
                .unwrap_err();
            assert_eq!(
                message(e),
                (400, "invalid username or password".into()),
                "{path}"
            );
        }
        let e = call(&b, &s, Operation::Update, "login/bob", json!({}))
            .await
            .unwrap_err();
        assert_eq!(message(e), (400, "missing password".into()));
    }

    #[tokio::test]
    async fn five_wrong_passwords_lock_an_existing_user_only() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        call(
            &b,
            &s,
            Operation::Create,
            "users/carol",
            json!({"password": "pw"}),
        )
        .await
        .unwrap();
        let login = |name: &'static str, pw: &'static str| {
            let (b, s) = (&b, &s);
            async move {
                call(
                    b,
                    s,
                    Operation::Update,
                    &format!("login/{name}"),
                    json!({"password": pw}),
                )
                .await
            }
        };
        for _ in 0..strongroom_sdk::lockout::THRESHOLD {
            assert_eq!(login("carol", "bad").await.unwrap_err().status(), 400);
            assert_eq!(login("ghost", "bad").await.unwrap_err().status(), 400);
        }
        let e = login("carol", "pw").await.unwrap_err();
        assert_eq!(message(e), (403, "permission denied".into()));
        let e = login("ghost", "bad").await.unwrap_err();
        assert_eq!(e.status(), 400, "unknown users are not counted");
    }

    #[tokio::test]
    async fn token_bound_cidrs_refuse_other_addresses() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        call(
            &b,
            &s,
            Operation::Create,
            "users/dan",
            json!({"password": "pw", "bound_cidrs": "10.0.0.0/8"}),
        )
        .await
        .unwrap();
        let inside = Some(IpAddr::from([10, 1, 2, 3]));
        let outside = Some(IpAddr::from([192, 168, 0, 1]));
        let body = json!({"password": "pw"});
        let ok = call_from(&b, &s, Operation::Update, "login/dan", body.clone(), inside)
            .await
            .unwrap();
        assert_eq!(ok.issue.unwrap().bound_cidrs, ["10.0.0.0/8"]);
        for from in [outside, None] {
            let e = call_from(&b, &s, Operation::Update, "login/dan", body.clone(), from)
                .await
                .unwrap_err();
            assert_eq!(message(e), (403, "permission denied".into()));
        }
    }

    #[tokio::test]
    async fn refused_writes_change_nothing() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        for body in [
            json!({}),
            json!({"password": "a", "password_hash": "b"}),
            json!({"password_hash": "nothash"}),
            json!({"password": "a", "token_num_uses": -1}),
            json!({"password": "a".repeat(73)}),
        ] {
            let e = call(&b, &s, Operation::Create, "users/eve", body.clone())
                .await
                .unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
        }
        assert!(s.get("user/eve").await.unwrap().is_none());
        let e = call(
            &b,
            &s,
            Operation::Update,
            "users/eve/password",
            json!({"password": "x"}),
        )
        .await
        .unwrap_err();
        assert_eq!(message(e), (400, "username does not exist".into()));
    }

    #[tokio::test]
    async fn password_and_policies_endpoints_change_only_their_part() {
        let b = cheap();
        let s = MemoryStorage::view("auth/userpass/");
        call(
            &b,
            &s,
            Operation::Create,
            "users/fay",
            json!({"password": "one", "token_ttl": 60}),
        )
        .await
        .unwrap();
        call(
            &b,
            &s,
            Operation::Update,
            "users/fay/password",
            json!({"password": "two"}),
        )
        .await
        .unwrap();
        call(
            &b,
            &s,
            Operation::Update,
            "users/fay/policies",
            json!({"policies": "B,a"}),
        )
        .await
        .unwrap();
        let read = call(&b, &s, Operation::Read, "users/fay", json!({}))
            .await
            .unwrap()
            .data
            .unwrap();
        assert_eq!(read["token_ttl"], 60);
        assert_eq!(read["policies"], json!(["a", "b"]));
        let bad = call(
            &b,
            &s,
            Operation::Update,
            "login/fay",
            json!({"password": "one"}),
        )
        .await;
        assert_eq!(bad.unwrap_err().status(), 400);
        call(
            &b,
            &s,
            Operation::Update,
            "login/fay",
            json!({"password": "two"}),
        )
        .await
        .unwrap();
    }

    #[test]
    fn the_paths_declare_what_they_decode() {
        // Backend::new refuses paths decoding undeclared fields.
        let _ = backend();
    }
}
