package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testkitConfig = `
plugin_dir = "{{BIN}}"
shutdown_timeout = "10s"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
  max_uri_bytes    = 2048
  max_header_bytes = 8192
}

plugin "testkit" {
  max_concurrency = %d
}

route "/" {
  plugin         = "testkit"
  max_body_bytes = 300000000
  timeout        = "120s"
}

route "GET /sleep" {
  plugin  = "testkit"
  timeout = "500ms"
}

route "GET /slow" {
  plugin  = "testkit"
  timeout = "30s"
  config { mode = "sleep" }
}

route "POST /small" {
  plugin         = "testkit"
  max_body_bytes = 1000
  config { mode = "sum" }
}

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
`

func startTestkit(t testing.TB, maxConcurrency int) *Daemon {
	t.Helper()
	return startDaemon(t, fmt.Sprintf(testkitConfig, maxConcurrency), nil)
}

// patternReader yields n bytes of a fixed pattern without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		b[i] = byte((p.off + i) % 253)
	}
	p.off += k
	return int(k), nil
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func TestHundredMegabytesStreamWithFlatMemory(t *testing.T) {
	d := startTestkit(t, 64)
	const size = 100 << 20
	// Warm up so the baseline includes the hop's steady-state buffers.
	resp, body := do(t, "POST", d.URL("/sum"), &patternReader{n: 1 << 20})
	if resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
	}
	before := peakRSS(t, d.cmd.Process.Pid)

	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	want := fmt.Sprintf("%d %s\n", size, hex.EncodeToString(h.Sum(nil)))
	req, _ := http.NewRequest("POST", d.URL("/sum"), &patternReader{n: size})
	req.ContentLength = -1 // chunked: the core cannot know the size up front
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != want {
		t.Fatalf("upload: plugin saw %q, want %q", got, want)
	}

	resp, err = http.Get(d.URL("/download?size=" + strconv.Itoa(size)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	after := peakRSS(t, d.cmd.Process.Pid)
	// 100 MiB went each way; a core that buffered a body would grow by that.
	if grew := after - before; grew > 40<<20 {
		t.Fatalf("core peak RSS grew by %d MiB moving 100 MiB each way", grew>>20)
	}
	t.Logf("core peak RSS %d MiB before, %d MiB after", before>>20, after>>20)
}

func TestFailureRules(t *testing.T) {
	d := startTestkit(t, 64)

	t.Run("timeout-504", func(t *testing.T) {
		resp, _ := get(t, d.URL("/sleep?d=10s"))
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("got %d, want 504", resp.StatusCode)
		}
		waitLog(t, d, "sleep cancelled")
	})
	t.Run("panic-500", func(t *testing.T) {
		resp, _ := get(t, d.URL("/panic"))
		if resp.StatusCode != 500 {
			t.Fatalf("got %d, want 500", resp.StatusCode)
		}
	})
	t.Run("body-too-large-413", func(t *testing.T) {
		resp, _ := do(t, "POST", d.URL("/small"), strings.NewReader(strings.Repeat("x", 2000)))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("Content-Length body: got %d, want 413", resp.StatusCode)
		}
		req, _ := http.NewRequest("POST", d.URL("/small"), io.MultiReader(strings.NewReader(strings.Repeat("y", 5000))))
		req.ContentLength = -1
		resp2, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked body: got %d, want 413", resp2.StatusCode)
		}
	})
	t.Run("uri-too-long-414", func(t *testing.T) {
		code, _ := rawGet(t, d.Addr("web"), "/"+strings.Repeat("a", 3000))
		if code != http.StatusRequestURITooLong {
			t.Fatalf("got %d, want 414", code)
		}
	})
	t.Run("headers-too-large-431", func(t *testing.T) {
		c := dial(t, d.Addr("web"))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 20000))
		if code := readStatus(t, c); code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d, want 431", code)
		}
	})
	t.Run("bad-request-line-400", func(t *testing.T) {
		c := dial(t, d.Addr("web"))
		io.WriteString(c, "GARBAGE\r\n\r\n")
		if code := readStatus(t, c); code != http.StatusBadRequest {
			t.Fatalf("got %d, want 400", code)
		}
	})
	t.Run("not-utf8-400", func(t *testing.T) {
		// HTTP allows such bytes; the plugin protocol's strings do not.
		for _, c := range []struct{ path, header string }{{"/items/42", "caf\xe9"}, {"/items/caf%E9", "ok"}} {
			resp, body := get(t, d.URL(c.path), "X-Test", c.header)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not UTF-8") {
				t.Fatalf("%s, X-Test %q: got %d %q, want 400", c.path, c.header, resp.StatusCode, body)
			}
		}
	})
	t.Run("path-values-and-headers", func(t *testing.T) {
		resp, body := get(t, d.URL("/items/42"), "X-Test", "yes")
		if resp.StatusCode != 200 {
			t.Fatalf("got %d", resp.StatusCode)
		}
		for _, want := range []string{"X-Test: [yes]", "id: 42", "route: GET /items/{id}", "remote: 127.0.0.1:"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("plugin did not see %q:\n%s", want, body)
			}
		}
	})
	t.Run("plugin-log-reaches-core-log", func(t *testing.T) {
		get(t, d.URL("/log"))
		l := waitLog(t, d, "testkit says hello")
		if l["plugin"] != "testkit" || l["level"] != "WARN" {
			t.Fatalf("plugin log line not tagged: %v", l)
		}
	})
	t.Run("client-gone-cancels-plugin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", d.URL("/slow?d=20s"), nil)
		if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want the client's deadline, got %v", err)
		}
		waitLog(t, d, "sleep cancelled")
		waitFor(t, "access log outcome", func() bool {
			for _, l := range d.Lines("request") {
				if l["uri"] == "/slow?d=20s" && l["outcome"] == "client went away" {
					return true
				}
			}
			return false
		})
	})
	t.Run("crash-502-then-restart", func(t *testing.T) {
		resp, _ := get(t, d.URL("/crash"))
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("crash: got %d, want 502", resp.StatusCode)
		}
		// The next request waits (bounded) for the restarted plugin.
		resp, body := get(t, d.URL("/items/7"))
		if resp.StatusCode != 200 {
			t.Fatalf("after crash: got %d %s", resp.StatusCode, body)
		}
		waitLog(t, d, "plugin restarted")
	})
}

