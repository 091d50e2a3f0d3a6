package service

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// WritePIDFile writes this process's pid to path, atomically (a reader
// never sees a half-written file), creating the folder if needed.
func WritePIDFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".socketd.pid-*")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// RemovePIDFile removes path if it still names this process (a newer
// daemon may have taken it over).
func RemovePIDFile(path string) {
	if pid, err := ReadPIDFile(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// ReadPIDFile returns the pid a pid file holds.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a pid", path)
	}
	return pid, nil
}

// ErrNotRunning means the pid file names no running socketd.
var ErrNotRunning = errors.New("socketd is not running")

// Signal sends sig to the socketd whose pid path holds. It checks first
// that the process is a socketd, so a stale pid file whose pid was reused
// never signals an unrelated process.
func Signal(path string, sig syscall.Signal) (int, error) {
	pid, err := ReadPIDFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%w: no pid file %s", ErrNotRunning, path)
		}
		return 0, err
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if !strings.HasPrefix(filepath.Base(string(argv0)), "socketd") {
			return pid, fmt.Errorf("%w: pid %d (from %s) is %q, not socketd; the pid file is stale", ErrNotRunning, pid, path, argv0)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		return pid, fmt.Errorf("%w: no process %d (from %s); the pid file is stale", ErrNotRunning, pid, path)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return pid, fmt.Errorf("%w: no process %d (from %s); the pid file is stale", ErrNotRunning, pid, path)
		}
		return pid, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return pid, nil
}
