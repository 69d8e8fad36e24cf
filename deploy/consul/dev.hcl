# Single-node Consul for a developer machine:  consul agent -dev -config-file=dev.hcl
# -dev keeps everything in memory: a restart loses the membership table, the catalog and the registry.
# ACLs stay off here; to try the policies below locally, set acl.enabled = true and run `consul acl bootstrap`.

datacenter  = "dc1"
node_name   = "consul-dev"
client_addr = "127.0.0.1"

ui_config {
  enabled = true
}

acl {
  enabled        = false
  default_policy = "allow"
}
