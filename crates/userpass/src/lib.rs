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