func TestOverloadedPluginAnswers503(t *testing.T) {
	d := startTestkit(t, 1)
	done := make(chan int)
	go func() {
		resp, err := http.Get(d.URL("/slow?d=2s"))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// The plugin logs "sleeping" once the slow call holds the only slot.
	waitLog(t, d, "sleeping")
	resp, _ := get(t, d.URL("/items/1"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the slot taken: %d, Retry-After %q; want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if c := <-done; c != 200 {
		t.Fatalf("the request holding the slot got %d", c)
	}
}

func TestGracefulShutdown(t *testing.T) {
	d := startTestkit(t, 64)
	pids := pluginPIDs(t, d.cmd.Process.Pid)
	if len(pids) == 0 {
		t.Fatal("no plugin process found")
	}
	// Each plugin's socket lives in a directory the daemon owns, never
	// loose in the shared temporary directory.
	var sockDirs []string
	for _, pid := range pids {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		var dir string
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "PLUGIN_UNIX_SOCKET_DIR="); ok {
				dir = v
			}
		}
		if !strings.Contains(filepath.Base(filepath.Dir(dir)), "socketd-") {
			t.Fatalf("plugin %d: socket directory %q is not inside the daemon's own", pid, dir)
		}
		sockDirs = append(sockDirs, dir)
	}
	result := make(chan string)
	go func() {
		resp, err := http.Get(d.URL("/slow?d=1s"))
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	waitLog(t, d, "sleeping")
	d.Signal(syscall.SIGTERM)
	if r := <-result; !strings.HasPrefix(r, "200 slept") {
		t.Fatalf("in-flight request during shutdown: %s", r)
	}
	if code := d.Wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, d.Log())
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("plugin process %d outlived the daemon", pid)
		}
	}
	for _, dir := range sockDirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("socket directory %s outlived the daemon (%v)", dir, err)
		}
	}
}

// pluginPIDs lists the children of pid. The kernel files each child under
// the thread that started it, so every thread's list is read.
func pluginPIDs(t testing.TB, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Skipf("cannot list children: %v", err)
	}
	seen := map[int]bool{}
	var out []int
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func readStatus(t testing.TB, c net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits for a daemon log line with message msg.
func waitLog(t testing.TB, d *Daemon, msg string) map[string]any {
	t.Helper()
	var line map[string]any
	waitFor(t, "log line "+strconv.Quote(msg), func() bool {
		if ls := d.Lines(msg); len(ls) > 0 {
			line = ls[len(ls)-1]
			return true
		}
		return false
	})
	return line
}

// TestStalledClientHoldsBackOnlyItsOwnAnswer stops reading a large GET
// answer half-way. Small GETs travel on the same Exchange stream to the
// same plugin as that answer, and must still be served; then the stalled
// answer is read to its end, whole.
func TestStalledClientHoldsBackOnlyItsOwnAnswer(t *testing.T) {
	d := startTestkit(t, 64)
	const size = 64 << 20
	conn, err := net.Dial("tcp", d.Addr("web"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /download?size=%d HTTP/1.1\r\nHost: x\r\n\r\n", size)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download: %v %v", resp, err)
	}
	// The client reads nothing more for now: socket buffers fill, the core
	// stops passing frames on and stops granting the plugin credit.
	for i := range 50 {
		resp, body := get(t, d.URL("/items/"+strconv.Itoa(i)))
		if resp.StatusCode != 200 {
			t.Fatalf("small GET %d beside a stalled answer: %d %s", i, resp.StatusCode, body)
		}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("stalled answer, read at last: %d bytes, %v; want %d", n, err, size)
	}
}
