package pluginhost

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestOwnerPID(t *testing.T) {
	for _, tt := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"socketd-1234-98765", 1234, true},
		{"socketd-1234-", 0, false},
		{"socketd-98765", 0, false}, // no pid in the name: not ours to judge
		{"socketd-e2e-bin-123", 0, false},
		{"socketd-12a-1", 0, false},
		{"other-1234-1", 0, false},
		{"socketd-0-1", 0, false},
	} {
		pid, ok := ownerPID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("ownerPID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

// TestRemoveStale removes the directory of a process that has exited and
// keeps those of live processes and anything not named like ours.
func TestRemoveStale(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dead := cmd.Process.Pid // exited and reaped
	mk := func(name string) string {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(p, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk("socketd-" + strconv.Itoa(dead) + "-111")
	live := mk("socketd-" + strconv.Itoa(os.Getpid()) + "-222")
	parent := mk("socketd-" + strconv.Itoa(os.Getppid()) + "-333")
	other := mk("socketd-e2e-bin-444")
	removeStale(tmp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead daemon's directory is still there: %v", err)
	}
	for _, p := range []string{live, parent, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
