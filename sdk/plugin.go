package sdk

import (
	"context"
	"net/http"
)

// Plugin is what every plugin implements. What it serves is told by the
// optional interfaces it also implements: http.Handler for HTTP routes,
// StreamHandler for tcp listeners, DatagramHandler for udp listeners.
type Plugin interface {
	// Describe names the plugin and declares its config schemas.
	Describe() Description
	// Configure receives the decoded configuration once, before any
	// request. Returned errors make the configuration invalid.
	Configure(ctx context.Context, cfg *Config) Diagnostics
}

// HTTPPlugin is a Plugin that serves HTTP routes. Requests arrive as
// ordinary *http.Request values: the body streams from the core, path values
// are set (r.PathValue), RemoteAddr is the client's, and the context ends
// when the client goes away or the route's timeout passes. RouteID names the
// route. To serve a file from disk without copying it through the plugin,
// call ServeFile.
type HTTPPlugin interface {
	Plugin
	http.Handler
}

type routeKey struct{}

// RouteID returns the id of the route ("GET /pattern") that r came through,
// as in Config.Routes.
func RouteID(r *http.Request) string {
	id, _ := r.Context().Value(routeKey{}).(string)
	return id
}

// WithRouteID returns a copy of r naming route id; for tests that call a
// plugin's handler directly.
func WithRouteID(r *http.Request, id string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, id))
}
