# Read-only policy for operators browsing the cluster in the Consul UI:
#   consul acl policy create -name carml-operator-read -rules @deploy/consul/acl/carml-operator-read.hcl
key_prefix "carml/" {
  policy = "read"
}

service_prefix "carml-" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}
