package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const systemdConfig = `
plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "testkit" {}

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
`

// notifications listens on a unixgram socket of the test's own, as systemd
// does on NOTIFY_SOCKET, and yields each datagram's variables.
func notifications(t *testing.T) (string, <-chan map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan map[string]string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			vars := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				k, v, _ := strings.Cut(line, "=")
				vars[k] = v
			}
			ch <- vars
		}
	}()
	return path, ch
}

// nextState returns the next notification that changes the state (READY,
// RELOADING, STOPPING), counting the watchdog pings on the way.
func nextState(t *testing.T, ch <-chan map[string]string, pings *int) map[string]string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case vars, ok := <-ch:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if vars["WATCHDOG"] == "1" {
				*pings++
			}
			if vars["READY"] == "1" || vars["RELOADING"] == "1" || vars["STOPPING"] == "1" {
				return vars
			}
		case <-timeout:
			t.Fatal("no state notification within 30s")
		}
	}
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1e3
}

// TestLifecycleSystemdNotify runs the daemon with a NOTIFY_SOCKET of the
// test's own and WatchdogSec set, and checks what systemd would see: READY=1;
// RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload (also a
// failed one, whose STATUS says so); STOPPING=1 on SIGTERM; watchdog pings
// in between. The plugins never see the notify socket.
func TestLifecycleSystemdNotify(t *testing.T) {
	path, ch := notifications(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "400000") // WatchdogSec=400ms: a ping every 200ms
	d := startDaemon(t, systemdConfig, nil)
	pings := 0

	ready := nextState(t, ch, &pings)
	if ready["READY"] != "1" || !strings.HasPrefix(ready["STATUS"], "serving ") {
		t.Fatalf("first state notification: %v, want READY=1 with a STATUS", ready)
	}
	for _, pid := range alivePIDs(pluginPIDs(t, d.cmd.Process.Pid)) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, v := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC="} {
			if bytes.Contains(env, []byte(v)) {
				t.Errorf("plugin process %d inherited %s...", pid, v)
			}
		}
	}

	// A good reload.
	before := monotonicUsec(t)
	d.Signal(syscall.SIGHUP)
	reloading := nextState(t, ch, &pings)
	if reloading["RELOADING"] != "1" {
		t.Fatalf("after SIGHUP: %v, want RELOADING=1", reloading)
	}
	usec, err := strconv.ParseInt(reloading["MONOTONIC_USEC"], 10, 64)
	if err != nil || usec < before || usec > monotonicUsec(t) {
		t.Errorf("MONOTONIC_USEC=%q is not CLOCK_MONOTONIC at the reload (between %d and now)", reloading["MONOTONIC_USEC"], before)
	}
	if st := nextState(t, ch, &pings); st["READY"] != "1" || !strings.HasPrefix(st["STATUS"], "reloaded") {
		t.Fatalf("after the reload: %v, want READY=1 with STATUS=reloaded...", st)
	}

	// A failed reload: still READY (the old config serves), and the
	// status says why.
	rewriteConfig(t, d, systemdConfig+`route "GET /x" { plugin = "nope" }`)
	d.Signal(syscall.SIGHUP)
	if st := nextState(t, ch, &pings); st["RELOADING"] != "1" {
		t.Fatalf("after the second SIGHUP: %v", st)
	}
	st := nextState(t, ch, &pings)
	if st["READY"] != "1" || !strings.Contains(st["STATUS"], "reload failed") || !strings.Contains(st["STATUS"], "config.hcl:") {
		t.Fatalf("after the failed reload: %v, want READY=1 and a STATUS naming the error", st)
	}
	if resp, _ := get(t, d.URL("/items/1")); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the failed reload: %d", resp.StatusCode)
	}

	time.Sleep(500 * time.Millisecond) // a few more pings
	d.Signal(syscall.SIGTERM)
	if st := nextState(t, ch, &pings); st["STOPPING"] != "1" {
		t.Fatalf("after SIGTERM: %v, want STOPPING=1", st)
	}
	if code := d.Wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if pings < 2 {
		t.Errorf("%d watchdog pings with WatchdogSec=400ms; want them every 200ms", pings)
	}
}

