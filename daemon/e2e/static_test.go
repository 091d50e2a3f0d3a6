package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const staticConfig = `
plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "static" {
  config {
    root = "./site"
  }
}

route "GET /" {
  plugin = "static"
}
`

// siteFiles copies the repo's www/ into the test's folder as ./site, next
// to a secret outside it, with a symlink escaping the root and one staying
// inside.
func startStatic(t testing.TB) (*Daemon, []byte) {
	t.Helper()
	index, err := os.ReadFile(filepath.Join(repoRoot, "www", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(filepath.Join(repoRoot, "www", "test.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, staticConfig, map[string]string{
		"site/index.html": string(index),
		"site/test.jpg":   string(jpg),
		"site/sub/a.txt":  "inside\n",
		"secret.txt":      "TOP-SECRET outside the root\n",
	})
	site := filepath.Join(d.dir, "site")
	if err := os.Symlink(filepath.Join(d.dir, "secret.txt"), filepath.Join(site, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/a.txt", filepath.Join(site, "inner.txt")); err != nil {
		t.Fatal(err)
	}
	return d, jpg
}

func get(t testing.TB, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, "GET", url, nil, header...)
}

func do(t testing.TB, method, url string, body io.Reader, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func TestStaticServesTheTutorialPage(t *testing.T) {
	d, jpg := startStatic(t)

	resp, body := get(t, d.URL("/"))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"WOW", "Wow, Python Server", `src="test.jpg"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET / lacks %q:\n%s", want, body)
		}
	}

	resp, body = get(t, d.URL("/test.jpg"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET /test.jpg: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, jpg) {
		t.Fatalf("GET /test.jpg: %d bytes differ from the file's %d", len(body), len(jpg))
	}
	etag := resp.Header.Get("Etag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("no validators: ETag %q Last-Modified %q", etag, resp.Header.Get("Last-Modified"))
	}

	t.Run("if-none-match", func(t *testing.T) {
		resp, body := get(t, d.URL("/test.jpg"), "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("got %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
		}
	})
	t.Run("if-modified-since", func(t *testing.T) {
		resp, _ := get(t, d.URL("/test.jpg"), "If-Modified-Since", resp.Header.Get("Last-Modified"))
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("got %d, want 304", resp.StatusCode)
		}
	})
	t.Run("range", func(t *testing.T) {
		resp, body := get(t, d.URL("/test.jpg"), "Range", "bytes=0-99")
		if resp.StatusCode != http.StatusPartialContent || len(body) != 100 || !bytes.Equal(body, jpg[:100]) {
			t.Fatalf("got %d with %d bytes, want 206 with the first 100", resp.StatusCode, len(body))
		}
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 0-99/"+strconv.Itoa(len(jpg)) {
			t.Fatalf("Content-Range %q", cr)
		}
	})
	t.Run("head", func(t *testing.T) {
		resp, body := do(t, "HEAD", d.URL("/test.jpg"), nil)
		if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(jpg)) {
			t.Fatalf("HEAD: %d, %d body bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
		}
	})
	t.Run("not-found", func(t *testing.T) {
		resp, _ := get(t, d.URL("/nope.html"))
		if resp.StatusCode != 404 {
			t.Fatalf("got %d, want 404", resp.StatusCode)
		}
	})
	t.Run("method-not-allowed", func(t *testing.T) {
		resp, _ := do(t, "POST", d.URL("/"), strings.NewReader("x"))
		if resp.StatusCode != 405 {
			t.Fatalf("POST /: got %d, want 405", resp.StatusCode)
		}
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
			t.Fatalf("Allow %q", allow)
		}
	})
	t.Run("symlink-inside", func(t *testing.T) {
		resp, body := get(t, d.URL("/inner.txt"))
		if resp.StatusCode != 200 || string(body) != "inside\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("directory-redirect", func(t *testing.T) {
		resp, _ := get(t, d.URL("/sub?x=1"))
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/sub/?x=1" {
			t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// rawGet sends a request line exactly as given (no client-side cleaning)
// and returns the status and body.
func rawGet(t testing.TB, addr, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStaticNeverLeavesTheRoot(t *testing.T) {
	d, _ := startStatic(t)
	targets := []string{
		"/../secret.txt",
		"/sub/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/secret.txt",
		"/sub/%2e%2e/%2e%2e/secret.txt",
		"/..%2fsecret.txt",
		"/%2e%2e%2fsecret.txt",
		"/..\\secret.txt",
		"/..%5csecret.txt",
		"/escape.txt",
		"//../secret.txt",
		"/./../secret.txt",
		"/" + strings.Repeat("../", 20) + "etc/passwd",
	}
	for _, target := range targets {
		code, body := rawGet(t, d.Addr("web"), target)
		if strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "root:") {
			t.Errorf("GET %s leaked a file from outside the root (status %d)", target, code)
		}
		if code == 200 {
			t.Errorf("GET %s: status 200 for a path outside the root", target)
		}
	}
}

// TestStaticCacheFollowsChanges checks the core's cache of file answers:
// a hot file is served without asking the plugin, and a file rewritten,
// removed or swapped for a symlink out of the root is never served stale.
func TestStaticCacheFollowsChanges(t *testing.T) {
	d, _ := startStatic(t)
	path := filepath.Join(d.dir, "site", "sub", "a.txt")
	getBody := func() (int, string) {
		resp, body := get(t, d.URL("/sub/a.txt"))
		return resp.StatusCode, string(body)
	}
	if code, body := getBody(); code != 200 || body != "inside\n" {
		t.Fatalf("first GET: %d %q", code, body)
	}
	if code, _ := getBody(); code != 200 {
		t.Fatalf("second GET: %d", code)
	}
	waitFor(t, "a cached answer in the access log", func() bool {
		for _, l := range d.Lines("request") {
			if l["uri"] == "/sub/a.txt" && l["outcome"] == "cached" {
				return true
			}
		}
		return false
	})

	if err := os.WriteFile(path, []byte("rewritten, longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := getBody(); code != 200 || body != "rewritten, longer\n" {
		t.Fatalf("after rewrite: %d %q", code, body)
	}

	os.Remove(path)
	if code, _ := getBody(); code != 404 {
		t.Fatalf("after remove: %d, want 404", code)
	}

	if err := os.Symlink(filepath.Join(d.dir, "secret.txt"), path); err != nil {
		t.Fatal(err)
	}
	if code, body := getBody(); code == 200 || strings.Contains(body, "TOP-SECRET") {
		t.Fatalf("after swapping in a symlink out of the root: %d %q", code, body)
	}
}

// TestStaticLargeFileToSlowReaders: a file far larger than a connection's
// send queue (sendLowat in httpfront) goes out with sendfile in many
// partial pieces to clients that start reading late; every byte arrives,
// in order, and the connections carry their next request.
func TestStaticLargeFileToSlowReaders(t *testing.T) {
	d, _ := startStatic(t)
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "site", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- fetchTwiceSlowly(d.Addr("web"), big) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// fetchTwiceSlowly asks for /big.bin on one connection, waits before
// reading so the server's socket fills up, reads the answer, and asks
// again for its last 1000 bytes (a Range request).
func fetchTwiceSlowly(addr string, want []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		return fmt.Errorf("whole file: status %d, %d bytes, not the file's", resp.StatusCode, len(body))
	}
	io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-1000\r\n\r\n")
	resp, err = http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 206 || !bytes.Equal(body, want[len(want)-1000:]) {
		return fmt.Errorf("last 1000 bytes: status %d, %d bytes, not the file's", resp.StatusCode, len(body))
	}
	return nil
}
