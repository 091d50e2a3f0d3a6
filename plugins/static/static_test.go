package main

import (
	"bytes"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socketd/socketd/sdk"
)

var (
	_ sdk.HTTPPlugin    = (*static)(nil)
	_ sdk.StreamHandler = (*static)(nil)
)

// secret is the content of a file outside every root; no answer may ever
// contain it.
const secret = "TOP-SECRET-OUTSIDE-THE-ROOT"

// tree builds a root with the cases the tests need beside a directory
// that must stay unreachable, and returns both.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	files := map[string]string{
		"root/index.html":             "<h1>home</h1>\n",
		"root/hello.txt":              "hello\n",
		"root/noext":                  "just some text\n",
		"root/style.CSS":              "body{}\n",
		"root/sub/page.txt":           "page\n",
		"root/docs/index.html":        "<p>docs</p>\n",
		"root/alt/home.htm":           "<p>alt home</p>\n",
		"root/.secret":                "dotfile\n",
		"root/sub/.env":               "PASSWORD=x\n",
		"root/.well-known/acme.txt":   "challenge\n",
		"root/.well-known/.hidden":    "hidden\n",
		"root/a/keep.txt":             "a\n",
		"root/dir with space/x.txt":   "x\n",
		"outside/secret.txt":          secret,
		"outside/index.html":          secret,
		"outside/etc/passwd":          secret,
		"root/%2e%2e/outside-ish.txt": "a real directory named %2e%2e\n",
	}
	for name, body := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/inside-link":   "hello.txt",
		"root/sub/up-link":   "../hello.txt", // climbs, but stays inside
		"root/escape-link":   "../outside/secret.txt",
		"root/escape-dir":    "../outside",
		"root/abs-escape":    filepath.Join(outside, "secret.txt"),
		"root/abs-inside":    filepath.Join(root, "hello.txt"), // os.Root refuses absolute links
		"root/sub/deep-link": "../../outside/secret.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// configure returns a configured plugin or fails the test.
func configure(t *testing.T, cfg *sdk.Config) *static {
	t.Helper()
	p := newPlugin()
	if diags := p.Configure(t.Context(), cfg); len(diags) > 0 {
		t.Fatalf("Configure: %+v", diags)
	}
	return p
}

// do runs one request whose path is set as is, bypassing any cleaning, as
// the core hands it over.
func do(t *testing.T, h http.Handler, route, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/", nil)
	u, err := url.Parse("http://example.test/")
	if err != nil {
		t.Fatal(err)
	}
	if p, q, ok := strings.Cut(path, "?"); ok {
		u.Path, u.RawQuery = p, q
	} else {
		u.Path = path
	}
	r.URL = u
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, sdk.WithRouteID(r, route))
	return rec
}

