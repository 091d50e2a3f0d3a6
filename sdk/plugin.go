package sdk

import (
	"context"
	"net/http"
	"strings"
)

// Plugin is what every plugin implements. What it serves is told by the
// optional interfaces it also implements: http.Handler for HTTP routes
// (see HTTPPlugin), StreamHandler for tcp listeners, DatagramHandler for
// udp listeners. A plugin may implement any mix of them.
type Plugin interface {
	// Describe names the plugin and declares its config schemas. It is
	// called once, at start, and must not depend on the configuration.
	Describe() Description
	// Configure receives the decoded configuration once, before any
	// request, in a fresh process: a reload or a restart after a crash
	// starts a new process and configures it again. Diagnostics of
	// severity Error make the configuration invalid (socketd does not
	// start, a reload keeps the running config).
	Configure(ctx context.Context, cfg *Config) Diagnostics
}

// HTTPPlugin is a Plugin that serves HTTP routes.
//
// Requests arrive as ordinary *http.Request values: the body streams from
// the core, the route pattern's wildcards are set (r.PathValue),
// RemoteAddr is the client's, and the context ends when the client goes
// away or the route's timeout passes. RouteID and Listener name the route
// and listener the request came through. r.TLS is non-nil when the client
// connected over TLS; the core terminates TLS, so the value is an empty
// tls.ConnectionState that only says so.
//
// The response streams back to the core in 64 KiB chunks; the
// ResponseWriter implements http.Flusher for streamed answers. To serve a
// file from disk without copying it through the plugin, call ServeFile.
// A panic in the handler is logged and answered with 500 (or a broken
// connection once the head is out), as net/http does; it does not end the
// plugin.
type HTTPPlugin interface {
	Plugin
	http.Handler
}

type (
	routeKey    struct{}
	listenerKey struct{}
)

// RouteID returns the id of the route ("GET /pattern", as written in
// config.hcl and listed in Config.Routes) that r came through.
func RouteID(r *http.Request) string {
	if c, ok := r.Context().(valuesContext); ok {
		return c.values().route
	}
	id, _ := r.Context().Value(routeKey{}).(string)
	return id
}

// WithRouteID returns a copy of r naming route id, for tests that call a
// handler directly (sdktest sends it to the plugin as the core would).
func WithRouteID(r *http.Request, id string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, id))
}

// Listener returns the name of the listener (listener "NAME" in
// config.hcl) that accepted r's connection.
func Listener(r *http.Request) string {
	if c, ok := r.Context().(valuesContext); ok {
		return c.values().listener
	}
	name, _ := r.Context().Value(listenerKey{}).(string)
	return name
}

// WithListener returns a copy of r naming listener name, for tests that
// call a handler directly (sdktest sends it to the plugin as the core
// would).
func WithListener(r *http.Request, name string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), listenerKey{}, name))
}

// HandlerPlugin serves h as a plugin named name, the quickest way to put an
// existing http.Handler (a ServeMux, a router from another library) behind
// socketd:
//
//	func main() { sdk.Serve(sdk.HandlerPlugin("hello", "1.0.0", mux)) }
//
// It declares no config, so the plugin block and the routes that use it
// take no config block. h sees the full request path, as the client sent it.
func HandlerPlugin(name, version string, h http.Handler) HTTPPlugin {
	return &handlerPlugin{name: name, version: version, h: h}
}

type handlerPlugin struct {
	name, version string
	h             http.Handler
}

func (p *handlerPlugin) Describe() Description {
	return Description{Name: p.name, Version: p.version}
}

func (p *handlerPlugin) Configure(context.Context, *Config) Diagnostics { return nil }

func (p *handlerPlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.h.ServeHTTP(w, r) }

// PatternWildcards lists the names of a route pattern's wildcards ({id},
// {rest...}; not {$}), in order. A route's id is a net/http ServeMux
// pattern, "[METHOD ][HOST]/PATH", and these names are the path values the
// core sends (r.PathValue).
func PatternWildcards(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return names
		}
		if name := strings.TrimSuffix(pattern[i+1:i+j], "..."); name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[i+j+1:]
	}
}
