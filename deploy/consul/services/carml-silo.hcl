# Reference definition of the catalog entry every silo registers for itself at start (through
# /v1/agent/service/register); shown here so operators know what to expect. Load it with
# `consul services register` only for a silo that cannot register itself.
service {
  id      = "carml-silo-10.0.0.11-11111"
  name    = "carml-silo"
  address = "10.0.0.11"
  port    = 11111
  tags    = ["onnxruntime", "orleans"]

  meta = {
    silo_address = "10.0.0.11:11111@0"
    cluster_id   = "carml"
    gateway_port = "30000"
    gpu_count    = "0"
    frameworks   = "onnxruntime"
  }

  check {
    id                                = "service:carml-silo-10.0.0.11-11111"
    name                              = "carml-silo TTL"
    ttl                               = "15s"
    deregister_critical_service_after = "1m"
    notes                             = "Marked passing by the silo itself while it is Active; critical when it stops."
  }
}