func TestServeFiles(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": root}),
		Routes: []sdk.RouteConfig{{ID: "GET /"}},
	})
	tests := []struct {
		name, method, path string
		status             int
		body               string // exact, when set
		contentType        string // exact, when set
		location           string
		allow              string
	}{
		{name: "index", method: "GET", path: "/", status: 200, body: "<h1>home</h1>\n", contentType: "text/html; charset=utf-8"},
		{name: "index by name", method: "GET", path: "/index.html", status: 200, body: "<h1>home</h1>\n"},
		{name: "head", method: "HEAD", path: "/hello.txt", status: 200, body: "", contentType: "text/plain; charset=utf-8"},
		{name: "text file", method: "GET", path: "/hello.txt", status: 200, body: "hello\n", contentType: "text/plain; charset=utf-8"},
		{name: "upper-case extension", method: "GET", path: "/style.CSS", status: 200, contentType: "text/css; charset=utf-8"},
		{name: "unknown extension is sniffed", method: "GET", path: "/noext", status: 200, contentType: "text/plain; charset=utf-8"},
		{name: "double slash folds", method: "GET", path: "//sub//page.txt", status: 200, body: "page\n"},
		{name: "dir without slash redirects", method: "GET", path: "/docs", status: 301, location: "/docs/"},
		{name: "redirect keeps query", method: "GET", path: "/docs?lang=en&x=1", status: 301, location: "/docs/?lang=en&x=1"},
		{name: "redirect of a double-slash path stays on this host", method: "GET", path: "//docs", status: 301, location: "/docs/"},
		{name: "redirect escapes the path", method: "GET", path: "/dir with space", status: 301, location: "/dir%20with%20space/"},
		{name: "dir index", method: "GET", path: "/docs/", status: 200, body: "<p>docs</p>\n"},
		{name: "dir without index is not listed", method: "GET", path: "/sub/", status: 403},
		{name: "file in dir", method: "GET", path: "/sub/page.txt", status: 200, body: "page\n"},
		{name: "missing", method: "GET", path: "/nope.html", status: 404},
		{name: "missing dir", method: "GET", path: "/nope/", status: 404},
		{name: "file with trailing slash", method: "GET", path: "/hello.txt/", status: 404},
		{name: "file as a directory", method: "GET", path: "/hello.txt/x", status: 404},
		{name: "post", method: "POST", path: "/", status: 405, allow: "GET, HEAD"},
		{name: "delete", method: "DELETE", path: "/hello.txt", status: 405, allow: "GET, HEAD"},
		{name: "options", method: "OPTIONS", path: "/", status: 405, allow: "GET, HEAD"},
		{name: "dotfile hidden", method: "GET", path: "/.secret", status: 404},
		{name: "dotfile in subdir hidden", method: "GET", path: "/sub/.env", status: 404},
		{name: "well-known served", method: "GET", path: "/.well-known/acme.txt", status: 200, body: "challenge\n"},
		{name: "well-known dir redirects", method: "GET", path: "/.well-known", status: 301, location: "/.well-known/"},
		{name: "dotfile under well-known hidden", method: "GET", path: "/.well-known/.hidden", status: 404},
		{name: "well-known only at the top", method: "GET", path: "/sub/.well-known/x", status: 404},
		{name: "symlink inside", method: "GET", path: "/inside-link", status: 200, body: "hello\n"},
		{name: "symlink climbing but inside", method: "GET", path: "/sub/up-link", status: 200, body: "hello\n"},
		{name: "literal percent name", method: "GET", path: "/%2e%2e/outside-ish.txt", status: 200, body: "a real directory named %2e%2e\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, p, "GET /", tt.method, tt.path)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tt.status, rec.Body)
			}
			if tt.body != "" || tt.method == "HEAD" {
				if got := rec.Body.String(); got != tt.body {
					t.Errorf("body = %q, want %q", got, tt.body)
				}
			}
			if tt.contentType != "" {
				if got := rec.Header().Get("Content-Type"); got != tt.contentType {
					t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
				}
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			switch {
			case tt.status == 200:
				for _, h := range []string{"Etag", "Last-Modified"} {
					if rec.Header().Get(h) == "" {
						t.Errorf("no %s header", h)
					}
				}
			case tt.status >= 400:
				if got := rec.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
					t.Errorf("error Content-Type = %q, want text/plain", got)
				}
			}
		})
	}
}

