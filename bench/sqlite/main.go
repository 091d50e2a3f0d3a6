// Command sqlite benchmarks the guestbook through socketd (core + sqlite
// plugin) against a direct Go net/http handler that uses the same driver
// (ncruces/go-sqlite3), the same settings (WAL, synchronous FULL, one
// writer in IMMEDIATE transactions, a pool of readers) and the same SQL, in
// the same run:
//
//	go run ./bench/sqlite                  # 5 s per case, 16 connections
//	go run ./bench/sqlite -d 10s -c 32
//
// It builds socketd and the plugin into a temporary folder, seeds both
// databases with 200 entries, then measures GET /api/entries?limit=20 and
// POST /guestbook (JSON) on each server and prints requests per second and
// the ratio socketd / direct. The load generator runs on the same machine
// and shares its cores with the servers, so compare the ratio, not the
// absolute numbers.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// The guestbook's SQL, as in config.hcl; both servers run exactly these.
const (
	schemaSQL = `CREATE TABLE IF NOT EXISTS entries (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  message TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;`
	listSQL   = "SELECT id, name, message, created FROM entries ORDER BY id DESC LIMIT :limit"
	insertSQL = "INSERT INTO entries (name, message) VALUES (:name, :message) RETURNING id, created"
)

const configTemplate = `plugin_dir = %q

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "sqlite" {
  config {
    database = "./socketd.db"
    schema   = %q
  }
}

route "POST /guestbook" {
  plugin = "sqlite"
  config {
    exec = %q
    params = {
      name    = { type = "text", required = true, max_length = 100 }
      message = { type = "text", required = true, max_length = 2000 }
    }
  }
}

route "GET /api/entries" {
  plugin = "sqlite"
  config {
    query  = %q
    params = { limit = { type = "integer", default = 50, min = 1, max = 500 } }
  }
}
`

func main() {
	dur := flag.Duration("d", 5*time.Second, "how long each case runs")
	conns := flag.Int("c", 16, "concurrent connections")
	flag.Parse()
	if err := run(*dur, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sqlite:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, conns int) error {
	dir, err := os.MkdirTemp("", "socketd-bench-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bin")
	fmt.Println("building socketd and socketd-plugin-sqlite ...")
	for pkg, out := range map[string]string{"./daemon": "socketd", "./plugins/sqlite": "socketd-plugin-sqlite"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg)
		cmd.Dir = repoRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}

	// socketd.
	cfg := filepath.Join(dir, "config.hcl")
	os.WriteFile(cfg, fmt.Appendf(nil, configTemplate, bin, schemaSQL, insertSQL, listSQL), 0o644)
	daemon := exec.Command(filepath.Join(bin, "socketd"), "run", "-config", cfg, "-log-format", "json")
	daemon.Dir = dir
	stderr, _ := daemon.StderrPipe()
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() { daemon.Process.Signal(os.Interrupt); daemon.Wait() }()
	addr, err := listeningAddr(stderr)
	if err != nil {
		return err
	}
	socketd := "http://" + addr

	// The direct handler.
	direct, stop, err := serveDirect(filepath.Join(dir, "direct.db"))
	if err != nil {
		return err
	}
	defer stop()

	for _, base := range []string{socketd, direct} {
		for i := range 200 {
			if err := post(http.DefaultClient, base, i); err != nil {
				return fmt.Errorf("seed %s: %w", base, err)
			}
		}
	}

	fmt.Printf("\n%d connections, %v per case, GOMAXPROCS %d (client and servers share the machine)\n\n", conns, dur, runtime.GOMAXPROCS(0))
	fmt.Printf("%-28s %12s %12s %8s\n", "case", "socketd", "direct", "ratio")
	for _, c := range []struct {
		name string
		do   func(*http.Client, string, int) error
	}{
		{"GET /api/entries?limit=20", getList},
		{"POST /guestbook (JSON)", post},
	} {
		s := load(socketd, c.do, dur, conns)
		d := load(direct, c.do, dur, conns)
		fmt.Printf("%-28s %9.0f/s %9.0f/s %7.2f\n", c.name, s.rate, d.rate, s.rate/d.rate)
		if s.errs+d.errs > 0 {
			fmt.Printf("%-28s errors: socketd %d, direct %d\n", "", s.errs, d.errs)
		}
	}
	return nil
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// listeningAddr reads the daemon's JSON log until it is ready.
func listeningAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	addr := ""
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m["msg"] == "listening" {
			addr, _ = m["address"].(string)
		}
		if m["msg"] == "socketd ready" {
			go io.Copy(io.Discard, r)
			return addr, nil
		}
	}
	return "", fmt.Errorf("socketd exited before it was ready")
}

type result struct {
	rate float64
	errs int64
}