// TestLifecycleSocketActivation runs the daemon under
// systemd-socket-activate, which binds the address, passes the socket as
// fd 3 named "web" (LISTEN_FDS, LISTEN_FDNAMES) and execs socketd on the
// first connection: the daemon serves on the inherited socket (the
// connection that woke it included), keeps it across a reload, and the
// plugins do not inherit LISTEN_*.
func TestLifecycleSocketActivation(t *testing.T) {
	activate := tool(t, "systemd-socket-activate")
	addr := freePort(t)
	first := make(chan string, 1)
	trigger := func() {
		// Retried until systemd-socket-activate listens.
		for i := 0; i < 100; i++ {
			resp, err := http.Get("http://" + addr + "/items/1")
			if err == nil {
				resp.Body.Close()
				first <- resp.Status
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		first <- "no answer"
	}
	config := strings.Replace(systemdConfig, `address  = "127.0.0.1:0"`, `address  = "127.0.0.1:1"`, 1)
	d := startDaemonCmd(t, config, nil, trigger,
		activate, "-l", addr, "--fdname=web",
		filepath.Join(binDir, "socketd"), "run", "-config", "{{CONFIG}}", "-log-format", "json")
	if got := <-first; got != "200 OK" {
		t.Fatalf("the connection that started the daemon: %s\n%s", got, d.Log())
	}
	l := waitLog(t, d, "listening")
	if l["address"] != addr || l["activated"] != true {
		t.Fatalf("listening line %v: want %s from systemd, not the config's 127.0.0.1:1", l, addr)
	}
	resp, body := get(t, "http://"+addr+"/items/7")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "id: 7") {
		t.Fatalf("on the inherited socket: %d %q", resp.StatusCode, body)
	}
	for _, pid := range alivePIDs(pluginPIDs(t, d.cmd.Process.Pid)) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if bytes.Contains(env, []byte("LISTEN_FDS=")) {
			t.Errorf("plugin process %d inherited LISTEN_FDS", pid)
		}
	}
	if got := reload(t, d); got != "reload complete" {
		t.Fatalf("reload: %s", got)
	}
	if resp, _ := get(t, "http://"+addr+"/items/8"); resp.StatusCode != 200 {
		t.Fatalf("after a reload: %d", resp.StatusCode)
	}
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, d.Log())
	}
}

// TestLifecycleSystemdUnitsVerify checks deploy/systemd's units with
// systemd-analyze verify, as installed by make install (so ExecStart names
// a binary that exists), and that the installed example config validates.
func TestLifecycleSystemdUnitsVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	tool(t, "make")
	prefix := t.TempDir()
	sysconf := filepath.Join(prefix, "etc")
	cmd := exec.Command("make", "-o", "build", "install",
		"BIN="+binDir, "VERSION=test", "PREFIX="+prefix, "SYSCONFDIR="+sysconf)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, p := range []string{"bin/socketd", "lib/socketd/plugins/socketd-plugin-static", "lib/socketd/plugins/socketd-plugin-timeserver",
		"share/socketd/www/index.html", "lib/systemd/system/socketd.service", "lib/systemd/system/socketd.socket",
		"etc/socketd/config.hcl", "etc/socketd/config.hcl.example"} {
		if _, err := os.Stat(filepath.Join(prefix, p)); err != nil {
			t.Errorf("make install did not install %s: %v", p, err)
		}
	}
	unitDir := filepath.Join(prefix, "lib/systemd/system")
	service, _ := os.ReadFile(filepath.Join(unitDir, "socketd.service"))
	if !strings.Contains(string(service), "ExecStart="+filepath.Join(prefix, "bin/socketd")+" run -config "+sysconf+"/socketd/config.hcl") {
		t.Errorf("ExecStart does not follow PREFIX and SYSCONFDIR:\n%s", service)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(unitDir, "socketd.service"), filepath.Join(unitDir, "socketd.socket")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The example config, pointed at the installed plugins and www/.
	stdout, stderr, code := socketd(t, "validate", "-config", filepath.Join(sysconf, "socketd/config.hcl"))
	if code != 0 {
		t.Errorf("the installed config does not validate:\n%s%s", stdout, stderr)
	}
	// A second install keeps the config someone edited.
	os.WriteFile(filepath.Join(sysconf, "socketd/config.hcl"), []byte("# mine\n"), 0o644)
	cmd = exec.Command("make", "-o", "build", "install", "BIN="+binDir, "VERSION=test", "PREFIX="+prefix, "SYSCONFDIR="+sysconf)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("second make install: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(sysconf, "socketd/config.hcl")); string(b) != "# mine\n" {
		t.Errorf("make install overwrote an existing config")
	}
}
