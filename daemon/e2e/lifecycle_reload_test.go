package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reloadConfig is the config the reload tests start from and change:
// extra is appended (more routes), greeting is the kit plugin's config.
func reloadConfig(pluginDir, greeting, extra string) string {
	return fmt.Sprintf(`
plugin_dir       = %q
shutdown_timeout = "10s"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "kit" {
  config { greeting = %q }
}

plugin "testkit" {}

route "GET /kit" { plugin = "kit" }

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
%s`, pluginDir, greeting, extra)
}

const newRoute = `
route "GET /new/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
`

// TestLifecycleReloadUnderLoad changes the config three times under
// continuous requests — a route added, a plugin's config changed, a
// plugin's binary replaced on disk — and reloads with SIGHUP each time;
// a binary reinstalled with the same bytes keeps its process.
// Not one request may fail, and each change must be live after its reload.
func TestLifecycleReloadUnderLoad(t *testing.T) {
	pluginDir := t.TempDir()
	kitV1, kitV2 := versionkit(t, "v1"), versionkit(t, "v2")
	installPlugin(t, kitV1, filepath.Join(pluginDir, "socketd-plugin-kit"))
	installPlugin(t, filepath.Join(binDir, "socketd-plugin-testkit"), filepath.Join(pluginDir, "socketd-plugin-testkit"))

	d := startDaemon(t, reloadConfig(pluginDir, "hello", ""), nil)
	kitURL, itemsURL, newURL := d.URL("/kit"), d.URL("/items/1"), d.URL("/new/2")
	if _, body := get(t, kitURL); !strings.HasPrefix(string(body), "v1 hello ") {
		t.Fatalf("before any reload: %q", body)
	}
	l := startLoad(t, 3, kitURL, itemsURL)
	l.waitServed(t, kitURL, 50)

	// 1. A route is added (its plugin, testkit, gets a new process with
	// the new route; kit's keeps running).
	kitPID := answer(t, kitURL)
	rewriteConfig(t, d, reloadConfig(pluginDir, "hello", newRoute))
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload 1: %s\n%s", got, d.Log())
	}
	if resp, body := get(t, newURL); resp.StatusCode != 200 || !strings.Contains(string(body), "route: GET /new/{id}") {
		t.Fatalf("added route: %d %q", resp.StatusCode, body)
	}
	if got := answer(t, kitURL); got != kitPID {
		t.Errorf("an unchanged plugin was restarted by the reload: %q, then %q", kitPID, got)
	}
	l.setURLs(kitURL, itemsURL, newURL)
	l.waitServed(t, newURL, 50)

	// 1b. The kit binary is installed again, unchanged (a new file with
	// the same bytes, as make install writes it): no new process.
	installPlugin(t, kitV1, filepath.Join(pluginDir, "socketd-plugin-kit"))
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload 1b: %s\n%s", got, d.Log())
	}
	if got := answer(t, kitURL); got != kitPID {
		t.Errorf("a plugin whose binary was reinstalled unchanged was restarted: %q, then %q", kitPID, got)
	}

	// 2. The kit plugin's config changes.
	rewriteConfig(t, d, reloadConfig(pluginDir, "bonjour", newRoute))
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload 2: %s\n%s", got, d.Log())
	}
	if got := answer(t, kitURL); !strings.HasPrefix(got, "v1 bonjour ") {
		t.Fatalf("after the config change: %q", got)
	}
	l.waitServed(t, kitURL, 50)

	// 3. The kit plugin's binary is replaced by another build; the config
	// is the same.
	installPlugin(t, kitV2, filepath.Join(pluginDir, "socketd-plugin-kit"))
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload 3: %s\n%s", got, d.Log())
	}
	got := answer(t, kitURL)
	if !strings.HasPrefix(got, "v2 bonjour ") {
		t.Fatalf("after replacing the binary: %q", got)
	}
	var pid int
	fmt.Sscanf(got[strings.Index(got, "pid=")+4:], "%d", &pid)
	if sum := fileSHA256(t, fmt.Sprintf("/proc/%d/exe", pid)); sum != fileSHA256(t, kitV2) {
		t.Errorf("the kit process runs a binary with sha256 %s, not the new build", sum)
	}
	l.waitServed(t, kitURL, 50)
	l.waitServed(t, newURL, 20)
	l.Stop()

	if failed := l.Failed(); len(failed) > 0 {
		t.Errorf("%d of %d requests failed during the reloads:\n%s", len(failed), int(l.ok.Load())+len(failed),
			strings.Join(failed[:min(len(failed), 20)], "\n"))
	}
	t.Logf("%d requests, none failed, across 4 reloads", l.ok.Load())

	// The replaced processes are gone: one per plugin remains.
	waitFor(t, "replaced plugin processes to exit", func() bool {
		return len(alivePIDs(pluginPIDs(t, d.cmd.Process.Pid))) == 2
	})
}

