package service

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if _, set := os.LookupEnv(v); set {
			t.Errorf("%s is still in the environment plugins inherit", v)
		}
	}
	if !n.Enabled() || n.WatchdogInterval() != time.Second {
		t.Fatalf("Enabled %v, WatchdogInterval %v; want true, 1s", n.Enabled(), n.WatchdogInterval())
	}
	read := func() string {
		t.Helper()
		buf := make([]byte, 1024)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:k])
	}
	n.Ready("serving\nwith a newline")
	if got := read(); got != "READY=1\nSTATUS=serving with a newline\n" {
		t.Errorf("Ready: %q", got)
	}
	n.Reloading("reloading")
	if got := read(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\nSTATUS=reloading\n") {
		t.Errorf("Reloading: %q", got)
	}
	n.Watchdog()
	if got := read(); got != "WATCHDOG=1\n" {
		t.Errorf("Watchdog: %q", got)
	}
	n.Stopping("draining")
	if got := read(); got != "STOPPING=1\nSTATUS=draining\n" {
		t.Errorf("Stopping: %q", got)
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.Ready("x") != nil || n.WatchdogInterval() != 0 {
		t.Error("a Notifier without NOTIFY_SOCKET must do nothing")
	}
	var zero *Notifier
	if zero.Enabled() || zero.WatchdogInterval() != 0 {
		t.Error("nil Notifier")
	}
}

func TestPIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "socketd.pid")
	if err := WritePIDFile(path); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPIDFile(path); err != nil || pid != os.Getpid() {
		t.Fatalf("ReadPIDFile: %d %v", pid, err)
	}
	// The test binary is not socketd: Signal refuses to signal it.
	if _, err := Signal(path, syscall.Signal(0)); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "not socketd") {
		t.Errorf("Signal to a non-socketd pid: %v", err)
	}
	RemovePIDFile(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("RemovePIDFile left %s: %v", path, err)
	}
	if _, err := Signal(path, syscall.Signal(0)); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal without a pid file: %v", err)
	}
	// A pid file naming another process is not removed.
	os.WriteFile(path, []byte("1\n"), 0o644)
	RemovePIDFile(path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("RemovePIDFile removed another process's pid file")
	}
}
