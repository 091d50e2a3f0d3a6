package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The plugin SDK's promise, end to end: a plugin built outside the repo
// (examples/hello, its own module) dropped into plugin_dir and named in
// config.hcl goes live on a reload, without rebuilding or restarting the
// core; and a plugin speaking another protocol version is refused with a
// message naming both versions.

// buildHello builds examples/hello once per test binary, as its README
// says a plugin author would: in a copy of the example whose go.mod points
// at this checkout, with go.mod and go.sum brought up to date for it.
var buildHello = sync.OnceValues(func() (string, error) {
	src, err := os.MkdirTemp("", "socketd-hello-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	for _, name := range []string{"main.go", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "hello", name))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(binDir, "sdk-examples", "socketd-plugin-hello")
	for _, args := range [][]string{
		{"mod", "edit", "-replace", "github.com/socketd/socketd=" + repoRoot},
		{"build", "-o", out, "."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		// -mod=mod: the checkout's dependencies may have moved since the
		// example's go.sum was written; an author would run go mod tidy.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	return out, nil
})

// helloPluginDir returns a fresh plugin_dir holding the static plugin and,
// if withHello, the freshly built hello plugin.
func helloPluginDir(t *testing.T, withHello bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(binDir, "socketd-plugin-static"), filepath.Join(dir, "socketd-plugin-static")); err != nil {
		t.Fatal(err)
	}
	if withHello {
		dropHello(t, dir)
	}
	return dir
}

// dropHello builds examples/hello and copies the binary into dir, as a
// user would drop it in.
func dropHello(t *testing.T, dir string) {
	t.Helper()
	bin, err := buildHello()
	if err != nil {
		t.Fatalf("build examples/hello: %v", err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "socketd-plugin-hello"), b, 0o755); err != nil {
		t.Fatal(err)
	}
}

const helloBase = `
plugin_dir = %q

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "static" {}

route "GET /{$}" {
  plugin = "static"
  config {
    body = "home"
  }
}
`

// sdkFetch GETs url and returns the status and body; 0 when the request
// failed, for polling.
func sdkFetch(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSDKHelloGoesLiveOnReload follows examples/hello/README.md: build,
// drop into plugin_dir, add the plugin and a route, reload, curl.
func TestSDKHelloGoesLiveOnReload(t *testing.T) {
	pluginDir := helloPluginDir(t, false)
	config := fmt.Sprintf(helloBase, pluginDir)
	d := startDaemon(t, config, nil)
	if code, body := sdkFetch(d.URL("/")); code != 200 || body != "home" {
		t.Fatalf("GET /: %d %q", code, body)
	}
	if code, _ := sdkFetch(d.URL("/hello/gopher")); code != 404 {
		t.Fatalf("GET /hello/gopher before the plugin exists: %d, want 404", code)
	}
	pid := d.cmd.Process.Pid

	dropHello(t, pluginDir)
	configPath := filepath.Join(d.dir, "config.hcl")
	reloadWith := func(extra string) {
		t.Helper()
		n := len(d.Lines("reload complete"))
		if err := os.WriteFile(configPath, []byte(config+extra), 0o644); err != nil {
			t.Fatal(err)
		}
		d.Signal(syscall.SIGHUP)
		waitFor(t, "the reload to complete", func() bool {
			if len(d.Lines("reload failed; still serving the previous config")) > 0 {
				t.Fatalf("reload failed:\n%s", d.Log())
			}
			return len(d.Lines("reload complete")) > n
		})
	}

	reloadWith(`
plugin "hello" {}

route "GET /hello/{name}" {
  plugin = "hello"
}
`)
	if code, body := sdkFetch(d.URL("/hello/gopher")); code != 200 || body != "Hello, gopher!\n" {
		t.Fatalf("GET /hello/gopher after the reload: %d %q, want 200 %q", code, body, "Hello, gopher!\n")
	}

	// A second reload changes the plugin's config: the plugin is started
	// anew with it, the rest keeps serving.
	reloadWith(`
plugin "hello" {
  config {
    greeting = "Bonjour"
  }
}

route "GET /hello/{name}" {
  plugin = "hello"
}
`)
	if code, body := sdkFetch(d.URL("/hello/monde")); code != 200 || body != "Bonjour, monde!\n" {
		t.Fatalf("GET /hello/monde after the second reload: %d %q", code, body)
	}
	if code, body := sdkFetch(d.URL("/")); code != 200 || body != "home" {
		t.Fatalf("GET / after the reloads: %d %q", code, body)
	}
	if d.cmd.Process.Pid != pid {
		t.Fatal("the daemon was restarted")
	}
}

// TestSDKHelloBuildsInPlace runs the README's first step as written: go
// build in examples/hello, whose go.mod and go.sum must agree with this
// checkout's dependencies.
func TestSDKHelloBuildsInPlace(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "socketd-plugin-hello"), ".")
	cmd.Dir = filepath.Join(repoRoot, "examples", "hello")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/hello: %v\n%s\n(after changing the repository's dependencies, run go mod tidy in examples/hello)", err, out)
	}
}

// TestSDKHelloByHand: a plugin binary run by hand explains itself instead
// of printing a handshake nobody reads.
func TestSDKHelloByHand(t *testing.T) {
	bin, err := buildHello()
	if err != nil {
		t.Fatalf("build examples/hello: %v", err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if code := sdkExitCode(err); code != 1 || !strings.Contains(string(out), "is a socketd plugin (hello 1.0.0)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func sdkExitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestSDKProtocolVersionRefused starts a plugin that announces protocol
// version 2 in its handshake line (a shell script: the handshake is all
// that matters here). socketd must refuse it, naming both versions.
func TestSDKProtocolVersionRefused(t *testing.T) {
	pluginDir := helloPluginDir(t, false)
	script := "#!/bin/sh\n" +
		"# a plugin from the future: socketd plugin protocol version 2\n" +
		`echo "1|2|unix|$(mktemp -u)|grpc"` + "\n" +
		"exec sleep 30\n"
	if err := os.WriteFile(filepath.Join(pluginDir, "socketd-plugin-future"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, fmt.Sprintf(helloBase, pluginDir)+`
plugin "future" {}

route "GET /future" {
  plugin = "future"
}
`, nil)
	stdout, stderr, code := socketd(t, "validate", "-config", path)
	if code == 0 {
		t.Fatalf("validate accepted a version 2 plugin:\n%s%s", stdout, stderr)
	}
	// Diagnostics are wrapped to the terminal's width; compare words.
	out := strings.Join(strings.Fields(stdout+stderr), " ")
	for _, want := range []string{
		"plugin future",
		"speaks plugin protocol version 2, but this socketd speaks version 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
