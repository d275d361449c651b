//! The Kubernetes auth method, with OpenBao's HTTP API: pods log in with
//! their service-account JWT (`login`), its signature checked against the
//! configured `pem_keys` when set and always by the cluster's TokenReview
//! API (as Vault and OpenBao do), and bound to
//! roles (`role/:name`) by namespace, service-account name and audience.
//!
//! Module map: [`config`] (the mount's configuration), [`role`] (roles and
//! their token parameters), [`jwt`] (claims and local verification),
//! [`review`] (the TokenReview call), `login`, and [`state`] (the cached
//! configuration and the shared HTTP client).
#![forbid(unsafe_code)]

pub mod config;
pub mod jwt;
mod login;
pub mod review;
pub mod role;
pub mod state;

use std::sync::Arc;

use strongroom_sdk::framework::{
    existence, handler, Backend, Field, FieldType, LogicalBackend, Path, PathSet, SpecialPaths,
};
use strongroom_sdk::logical::Operation;
use strongroom_sdk::login::Legacy;
use strongroom_sdk::registry::{Factory, FactoryInput};
use strongroom_sdk::Result;

pub use state::Kubernetes;

/// The factory for the `kubernetes` auth type.
pub fn factory() -> Factory {
    Arc::new(|_input: FactoryInput| -> Result<Arc<dyn LogicalBackend>> { Ok(Arc::new(backend())) })
}

fn role_fields() -> Vec<Field> {
    let mut f = vec![
        Field::new("name", FieldType::String, "Name of the role."),
        Field::new("bound_service_account_names", FieldType::CommaStringSlice, "List of service account names able to access this role. If set to \"*\" all names are allowed."),
        Field::new("bound_service_account_namespaces", FieldType::CommaStringSlice, "List of namespaces allowed to access this role. If set to \"*\" all namespaces are allowed."),
        Field::new("audience", FieldType::String, "Optional Audience claim to verify in the jwt."),
        Field::new("alias_name_source", FieldType::String, "Source to use when deriving the Alias name: serviceaccount_uid (default) or serviceaccount_name.").allowed(&role::ALIAS_SOURCES),
    ];
    f.extend(Legacy::KUBERNETES.fields());
    f
}

fn config_fields() -> Vec<Field> {
    vec![
        Field::new("kubernetes_host", FieldType::String, "Host must be a host string, a host:port pair, or a URL to the base of the Kubernetes API server."),
        Field::new("kubernetes_ca_cert", FieldType::String, "PEM encoded CA cert for use by the TLS client used to talk with the API."),
        Field::new("token_reviewer_jwt", FieldType::String, "A service account JWT used to access the TokenReview API to validate other JWTs during login. If not set the JWT used for login will be used to access the API."),
        Field::new("pem_keys", FieldType::CommaStringSlice, "Optional list of PEM-formated public keys or certificates used to verify the signatures of kubernetes service account JWTs. If a certificate is given, its public key will be extracted."),
        Field::new("issuer", FieldType::String, "Optional JWT issuer. If no issuer is specified, then kubernetes/serviceaccount will be used as the default issuer."),
        Field::new("disable_iss_validation", FieldType::Bool, "Disable JWT issuer validation (default true)."),
        Field::new("disable_local_ca_jwt", FieldType::Bool, "Disable defaulting to the local CA cert and service account JWT when running in a Kubernetes pod."),
    ]
}

fn list_path(pattern: &str) -> Path<Kubernetes> {
    Path::new(pattern)
        .op(
            Operation::List,
            handler(role::list),
            "Lists all the roles registered with the backend.",
        )
        .help(
            "Lists all the roles registered with the backend.",
            "The list will contain the names of the roles.",
        )
}

/// The Kubernetes auth backend.
pub fn backend() -> Backend<Kubernetes> {
    let paths = vec![
        Path::new("login")
            .fields(vec![
                Field::new("role", FieldType::String, "Name of the role against which the login is being attempted."),
                Field::new("jwt", FieldType::String, "A signed JWT for authenticating a service account."),
            ])
            .decodes::<login::LoginRequest>()
            .op(Operation::Update, handler(login::login), "Authenticates Kubernetes service accounts with Vault.")
            .help("Authenticates Kubernetes service accounts with Vault.", "Authenticate Kubernetes service accounts."),
        Path::new("config")
            .fields(config_fields())
            .decodes::<config::Host>()
            .decodes::<config::ConfigWrite>()
            .op(Operation::Read, handler(config::read), "Read the Kubernetes auth configuration.")
            .op(Operation::Update, handler(config::write), "Configure the Kubernetes auth method.")
            .help("Configures the JWT Public Key and Kubernetes API information.", "The Kubernetes Auth backend validates service account JWTs and verifies their existence with the Kubernetes TokenReview API. This endpoint configures the public key used to validate the JWT signature and the necessary information to access the Kubernetes API."),
        list_path("role/?"),
        list_path("roles/?"),
        Legacy::KUBERNETES.decodes(Path::new("role/{name}"))
            .fields(role_fields())
            .decodes::<role::RolePath>()
            .decodes::<role::RoleWrite>()
            .exists(existence(role::exists))
            .op(Operation::Read, handler(role::read), "Read the role.")
            .op(Operation::Create, handler(role::write), "Register a role.")
            .op(Operation::Update, handler(role::write), "Update the role.")
            .op(Operation::Delete, handler(role::delete), "Delete the role.")
            .help("Register an role with the backend.", "A role is required to authenticate with this backend. The role binds kubernetes service account metadata with token policies and settings. The bindings, token polices and token settings can all be configured using this endpoint"),
    ];
    Backend::new(
        Arc::new(Kubernetes::default()),
        paths,
        "The Kubernetes Auth Backend allows authentication for Kubernetes service accounts.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(&["login"]),
        root: PathSet::default(),
    })
    .on_resolve_role(strongroom_sdk::framework::role_field())
}
