package router

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// memoRoutes covers what the memo must tell apart: exact and prefix
// patterns, {$}, named wildcards, hosts, methods, escapes, and the
// trailing-slash and clean-path redirects ServeMux makes.
var memoRoutes = map[string][]string{
	"web": {
		"GET /", "GET /exact", "GET /static/", "GET /dir/{$}", "GET /items/{id}",
		"GET /files/{rest...}", "POST /form", "GET /tree/", "example.com/",
		"GET example.com/exact", "GET /a%20b", "GET	/tab",
	},
	// No catch-all: 404 and 405 with Allow.
	"admin": {"DELETE /only-delete", "GET /x/{id}", "GET /y/{$}", "/any/"},
}

// tellingHandler answers with what it is and what ServeMux told it.
func tellingHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s pattern=%q id=%q rest=%q", name, r.Pattern, r.PathValue("id"), r.PathValue("rest"))
	})
}

// memoTables builds the same routes twice: as a Table (with its memos)
// and as bare ServeMuxes, the reference.
func memoTables(t testing.TB) (*Table, map[string]*http.ServeMux) {
	var routes []Route
	plain := map[string]*http.ServeMux{}
	for l, patterns := range memoRoutes {
		plain[l] = http.NewServeMux()
		for _, p := range patterns {
			h := tellingHandler(l + ":" + p)
			routes = append(routes, Route{Pattern: p, Listeners: []string{l}, Handler: h})
			plain[l].Handle(p, h)
		}
	}
	table, err := NewTable([]string{"web", "admin"}, routes)
	if err != nil {
		t.Fatal(err)
	}
	return table, plain
}

// answer is what a client could tell apart in two responses.
func answer(h http.Handler, raw string) (string, error) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return "", err
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return fmt.Sprintf("%d location=%q allow=%q %s", rec.Code, rec.Header().Get("Location"),
		rec.Header().Get("Allow"), rec.Body.String()), nil
}

// checkMemoAgrees serves one request through the table three times
// (the first may fill the memo, the others may use it) and through the
// bare ServeMux, and wants the same answer each time.
func checkMemoAgrees(t *testing.T, r *Router, plain map[string]*http.ServeMux, listener, raw string) {
	t.Helper()
	want, err := answer(plain[listener], raw)
	if err != nil {
		return // not a request net/http reads; nothing reaches the router
	}
	for i := range 3 {
		got, _ := answer(r.Handler(listener), raw)
		if got != want {
			t.Fatalf("%s %q, pass %d:\n got %s\nwant %s", listener, raw, i, got, want)
		}
	}
}

func rawRequest(method, target, host string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

func TestMemoAnswersAsServeMux(t *testing.T) {
	table, plain := memoTables(t)
	var r Router
	r.Swap(table)
	targets := []string{
		"/", "/test.jpg", "/exact", "/exact/", "/static", "/static/", "/static/a/b.css",
		"/dir", "/dir/", "/dir/x", "/items/7", "/items/7/", "/items/", "/files/a/b",
		"/form", "/tree", "/tree/", "/tree/leaf", "/a%20b", "/a b", "/a%2fb", "/%61",
		"/tab", "//exact", "/./exact", "/static/../exact", "/x/..", "/a/../b", "/a/../b?q=1", "/only-delete",
		"/x/1", "/y", "/y/", "/any", "/any/z", "/nope", "/exact?q=1", "/tree?q=1", "*",
		"http://example.com/exact", "http://other.org/tree",
	}
	for _, method := range []string{"GET", "HEAD", "POST", "DELETE", "CONNECT", "OPTIONS"} {
		for _, host := range []string{"127.0.0.1:8000", "example.com", "example.com:8000", "EXAMPLE.com"} {
			for _, target := range targets {
				for listener := range memoRoutes {
					checkMemoAgrees(t, &r, plain, listener, rawRequest(method, target, host))
				}
			}
		}
	}
}

// FuzzMemoAnswersAsServeMux keeps one table, so what one input leaves in
// the memo meets every later input.
func FuzzMemoAnswersAsServeMux(f *testing.F) {
	for _, s := range []struct{ method, target, host string }{
		{"GET", "/test.jpg", "127.0.0.1"}, {"GET", "/tree", "h"}, {"HEAD", "/dir/", "h"},
		{"GET", "/items/1", "h"}, {"GET", "/exact", "example.com:80"}, {"GET", "//a/../b/", "h"},
		{"DELETE", "/only-delete", "h"}, {"GET", "/a%20b", "h"}, {"PUT", "/static/x", "h"},
		{"GET", "/a/../b", "h"}, {"GET", "/a/../b?q=1", "h"},
	} {
		f.Add(s.method, s.target, s.host)
	}
	table, plain := memoTables(f)
	var r Router
	r.Swap(table)
	f.Fuzz(func(t *testing.T, method, target, host string) {
		for listener := range memoRoutes {
			checkMemoAgrees(t, &r, plain, listener, rawRequest(method, target, host))
		}
	})
}

func TestMemoStaysBounded(t *testing.T) {
	table, _ := memoTables(t)
	var r Router
	r.Swap(table)
	h := r.Handler("web")
	for i := range memoLimit + 10 {
		serve(h, fmt.Sprintf("/file%d", i))
	}
	m := table.memos["web"]
	if n := len(m.m); n == 0 || n > memoLimit {
		t.Fatalf("memo holds %d answers, want 1..%d", n, memoLimit)
	}
	// A long path is matched each time, not kept.
	table.memos["web"] = new(routeMemo)
	serve(h, "/"+strings.Repeat("a", memoKeyMax))
	if n := len(table.memos["web"].m); n != 0 {
		t.Fatalf("a path longer than memoKeyMax was kept (%d answers)", n)
	}
	// And it still answers (httptest's requests are for example.com).
	if _, body := serve(h, "/exact"); !strings.HasPrefix(body, "web:GET example.com/exact ") {
		t.Fatalf("after starting over: %q", body)
	}
}

// A route with named wildcards is remembered as ServeMux's to answer, so
// its requests are matched once, not twice, and still get their values.
func TestMemoSendsWildcardRoutesToServeMux(t *testing.T) {
	table, _ := memoTables(t)
	var r Router
	r.Swap(table)
	h := r.Handler("web")
	for range 2 {
		if _, body := serve(h, "http://127.0.0.1/items/7"); !strings.Contains(body, `id="7"`) {
			t.Fatalf("the route's value: %q", body)
		}
	}
	hit, ok := table.memos["web"].get(routeKey{"GET", "127.0.0.1", "/items/7"})
	if !ok || hit.handler != nil || hit.pattern != "GET /items/{id}" {
		t.Fatalf("remembered %+v, %v; want ServeMux's answer for GET /items/{id}", hit, ok)
	}
}

// BenchmarkRouteKeptPath is a hot static path on a catch-all route: once
// remembered it should cost no allocation.
func BenchmarkRouteKeptPath(b *testing.B) {
	table, err := NewTable([]string{"web"}, []Route{{Pattern: "GET /", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}})
	if err != nil {
		b.Fatal(err)
	}
	var r Router
	r.Swap(table)
	h := r.Handler("web")
	req := httptest.NewRequest("GET", "/test.jpg", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
