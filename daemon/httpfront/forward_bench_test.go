package httpfront

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRequestHead measures the core's half of the request
// translation: an *http.Request as net/http parsed it into the protocol's
// request head (headers copied, hop-by-hop dropped, path values named).
//
//	go test -run '^$' -bench RequestHead -benchmem ./daemon/httpfront/
func BenchmarkRequestHead(b *testing.B) {
	f := &Forward{Route: "GET /items/{id}", Listener: "web"}
	r := httptest.NewRequest("GET", "http://example.com/items/42?format=json", nil)
	for k, v := range map[string]string{
		"User-Agent": "wrk", "Accept": "application/json", "Accept-Encoding": "gzip",
		"Connection": "keep-alive", "Cookie": "session=abc",
	} {
		r.Header.Set(k, v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(f.Route, func(http.ResponseWriter, *http.Request) {})
	_, r.Pattern = mux.Handler(r)
	r.SetPathValue("id", "42")
	b.ReportAllocs()
	for b.Loop() {
		out := outgoings.Get().(*outgoing)
		if err := f.requestHead(r, out); err != nil || out.frame.GetHead().GetPathValues()["id"] != "42" {
			b.Fatal("lost the path value")
		}
		out.recycle()
	}
}