// TestTraversal throws hostile paths at a root that sits beside a
// directory of secrets. Paths are set on the request as the core passes
// them: decoded ("%2e%2e" is ".."), never cleaned.
func TestTraversal(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": root}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /"},
			{ID: "GET /dots/", Config: sdk.MustJSON(map[string]any{"allow_dotfiles": true})},
			{ID: "GET /s/", Config: sdk.MustJSON(map[string]any{"strip_prefix": "/s"})},
		},
	})
	paths := []string{
		"/../outside/secret.txt",
		"/../../../../../../etc/passwd",
		"/..",
		"/../",
		"/a/../../outside/secret.txt",
		"/a/../hello.txt", // stays inside, still refused: ".." never reaches the file system
		"/sub/../../outside/index.html",
		"/./hello.txt",
		"/.",
		"..",
		"../outside/secret.txt",
		"outside/secret.txt",
		"",
		"//../outside/secret.txt",
		"/..\\outside\\secret.txt",
		"/\\..\\outside\\secret.txt",
		"/sub\\..\\..\\outside\\secret.txt",
		"\\..\\outside\\secret.txt",
		"/..%5coutside%5csecret.txt",
		"/hello.txt\x00.jpg",
		"/\x00",
		"/escape-link",
		"/escape-dir/secret.txt",
		"/escape-dir/",
		"/abs-escape",
		"/abs-inside",
		"/sub/deep-link",
		"/..;/outside/secret.txt",
	}
	for _, path := range paths {
		for _, route := range []string{"GET /", "GET /dots/"} {
			t.Run(route+" "+path, func(t *testing.T) {
				rec := do(t, p, route, "GET", path)
				if rec.Code != 404 {
					t.Errorf("status = %d, want 404", rec.Code)
				}
				if strings.Contains(rec.Body.String(), secret) {
					t.Fatalf("served a file from outside the root: %q", rec.Body)
				}
			})
		}
		t.Run("strip_prefix "+path, func(t *testing.T) {
			rec := do(t, p, "GET /s/", "GET", "/s"+path)
			if rec.Code < 300 && strings.Contains(rec.Body.String(), secret) {
				t.Fatalf("served a file from outside the root: %q", rec.Body)
			}
		})
	}

	// The same through the request line, as a client would send it.
	for _, target := range []string{"/%2e%2e/outside/secret.txt", "/%2E%2E/%2e%2e/outside/secret.txt", "/.%2e/outside/secret.txt", "/%2e%2e%2foutside%2fsecret.txt", "/..%5Coutside%5Csecret.txt", "/hello.txt%00"} {
		t.Run("encoded "+target, func(t *testing.T) {
			r := httptest.NewRequest("GET", target, nil)
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, sdk.WithRouteID(r, "GET /"))
			if rec.Code != 404 || strings.Contains(rec.Body.String(), secret) {
				t.Errorf("status = %d body %q, want 404 (decoded path %q)", rec.Code, rec.Body, r.URL.Path)
			}
		})
	}
}

func TestDotfilesAllowed(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{
		Routes: []sdk.RouteConfig{{ID: "GET /", Config: sdk.MustJSON(map[string]any{"root": root, "allow_dotfiles": true})}},
	})
	for path, want := range map[string]string{"/.secret": "dotfile\n", "/sub/.env": "PASSWORD=x\n", "/.well-known/.hidden": "hidden\n"} {
		if rec := do(t, p, "GET /", "GET", path); rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("%s: status %d body %q, want 200 %q", path, rec.Code, rec.Body, want)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	root, _ := tree(t)
	for _, prefix := range []string{"/static", "/static/"} {
		t.Run(prefix, func(t *testing.T) {
			p := configure(t, &sdk.Config{
				Routes: []sdk.RouteConfig{{ID: "GET /static/", Config: sdk.MustJSON(map[string]any{"root": root, "strip_prefix": prefix})}},
			})
			tests := []struct {
				path     string
				status   int
				body     string
				location string
			}{
				{"/static/hello.txt", 200, "hello\n", ""},
				{"/static/", 200, "<h1>home</h1>\n", ""},
				{"/static", 301, "", "/static/"},
				{"/static/docs", 301, "", "/static/docs/"},
				{"/static/docs/", 200, "<p>docs</p>\n", ""},
				{"/static/.secret", 404, "", ""},
				{"/static/.well-known/acme.txt", 200, "challenge\n", ""},
				{"/staticfoo", 404, "", ""},
				{"/hello.txt", 404, "", ""},
				{"/other/static/hello.txt", 404, "", ""},
			}
			for _, tt := range tests {
				rec := do(t, p, "GET /static/", "GET", tt.path)
				if rec.Code != tt.status || tt.body != "" && rec.Body.String() != tt.body || rec.Header().Get("Location") != tt.location {
					t.Errorf("%s: got %d %q Location %q, want %d %q Location %q", tt.path,
						rec.Code, rec.Body, rec.Header().Get("Location"), tt.status, tt.body, tt.location)
				}
			}
		})
	}
}