// load runs do from conns goroutines for dur and returns the rate of
// successful requests.
func load(base string, do func(*http.Client, string, int) error, dur time.Duration, conns int) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	// Warm up: connections open, statements prepared.
	for i := range conns {
		do(client, base, i)
	}
	var ok, errs atomic.Int64
	var seq atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := do(client, base, int(seq.Add(1))); err != nil {
					errs.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return result{rate: float64(ok.Load()) / time.Since(start).Seconds(), errs: errs.Load()}
}

func getList(c *http.Client, base string, _ int) error {
	resp, err := c.Get(base + "/api/entries?limit=20")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || bytes.Count(b, []byte(`"id":`)) != 20 {
		return fmt.Errorf("GET: %d %.100s", resp.StatusCode, b)
	}
	return nil
}

func post(c *http.Client, base string, i int) error {
	body := fmt.Sprintf(`{"name":"bench","message":"hello number %d"}`, i)
	resp, err := c.Post(base+"/guestbook", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST: %d %.100s", resp.StatusCode, b)
	}
	return nil
}

// serveDirect serves the guestbook from a plain net/http server: what a Go
// programmer would write by hand with the same driver and settings.
func serveDirect(path string) (base string, stop func(), err error) {
	open := func(flags sqlite3.OpenFlag, pragmas ...string) (*sqlite3.Conn, error) {
		c, err := sqlite3.OpenFlags(path, flags)
		if err != nil {
			return nil, err
		}
		for _, p := range append([]string{"PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000"}, pragmas...) {
			if err := c.Exec(p); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	w, err := open(sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL")
	if err != nil {
		return "", nil, err
	}
	if err := w.Exec(schemaSQL); err != nil {
		return "", nil, err
	}
	ins, _, err := w.Prepare(insertSQL)
	if err != nil {
		return "", nil, err
	}
	var wmu sync.Mutex

	type reader struct {
		c    *sqlite3.Conn
		list *sqlite3.Stmt
	}
	readers := make(chan *reader, max(4, runtime.GOMAXPROCS(0)))
	for range cap(readers) {
		c, err := open(sqlite3.OPEN_READONLY, "PRAGMA query_only = ON")
		if err != nil {
			return "", nil, err
		}
		s, _, err := c.Prepare(listSQL)
		if err != nil {
			return "", nil, err
		}
		readers <- &reader{c, s}
	}

	type entry struct {
		ID      int64  `json:"id"`
		Name    string `json:"name"`
		Message string `json:"message"`
		Created string `json:"created"`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/entries", func(rw http.ResponseWriter, r *http.Request) {
		limit := 50
		if s := r.URL.Query().Get("limit"); s != "" {
			if _, err := fmt.Sscan(s, &limit); err != nil || limit < 1 || limit > 500 {
				http.Error(rw, `{"ok":false}`, 400)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		rd := <-readers
		defer func() { readers <- rd }()
		old := rd.c.SetInterrupt(ctx)
		defer rd.c.SetInterrupt(old)
		s := rd.list
		s.BindInt64(1, int64(limit))
		var out struct {
			OK        bool    `json:"ok"`
			Rows      []entry `json:"rows"`
			Truncated bool    `json:"truncated"`
		}
		out.OK = true
		for s.Step() {
			out.Rows = append(out.Rows, entry{s.ColumnInt64(0), s.ColumnText(1), s.ColumnText(2), s.ColumnText(3)})
		}
		err := s.Reset()
		if err != nil {
			http.Error(rw, `{"ok":false}`, 500)
			return
		}
		b, _ := json.Marshal(out)
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(append(b, '\n'))
	})
	mux.HandleFunc("POST /guestbook", func(rw http.ResponseWriter, r *http.Request) {
		var in struct{ Name, Message string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" || in.Message == "" ||
			len([]rune(in.Name)) > 100 || len([]rune(in.Message)) > 2000 {
			http.Error(rw, `{"ok":false}`, 400)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		wmu.Lock()
		defer wmu.Unlock()
		old := w.SetInterrupt(ctx)
		defer w.SetInterrupt(old)
		tx, err := w.BeginImmediate()
		if err != nil {
			http.Error(rw, `{"ok":false}`, 503)
			return
		}
		ins.BindText(1, in.Name)
		ins.BindText(2, in.Message)
		var row struct {
			ID      int64  `json:"id"`
			Created string `json:"created"`
		}
		if ins.Step() {
			row.ID, row.Created = ins.ColumnInt64(0), ins.ColumnText(1)
		}
		for ins.Step() {
		}
		if err := ins.Reset(); err != nil {
			tx.Rollback()
			http.Error(rw, `{"ok":false}`, 409)
			return
		}
		if err := tx.Commit(); err != nil {
			tx.Rollback()
			http.Error(rw, `{"ok":false}`, 500)
			return
		}
		b, _ := json.Marshal(map[string]any{"ok": true, "rows": []any{row}, "truncated": false,
			"rows_affected": w.Changes(), "last_insert_id": w.LastInsertRowID()})
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(append(b, '\n'))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
