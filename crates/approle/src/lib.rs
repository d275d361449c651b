//! The AppRole auth method, with OpenBao's HTTP API: roles with their
//! token and secret id parameters, role ids, secret ids (generated or
//! custom, with use limits, TTLs, CIDR bindings and metadata), logins that
//! ask the core for a token, and the tidy of expired secret ids.
//!
//! Secret ids are kept only as HMACs under a per-mount salt (see
//! [`state`]); a secret id's use count is exact under concurrent logins.
#![forbid(unsafe_code)]

mod login;
mod model;
mod role;
mod secret;
mod state;

use std::sync::Arc;

use serde_json::json;
use strongroom_sdk::framework::{
    existence, handler, hook, Backend, Field, FieldType, LogicalBackend, Path, PathSet,
    SpecialPaths,
};
use strongroom_sdk::logical::Operation;
use strongroom_sdk::login::Legacy;
use strongroom_sdk::registry::{Factory, FactoryInput};
use strongroom_sdk::Result;

pub use state::AppRole;

use role::Prop;

/// The factory for the `approle` auth type.
pub fn factory() -> Factory {
    Arc::new(|_input: FactoryInput| -> Result<Arc<dyn LogicalBackend>> { Ok(Arc::new(backend())) })
}

fn name_field() -> Field {
    Field::new(
        "role_name",
        FieldType::String,
        "Name of the role. Must be less than 4096 bytes.",
    )
}

fn role_fields() -> Vec<Field> {
    let mut f = vec![
        name_field(),
        Field::new("bind_secret_id", FieldType::Bool, "Impose secret_id to be presented when logging in using this role. Defaults to 'true'.").default(json!(true)),
        Field::new("bound_cidr_list", FieldType::CommaStringSlice, "Use \"secret_id_bound_cidrs\" instead."),
        Field::new("secret_id_bound_cidrs", FieldType::CommaStringSlice, "Comma separated string or list of CIDR blocks. If set, specifies the blocks of IP addresses which can perform the login operation."),
        Field::new("secret_id_num_uses", FieldType::Int, "Number of times a SecretID can access the role, after which the SecretID will expire. Defaults to 0 meaning that the secret_id is of unlimited use."),
        Field::new("secret_id_ttl", FieldType::DurationSecond, "Duration in seconds after which the issued SecretID should expire. Defaults to 0, meaning no expiration."),
        Field::new("local_secret_ids", FieldType::Bool, "If set, the secret IDs generated using this role will be cluster local. This can only be set during role creation and once set, it can't be reset later."),
        Field::new("role_id", FieldType::String, "Identifier of the role. Defaults to a UUID."),
    ];
    f.extend(Legacy::APPROLE.fields());
    f
}

fn secret_id_fields(custom: bool) -> Vec<Field> {
    let mut f = vec![
        name_field(),
        Field::new("metadata", FieldType::String, "Metadata to be tied to the SecretID. This should be a JSON formatted string containing the metadata in key value pairs."),
        Field::new("cidr_list", FieldType::CommaStringSlice, "Comma separated string or list of CIDR blocks enforcing secret IDs to be used from specific set of IP addresses. If 'secret_id_bound_cidrs' is set on the role, then the list of CIDR blocks listed here should be a subset of the CIDR blocks listed on the role."),
        Field::new("token_bound_cidrs", FieldType::CommaStringSlice, "Comma separated string or list of CIDR blocks. If set, specifies the blocks of IP addresses which can use the returned token. Should be a subset of the token CIDR blocks listed on the role, if any."),
        Field::new("num_uses", FieldType::Int, "Number of times this SecretID can be used, after which the SecretID expires. Overrides secret_id_num_uses role option when supplied. May not be higher than role's secret_id_num_uses."),
        Field::new("ttl", FieldType::DurationSecond, "Duration in seconds after which this SecretID expires. Overrides secret_id_ttl role option when supplied. May not be longer than role's secret_id_ttl."),
    ];
    if custom {
        f.push(Field::new(
            "secret_id",
            FieldType::String,
            "SecretID to be attached to the role.",
        ));
    }
    f
}

fn prop_field(name: &'static str) -> Field {
    let ty = match name {
        "token_policies"
        | "policies"
        | "secret_id_bound_cidrs"
        | "token_bound_cidrs"
        | "bound_cidr_list" => FieldType::CommaStringSlice,
        "secret_id_num_uses" | "token_num_uses" => FieldType::Int,
        "bind_secret_id" | "local_secret_ids" => FieldType::Bool,
        _ => FieldType::DurationSecond,
    };
    Field::new(name, ty, "The role property; see role/:role_name.")
}

