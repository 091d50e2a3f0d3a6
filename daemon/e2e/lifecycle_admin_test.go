package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const adminConfig = `
plugin_dir = "{{BIN}}"
pid_file   = "./run/socketd.pid"

admin {
  address = "127.0.0.1:0"
}

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "testkit" {}

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}

route "GET /crash" { plugin = "testkit" }

route "GET /slow" {
  plugin = "testkit"
  config { mode = "sleep" }
}
`

// scrape returns the admin listener's /metrics.
func scrape(t testing.TB, admin string) string {
	t.Helper()
	resp, body := get(t, "http://"+admin+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return string(body)
}

// metric returns the value of the sample whose line starts with prefix
// (name and labels as Prometheus prints them), or -1.
func metric(body, prefix string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestLifecycleAdminListener checks /healthz, /readyz and /metrics on the
// admin listener: request counts, latency and in-flight gauges by route and
// plugin, plugin restarts and state, the last reload's outcome; and that
// /readyz turns 503 when a plugin has failed.
func TestLifecycleAdminListener(t *testing.T) {
	d := startDaemon(t, adminConfig, nil)
	admin := fmt.Sprint(waitLog(t, d, "admin listening")["address"])
	if !strings.HasPrefix(admin, "127.0.0.1:") {
		t.Fatalf("admin listens on %s", admin)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, "http://"+admin+p); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	for range 3 {
		answer(t, d.URL("/items/1"))
	}
	get(t, d.URL("/nowhere"))

	// A request in flight shows in the gauge.
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(d.URL("/slow?d=2s"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitLog(t, d, "sleeping")
	m := scrape(t, admin)
	const items = `{listener="web",plugin="testkit",route="GET /items/{id}"`
	for _, tc := range []struct {
		sample string
		want   float64
	}{
		{`socketd_http_requests_total{code="200",listener="web",plugin="testkit",route="GET /items/{id}"}`, 3},
		{`socketd_http_requests_total{code="404",listener="web",plugin="",route=""}`, 1},
		{`socketd_http_request_duration_seconds_count` + items + `}`, 3},
		{`socketd_http_requests_in_flight{listener="web",plugin="testkit",route="GET /slow"}`, 1},
		{`socketd_plugin_up{plugin="testkit"}`, 1},
		{`socketd_plugin_state{plugin="testkit",state="running"}`, 1},
		{`socketd_config_last_reload_successful`, 1},
	} {
		if got := metric(m, tc.sample); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.sample, got, tc.want)
		}
	}
	if metric(m, `socketd_http_request_duration_seconds_bucket`+items+`,le="+Inf"}`) != 3 {
		t.Errorf("no latency histogram for the route:\n%s", m)
	}
	<-done

	// A crash: a restart is counted.
	get(t, d.URL("/crash"))
	answer(t, d.URL("/items/2"))
	waitFor(t, "the restart in /metrics", func() bool {
		return metric(scrape(t, admin), `socketd_plugin_restarts_total{plugin="testkit"}`) == 1
	})

	// A failed reload, then a good one.
	at := metric(m, "socketd_config_last_reload_success_timestamp_seconds")
	rewriteConfig(t, d, adminConfig+`route "GET /x" { plugin = "nope" }`)
	if reload(t, d) == "reload complete" {
		t.Fatal("the bad config was accepted")
	}
	m = scrape(t, admin)
	if metric(m, "socketd_config_last_reload_successful") != 0 || metric(m, `socketd_config_reloads_total{result="failure"}`) != 1 {
		t.Errorf("after a failed reload:\n%s", grepMetrics(m, "socketd_config"))
	}
	time.Sleep(1100 * time.Millisecond) // the timestamp has one-second resolution, at best
	rewriteConfig(t, d, adminConfig)
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload: %s", got)
	}
	m = scrape(t, admin)
	if metric(m, "socketd_config_last_reload_successful") != 1 || metric(m, "socketd_config_last_reload_success_timestamp_seconds") <= at {
		t.Errorf("after a good reload:\n%s", grepMetrics(m, "socketd_config"))
	}

	// Crash the plugin into the failed state: not ready any more.
	for i := 0; i < 20; i++ {
		if resp, _ := get(t, d.URL("/crash")); resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
	}
	resp, body := get(t, "http://"+admin+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "plugin testkit failed") {
		t.Errorf("/readyz with a failed plugin: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, "http://"+admin+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz with a failed plugin: %d (the process is alive)", resp.StatusCode)
	}
	if metric(scrape(t, admin), `socketd_plugin_state{plugin="testkit",state="failed"}`) != 1 {
		t.Errorf("the failed state is not in /metrics")
	}
}

func grepMetrics(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestLifecycleReloadCommand reloads through `socketd reload`, which
// signals the pid in the config's pid_file; the pid file is gone after the
// daemon exits, and a stale one is refused without signalling anybody.
func TestLifecycleReloadCommand(t *testing.T) {
	d := startDaemon(t, adminConfig, nil)
	config := filepath.Join(d.dir, "config.hcl")
	pidFile := filepath.Join(d.dir, "run", "socketd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.cmd.Process.Pid) {
		t.Fatalf("pid file: %q %v, want %d", b, err, d.cmd.Process.Pid)
	}
	rewriteConfig(t, d, adminConfig+`
route "GET /added/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}`)
	n := len(d.Lines("reload complete"))
	stdout, stderr, code := socketd(t, "reload", "-config", config)
	if code != 0 {
		t.Fatalf("socketd reload: exit %d\n%s%s", code, stdout, stderr)
	}
	waitFor(t, "the reload", func() bool { return len(d.Lines("reload complete")) > n })
	if resp, _ := get(t, d.URL("/added/1")); resp.StatusCode != 200 {
		t.Fatalf("the added route: %d", resp.StatusCode)
	}
	d.Signal(syscall.SIGTERM)
	d.Wait(20 * time.Second)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the pid file outlived the daemon: %v", err)
	}

	// A stale pid file naming a process that is not socketd.
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	_, stderr, code = socketd(t, "reload", "-config", config)
	if code == 0 || !strings.Contains(stderr, "not socketd") {
		t.Errorf("reload with a stale pid file: exit %d, %q", code, stderr)
	}
	// No pid_file at all: the message says what to do.
	_, stderr, code = socketd(t, "reload", "-config", writeConfig(t, systemdConfig, nil))
	if code == 0 || !strings.Contains(stderr, "sets no pid_file") {
		t.Errorf("reload without pid_file: exit %d, %q", code, stderr)
	}
}

// TestLifecyclePluginsCommand lists plugin_dir's plugins with their
// version, protocols and config schema, as text and as JSON.
func TestLifecyclePluginsCommand(t *testing.T) {
	dir := t.TempDir()
	installPlugin(t, filepath.Join(binDir, "socketd-plugin-testkit"), filepath.Join(dir, "socketd-plugin-testkit"))
	installPlugin(t, versionkit(t, "v7"), filepath.Join(dir, "socketd-plugin-kit"))
	config := writeConfig(t, fmt.Sprintf("plugin_dir = %q\n", dir), nil)

	stdout, stderr, code := socketd(t, "plugins", "-config", config)
	if code != 0 {
		t.Fatalf("socketd plugins: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^kit v7  serves: http  \(`),
		regexp.MustCompile(`(?m)^\s+greeting\s+string\s+optional\s+the word answered after the version$`),
		regexp.MustCompile(`(?m)^testkit 0\.0\.0-test  serves: http, tcp  \(`),
		regexp.MustCompile(`(?m)^  sha256 = "` + fileSHA256(t, filepath.Join(dir, "socketd-plugin-testkit")) + `"$`),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", want, stdout)
		}
	}

	stdout, _, code = socketd(t, "plugins", "-dir", dir, "-json")
	var infos []struct {
		Name, Version string
		Protocols     []string
		Schema        map[string][]struct{ Name, Type string }
	}
	if err := json.Unmarshal([]byte(stdout), &infos); err != nil || code != 0 || len(infos) != 2 {
		t.Fatalf("-json: exit %d, %v:\n%s", code, err, stdout)
	}
	if infos[0].Name != "kit" || infos[0].Version != "v7" || infos[0].Schema["plugin"][0].Name != "greeting" {
		t.Errorf("-json: %+v", infos[0])
	}

	// A file that is not a plugin is reported, and the exit code says so.
	os.WriteFile(filepath.Join(dir, "socketd-plugin-broken"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	stdout, _, code = socketd(t, "plugins", "-dir", dir)
	if code == 0 || !strings.Contains(stdout, "broken  (") || !strings.Contains(stdout, "error: ") {
		t.Errorf("with a broken plugin: exit %d\n%s", code, stdout)
	}
}

// TestProfilersWhenAsked checks admin { pprof = true }: the core serves
// /debug/pprof/ on the admin listener, and each plugin serves its own on a
// loopback port it logs. Without the switch, neither does.
func TestProfilersWhenAsked(t *testing.T) {
	d := startDaemon(t, strings.Replace(adminConfig, `address = "127.0.0.1:0"
}`, `address = "127.0.0.1:0"
  pprof   = true
}`, 1), nil)
	admin := fmt.Sprint(waitLog(t, d, "admin listening")["address"])
	if resp, body := get(t, "http://"+admin+"/debug/pprof/"); resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("core /debug/pprof/: %d", resp.StatusCode)
	}
	line := waitLog(t, d, "pprof listening")
	if line["plugin"] != "testkit" {
		t.Fatalf("pprof line: %v", line)
	}
	addr := fmt.Sprint(line["address"])
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("plugin profiler on %s, want loopback", addr)
	}
	if resp, body := get(t, "http://"+addr+"/debug/pprof/heap"); resp.StatusCode != 200 || len(body) == 0 {
		t.Fatalf("plugin heap profile: %d, %d bytes", resp.StatusCode, len(body))
	}

	off := startDaemon(t, adminConfig, nil)
	admin = fmt.Sprint(waitLog(t, off, "admin listening")["address"])
	if resp, _ := get(t, "http://"+admin+"/debug/pprof/"); resp.StatusCode != 404 {
		t.Fatalf("core /debug/pprof/ without pprof = true: %d", resp.StatusCode)
	}
	answer(t, off.URL("/items/1")) // the plugin is up and has logged its start
	if ls := off.Lines("pprof listening"); len(ls) > 0 {
		t.Fatalf("a plugin serves a profiler without pprof = true: %v", ls)
	}
}
