package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const processorsConfig = `
plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "testkit" {
  %s
}

route "GET /procs" {
  plugin = "testkit"
}
`

// TestPluginProcessors: a plugin block's processors is the plugin's
// GOMAXPROCS, over the one socketd's environment holds, and changing it
// on reload restarts the plugin with the new value.
func TestPluginProcessors(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3") // socketd's, which its plugins inherit
	t.Setenv("SOCKETD_TEST_MARK", "inherited")
	d := startDaemon(t, fmt.Sprintf(processorsConfig, "processors = 2"), nil)
	procs := func() (n, pid int) {
		t.Helper()
		got := answer(t, d.URL("/procs"))
		if _, err := fmt.Sscanf(got, "%d pid=%d", &n, &pid); err != nil {
			t.Fatalf("/procs answered %q", got)
		}
		return n, pid
	}
	n, pid := procs()
	if n != 2 {
		t.Errorf("with processors = 2 the plugin runs on %d processors", n)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	var set []string
	for _, kv := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			set = append(set, kv)
		}
	}
	if len(set) != 1 || set[0] != "GOMAXPROCS=2" {
		t.Errorf("the plugin's environment sets %q, want GOMAXPROCS=2 once", set)
	}
	if !strings.Contains("\x00"+string(env), "\x00SOCKETD_TEST_MARK=inherited\x00") {
		t.Errorf("the plugin's environment lacks the rest of socketd's: %q", env)
	}

	// Without processors the plugin takes socketd's environment as it is.
	rewriteConfig(t, d, fmt.Sprintf(processorsConfig, ""))
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload: %s\n%s", got, d.Log())
	}
	n2, pid2 := procs()
	if pid2 == pid {
		t.Errorf("changing processors kept the plugin process %d", pid)
	}
	if n2 != 3 {
		t.Errorf("without processors the plugin runs on %d processors, want socketd's GOMAXPROCS 3", n2)
	}
}
