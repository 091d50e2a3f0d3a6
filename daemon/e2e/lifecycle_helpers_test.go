package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// versionkits caches versionkit builds by version for the test binary's
// life.
var versionkits sync.Map // version -> *versionkitBuild

type versionkitBuild struct {
	once sync.Once
	path string
	err  error
}

// versionkit returns the path of daemon/e2e/versionkit built with
// main.version set to version: a different build for each version.
func versionkit(t testing.TB, version string) string {
	t.Helper()
	v, _ := versionkits.LoadOrStore(version, &versionkitBuild{})
	b := v.(*versionkitBuild)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, "versionkit-"+version)
		args := []string{"build"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "-ldflags", "-X main.version="+version, "-o", b.path, "./daemon/e2e/versionkit")
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// installPlugin copies an executable to dst the way package managers do:
// into a temporary file beside it, then renamed over it, so a running
// process of the old binary is never written to (ETXTBSY) and a reader
// never sees half a binary.
func installPlugin(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".install-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(tmp, in); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		t.Fatal(err)
	}
}

// rewriteConfig replaces the running daemon's config.hcl ({{BIN}} etc. as
// in writeConfig).
func rewriteConfig(t testing.TB, d *Daemon, config string) {
	t.Helper()
	r := strings.NewReplacer("{{BIN}}", binDir, "{{WWW}}", filepath.Join(repoRoot, "www"), "{{REPO}}", repoRoot)
	if err := os.WriteFile(filepath.Join(d.dir, "config.hcl"), []byte(r.Replace(config)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload sends SIGHUP and waits for the daemon to log the outcome; it
// returns the outcome's message: "reload complete" or "reload failed; ...".
func reload(t testing.TB, d *Daemon) string {
	t.Helper()
	const ok, failed = "reload complete", "reload failed; still serving the previous config"
	nOK, nFailed := len(d.Lines(ok)), len(d.Lines(failed))
	d.Signal(syscall.SIGHUP)
	var outcome string
	waitFor(t, "the reload's outcome", func() bool {
		switch {
		case len(d.Lines(ok)) > nOK:
			outcome = ok
		case len(d.Lines(failed)) > nFailed:
			outcome = failed
		}
		return outcome != ""
	})
	return outcome
}

// load keeps clients requesting until stopped, and counts what failed.
type load struct {
	urls    atomic.Pointer[[]string]
	stop    chan struct{}
	wg      sync.WaitGroup
	ok      atomic.Int64
	mu      sync.Mutex
	failed  []string
	perPath sync.Map // path -> *atomic.Int64 of successes
}

// startLoad starts clients goroutines, each cycling through urls with its
// own keep-alive connection and a short pause between requests.
func startLoad(t testing.TB, clients int, urls ...string) *load {
	l := &load{stop: make(chan struct{})}
	l.setURLs(urls...)
	for range clients {
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		l.wg.Go(func() {
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				urls := *l.urls.Load()
				u := urls[i%len(urls)]
				l.get(client, u)
				time.Sleep(3 * time.Millisecond)
			}
		})
	}
	t.Cleanup(l.Stop)
	return l
}

func (l *load) setURLs(urls ...string) { l.urls.Store(&urls) }

func (l *load) get(client *http.Client, u string) {
	resp, err := client.Get(u)
	if err != nil {
		l.fail(fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), u, err))
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		l.fail(fmt.Sprintf("%s %s: %d %q %v", time.Now().Format("15:04:05.000"), u, resp.StatusCode, body, err))
		return
	}
	l.ok.Add(1)
	c, _ := l.perPath.LoadOrStore(u, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

func (l *load) fail(what string) {
	l.mu.Lock()
	l.failed = append(l.failed, what)
	l.mu.Unlock()
}

// Stop stops the clients and waits for them.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Failed returns the failures so far.
func (l *load) Failed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failed...)
}

// served returns how many requests to u succeeded.
func (l *load) served(u string) int64 {
	if c, ok := l.perPath.Load(u); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// waitServed waits until n more requests to u have succeeded.
func (l *load) waitServed(t testing.TB, u string, n int64) {
	t.Helper()
	want := l.served(u) + n
	waitFor(t, fmt.Sprintf("%d requests to %s", n, u), func() bool { return l.served(u) >= want })
}

// fileSHA256 returns the hex sha256 of a file.
func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// alivePIDs returns those of pids that still run (zombies count as gone).
func alivePIDs(pids []int) []int {
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Field 3, after the parenthesised command name, is the state.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 && s[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tool returns the path of a command the test needs; without it the test
// is skipped, except in CI where .ci/run installs it and its absence is a
// failure.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if ci() {
			t.Fatalf("%s is not installed (CI installs it in .ci/run)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}