// TestLifecycleReloadInvalidConfigKeepsServing reloads a config with
// errors under load: nothing fails, the old config still serves, and the
// diagnostics are in the log with their positions.
func TestLifecycleReloadInvalidConfigKeepsServing(t *testing.T) {
	pluginDir := t.TempDir()
	installPlugin(t, versionkit(t, "v1"), filepath.Join(pluginDir, "socketd-plugin-kit"))
	installPlugin(t, filepath.Join(binDir, "socketd-plugin-testkit"), filepath.Join(pluginDir, "socketd-plugin-testkit"))
	d := startDaemon(t, reloadConfig(pluginDir, "hello", ""), nil)
	kitURL, itemsURL := d.URL("/kit"), d.URL("/items/1")
	l := startLoad(t, 3, kitURL, itemsURL)
	l.waitServed(t, kitURL, 30)
	before := answer(t, kitURL)

	for _, tc := range []struct{ name, config, want string }{
		{"unknown plugin", reloadConfig(pluginDir, "bonjour", `route "GET /x" { plugin = "nope" }`), "config.hcl:22:27: Error: Unknown plugin"},
		{"syntax", reloadConfig(pluginDir, "bonjour", `route "GET /y" {`), "config.hcl:22:"},
		{"plugin schema", reloadConfig(pluginDir, "bonjour", `route "GET /z" {
  plugin = "testkit"
  config { nope = 1 }
}`), "config.hcl:24:12: Error: Unsupported argument"},
	} {
		rewriteConfig(t, d, tc.config)
		if got := reload(t, d); got == "reload complete" {
			t.Fatalf("%s: the invalid config was accepted", tc.name)
		}
		found := false
		for _, line := range d.Lines("config error") {
			found = found || strings.Contains(fmt.Sprint(line["diagnostic"]), tc.want)
		}
		if !found {
			t.Errorf("%s: no logged diagnostic says %q:\n%s", tc.name, tc.want, d.Log())
		}
		if got := answer(t, kitURL); got != before {
			t.Errorf("%s: after the failed reload: %q, want the old config's %q", tc.name, got, before)
		}
		l.waitServed(t, kitURL, 20)
	}
	l.Stop()
	if failed := l.Failed(); len(failed) > 0 {
		t.Errorf("%d requests failed:\n%s", len(failed), strings.Join(failed[:min(len(failed), 20)], "\n"))
	}
	// Only the config's own two plugins run: the third attempt started
	// testkit for its schema check, and stopped it again.
	waitFor(t, "plugins started for the rejected config to exit", func() bool {
		pids := alivePIDs(pluginPIDs(t, d.cmd.Process.Pid))
		if len(pids) != 2 {
			for _, p := range pids {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				t.Logf("pid %d: %q", p, b)
			}
		}
		return len(pids) == 2
	})
}

// answer GETs u and returns the body, failing on anything but 200.
func answer(t testing.TB, u string) string {
	t.Helper()
	resp, body := get(t, u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q", u, resp.StatusCode, body)
	}
	return strings.TrimSpace(string(body))
}

const connConfig = `
plugin_dir       = "{{BIN}}"
shutdown_timeout = "30s"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

listener "echo" {
  protocol = "tcp"
  address  = "127.0.0.1:0"
  plugin   = "testkit"
  config { mode = "echo" }
}

plugin "testkit" {}

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
`

// TestLifecycleReloadKeepsConnections reloads while a tcp session and an
// HTTP keep-alive connection are open. The reload replaces the plugin
// behind both, but neither connection notices: the HTTP connection is
// reused, the tcp session goes on with the old process until it ends (then
// that process stops), and new sessions reach the new process.
func TestLifecycleReloadKeepsConnections(t *testing.T) {
	d := startDaemon(t, connConfig, nil)
	echo := dial(t, d.Addr("echo"))
	r := bufio.NewReader(echo)
	say := func(c net.Conn, r *bufio.Reader, line string) {
		t.Helper()
		fmt.Fprintln(c, line)
		got, err := r.ReadString('\n')
		if err != nil || got != line+"\n" {
			t.Fatalf("echo %q: got %q, %v", line, got, err)
		}
	}
	say(echo, r, "one")
	var reused []bool
	client := &http.Client{Transport: &http.Transport{}}
	getReused := func(u string) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", u, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
	}
	getReused(d.URL("/items/1"))
	before := alivePIDs(pluginPIDs(t, d.cmd.Process.Pid))

	rewriteConfig(t, d, connConfig+newRoute)
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload: %s", got)
	}
	getReused(d.URL("/new/1"))
	if !reused[1] {
		t.Errorf("the keep-alive connection was closed by the reload")
	}
	say(echo, r, "two") // still the old process
	fresh := dial(t, d.Addr("echo"))
	say(fresh, bufio.NewReader(fresh), "three")
	if n := len(alivePIDs(pluginPIDs(t, d.cmd.Process.Pid))); n != 2 {
		t.Errorf("%d plugin processes while the old session is open, want 2 (old and new)", n)
	}
	echo.Close()
	waitFor(t, "the old process to stop once its session ended", func() bool {
		now := alivePIDs(pluginPIDs(t, d.cmd.Process.Pid))
		return len(now) == 1 && now[0] != before[0]
	})
	say(fresh, bufio.NewReader(fresh), "four")
}
