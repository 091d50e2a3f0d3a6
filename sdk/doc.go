// Package sdk is what a socketd plugin imports: the plugin contract, the
// gRPC glue, and the helpers a handler needs.
//
// A plugin is a separate program that socketd starts and talks to over gRPC
// (hashicorp/go-plugin). The core owns every socket, parses every request,
// enforces every limit and reads config.hcl; the plugin declares what
// configuration it accepts and answers requests. A crash of the plugin
// costs the requests it was answering (502), never the daemon: socketd
// restarts it.
//
// # A complete plugin
//
// A plugin implements Plugin (Describe and Configure) and, to serve HTTP
// routes, http.Handler:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"net/http"
//
//		"github.com/socketd/socketd/sdk"
//	)
//
//	type hello struct {
//		Greeting string `json:"greeting"` // from the plugin block's config
//	}
//
//	func (*hello) Describe() sdk.Description {
//		return sdk.Description{
//			Name:    "hello",
//			Version: "1.0.0",
//			PluginSchema: sdk.Schema{
//				{Name: "greeting", Type: "string", Default: "Hello", Description: "Said before the name."},
//			},
//		}
//	}
//
//	func (h *hello) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
//		if err := cfg.Plugin.Decode(h); err != nil {
//			return sdk.Diagnostics{{Summary: "invalid hello config", Detail: err.Error()}}
//		}
//		if h.Greeting == "" {
//			return sdk.Diagnostics{{Path: []string{"greeting"}, Summary: "greeting is empty",
//				Detail: "Set a word, or remove greeting for the default."}}
//		}
//		return nil
//	}
//
//	func (h *hello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
//		fmt.Fprintf(w, "%s, %s!\n", h.Greeting, r.PathValue("name"))
//	}
//
//	func main() { sdk.Serve(&hello{}) }
//
// Build it as socketd-plugin-hello, put it in socketd's plugin_dir, and
// name it in config.hcl:
//
//	plugin "hello" {
//	  config {
//	    greeting = "Bonjour"
//	  }
//	}
//
//	route "GET /hello/{name}" {
//	  plugin = "hello"
//	}
//
// then reload socketd (systemctl reload socketd, or kill -HUP its pid):
// the core validates the new config, starts the plugin, and swaps the
// routes in without dropping a request. examples/hello in the repository is
// this plugin as a module of its own, with a README that walks through it.
// Routes have config blocks too (RouteSchema, Config.Routes); RouteID tells
// a handler which route a request came through.
//
// # Configuration
//
// Describe declares a Schema for each config block the plugin takes: the
// plugin "NAME" { config {...} } block, a route's config block, and a tcp or
// udp listener's. The core decodes each block against its schema before the
// plugin sees it: a misspelt or missing attribute, or a value of the wrong
// type, is reported at its line and column in config.hcl, and socketd does
// not start (or a reload keeps the running config).
//
// Configure then receives every block as JSON (RawConfig): each declared
// attribute is present, as null when config.hcl leaves it out, or as its
// Attribute.Default, which the SDK fills in. Decode or RawConfig.Decode
// turn a block into a struct with json tags. Configure checks what a schema
// cannot (a directory exists, two attributes agree) and returns
// Diagnostics; each names its block (Route, Listener, or neither for the
// plugin block) and attribute Path, and the core prints it at that place
// in config.hcl. Configure is called once per process, before any request:
// a reload that changes the plugin's configuration starts a new process.
// `socketd validate` sets Config.CheckOnly: check everything, but create
// no file and change no database, since the config is not going to run.
//
// # HTTP
//
// Requests reach ServeHTTP as ordinary *http.Request values. The body
// streams from the core in chunks; path wildcards are set (r.PathValue);
// RemoteAddr is the client's; r.TLS is non-nil when the client came over
// TLS; RouteID and Listener name the route and listener; the context ends
// when the client goes away or the route's timeout passes. The response
// streams back in 64 KiB chunks (the ResponseWriter is an http.Flusher).
// A panic is answered with 500 and logged; it does not end the plugin.
// As with net/http, the ResponseWriter (and its header map) must not be
// used once ServeHTTP returns: the SDK reuses it for a later request.
//
// ServeFile answers with a file from disk that the core serves itself, with
// Range, conditional requests, HEAD and sendfile, so its bytes never cross
// the plugin connection (X-Sendfile style). FileFor and IdentityOf pin the
// exact file resolved, so a file swapped in between is never served.
//
// HandlerPlugin serves any existing http.Handler (a ServeMux, a router) as
// a plugin with no configuration:
//
//	func main() { sdk.Serve(sdk.HandlerPlugin("hello", "1.0.0", mux)) }
//
// # TCP and UDP
//
// A plugin that also implements StreamHandler serves tcp listeners
// (listener "NAME" { protocol = "tcp" plugin = "..." }): each accepted
// connection is one ServeStream call with a Conn to read and write. One
// that implements DatagramHandler serves udp listeners: each datagram is
// one ServeDatagram call whose result is the reply. Panics there are
// recovered too and close only the connection (or drop the datagram).
//
// # Logging
//
// Serve makes log/slog's default logger write JSON lines that the core
// re-logs at their level, tagged with the plugin's name; Logger returns
// that logger. Write nothing to stdout: it carries go-plugin's handshake.
//
// # Memory
//
// Serve lets the plugin's heap grow to 16 MB before Go's collector runs
// (Go's own minimum is 4 MB); a heap that keeps more than 8 MB live is
// paced by Go as usual. Under load a small plugin then spends about a
// sixth less CPU on collections, for a few MB of memory. GOGC in the
// environment turns this off.
//
// # Testing
//
// Package sdktest runs a plugin behind the real protocol, in-process: it
// checks config blocks against the schema as the core does, sends requests
// through the routes, shows file answers (path, identity, cacheable), dials
// stream handlers and sends datagrams.
//
//	h := sdktest.New(t, &hello{})
//	h.MustConfigure(&sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /hello/{name}"}}})
//	resp, err := h.Do(httptest.NewRequest("GET", "/hello/gopher", nil))
//
// # Protocol and versions
//
// The protocol is sdk/proto/socketd.proto, carried by hashicorp/go-plugin
// over gRPC; sdk/PROTOCOL.md describes what a plugin in any language must
// implement (examples/node-plugin is one in JavaScript). The handshake
// carries ProtocolVersion; a socketd refuses a plugin of another version
// with a message naming both. Fields are only ever added to the protocol;
// a change that would break existing plugins bumps the version.
package sdk
