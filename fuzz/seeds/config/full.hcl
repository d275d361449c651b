storage "redb" { path = "/var/lib/strongroom/data.redb" }
listener "tcp" { address = "127.0.0.1:8200"  tls_disable = true  max_request_size = 33554432 }
listener "tcp" {
  address       = "0.0.0.0:8201"
  tls_cert_file = "/etc/strongroom/cert.pem"
  tls_key_file  = "/etc/strongroom/key.pem"
}
api_addr = "https://127.0.0.1:8200"
cluster_name = "c1"
default_lease_ttl = "1h"
max_lease_ttl = "768h"
log_level = "info"
disable_mlock = true
ui = true
