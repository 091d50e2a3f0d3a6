package pluginhost

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sockDirPrefix starts the name of every plugin socket directory:
// socketd-PID-RANDOM.
const sockDirPrefix = "socketd-"

// removeStale removes the socket directories under tmp that a daemon left
// behind when it was killed (SIGKILL leaves no chance to clean up): those
// named socketd-PID-RANDOM, owned by this user, whose PID no longer runs.
// Anything else is left alone.
func removeStale(tmp string, log *slog.Logger) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || alive(pid) {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			log.Warn("cannot remove a stale plugin socket directory", "path", path, "error", err)
			continue
		}
		log.Info("removed a stale plugin socket directory", "path", path, "pid", pid)
	}
}

// ownerPID parses socketd-PID-RANDOM (RANDOM is os.MkdirTemp's digits).
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, sockDirPrefix)
	if !ok {
		return 0, false
	}
	p, r, ok := strings.Cut(rest, "-")
	if !ok || !digits(p) || !digits(r) {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// alive reports whether a process with this pid exists (one of another
// user's counts: signal 0 then fails with EPERM, not ESRCH).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
