# The ACL policy the benchmark's measured requests run under
# (`--token-policy bench/policy.hcl`): exactly what the workloads need, so
# every measured request goes through a real policy check.
path "kv1/*" {
  capabilities = ["create", "read", "update", "list"]
}
