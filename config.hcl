# socketd's default config: the tutorial's page on http://127.0.0.1:8000/,
# the time of day over HTTP and the classic inetd time services.
# Relative paths are relative to this file's folder. `bin/socketd validate`
# checks a config without binding anything.

plugin_dir = "./bin"

listener "web" {
  protocol = "http"
  address  = env("SOCKETD_ADDR", "127.0.0.1:8000")
}

# The tutorial's very first server: send a line ("can you hear me?"), get
# "Yes" back, and the connection closes. Try: echo "can you hear me?" | nc 127.0.0.1 1300
listener "hello" {
  protocol = "tcp"
  address  = env("SOCKETD_HELLO_ADDR", "127.0.0.1:1300")
  plugin   = "static"
  config {
    reply = "Yes"
  }
}

# RFC 867 daytime: one human-readable line, then close. Try: nc 127.0.0.1 1313
listener "daytime" {
  protocol = "tcp"
  address  = env("SOCKETD_DAYTIME_ADDR", "127.0.0.1:1313")
  plugin   = "timeserver"
  max_connections            = 256
  max_connections_per_source = 16
  idle_timeout               = "10s"
  config {
    service = "daytime"
  }
}

# RFC 868 time: four bytes (seconds since 1900), then close.
# Try: rdate -p -o 1337 127.0.0.1
listener "time" {
  protocol = "tcp"
  address  = env("SOCKETD_TIME_ADDR", "127.0.0.1:1337")
  plugin   = "timeserver"
  max_connections            = 256
  max_connections_per_source = 16
  idle_timeout               = "10s"
  config {
    service = "time"
  }
}

# SNTP (RFC 4330) over UDP. UDP answers go to whatever address a datagram
# claims, so keep UDP services on loopback or behind allow lists.
# Try: rdate -p -n -o 1123 127.0.0.1
listener "sntp" {
  protocol = "udp"
  address  = env("SOCKETD_SNTP_ADDR", "127.0.0.1:1123")
  plugin   = "timeserver"
  allow    = ["127.0.0.0/8", "::1/128"]
  config {
    service = "sntp"
  }
}

# Files, text and images from ./www (index.html and test.jpg).
plugin "static" {
  config {
    root = "./www"
  }
}

plugin "timeserver" {}

route "GET /" {
  plugin = "static"
}

# The time of day: text, or JSON with Accept: application/json or ?format=json;
# ?tz=Asia/Shanghai for any IANA zone. Try: curl 127.0.0.1:8000/time?tz=Asia/Shanghai
route "GET /time" {
  plugin = "timeserver"
}
