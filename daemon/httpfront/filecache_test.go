package httpfront

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// cacheFile caches path's file answer in c, as a first plugin answer would.
func cacheFile(t *testing.T, c *fileCache, path string) *cachedFile {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f := sdk.FileFor(path, fi)
	f.ContentType = "text/plain"
	c.put("/a.txt", nil, f)
	return c.get("/a.txt")
}

func serveCached(t *testing.T, c *fileCache, e *cachedFile, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "/a.txt", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	if !c.serve(w, r, "/a.txt", e) {
		t.Fatal("cached entry not served")
	}
	return w
}

// TestKeptBytesFollowRewritesInPlace rewrites a file whose bytes the cache
// keeps, same size and same mtime: only the change time tells, and the new
// bytes must be served.
func TestKeptBytesFollowRewritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(path, []byte("first\n"), 0o644)
	fi, _ := os.Stat(path)
	c := &fileCache{settle: time.Nanosecond}
	e := cacheFile(t, c, path)

	if w := serveCached(t, c, e, nil); w.Body.String() != "first\n" {
		t.Fatalf("first hit: %q", w.Body.String())
	}
	if e.body.Load() == nil {
		t.Fatal("a settled small file's bytes were not kept")
	}
	w := serveCached(t, c, e, nil)
	if w.Body.String() != "first\n" || w.Header().Get("Content-Length") != "6" || w.Header().Get("Last-Modified") == "" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || w.Header().Get("Accept-Ranges") != "bytes" {
		t.Fatalf("hit from memory: %q %v", w.Body.String(), w.Header())
	}
	if w := serveCached(t, c, e, http.Header{"Range": {"bytes=1-2"}}); w.Code != http.StatusPartialContent || w.Body.String() != "ir" {
		t.Fatalf("range from memory: %d %q", w.Code, w.Body.String())
	}

	// Let the clock pass a timestamp tick, then rewrite in place and put
	// the mtime back: size, mtime, device and inode all match the entry.
	time.Sleep(20 * time.Millisecond)
	os.WriteFile(path, []byte("again\n"), 0o644)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if w := serveCached(t, c, e, nil); w.Body.String() != "again\n" {
		t.Fatalf("after a rewrite in place: %q", w.Body.String())
	}
}

// TestUnsettledFilesAreReadFromDisk checks that a file changed within the
// settle window is served but its bytes are not kept.
func TestUnsettledFilesAreReadFromDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(path, []byte("fresh\n"), 0o644)
	c := &fileCache{settle: time.Hour}
	e := cacheFile(t, c, path)
	if w := serveCached(t, c, e, nil); w.Body.String() != "fresh\n" {
		t.Fatalf("got %q", w.Body.String())
	}
	if e.body.Load() != nil {
		t.Fatal("bytes kept for a file changed within the settle window")
	}
}

// headerOnlyWriter is the least a ResponseWriter can be, so that
// BenchmarkCachedFileHit measures the cache's own work.
type headerOnlyWriter struct{ h http.Header }

func (w *headerOnlyWriter) Header() http.Header         { return w.h }
func (w *headerOnlyWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerOnlyWriter) WriteHeader(int)             {}

// BenchmarkCachedFileHit is a hot static request's work in the core: the
// identity check (one stat) and the head of kept bytes.
func BenchmarkCachedFileHit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.txt")
	os.WriteFile(path, []byte("first\n"), 0o644)
	c := &fileCache{settle: time.Nanosecond}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	c.put("/a.txt", nil, sdk.FileFor(path, fi))
	e := c.get("/a.txt")
	r := httptest.NewRequest("GET", "/a.txt", nil)
	if !c.serve(&headerOnlyWriter{h: http.Header{}}, r, "/a.txt", e) || e.body.Load() == nil {
		b.Fatal("the file's bytes were not kept")
	}
	b.ReportAllocs()
	for b.Loop() {
		c.serve(&headerOnlyWriter{h: http.Header{}}, r, "/a.txt", e)
	}
}

// TestCachedAnswerOwnsItsHead: a kept file answer does not share the head
// it came in, which the exchange stream receives the next answer into.
func TestCachedAnswerOwnsItsHead(t *testing.T) {
	var c fileCache
	head := &pluginpb.HTTPResponse{Status: 200, Headers: []*pluginpb.Header{{Name: "Cache-Control", Values: []string{"max-age=60"}}},
		File: &pluginpb.FileAnswer{Path: "/srv/a.txt", ContentType: "text/plain"}}
	c.put("/a.txt", head, sdk.File{Path: "/srv/a.txt"})
	*head.Headers[0] = pluginpb.Header{Name: "X-Next", Values: []string{"next"}}
	head.File.ContentType = "image/png"
	e := c.get("/a.txt")
	h := http.Header{}
	setFileHeaders(h, e.head, e.answer)
	if h.Get("Cache-Control") != "max-age=60" || h.Get("X-Next") != "" || h.Get("Content-Type") != "text/plain" {
		t.Fatalf("the kept answer changed with the frame it came in: %v", h)
	}
}
