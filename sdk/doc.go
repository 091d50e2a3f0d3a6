// Package sdk is what a socketd plugin imports: the plugin contract, the
// gRPC glue and the helpers a handler needs.
//
// A plugin is a separate program that socketd starts and talks to over gRPC
// (hashicorp/go-plugin). The core owns every socket, parses every request
// and enforces every limit; the plugin only answers. A complete HTTP plugin:
//
//	type hello struct{}
//
//	func (hello) Describe() sdk.Description {
//		return sdk.Description{Name: "hello", Version: "1.0.0"}
//	}
//
//	func (hello) Configure(context.Context, *sdk.Config) sdk.Diagnostics { return nil }
//
//	func (hello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
//		fmt.Fprintln(w, "hello from a plugin")
//	}
//
//	func main() { sdk.Serve(hello{}) }
//
// Build it as socketd-plugin-hello, put it in plugin_dir, declare
// plugin "hello" {} and a route "GET /hello" { plugin = "hello" } in
// config.hcl, and reload socketd.
//
// Requests reach the handler as ordinary *http.Request values whose body
// streams from the core; responses stream back in 64 KiB chunks. ServeFile
// asks the core to serve a file from disk itself, so its bytes never cross
// the plugin connection. Tcp and udp listeners are served by implementing
// StreamHandler or DatagramHandler as well.
package sdk
