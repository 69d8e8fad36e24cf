# Policy for silo processes (least privilege):
#   consul acl policy create -name carml-silo -rules @deploy/consul/acl/carml-silo.hcl
#   consul acl token create -description "carml silos" -policy-name carml-silo
# Replace "carml" in carml/orleans/carml/ if Carml:Silo:ClusterId differs, and "carml/" if Carml:Registry:Root differs.

# The Orleans membership table of this cluster: rows, heartbeats, version (read and CAS writes in /v1/txn).
key_prefix "carml/orleans/carml/" {
  policy = "write"
}

# The silo's own entry in the browsable registry (written with a TTL session).
key_prefix "carml/agents/carml-silo/" {
  policy = "write"
}

# Sessions back TTL keys; they are created on the local agent's node.
session_prefix "" {
  policy = "write"
}

# Register, heartbeat and deregister the carml-silo service and its TTL check on the local agent.
service "carml-silo" {
  policy = "write"
}

# Agent endpoints resolve the node the service lives on.
node_prefix "" {
  policy = "read"
}
