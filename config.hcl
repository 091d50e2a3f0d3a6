# socketd's default config: the tutorial's page on http://127.0.0.1:8000/.
# Relative paths are relative to this file's folder.

plugin_dir = "./bin"

listener "web" {
  protocol = "http"
  address  = env("SOCKETD_ADDR", "127.0.0.1:8000")
}

# Files, text and images from ./www (index.html and test.jpg).
plugin "static" {
  config {
    root = "./www"
  }
}

route "GET /" {
  plugin = "static"
}
