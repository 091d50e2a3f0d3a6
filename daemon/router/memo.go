package router

import (
	"net/http"
	pathpkg "path"
	"strings"
	"sync"
)

// memoLimit bounds a listener's memo. Clients choose the paths, so a
// full memo starts over rather than grow: a hot path comes back at its
// next request, and a flood of distinct paths costs only what matching
// without a memo costs.
const memoLimit = 4096

// memoKeyMax bounds what one answer's key may hold (method, Host and
// path together), so that a full memo holds about 1 MB of keys, whatever
// the clients send. Longer requests are matched each time.
const memoKeyMax = 256

// routeMemo remembers which route answers a method, Host and path on one
// listener. ServeMux's matching allocates on every request (the wildcard
// slots it fills, the "/"-appended retry of a pattern that ends in a
// slash), and those allocations were most of what a kept file's request
// still cost, so they set how often the collector stops the daemon.
// A table's routes never change, and a reload builds a new table, so an
// answer once found holds for the table's life.
type routeMemo struct {
	mu sync.RWMutex
	m  map[routeKey]routeHit
}

type routeKey struct{ method, host, path string }

// routeHit is a remembered answer: the route's handler and pattern, or
// no handler for a route with named wildcards, whose PathValues only
// ServeMux.ServeHTTP can set; the memo then spares only the first match.
type routeHit struct {
	handler http.Handler
	pattern string
}

func (m *routeMemo) get(k routeKey) (routeHit, bool) {
	m.mu.RLock()
	hit, ok := m.m[k]
	m.mu.RUnlock()
	return hit, ok
}

func (m *routeMemo) put(k routeKey, hit routeHit) {
	// The key's strings may be slices of a buffer the front reuses.
	k = routeKey{strings.Clone(k.method), strings.Clone(k.host), strings.Clone(k.path)}
	m.mu.Lock()
	if m.m == nil || len(m.m) >= memoLimit {
		m.m = make(map[routeKey]routeHit)
	}
	m.m[k] = hit
	m.mu.Unlock()
}

// serve answers r as mux.ServeHTTP would, from the memo when it can.
func (m *routeMemo) serve(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	// ServeMux treats these apart (no path cleaning, 400 for "*").
	if r.Method == http.MethodConnect || r.RequestURI == "*" {
		mux.ServeHTTP(w, r)
		return
	}
	path := r.URL.EscapedPath()
	key := routeKey{r.Method, r.Host, path}
	if hit, ok := m.get(key); ok {
		if hit.handler == nil {
			mux.ServeHTTP(w, r)
			return
		}
		r.Pattern = hit.pattern
		hit.handler.ServeHTTP(w, r)
		return
	}
	h, pattern := mux.Handler(r)
	keep := len(key.method)+len(key.host)+len(key.path) <= memoKeyMax
	if hasNamedWildcard(pattern) {
		// Whatever ServeMux answers for these (the route, or a redirect),
		// it answers the same each time.
		if keep {
			m.put(key, routeHit{pattern: pattern})
		}
		mux.ServeHTTP(w, r)
		return
	}
	if keep && servesDirectly(pattern, path) {
		m.put(key, routeHit{h, pattern})
	}
	// What ServeMux.ServeHTTP does for a pattern without named wildcards,
	// and for its redirects, 404 and 405.
	r.Pattern = pattern
	h.ServeHTTP(w, r)
}

// hasNamedWildcard reports whether a ServeMux pattern has a wildcard other
// than its closing "{$}".
func hasNamedWildcard(pattern string) bool {
	return strings.Contains(strings.TrimSuffix(pattern, "{$}"), "{")
}

// servesDirectly reports whether pattern, which ServeMux chose for the
// escaped request path, answers that path itself rather than through a
// redirect (to the cleaned path, or to the path with a slash added).
// Only patterns without escapes count (serve has sent those with named
// wildcards to ServeMux already). It may say no where ServeMux would
// serve directly; such requests are just not remembered.
func servesDirectly(pattern, path string) bool {
	if pattern == "" || strings.Contains(pattern, "%") {
		return false // no route (404, 405), or one with escapes
	}
	if !isCleanPath(path) {
		return false
	}
	// "[METHOD ][HOST]/PATH": the method ends at a space or tab.
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	i := strings.IndexByte(pattern, '/')
	if i < 0 {
		return false
	}
	want := pattern[i:]
	switch {
	case strings.HasSuffix(want, "/{$}"):
		return path == strings.TrimSuffix(want, "{$}")
	case strings.HasSuffix(want, "/"):
		// An anonymous multi wildcard: the path, longer or equal.
		return strings.HasPrefix(path, want)
	default:
		return path == want
	}
}

// isCleanPath reports whether ServeMux would serve path as it is rather
// than redirect to a cleaned form (no "//", "/./", "/../", and rooted).
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	// Clean returns a prefix of p, without allocating, when p is clean.
	clean := pathpkg.Clean(p)
	if clean == p {
		return true
	}
	// ServeMux keeps a trailing slash.
	return clean != "/" && len(p) == len(clean)+1 && p[len(p)-1] == '/' && p[:len(clean)] == clean
}
