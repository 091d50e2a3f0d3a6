package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds socketd and every plugin, built once for the package.
var binDir string

// repoRoot is the module root (this package lives in daemon/e2e).
var repoRoot, _ = filepath.Abs("../..")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "socketd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := buildAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildAll builds the daemon and every plugin (with -race when the tests
// run with it) in one go command, which shares the work between packages.
func buildAll(dir string) error {
	plugins, err := filepath.Glob(filepath.Join(repoRoot, "plugins", "*", "main.go"))
	if err != nil {
		return err
	}
	type target struct{ pkg, out string }
	targets := []target{{"./daemon", "socketd"}, {"./daemon/e2e/testkit", "socketd-plugin-testkit"}}
	for _, p := range plugins {
		name := filepath.Base(filepath.Dir(p))
		targets = append(targets, target{"./plugins/" + name, "socketd-plugin-" + name})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i, t := range targets {
		wg.Go(func() {
			args := []string{"build"}
			if raceEnabled {
				args = append(args, "-race")
			}
			args = append(args, "-o", filepath.Join(dir, t.out), t.pkg)
			cmd := exec.Command("go", args...)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Daemon is a running bin/socketd under test.
type Daemon struct {
	t     testing.TB
	cmd   *exec.Cmd
	dir   string
	addrs map[string]string // listener name -> address

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	done  chan struct{} // closed when the process has exited
}

// writeConfig puts config (and extra files) into a fresh folder and
// returns the config path. "{{BIN}}", "{{WWW}}" and "{{REPO}}" are
// replaced by the built binaries' folder, the repo's www/ and the repo.
func writeConfig(t testing.TB, config string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	r := strings.NewReplacer("{{BIN}}", binDir, "{{WWW}}", filepath.Join(repoRoot, "www"), "{{REPO}}", repoRoot)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(r.Replace(content)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(r.Replace(config)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// socketd runs a socketd command to completion and returns its output.
func socketd(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "socketd"), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("socketd %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// startDaemon runs `socketd run` on config and waits until it is ready.
func startDaemon(t testing.TB, config string, files map[string]string) *Daemon {
	t.Helper()
	return startDaemonCmd(t, config, files, nil,
		filepath.Join(binDir, "socketd"), "run", "-config", "{{CONFIG}}", "-log-format", "json")
}

// startDaemonCmd runs argv, which is socketd or a program that execs it
// (systemd-socket-activate), with the config's folder as working directory
// and "{{CONFIG}}" in argv replaced by the config's path, and waits until
// socketd is ready. The daemon is stopped (SIGTERM, then SIGKILL) when the
// test ends. trigger, if set, runs once the process started (socket activation
// launches on the first connection).
func startDaemonCmd(t testing.TB, config string, files map[string]string, trigger func(), argv ...string) *Daemon {
	t.Helper()
	path := writeConfig(t, config, files)
	d := &Daemon{t: t, dir: filepath.Dir(path), addrs: map[string]string{}, done: make(chan struct{})}
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "{{CONFIG}}", path)
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Dir = d.dir
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = d.cmd.Stderr // systemd-socket-activate's own lines, if any
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go d.readLog(stderr, ready)
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.Stop)
	if trigger != nil {
		go trigger()
	}
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("%s exited before socketd was ready:\n%s", argv[0], d.Log())
	case <-time.After(60 * time.Second):
		t.Fatalf("socketd not ready after 60s:\n%s", d.Log())
	}
	return d
}

func (d *Daemon) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Bytes()
		var m map[string]any
		_ = json.Unmarshal(line, &m)
		d.mu.Lock()
		d.raw.Write(line)
		d.raw.WriteByte('\n')
		if m != nil {
			d.lines = append(d.lines, m)
			if m["msg"] == "listening" {
				d.addrs[m["listener"].(string)] = m["address"].(string)
			}
		}
		d.mu.Unlock()
		if m != nil && m["msg"] == "socketd ready" && !signalled {
			signalled = true
			close(ready)
		}
	}
}

// Addr returns the bound address of a listener.
func (d *Daemon) Addr(listener string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.addrs[listener]
	if !ok {
		d.t.Fatalf("no listener %q in the daemon's log", listener)
	}
	return a
}

// URL returns http://ADDR/path on the "web" listener.
func (d *Daemon) URL(path string) string { return "http://" + d.Addr("web") + path }

// Log returns everything the daemon wrote to stderr so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

// Lines returns the log entries whose msg is msg.
func (d *Daemon) Lines(msg string) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, l := range d.lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits for the daemon to exit and returns its exit code.
func (d *Daemon) Wait(timeout time.Duration) int {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		d.t.Fatalf("socketd still running after %v:\n%s", timeout, d.Log())
		return -1
	}
}

// Stop ends the daemon: SIGTERM, then SIGKILL if it does not exit in time.
func (d *Daemon) Stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("socketd ignored SIGTERM for 20s; killed:\n%s", d.Log())
	}
}

// ci reports whether the tests run in CI, where every tool they use is
// installed by .ci/run and a missing one is a failure, not a skip.
func ci() bool { return os.Getenv("CI") != "" }
