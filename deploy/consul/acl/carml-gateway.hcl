# Policy for gateway processes (least privilege):
#   consul acl policy create -name carml-gateway -rules @deploy/consul/acl/carml-gateway.hcl
#   consul acl token create -description "carml gateways" -policy-name carml-gateway
# Replace "carml" in carml/orleans/carml/ if Carml:Silo:ClusterId differs.

# Gateways only read the membership table (to find the silos' client ports); they never write it.
key_prefix "carml/orleans/carml/" {
  policy = "read"
}

# The gateway's own entry and the published models in the browsable registry.
key_prefix "carml/agents/carml-gateway/" {
  policy = "write"
}

key_prefix "carml/models/" {
  policy = "write"
}

# The lock through which the gateways elect the one that publishes the models (docs/consul.md, "The model publisher").
key "carml/locks/model-publisher" {
  policy = "write"
}

session_prefix "" {
  policy = "write"
}

service "carml-gateway" {
  policy = "write"
}

# Read the silos' catalog entries (e.g. for dashboards and health queries).
service "carml-silo" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}