func TestInlineBody(t *testing.T) {
	p := configure(t, &sdk.Config{
		Routes: []sdk.RouteConfig{
			{ID: "GET /hello", Config: sdk.MustJSON(map[string]any{"body": "Wow, Python Server\n"})},
			{ID: "GET /teapot", Config: sdk.MustJSON(map[string]any{
				"body": "<b>short and stout</b>", "content_type": "text/html; charset=utf-8", "status": 418, "cache_control": "no-store",
			})},
			{ID: "GET /empty", Config: sdk.MustJSON(map[string]any{"body": "", "status": 204})},
		},
	})
	tests := []struct {
		route, method string
		status        int
		body, ctype   string
		cacheControl  string
	}{
		{"GET /hello", "GET", 200, "Wow, Python Server\n", "text/plain; charset=utf-8", ""},
		{"GET /hello", "HEAD", 200, "", "text/plain; charset=utf-8", ""},
		{"GET /teapot", "GET", 418, "<b>short and stout</b>", "text/html; charset=utf-8", "no-store"},
		{"GET /empty", "GET", 204, "", "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.route+" "+tt.method, func(t *testing.T) {
			rec := do(t, p, tt.route, tt.method, "/any/path/at/all")
			if rec.Code != tt.status || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body, tt.status, tt.body)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.cacheControl {
				t.Errorf("Cache-Control = %q, want %q", got, tt.cacheControl)
			}
		})
	}
	if rec := do(t, p, "GET /hello", "PUT", "/hello"); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT: got %d Allow %q, want 405 GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestTutorialPage serves the repository's www/ through a relative root,
