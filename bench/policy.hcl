# The ACL policy the benchmark's measured requests run under
# (`--token-policy bench/policy.hcl`): exactly what the workloads need, so
# every measured request goes through a real policy check.
path "kv1/*" {
  capabilities = ["create", "read", "update", "list"]
}

# kv2-read, kv2-write: KV version 2 keeps secrets under data/; the mount's
# config (max_versions) is set up with the root token, so needs no rule.
path "kv2/data/*" {
  capabilities = ["create", "read", "update"]
}

# token-create: child tokens with the `default` policy (which the bench
# token holds too, so it is a subset of the parent's policies).
path "auth/token/create" {
  capabilities = ["update"]
}

# wrap, wrap-unwrap: the `default` policy grants this as well; stated here so
# the workloads do not depend on what `default` holds. The unwrap needs no
# rule: it authenticates with the wrapping token itself.
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