fn prop_path(prop: Prop, suffix: &str) -> Path<AppRole> {
    let mut fields = vec![name_field()];
    fields.extend(prop.params().iter().map(|p| prop_field(p)));
    let path = Path::new(&format!("role/{{role_name}}/{suffix}")).fields(fields);
    let path = prop
        .decodes(path)
        .op(
            Operation::Read,
            handler(move |s, c| role::prop_read(s, c, prop)),
            "Read the role property.",
        )
        .help(
            "Read, update or reset one property of a role.",
            "Each property of a role has its own path so that ACLs can delegate it; see role/:role_name for the meaning of the parameters.",
        );
    if prop == Prop::LocalSecretIds {
        return path;
    }
    path.op(
        Operation::Update,
        handler(move |s, c| role::prop_write(s, c, prop)),
        "Update the role property.",
    )
    .op(
        Operation::Delete,
        handler(move |s, c| role::prop_delete(s, c, prop)),
        "Reset the role property to its default.",
    )
}

/// The AppRole backend.
pub fn backend() -> Backend<AppRole> {
    let mut paths = vec![
        Path::new("login")
            .fields(vec![
                Field::new("role_id", FieldType::String, "Unique identifier of the Role. Required to be supplied when the 'bind_secret_id' constraint is set."),
                Field::new("secret_id", FieldType::String, "SecretID belong to the App role").default(json!("")),
            ])
            .decodes::<login::RoleIdParam>()
            .decodes::<login::SecretIdParam>()
            .op(Operation::Update, handler(login::login), "Issue a token based on the credentials supplied")
            .help("Issue a token based on the credentials supplied", "While the credential 'role_id' is required at all times, other credentials required depend on the properties AppRole to which the 'role_id' belongs to. The 'bind_secret_id' constraint (enabled by default) on the AppRole requires the 'secret_id' credential to be presented."),
        Path::new("role/?")
            .op(Operation::List, handler(role::list_roles), "Lists all the roles registered with the backend.")
            .help("Lists all the roles registered with the backend.", "The list will contain the names of the roles."),
        Legacy::APPROLE
            .decodes(Path::new("role/{role_name}"))
            .fields(role_fields())
            .decodes::<role::RolePath>()
            .decodes::<role::RoleIdParam>()
            .decodes::<role::BindWrite>()
            .decodes::<role::OldCidrs>()
            .decodes::<role::NumUsesWrite>()
            .decodes::<role::SecretTtlWrite>()
            .exists(existence(role::role_exists))
            .op(Operation::Read, handler(role::read), "Read the role.")
            .op(Operation::Create, handler(role::write), "Register a role.")
            .op(Operation::Update, handler(role::write), "Update the role.")
            .op(Operation::Delete, handler(role::delete), "Delete the role and its secret IDs.")
            .help("Register an role with the backend.", "A role can represent a service, a machine or anything that can be IDed. The set of policies on the role defines access to the role, meaning, any Vault token with a policy set that is a superset of the policies on the role registered here will have access to the role. If a SecretID is desired to be generated against only this specific role, it can be done via 'role/<role_name>/secret-id' and 'role/<role_name>/custom-secret-id' endpoints. The properties of the SecretID created against the role and the properties of the token issued with the SecretID generated against the role, can be configured using the parameters of this endpoint."),
        Path::new("role/{role_name}/role-id")
            .fields(vec![name_field(), Field::new("role_id", FieldType::String, "Identifier of the role. Defaults to a UUID.")])
            .decodes::<role::RolePath>()
            .decodes::<role::RoleIdParam>()
            .op(Operation::Read, handler(role::read_role_id_ep), "Read the role's role ID.")
            .op(Operation::Update, handler(role::write_role_id), "Set a custom role ID (unique across roles).")
            .help("Returns the 'role_id' of the role.", "If login is performed from an role, then its 'role_id' should be presented as a credential during the login. This 'role_id' can be retrieved using this endpoint."),
        Path::new("role/{role_name}/secret-id/?")
            .fields(secret_id_fields(false))
            .decodes::<role::RolePath>()
            .decodes::<secret::MetadataParam>()
            .decodes::<secret::CidrListParam>()
            .decodes::<secret::TokenCidrsParam>()
            .decodes::<secret::NumUsesParam>()
            .decodes::<secret::TtlParam>()
            .op(Operation::Update, handler(secret::generate), "Generate a SecretID against this role.")
            .op(Operation::List, handler(secret::list), "List the accessors of the role's SecretIDs.")
            .help("Generate a SecretID against this role.", "The SecretID generated using this endpoint will be scoped to access just this role and none else. The properties of this SecretID will be based on the options set on the role. It will expire after a period defined by the 'secret_id_ttl' option on the role and/or the backend mount's maximum TTL value."),
        Path::new("role/{role_name}/secret-id/lookup/?")
            .fields(vec![name_field(), Field::new("secret_id", FieldType::String, "SecretID attached to the role.")])
            .decodes::<role::RolePath>()
            .decodes::<secret::SecretIdParam>()
            .op(Operation::Update, handler(secret::lookup), "Read the properties of a SecretID.")
            .help("Read the properties of an issued secret_id", "This endpoint is used to read the properties of a secret_id associated to a role."),
        Path::new("role/{role_name}/secret-id/destroy/?")
            .fields(vec![name_field(), Field::new("secret_id", FieldType::String, "SecretID attached to the role.")])
            .decodes::<role::RolePath>()
            .decodes::<secret::SecretIdParam>()
            .op(Operation::Update, handler(secret::destroy), "Invalidate an issued secret_id.")
            .op(Operation::Delete, handler(secret::destroy), "Invalidate an issued secret_id.")
            .help("Invalidate an issued secret_id", "This endpoint is used to delete the properties of a secret_id associated to a role."),
        Path::new("role/{role_name}/secret-id-accessor/lookup/?")
            .fields(vec![name_field(), Field::new("secret_id_accessor", FieldType::String, "Accessor of the SecretID.")])
            .decodes::<role::RolePath>()
            .decodes::<secret::AccessorParam>()
            .op(Operation::Update, handler(secret::accessor_lookup), "Read the properties of a SecretID by its accessor.")
            .help("Read an issued secret_id, using its accessor", "This is particularly useful to lookup the non-expiring 'secret_id's. The list operation on the 'role/<role_name>/secret-id' endpoint will return the 'secret_id_accessor's. This endpoint can be used to read the properties of the secret. If the 'secret_id_num_uses' field in the response is 0, it represents a non-expiring 'secret_id'."),
        Path::new("role/{role_name}/secret-id-accessor/destroy/?")
            .fields(vec![name_field(), Field::new("secret_id_accessor", FieldType::String, "Accessor of the SecretID.")])
            .decodes::<role::RolePath>()
            .decodes::<secret::AccessorParam>()
            .op(Operation::Update, handler(secret::accessor_destroy), "Delete a SecretID by its accessor.")
            .op(Operation::Delete, handler(secret::accessor_destroy), "Delete a SecretID by its accessor.")
            .help("Delete an issued secret_id, using its accessor", "This is particularly useful to clean-up the non-expiring 'secret_id's. The list operation on the 'role/<role_name>/secret-id' endpoint will return the 'secret_id_accessor's. This endpoint can be used to delete the properties of the secret."),
        Path::new("role/{role_name}/custom-secret-id")
            .fields(secret_id_fields(true))
            .decodes::<role::RolePath>()
            .decodes::<secret::SecretIdParam>()
            .decodes::<secret::MetadataParam>()
            .decodes::<secret::CidrListParam>()
            .decodes::<secret::TokenCidrsParam>()
            .decodes::<secret::NumUsesParam>()
            .decodes::<secret::TtlParam>()
            .op(Operation::Update, handler(secret::custom), "Assign a SecretID of choice against the role.")
            .help("Assign a SecretID of choice against the role.", "This option is not recommended unless there is a specific need to do so. This will assign a client supplied SecretID to be used to access the role. This SecretID will behave similarly to the SecretIDs generated by the backend. The properties of this SecretID will be based on the options set on the role."),
        Path::new("tidy/secret-id")
            .op(Operation::Update, handler(secret::tidy), "Trigger the clean-up of expired SecretID entries.")
            .help("Trigger the clean-up of expired SecretID entries.", "SecretIDs will have expiration time attached to them. The periodic function of the backend will look for expired entries and delete them. This happens once in a minute. Invoking this endpoint will trigger the clean-up action, without waiting for the backend's periodic function."),
    ];
    paths.extend(Prop::ALL.iter().map(|(p, suffix)| prop_path(*p, suffix)));
    Backend::new(
        Arc::new(AppRole::default()),
        paths,
        "Any registered Role can authenticate itself with Vault. The credentials depends on the constraints that are set on the Role. One common required credential is the 'role_id' which is a unique identifier of the Role. It can be retrieved from the 'role/<appname>/role-id' endpoint. The default constraint configuration is 'bind_secret_id', which requires the credential 'secret_id' to be presented during login. Refer to the documentation for other types of constraints.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(&["login"]),
        root: PathSet::default(),
    })
    .on_periodic(hook(secret::periodic))
    .on_resolve_role(Arc::new(|s, req| Box::pin(login::resolve_role(s, req))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};
    use strongroom_sdk::framework::{BackendRequest, MountContext, Mounted};
    use strongroom_sdk::logical::{Request, Response};
    use strongroom_sdk::storage::{MemoryStorage, View};

    use super::*;

    async fn call(
        b: &Backend<AppRole>,
        storage: &View,
        op: Operation,
        path: &str,
        data: Value,
    ) -> Result<Response> {
        let Value::Object(data) = data else {
            panic!("test data must be an object")
        };
        let req = Request::new(op, path).with_data(data);
        b.handle(BackendRequest::new(
            req,
            storage.clone(),
            Arc::new(MountContext::default()),
        ))
        .await
    }

    /// A new secret id of role `web`, made expired in storage.
    async fn expired_secret_id(b: &Backend<AppRole>, storage: &View) -> String {
        let resp = call(
            b,
            storage,
            Operation::Update,
            "role/web/secret-id",
            json!({}),
        )
        .await
        .unwrap();
        let secret_id = resp.data.unwrap()["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
        let state = b.state();
        let folder = format!(
            "secret_id/{}/",
            state.role_hash(storage, "web").await.unwrap()
        );
        let hmac = state.hmac(storage, "secret", &secret_id).await.unwrap();
        let key = format!("{folder}{hmac}");
        let mut entry: Value = storage.get_json(&key).await.unwrap().unwrap();
        entry["expires_ns"] = json!(1);
        storage.put_json(&key, &entry).await.unwrap();
        secret_id
    }

    async fn exists(b: &Backend<AppRole>, storage: &View, secret_id: &str) -> bool {
        let resp = call(
            b,
            storage,
            Operation::Update,
            "role/web/secret-id/lookup",
            json!({"secret_id": secret_id}),
        )
        .await
        .unwrap();
        resp.data.is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn the_periodic_hook_tidies_expired_secret_ids_at_most_once_per_interval() {
        let b = backend();
        let storage = MemoryStorage::view("auth/approle/");
        let mounted = Mounted {
            storage: storage.clone(),
            mount: Arc::new(MountContext::default()),
        };
        call(
            &b,
            &storage,
            Operation::Create,
            "role/web",
            json!({"policies": "dev"}),
        )
        .await
        .unwrap();
        let live = call(
            &b,
            &storage,
            Operation::Update,
            "role/web/secret-id",
            json!({}),
        )
        .await
        .unwrap()
        .data
        .unwrap()["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
        let first = expired_secret_id(&b, &storage).await;
        assert!(exists(&b, &storage, &first).await);

        b.periodic(&mounted).await.unwrap();
        assert!(!exists(&b, &storage, &first).await, "expired: tidied");
        assert!(exists(&b, &storage, &live).await, "unexpired: kept");

        // Within the interval, a second call does nothing.
        let second = expired_secret_id(&b, &storage).await;
        tokio::time::advance(secret::PERIODIC_TIDY_INTERVAL - Duration::from_secs(1)).await;
        b.periodic(&mounted).await.unwrap();
        assert!(exists(&b, &storage, &second).await, "throttled");

        // Once the interval has passed, it tidies again.
        tokio::time::advance(Duration::from_secs(1)).await;
        b.periodic(&mounted).await.unwrap();
        assert!(!exists(&b, &storage, &second).await);
        assert!(exists(&b, &storage, &live).await);
    }

    #[tokio::test]
    async fn the_periodic_hook_waits_for_a_running_tidy() {
        let b = backend();
        let storage = MemoryStorage::view("auth/approle/");
        let mounted = Mounted {
            storage: storage.clone(),
            mount: Arc::new(MountContext::default()),
        };
        call(&b, &storage, Operation::Create, "role/web", json!({}))
            .await
            .unwrap();
        let expired = expired_secret_id(&b, &storage).await;
        b.state()
            .tidy_running
            .store(true, std::sync::atomic::Ordering::SeqCst);
        b.periodic(&mounted).await.unwrap();
        assert!(
            exists(&b, &storage, &expired).await,
            "left to the running tidy"
        );
    }
}
