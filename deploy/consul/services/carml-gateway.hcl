# Reference definition of the catalog entry every gateway registers for itself at start.
service {
  id      = "carml-gateway-10.0.0.21-8000"
  name    = "carml-gateway"
  address = "10.0.0.21"
  port    = 8000
  tags    = ["kserve-v2", "http", "grpc"]

  meta = {
    http_url  = "http://10.0.0.21:8000/"
    grpc_url  = "http://10.0.0.21:8001/"
    grpc_port = "8001"
  }

  check {
    id                                = "service:carml-gateway-10.0.0.21-8000"
    name                              = "carml-gateway TTL"
    ttl                               = "15s"
    deregister_critical_service_after = "1m"
    notes                             = "Passing once the gateway is ready to serve."
  }
}
