# socketd's config as installed by `make install` (/etc/socketd/config.hcl),
# for the units beside it. Listener "web" takes the socket socketd.socket
# passes (FileDescriptorName=web); its address is used only when socketd
# runs without socket activation.

plugin_dir       = "/usr/local/lib/socketd/plugins"
shutdown_timeout = "10s"
# `socketd reload -config /etc/socketd/config.hcl` signals this pid.
pid_file = "/run/socketd/socketd.pid"

# /healthz, /readyz and Prometheus /metrics, on loopback.
admin {
  address = "127.0.0.1:9180"
}

listener "web" {
  protocol = "http"
  address  = ":80"
}

# RFC 867 daytime: one line, then close.
listener "daytime" {
  protocol                   = "tcp"
  address                    = ":13"
  plugin                     = "timeserver"
  max_connections            = 256
  max_connections_per_source = 16
  idle_timeout               = "10s"
  config {
    service = "daytime"
  }
}

plugin "static" {
  config {
    root = "/usr/local/share/socketd/www"
  }
}

plugin "timeserver" {}

route "GET /" {
  plugin = "static"
}

route "GET /time" {
  plugin = "timeserver"
}
