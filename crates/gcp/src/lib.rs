//! The GCP auth method (Vault-compatible API): Google service accounts log
//! in with a JWT they signed (self-signed with one of their keys, or by
//! Google's `signJwt`), verified against the account's public key from the
//! IAM API or its public certificates, and bound to `iam` roles by project
//! and service account.
//!
//! Module map: [`config`] (credentials and custom endpoints), [`role`]
//! (roles, their token parameters and the service-accounts edit),
//! [`google`] (the Google client and its error mapping), [`keys`] (the
//! public-key cache), [`login`], and [`state`] (per-mount state).
#![forbid(unsafe_code)]

pub mod config;
pub mod google;
pub mod keys;
pub mod login;
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

pub use state::Gcp;

/// Options of the method beyond the production defaults.
#[derive(Clone, Default)]
pub struct Options {
    /// A PEM CA (bundle) the Google client trusts in addition to the
    /// webpki and system roots (the in-process tests' HTTPS emulator).
    pub extra_root_pem: Option<String>,
}

/// The factory for the `gcp` auth type (webpki and system roots).
pub fn factory() -> Factory {
    factory_with(Options::default())
}

/// The factory for the `gcp` auth type with [`Options`].
pub fn factory_with(options: Options) -> Factory {
    Arc::new(
        move |_input: FactoryInput| -> Result<Arc<dyn LogicalBackend>> {
            Ok(Arc::new(backend(&options)?))
        },
    )
}

pub(crate) fn role_fields() -> Vec<Field> {
    let mut f = vec![
        Field::new("name", FieldType::String, "Name of the role."),
        Field::new("type", FieldType::String, "Type of the role. Currently supported: iam."),
        Field::new("role_type", FieldType::String, "Use \"type\" instead."),
        Field::new("bound_projects", FieldType::CommaStringSlice, "GCP Projects that authenticating entities must belong to."),
        Field::new("project_id", FieldType::CommaStringSlice, "Deprecated: use \"bound_projects\" instead."),
        Field::new("bound_service_accounts", FieldType::CommaStringSlice, "Service accounts (emails or unique ids) that can log in with this role; \"*\" alone allows all of the bound projects."),
        Field::new("service_accounts", FieldType::CommaStringSlice, "Deprecated: use \"bound_service_accounts\" instead."),
        Field::new("max_jwt_exp", FieldType::DurationSecond, "How far ahead a login JWT's 'exp' may be (default 900 seconds, at most 3600)."),
        Field::new("allow_gce_inference", FieldType::Bool, "Accepted for compatibility; applies to gce roles only."),
    ];
    f.extend(Legacy::GCP.fields());
    f
}

fn list_path(pattern: &str) -> Path<Gcp> {
    Path::new(pattern)
        .op(
            Operation::List,
            handler(role::list),
            "Lists all the roles that are registered with Vault.",
        )
        .help(
            "Lists all the roles that are registered with Vault.",
            "Lists all roles under the GCP backends by name.",
        )
}

/// The GCP auth backend.
pub fn backend(options: &Options) -> Result<Backend<Gcp>> {
    let http = state::http_client(options.extra_root_pem.as_deref())?;
    let paths = vec![
        Path::new("login")
            .fields(vec![
                Field::new("role", FieldType::String, "Name of the role against which the login is being attempted."),
                Field::new("jwt", FieldType::String, "A signed JWT for authenticating a service account."),
            ])
            .decodes::<login::LoginRequest>()
            .op(Operation::Update, handler(login::login), "Authenticates a GCP service account with a signed JWT.")
            .help("Authenticates Google Cloud Platform entities with Vault.", "Authenticate a service account with a JWT it signed (self-signed or through IAM signJwt)."),
        Path::new("config")
            .fields(vec![
                Field::new("credentials", FieldType::String, "Google credentials JSON that Vault will use to verify users against GCP APIs. If not specified, will use application default credentials."),
                Field::new("custom_endpoint", FieldType::Map, "Specifies overrides for various Google API Service Endpoints used in requests (api, iam, crm, compute).").nullable(),
            ])
            .decodes::<config::ConfigWrite>()
            .op(Operation::Read, handler(config::read), "Read the GCP auth configuration.")
            .op(Operation::Update, handler(config::write), "Configure the GCP auth method.")
            .op(Operation::Delete, handler(config::delete), "Delete the GCP auth configuration.")
            .help("Configure credentials used to query the GCP IAM API to verify authenticating service accounts.", "The GCP auth backend makes API calls to Google to verify service accounts and fetch their public keys. This endpoint configures the credentials (a service-account key JSON) and API endpoints it uses."),
        list_path("role/?"),
        list_path("roles/?"),
        Path::new("role/{name}/service-accounts")
            .fields(vec![
                Field::new("name", FieldType::String, "Name of the role."),
                Field::new("add", FieldType::CommaStringSlice, "Service-account emails or ids to add to the role."),
                Field::new("remove", FieldType::CommaStringSlice, "Service-account emails or ids to remove from the role."),
            ])
            .decodes::<role::RolePath>()
            .decodes::<role::EditAccounts>()
            .op(Operation::Update, handler(role::edit_service_accounts), "Add or remove service accounts for an existing iam role.")
            .help("Add or remove service accounts for an existing iam role.", "Edits the service accounts bound to an iam role: add and remove lists."),
        Legacy::GCP.decodes(Path::new("role/{name}"))
            .fields(role_fields())
            .decodes::<role::RolePath>()
            .decodes::<role::TypeWrite>()
            .decodes::<role::Projects>()
            .decodes::<role::OldProjects>()
            .decodes::<role::Accounts>()
            .decodes::<role::OldAccounts>()
            .decodes::<role::RestWrite>()
            .exists(existence(role::exists))
            .op(Operation::Read, handler(role::read), "Read the role.")
            .op(Operation::Create, handler(role::write), "Register a role.")
            .op(Operation::Update, handler(role::write), "Update the role.")
            .op(Operation::Delete, handler(role::delete), "Delete the role.")
            .help("Create a GCP role with associated policies and required attributes.", "A role is required to log in with this backend. It binds GCP projects and service accounts to token policies and settings."),
    ];
    Ok(Backend::new(
        Arc::new(Gcp::new(http)),
        paths,
        "The GCP backend lets Google Cloud Platform service accounts authenticate with a signed JWT.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(&["login"]),
        root: PathSet::default(),
    })
    .on_resolve_role(strongroom_sdk::framework::role_field()))
}
