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

# The clock is little work a request: on one processor (GOMAXPROCS=1) its
# threads hand requests to each other without waking one another, which
# saves about a fifth of its CPU under load.
plugin "timeserver" {
  processors = 1
}

route "GET /" {
  plugin = "static"
}

# The time of day: text, or JSON with Accept: application/json or ?format=json;
# ?tz=Asia/Shanghai for any IANA zone. Try: curl 127.0.0.1:8000/time?tz=Asia/Shanghai
route "GET /time" {
  plugin = "timeserver"
}

# --- guestbook (the tutorial's LAMP step; plugins/sqlite/README.md) ---
# A guestbook in SQLite: ./data/guestbook.db is created at start, the schema
# applied once, and each new file of ./data/migrations after it. Try it in a
# browser at http://127.0.0.1:8000/guestbook, or:
#   curl -d name=Ada -d message=Hello 127.0.0.1:8000/guestbook
#   curl '127.0.0.1:8000/api/entries?limit=5'
#   curl '127.0.0.1:8000/api/entries?_format=csv'
# The entries are in ./data/guestbook.db (git-ignored); remove it to start over.
plugin "sqlite" {
  config {
    database   = "./data/guestbook.db"
    schema     = file("./data/schema.sql")
    migrations = "./data/migrations"
  }
}

# The page: the latest entries and the form (html/template, auto-escaped).
route "GET /guestbook" {
  plugin = "sqlite"
  config {
    query    = "SELECT id, name, message, created FROM entries ORDER BY id DESC LIMIT :limit"
    params   = { limit = { type = "integer", default = 50, min = 1, max = 500 } }
    template = "./data/guestbook.html"
  }
}

# Signing: a form gets 303 back to the page, a JSON client gets JSON.
route "POST /guestbook" {
  plugin = "sqlite"
  config {
    exec = "INSERT INTO entries (name, message) VALUES (:name, :message) RETURNING id, created"
    params = {
      name    = { type = "text", required = true, max_length = 100 }
      message = { type = "text", required = true, max_length = 2000 }
    }
    redirect = "/guestbook?added={id}#entry-{id}"
  }
}

# The same entries as JSON (or ?_format=csv, ndjson, html).
route "GET /api/entries" {
  plugin = "sqlite"
  config {
    query  = "SELECT id, name, message, created FROM entries ORDER BY id DESC LIMIT :limit"
    params = { limit = { type = "integer", default = 50, min = 1, max = 500 } }
  }
}

# One entry by id: a {name} of the path is a parameter.
route "GET /api/entries/{id}" {
  plugin = "sqlite"
  config {
    query  = "SELECT id, name, message, created FROM entries WHERE id = :id"
    params = { id = { type = "integer", required = true } }
  }
}
