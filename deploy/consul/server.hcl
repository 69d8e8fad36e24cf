# Consul server for a 3-server cluster (one file per server; change node_name, bind/advertise addresses).
# Start:  consul agent -config-file=server.hcl
# Then, once, on one server:  consul acl bootstrap   (keep the SecretID: it is the management token)

datacenter = "dc1"
node_name  = "consul-server-1"
server     = true

# Persistent data: the Orleans membership table lives here. Never run production on -dev (it keeps nothing).
data_dir = "/opt/consul/data"

bootstrap_expect = 3
retry_join       = ["consul-server-1", "consul-server-2", "consul-server-3"]

bind_addr      = "{{ GetPrivateIP }}"
client_addr    = "0.0.0.0"
advertise_addr = "{{ GetPrivateIP }}"

ui_config {
  enabled = true
}

performance {
  raft_multiplier = 1
}

acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}

# Keep critical services briefly visible for operators before Consul reaps them.
reconnect_timeout = "72h"

telemetry {
  disable_hostname          = true
  prometheus_retention_time = "1m"
}
