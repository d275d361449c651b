//! The built-in policies: OpenBao's `default` policy and the reserved `root`
//! name.

use super::{Policy, ROOT_POLICY};

/// The text of the `default` policy, exactly as OpenBao 2.7.2 answers
/// `bao policy read default` (taken from `GET /v1/sys/policies/acl/default`
/// on a `bao server -dev` instance, so the leading newline is OpenBao's).
pub const DEFAULT_POLICY_TEXT: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;

/// The name of the built-in `default` policy.
pub const DEFAULT_POLICY: &str = "default";

/// The `default` policy every token gets unless told otherwise.
pub fn default_policy() -> Policy {
    match Policy::parse(DEFAULT_POLICY, DEFAULT_POLICY_TEXT) {
        Ok(p) => p,
        // Invariant: the constant text parses; `default_policy_parses`
        // checks it. Falling back to an empty policy grants nothing.
        Err(_) => Policy::empty(DEFAULT_POLICY),
    }
}

/// The reserved `root` policy: an [`Acl`](super::Acl) built from it allows
/// everything, sudo included. It has no rules of its own.
pub fn root_policy() -> Policy {
    Policy::empty(ROOT_POLICY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Acl;
    use std::sync::Arc;
    use strongroom_sdk::logical::{Data, Operation};

    #[test]
    fn default_policy_parses_and_grants_openbao_defaults() {
        let p = Policy::parse(DEFAULT_POLICY, DEFAULT_POLICY_TEXT).unwrap();
        assert_eq!(p, default_policy());
        assert_eq!(p.raw, DEFAULT_POLICY_TEXT);
        let acl = Acl::new(&[Arc::new(p)]);
        let none = Data::new();
        // bao token capabilities with the default policy:
        assert_eq!(acl.capabilities("auth/token/lookup-self"), ["read"]);
        assert!(
            acl.check("auth/token/lookup-self", Operation::Read, &none)
                .allowed
        );
        // cubbyhole/x -> create, delete, list, read, update
        assert_eq!(
            acl.capabilities("cubbyhole/x"),
            ["create", "delete", "list", "read", "update"]
        );
        assert!(acl.check("cubbyhole/a/b", Operation::Create, &none).allowed);
        // identity/oidc/provider/foo/authorize -> read, update
        assert_eq!(
            acl.capabilities("identity/oidc/provider/foo/authorize"),
            ["read", "update"]
        );
        assert_eq!(acl.capabilities("sys/tools/hash"), ["update"]);
        assert_eq!(acl.capabilities("secret/x"), ["deny"]);
        assert_eq!(acl.capabilities("identity/entity/id/"), ["deny"]);
        assert!(
            !acl.check("auth/token/lookup-self", Operation::Delete, &none)
                .allowed
        );
    }

    #[test]
    fn root_policy_is_reserved_and_makes_a_root_acl() {
        let root = root_policy();
        assert!(root.is_root());
        assert!(Acl::new(&[Arc::new(root)]).is_root());
        assert!(!Acl::new(&[Arc::new(default_policy())]).is_root());
    }
}
