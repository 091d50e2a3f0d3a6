// Package router holds the route table of every HTTP listener and swaps it
// atomically, so a reload changes routes between two requests, never
// during one.
package router

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// Route binds a ServeMux pattern ("GET /guestbook", "/static/{path...}") to
// a handler on some listeners.
type Route struct {
	Pattern string
	// Listeners the route is served on; empty means every listener in the
	// table.
	Listeners []string
	Handler   http.Handler
}

// Table maps each listener to its request multiplexer. net/http's ServeMux
// does the matching: wildcards, precedence, 404, and 405 with Allow.
type Table struct {
	muxes map[string]*http.ServeMux
}

// NewTable builds the table for the given listener names. A pattern
// ServeMux rejects is returned as an error (config validation reports it
// earlier, with its position).
func NewTable(listeners []string, routes []Route) (t *Table, err error) {
	t = &Table{muxes: make(map[string]*http.ServeMux, len(listeners))}
	for _, l := range listeners {
		t.muxes[l] = http.NewServeMux()
	}
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("route table: %v", p)
		}
	}()
	for _, r := range routes {
		targets := r.Listeners
		if len(targets) == 0 {
			targets = listeners
		}
		for _, l := range targets {
			mux, ok := t.muxes[l]
			if !ok {
				return nil, fmt.Errorf("route %q: no http listener %q", r.Pattern, l)
			}
			mux.Handle(r.Pattern, r.Handler)
		}
	}
	return t, nil
}

// Router serves requests through the current Table.
type Router struct {
	cur atomic.Pointer[Table]
}

// Swap installs t for all requests that start from now on; requests in
// flight finish on the table they started with.
func (r *Router) Swap(t *Table) { r.cur.Store(t) }

// Handler returns the handler of one listener. It looks the table up per
// request, so it survives swaps.
func (r *Router) Handler(listener string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := r.cur.Load()
		if t == nil {
			http.Error(w, "503 service unavailable: starting", http.StatusServiceUnavailable)
			return
		}
		mux, ok := t.muxes[listener]
		if !ok {
			http.NotFound(w, req)
			return
		}
		mux.ServeHTTP(w, req)
	})
}
