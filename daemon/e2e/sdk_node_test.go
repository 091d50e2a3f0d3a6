package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Node.js plugin (examples/node-plugin) speaks the protocol with
// nothing from the Go SDK: these tests run it under the real daemon when
// node is installed (.ci/run installs it and its npm packages).

var nodePluginSrc = filepath.Join(repoRoot, "examples", "node-plugin")

// npmCI installs the example's locked npm packages once, if they are not
// there yet (.ci/run has normally done it).
var npmCI = sync.OnceValue(func() error {
	if _, err := os.Stat(filepath.Join(nodePluginSrc, "node_modules", "@grpc", "grpc-js")); err == nil {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = nodePluginSrc
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", nodePluginSrc, err, out)
	}
	return nil
})

// nodePluginDir returns a plugin_dir holding a symlink to the Node.js
// plugin, as its README installs it; it skips the test without node.
func nodePluginDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; .ci/run installs it")
	}
	if err := npmCI(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(nodePluginSrc, "socketd-plugin-node"), filepath.Join(dir, "socketd-plugin-node")); err != nil {
		t.Fatal(err)
	}
	return dir
}

const nodeConfig = `
plugin_dir = %q

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "node" {}

route "GET /node" {
  plugin = "node"
  config {
    message = %q
  }
}

route "POST /node/{rest...}" {
  plugin = "node"
}
`

// nodeAnswer is the JSON the Node.js plugin answers.
type nodeAnswer struct {
	Plugin     string            `json:"plugin"`
	Runtime    string            `json:"runtime"`
	PID        int               `json:"pid"`
	Message    string            `json:"message"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Route      string            `json:"route"`
	Listener   string            `json:"listener"`
	PathValues map[string]string `json:"path_values"`
	RemoteAddr string            `json:"remote_addr"`
	BodyBytes  int               `json:"body_bytes"`
	InFlight   int               `json:"in_flight"`
	Via        string            `json:"via"`
	Pad        string            `json:"pad"`
}

func decodeNode(t *testing.T, resp *http.Response, body []byte) nodeAnswer {
	t.Helper()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d %q\n%s", resp.Request.Method, resp.Request.URL, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var a nodeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	return a
}

func TestSDKNodePlugin(t *testing.T) {
	d := startDaemon(t, fmt.Sprintf(nodeConfig, nodePluginDir(t), "hi from the test"), nil)

	resp, body := get(t, d.URL("/node?x=1"))
	a := decodeNode(t, resp, body)
	if a.Plugin != "node" || !strings.HasPrefix(a.Runtime, "node v") || a.Message != "hi from the test" ||
		a.Route != "GET /node" || a.Listener != "web" || a.Path != "/node" || !strings.HasPrefix(a.RemoteAddr, "127.0.0.1:") {
		t.Errorf("GET /node: %+v", a)
	}

	resp, body = do(t, "POST", d.URL("/node/a/b"), strings.NewReader("12345"))
	a = decodeNode(t, resp, body)
	if a.Method != "POST" || a.BodyBytes != 5 || a.PathValues["rest"] != "a/b" || a.Message != "Hello from Node.js" {
		t.Errorf("POST /node/a/b: %+v", a)
	}
	// Requests whose body fits in one frame come on the Exchange stream,
	// others on a ServeHTTP call of their own.
	if a.Via != "Exchange" {
		t.Errorf("POST /node/a/b with 5 bytes came on %q, want Exchange", a.Via)
	}
	resp, body = do(t, "POST", d.URL("/node/big"), strings.NewReader(strings.Repeat("x", 100000)))
	if a = decodeNode(t, resp, body); a.Via != "ServeHTTP" || a.BodyBytes != 100000 {
		t.Errorf("POST /node/big with 100,000 bytes: via %q, %d bytes, want ServeHTTP and all of them", a.Via, a.BodyBytes)
	}
	// An answer of six frames, past the Exchange window of four: it moves
	// on the core's credit.
	resp, body = get(t, d.URL("/node?pad=330000"))
	if a = decodeNode(t, resp, body); a.Via != "Exchange" || len(a.Pad) != 330000 {
		t.Errorf("GET /node?pad=330000: via %q, %d bytes of padding", a.Via, len(a.Pad))
	}
	// A request the client gives up on is cancelled in the plugin.
	client := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := client.Get(d.URL("/node?delay=30000")); err == nil {
		resp.Body.Close()
		t.Errorf("a 30 s request answered: %d", resp.StatusCode)
	}
	waitFor(t, "the plugin to log the cancel", func() bool {
		for _, l := range d.Lines("request cancelled") {
			if l["plugin"] == "node" && l["route"] == "GET /node" {
				return true
			}
		}
		return false
	})
	waitFor(t, "no request in flight in the plugin", func() bool {
		resp, body := get(t, d.URL("/node"))
		return decodeNode(t, resp, body).InFlight == 1 // this one
	})

	// The plugin's own log lines reach the daemon's log, tagged and at
	// their level.
	if ls := d.Lines("plugin listening"); len(ls) == 0 || ls[0]["plugin"] != "node" || ls[0]["level"] != "INFO" {
		t.Errorf("the plugin's log line is not in the daemon's log, tagged: %v\n%s", ls, d.Log())
	}
}

// TestSDKNodePluginCrash kills the node process with a request in flight:
// that request gets 502, and the plugin is restarted like any other.
func TestSDKNodePluginCrash(t *testing.T) {
	d := startDaemon(t, fmt.Sprintf(nodeConfig, nodePluginDir(t), "before"), nil)
	resp, body := get(t, d.URL("/node"))
	first := decodeNode(t, resp, body)

	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(d.URL("/node?delay=30000"))
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	waitFor(t, "the slow request to reach the plugin", func() bool {
		resp, body := get(t, d.URL("/node"))
		return decodeNode(t, resp, body).InFlight >= 2 // this one and the slow one
	})
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the node process %d: %v", first.PID, err)
	}
	if code := <-slow; code != http.StatusBadGateway {
		t.Errorf("request in flight when node died: %d, want 502", code)
	}
	var after nodeAnswer
	waitFor(t, "a restarted node process", func() bool {
		code, body := sdkFetch(d.URL("/node"))
		if code != 200 {
			return false
		}
		if err := json.Unmarshal([]byte(body), &after); err != nil {
			t.Fatalf("%v:\n%s", err, body)
		}
		return true
	})
	if after.PID == first.PID || after.Message != "before" {
		t.Errorf("after the crash: pid %d (was %d), message %q: want a new process with the same config", after.PID, first.PID, after.Message)
	}
}

// TestSDKNodePluginDiagnostics: the plugin's Configure diagnostics come
// back positioned in config.hcl, as a Go plugin's do.
func TestSDKNodePluginDiagnostics(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf(nodeConfig, nodePluginDir(t), " "), nil)
	stdout, stderr, code := socketd(t, "validate", "-config", path)
	out := strings.Join(strings.Fields(stdout+stderr), " ") // diagnostics are wrapped
	if code == 0 || !strings.Contains(out, "config.hcl:14:") || !strings.Contains(out, "message is empty") {
		t.Fatalf("validate: exit %d, want 1 with a diagnostic at config.hcl:14:\n%s", code, out)
	}
}
