package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one contestant, started and stopped by the benchmark.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	// ready is how long the server took from exec to answering.
	ready  time.Duration
	exited chan struct{}
}

var (
	startedMu sync.Mutex
	started   []*server
)

// stopAll stops every server still running, newest first.
func stopAll() {
	startedMu.Lock()
	list := started
	started = nil
	startedMu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs cmd and waits until addr answers HTTP.
func start(name, addr string, logFile string, args ...string) *server {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			fatalf("%v", err)
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fatalf("start %s: %v", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	startedMu.Lock()
	started = append(started, s)
	startedMu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-s.exited:
			fatalf("%s exited at start (log: %s)", name, logFile)
		default:
		}
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			fatalf("%s did not answer on %s within 30s (log: %s)", name, addr, logFile)
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.ready = time.Since(t0)
	return s
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// rssKB reads a process's resident set (VmRSS) or peak (VmHWM).
func rssKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return -1
}

func writeFile(path, content string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fatalf("%v", err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		fatalf("%v", err)
	}
}

// startSocketd runs socketd from bin on the files in www, its config and
// log in dir.
func startSocketd(dir, www, bin string) *server {
	addr := freePort()
	writeFile(filepath.Join(dir, "socketd", "config.hcl"), fmt.Sprintf(`
plugin_dir = %q
listener "web" {
  protocol = "http"
  address  = %q
}
plugin "static" {
  config { root = %q }
}
plugin "timeserver" { processors = 1 } # as in config.hcl
plugin "sqlite" {
  config {
    database = %q
    schema   = "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, at TEXT)"
  }
}
route "GET /" { plugin = "static" }
route "GET /time" { plugin = "timeserver" }
route "GET /db" {
  plugin = "sqlite"
  config { query = "SELECT count(*) AS hits FROM hits" }
}
`, bin, addr, www, filepath.Join(dir, "socketd", "bench.db")))
	return start("socketd", addr, filepath.Join(dir, "socketd.log"),
		filepath.Join(bin, "socketd"), "run", "-config", filepath.Join(dir, "socketd", "config.hcl"))
}

func startNginx(dir, backend string) *server {
	addr := freePort()
	nd := filepath.Join(dir, "nginx")
	writeFile(filepath.Join(nd, "nginx.conf"), fmt.Sprintf(`
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 16384; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  upstream backend {
    server %[4]s;
    keepalive 64;
  }
  server {
    listen %[2]s;
    root %[3]s;
    location = /time {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, nd, addr, filepath.Join(dir, "www"), backend))
	os.MkdirAll(filepath.Join(nd, "tmp"), 0o755)
	return start("nginx", addr, filepath.Join(dir, "nginx.stderr"),
		"nginx", "-p", nd, "-c", filepath.Join(nd, "nginx.conf"), "-g", "daemon off;")
}

func startCaddy(dir string) *server {
	addr := freePort()
	cf := filepath.Join(dir, "caddy", "Caddyfile")
	writeFile(cf, fmt.Sprintf(`{
	admin off
	auto_https off
}
http://%s {
	root * %s
	file_server
}
`, addr, filepath.Join(dir, "www")))
	return start("caddy", addr, filepath.Join(dir, "caddy.log"),
		"caddy", "run", "--config", cf, "--adapter", "caddyfile")
}

func startPython(dir string) *server {
	addr := freePort()
	_, port, _ := net.SplitHostPort(addr)
	return start("python", addr, filepath.Join(dir, "python.log"),
		"python3", "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", filepath.Join(dir, "www"))
}

// startBackend re-runs this program as the Go backend nginx proxies /time
// to: the same answer as the timeserver plugin's plain text.
func startBackend(dir string) *server {
	addr := freePort()
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	return start("go-backend", addr, filepath.Join(dir, "backend.log"), self, "-backend", addr)
}

func serveBackend(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		now := time.Now().UTC()
		fmt.Fprintf(w, "%s (%s)\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"), now.Format("MST"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "backend\n") })
	srv := &http.Server{Addr: addr, Handler: mux}
	ctx, stop := signalContext()
	defer stop()
	go srv.ListenAndServe()
	<-ctx.Done()
	srv.Shutdown(context.Background())
}

func writeJSON(path string, v any) {
	os.MkdirAll(filepath.Dir(path), 0o755)
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		fatalf("%v", err)
	}
}
