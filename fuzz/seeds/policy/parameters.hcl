# Parameter constraints and wrapping bounds, with a legacy `policy` block,
# a `+` segment wildcard, a `*` prefix and an explicit deny.
path "secret/apps/*" {
  capabilities = ["create", "read", "update", "patch", "list"]
  allowed_parameters = {
    "ttl"   = ["1h", "2h*"]
    "owner" = []
    "*"     = []
  }
  denied_parameters = {
    "admin"    = [true]
    "password" = ["*plaintext*"]
  }
  required_parameters = ["owner"]
  min_wrapping_ttl    = "1m"
  max_wrapping_ttl    = "1h30m"
}

path "secret/+/config" {
  capabilities = ["read", "sudo"]
  min_wrapping_ttl = 60
}

path "sys/wrapping/wrap" {
  capabilities = ["update"]
  min_wrapping_ttl = "30s"
  max_wrapping_ttl = 0
}

path "kv1/legacy" {
  policy = "write"
}

path "secret/apps/forbidden" {
  capabilities = ["deny"]
}