// resolved, as in production, against the working directory.
func TestTutorialPage(t *testing.T) {
	p := configure(t, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": "../../www"}),
		Routes: []sdk.RouteConfig{{ID: "GET /"}},
	})
	rec := do(t, p, "GET /", "GET", "/")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<!DOCTYPE html>", "<title>WOW</title>", "Wow, Python Server", `<img src="test.jpg" alt="`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}

	want, err := os.ReadFile("../../www/test.jpg")
	if err != nil {
		t.Fatal(err)
	}
	rec = do(t, p, "GET /", "GET", "/test.jpg")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET /test.jpg: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("test.jpg: served %d bytes that differ from the file's %d", rec.Body.Len(), len(want))
	}
	// The benchmark compares servers on a picture of about 30 KB.
	if n := len(want); n < 25<<10 || n > 35<<10 {
		t.Errorf("test.jpg is %d bytes, want about 30 KB", n)
	}
	if _, err := jpeg.DecodeConfig(bytes.NewReader(want)); err != nil {
		t.Errorf("test.jpg is not a JPEG: %v", err)
	}
}

func TestConditionalAndRange(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{{ID: "GET /"}}})
	etag := do(t, p, "GET /", "GET", "/hello.txt").Header().Get("Etag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q is not a strong validator", etag)
	}
	if rec := do(t, p, "GET /", "GET", "/hello.txt", "If-None-Match", etag); rec.Code != 304 {
		t.Errorf("If-None-Match: status %d, want 304", rec.Code)
	}
	if rec := do(t, p, "GET /", "GET", "/hello.txt", "Range", "bytes=1-3"); rec.Code != 206 || rec.Body.String() != "ell" {
		t.Errorf("Range: %d %q, want 206 \"ell\"", rec.Code, rec.Body)
	}
}

func TestCacheControl(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /", Config: sdk.MustJSON(map[string]any{"root": root, "cache_control": "public, max-age=60"})}}})
	if got := do(t, p, "GET /", "GET", "/hello.txt").Header().Get("Cache-Control"); got != "public, max-age=60" {
		t.Errorf("file: Cache-Control = %q", got)
	}
	if got := do(t, p, "GET /", "GET", "/missing").Header().Get("Cache-Control"); got != "" {
		t.Errorf("404: Cache-Control = %q, want none", got)
	}
}

func TestRouteIndex(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": root, "index": []string{"home.htm", "index.html"}}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /"},
			{ID: "GET /none/", Config: sdk.MustJSON(map[string]any{"index": []string{}})},
		},
	})
	for path, want := range map[string]string{"/alt/": "<p>alt home</p>\n", "/docs/": "<p>docs</p>\n"} {
		if rec := do(t, p, "GET /", "GET", path); rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("%s: %d %q, want %q", path, rec.Code, rec.Body, want)
		}
	}
	if rec := do(t, p, "GET /none/", "GET", "/docs/"); rec.Code != 403 {
		t.Errorf("empty index list: status %d, want 403", rec.Code)
	}

	// Only the first index name makes a cacheable answer: a later one
	// stops being the answer once an earlier one appears.
	s := p.sites["GET /"]
	for dir, wantPos := range map[string]int{"alt": 0, "docs": 1} {
		if _, _, i, err := s.findIndex(dir); err != nil || i != wantPos {
			t.Errorf("findIndex(%s) = %d, %v; want %d", dir, i, err, wantPos)
		}
	}
}

func TestSpecialFiles(t *testing.T) {
	root, _ := tree(t)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	p := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{{ID: "GET /"}}})
	// Would hang forever if the fifo were opened blocking.
	if rec := do(t, p, "GET /", "GET", "/fifo"); rec.Code != 404 {
		t.Errorf("fifo: status %d, want 404", rec.Code)
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	root, _ := tree(t)
	if err := os.Chmod(filepath.Join(root, "hello.txt"), 0); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(root, "sub")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	p := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{{ID: "GET /"}}})
	for _, path := range []string{"/hello.txt", "/sub/page.txt"} {
		if rec := do(t, p, "GET /", "GET", path); rec.Code != 403 {
			t.Errorf("%s: status %d, want 403", path, rec.Code)
		}
	}
}

func TestUnknownRoute(t *testing.T) {
	root, _ := tree(t)
	withRoot := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root})})
	if rec := do(t, withRoot, "GET /unlisted", "GET", "/hello.txt"); rec.Code != 200 {
		t.Errorf("plugin root: status %d, want 200 from the plugin block's settings", rec.Code)
	}
	without := configure(t, &sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /x", Config: sdk.MustJSON(map[string]any{"body": "x"})}}})
	if rec := do(t, without, "GET /unlisted", "GET", "/"); rec.Code != 500 {
		t.Errorf("no plugin root: status %d, want 500", rec.Code)
	}
}

// TestFileAnswer checks what the core receives: an absolute path inside the
// root, whose identity matches the file.
func TestFileAnswer(t *testing.T) {
	root, _ := tree(t)
	p := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root})})
	s := p.sites[""]
	for name, want := range map[string]string{"hello.txt": "hello\n", "inside-link": "hello\n", "sub/up-link": "hello\n"} {
		fi, err := s.stat(name)
		if err != nil {
			t.Fatal(err)
		}
		f := sdk.FileFor(filepath.Join(s.dir, name), fi)
		if !filepath.IsAbs(f.Path) {
			t.Errorf("%s: path %q is not absolute", name, f.Path)
		}
		fh, err := sdk.OpenFile(f)
		if err != nil {
			t.Fatalf("%s: the core could not reopen it: %v", name, err)
		}
		got, _ := io.ReadAll(fh)
		fh.Close()
		if string(got) != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
