// Package router holds the route table of every HTTP listener and swaps it
// atomically, so a reload changes routes between two requests, never
// during one, and tells when the requests that started on a replaced table
// have all finished, so the plugins behind it can be stopped.
package router

import (
	"context"
	"fmt"
	"net/http"
	"sync"
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
// does the matching: wildcards, precedence, 404, and 405 with Allow; each
// listener's routeMemo (memo.go) remembers its answers for plain routes.
type Table struct {
	muxes map[string]*http.ServeMux
	memos map[string]*routeMemo

	inflight atomic.Int64
	mu       sync.Mutex
	idle     chan struct{} // closed when inflight drops to 0 after retire
	retired  bool
}

// NewTable builds the table for the given listener names. A pattern
// ServeMux rejects is returned as an error (config validation reports it
// earlier, with its position).
func NewTable(listeners []string, routes []Route) (t *Table, err error) {
	t = &Table{
		muxes: make(map[string]*http.ServeMux, len(listeners)),
		memos: make(map[string]*routeMemo, len(listeners)),
	}
	for _, l := range listeners {
		t.muxes[l] = http.NewServeMux()
		t.memos[l] = new(routeMemo)
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
// flight finish on the table they started with. It returns the table it
// replaced (nil at first), whose Drain tells when those requests are done.
func (r *Router) Swap(t *Table) (old *Table) {
	old = r.cur.Swap(t)
	if old != nil {
		old.retire()
	}
	return old
}

// Current returns the table requests start on now.
func (r *Router) Current() *Table { return r.cur.Load() }

// Handler returns the handler of one listener. It looks the table up per
// request, so it survives swaps.
func (r *Router) Handler(listener string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := r.enter()
		if t == nil {
			http.Error(w, "503 service unavailable: starting", http.StatusServiceUnavailable)
			return
		}
		defer t.leave()
		mux, ok := t.muxes[listener]
		if !ok {
			http.NotFound(w, req)
			return
		}
		t.memos[listener].serve(mux, w, req)
	})
}

// enter counts a request in on the current table. A request that loaded a
// table just as Swap replaced it counts itself out again and takes the new
// one, so once a retired table's count reaches zero it never rises again.
func (r *Router) enter() *Table {
	for {
		t := r.cur.Load()
		if t == nil {
			return nil
		}
		t.inflight.Add(1)
		if r.cur.Load() == t {
			return t
		}
		t.leave()
	}
}

func (t *Table) leave() {
	if t.inflight.Add(-1) == 0 {
		t.mu.Lock()
		if t.retired {
			t.closeIdle()
		}
		t.mu.Unlock()
	}
}

func (t *Table) retire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retired = true
	if t.inflight.Load() == 0 {
		t.closeIdle()
	}
}

// closeIdle closes idle once; t.mu is held.
func (t *Table) closeIdle() {
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	select {
	case <-t.idle:
	default:
		close(t.idle)
	}
}

// InFlight returns how many requests are being served on t.
func (t *Table) InFlight() int64 { return t.inflight.Load() }

// Drain waits until every request that started on t has finished, or ctx
// ends (it then returns ctx's error). Only a table Swap has replaced
// drains; on the current one Drain waits for ctx.
func (t *Table) Drain(ctx context.Context) error {
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
