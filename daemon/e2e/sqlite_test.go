package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// guestbookMarker starts the guestbook section at the end of the default
// config.hcl; the tests run that section as written.
const guestbookMarker = "# --- guestbook"

// guestbookConfig is the default config.hcl's guestbook behind a listener
// on an ephemeral port. A non-empty db replaces its database path, so two
// daemons can share one file.
func guestbookConfig(t testing.TB, db string) (string, map[string]string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte(guestbookMarker))
	if i < 0 {
		t.Fatalf("config.hcl has no %q section", guestbookMarker)
	}
	section := string(src[i:])
	if db != "" {
		section = strings.Replace(section, `"./data/guestbook.db"`, strconv.Quote(db), 1)
	}
	files := map[string]string{}
	for _, name := range []string{"schema.sql", "guestbook.html", "migrations/README.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "data", name))
		if err != nil {
			t.Fatal(err)
		}
		files["data/"+name] = string(b)
	}
	return `
plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

` + section, files
}

func startGuestbook(t testing.TB, db string) *Daemon {
	t.Helper()
	cfg, files := guestbookConfig(t, db)
	return startDaemon(t, cfg, files)
}

// entries reads GET /api/entries?limit=500.
func entries(t testing.TB, d *Daemon) []map[string]any {
	t.Helper()
	resp, body := get(t, d.URL("/api/entries?limit=500"))
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/entries: %d %s", resp.StatusCode, body)
	}
	var r struct {
		OK   bool             `json:"ok"`
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(body, &r); err != nil || !r.OK {
		t.Fatalf("GET /api/entries: %v %s", err, body)
	}
	return r.Rows
}

func TestSqliteGuestbook(t *testing.T) {
	d := startGuestbook(t, "")
	evil := `x'); DROP TABLE entries;--`
	script := `<script>alert(1)</script>`

	// A browser's form: 303 back to the page, which shows the new entry.
	form := url.Values{"name": {script}, "message": {evil}}
	resp, body := do(t, "POST", d.URL("/guestbook"), strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin",
		"Origin", "http://"+d.Addr("web"), "Accept", "text/html,*/*;q=0.8")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/guestbook?added=1#entry-1" {
		t.Fatalf("form post: %d Location %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	// A JSON client: JSON with what the write did.
	resp, body = do(t, "POST", d.URL("/guestbook"), strings.NewReader(fmt.Sprintf(`{"name":"Ada","message":%q}`, script)),
		"Content-Type", "application/json")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"rows_affected":1,"last_insert_id":2`) || !strings.Contains(string(body), `"rows":[{"id":2,"created":"`) {
		t.Fatalf("JSON post: %d %s", resp.StatusCode, body)
	}

	// JSON: stored literally, and the table survived.
	rows := entries(t, d)
	if len(rows) != 2 || rows[0]["message"] != script || rows[1]["name"] != script || rows[1]["message"] != evil {
		t.Fatalf("entries: %v", rows)
	}
	// HTML: the page, escaped, with the new entry marked.
	resp, body = get(t, d.URL("/guestbook?added=1"), "Accept", "text/html")
	page := string(body)
	if resp.StatusCode != 200 || strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") ||
		!strings.Contains(page, "x&#39;); DROP TABLE entries;--") || !strings.Contains(page, `<article id="entry-1" class="added">`) ||
		!strings.Contains(page, `<form method="post" action="/guestbook">`) {
		t.Fatalf("page: %d\n%s", resp.StatusCode, page)
	}
	// CSV, ndjson, the array shape, one entry by id.
	resp, body = get(t, d.URL("/api/entries?_format=csv"))
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 3 || recs[2][2] != evil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8; header=present" {
		t.Fatalf("CSV: %v %s", err, body)
	}
	resp, body = get(t, d.URL("/api/entries"), "Accept", "application/x-ndjson")
	if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); len(lines) != 2 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("ndjson: %s", body)
	}
	if _, body = get(t, d.URL("/api/entries?limit=1&_shape=array")); !strings.HasPrefix(string(body), `[{"id":2,"name":"Ada"`) {
		t.Fatalf("array shape: %s", body)
	}
	if _, body = get(t, d.URL("/api/entries/1")); !strings.Contains(string(body), `"id":1,`) || strings.Contains(string(body), `"id":2`) {
		t.Fatalf("by id: %s", body)
	}

	// Cross-site posts are refused, by Sec-Fetch-Site and, for older
	// browsers, by Origin; nothing is written.
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"},
		{"Origin", "https://evil.example"},
	} {
		resp, body = do(t, "POST", d.URL("/guestbook"), strings.NewReader("name=x&message=y"),
			append([]string{"Content-Type", "application/x-www-form-urlencoded"}, h...)...)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code":"cross_origin"`) {
			t.Fatalf("cross-site post %v: %d %s", h, resp.StatusCode, body)
		}
	}
	if n := len(entries(t, d)); n != 2 {
		t.Fatalf("%d entries after refused posts, want 2", n)
	}

	// Errors in one JSON shape.
	for _, tt := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/entries?limit=abc", "", 400, `"param":"limit"`},
		{"GET", "/api/entries?limit=9999", "", 400, `"param":"limit"`},
		{"POST", "/guestbook", `{"message":"no name"}`, 400, `"error":"parameter \"name\" is required","param":"name"`},
		{"POST", "/guestbook", `{"name":"` + strings.Repeat("n", 101) + `","message":"m"}`, 400, `"param":"name"`},
	} {
		var hdr []string
		if tt.body != "" {
			hdr = []string{"Content-Type", "application/json"}
		}
		resp, body := do(t, tt.method, d.URL(tt.path), strings.NewReader(tt.body), hdr...)
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) || !strings.HasPrefix(string(body), `{"ok":false,"status":`) {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, resp.StatusCode, body)
		}
	}

	// The file itself: the table is there, the values literal.
	db := filepath.Join(d.dir, "data", "guestbook.db")
	if got := dbQuery(t, db, "SELECT name FROM entries ORDER BY id"); !slices.Equal(got, []string{script, "Ada"}) {
		t.Fatalf("names in the file: %q", got)
	}
	if got := dbQuery(t, db, "PRAGMA journal_mode"); !slices.Equal(got, []string{"wal"}) {
		t.Fatalf("journal_mode %q, want wal", got)
	}
}

// TestSqliteReloadAppliesMigration: a new migration file and a route using
// what it adds go live with SIGHUP, without a restart; the migration is
// applied once, however often the config is reloaded.
func TestSqliteReloadAppliesMigration(t *testing.T) {
	d := startGuestbook(t, "")
	resp, body := do(t, "POST", d.URL("/guestbook"), strings.NewReader(`{"name":"before","message":"m"}`), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	os.WriteFile(filepath.Join(d.dir, "data", "migrations", "0001_add_email.sql"),
		[]byte("ALTER TABLE entries ADD COLUMN email TEXT;\nUPDATE entries SET email = 'unknown';\n"), 0o644)
	cfgPath := filepath.Join(d.dir, "config.hcl")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, `
route "GET /api/emails" {
  plugin = "sqlite"
  config {
    query = "SELECT id, email FROM entries ORDER BY id"
  }
}
`...)
	os.WriteFile(cfgPath, cfg, 0o644)

	for i := 1; i <= 2; i++ {
		d.Signal(syscall.SIGHUP)
		waitFor(t, "reload "+strconv.Itoa(i), func() bool { return len(d.Lines("reload complete")) == i })
		if failed := d.Lines("reload failed; still serving the previous config"); len(failed) > 0 {
			t.Fatalf("reload %d failed:\n%s", i, d.Log())
		}
		if _, body = get(t, d.URL("/api/emails")); string(body) != `{"ok":true,"rows":[{"id":1,"email":"unknown"}],"truncated":false}`+"\n" {
			t.Fatalf("after reload %d: %s", i, body)
		}
	}
	db := filepath.Join(d.dir, "data", "guestbook.db")
	if got := dbQuery(t, db, "SELECT name FROM _socketd_migrations ORDER BY rowid"); !slices.Equal(got, []string{"schema", "0001_add_email.sql"}) {
		t.Fatalf("recorded migrations: %q", got)
	}
}

// TestSqliteConfigDiagnostics: the plugin's complaints about a route's SQL
// come back as config.hcl:LINE:COL.
func TestSqliteConfigDiagnostics(t *testing.T) {
	cfg := `plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "sqlite" {
  config {
    database = "./test.db"
    schema   = "CREATE TABLE t (a INTEGER);"
  }
}

route "GET /a" {
  plugin = "sqlite"
  config {
    query = "SELECT a FROM t WHERE a > :min"
  }
}

route "GET /b" {
  plugin = "sqlite"
  config {
    query  = "SELECT a FROM t LIMIT :limit"
    params = {
      limit = { type = "integr" }
    }
  }
}

route "GET /c" {
  plugin = "sqlite"
  config {
    query = "SELECT a FROM t; DELETE FROM t"
  }
}

route "POST /d" {
  plugin = "sqlite"
  config {
    exec = "SELECT a FROM t"
  }
}
`
	path := writeConfig(t, cfg, nil)
	_, stderr, code := socketd(t, "validate", "-config", path)
	if code == 0 {
		t.Fatalf("validate accepted a bad config:\n%s", stderr)
	}
	for _, want := range []string{
		"config.hcl:18:5", "parameter :min is not declared",
		"config.hcl:27:17", `unknown type "integr"`,
		"config.hcl:35:5", "more than one SQL statement",
		"config.hcl:42:5", "exec is for statements that write",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "test.db")); err == nil {
		t.Error("validate created the database")
	}
}

// TestSqliteValidateChangesNothing: `socketd validate` checks the routes'
// SQL against the schema and migrations a start would apply, but creates
// no database, and leaves an existing one (and its migrations) as it was.
func TestSqliteValidateChangesNothing(t *testing.T) {
	cfg := `plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

plugin "sqlite" {
  config {
    database   = "./app.db"
    schema     = "CREATE TABLE IF NOT EXISTS t (a INTEGER);"
    migrations = "./migrations"
  }
}

route "GET /b" {
  plugin = "sqlite"
  config {
    query = "SELECT b FROM u"
  }
}
`
	path := writeConfig(t, cfg, map[string]string{"migrations/001_u.sql": "CREATE TABLE u (b TEXT);"})
	dir := filepath.Dir(path)
	if stdout, stderr, code := socketd(t, "validate", "-config", path); code != 0 {
		t.Fatalf("validate: %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.db")); err == nil {
		t.Fatal("validate created the database")
	}
	// An existing database, made before socketd ran on it.
	db := exec.Command("sqlite3", filepath.Join(dir, "app.db"), "CREATE TABLE t (a INTEGER);")
	if out, err := db.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	before, err := os.ReadFile(filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := socketd(t, "validate", "-config", path); code != 0 {
		t.Fatalf("validate on an existing database: %d\n%s%s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "app.db"))
	entries, _ := os.ReadDir(dir)
	if !bytes.Equal(before, after) || len(entries) != 3 { // config.hcl, migrations, app.db
		t.Errorf("validate changed the database or its folder (%d entries)", len(entries))
	}
}

// writeLoad posts n guestbook entries from a few clients at once and
// returns the messages acknowledged with a 2xx. after is called once, in
// its own goroutine, when a quarter of them are acknowledged.
func writeLoad(t *testing.T, d *Daemon, tag string, n int, after func()) []string {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second}
	var next, ok atomic.Int64
	var once sync.Once
	var mu sync.Mutex
	var acked []string
	statuses := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				msg := fmt.Sprintf("%s-%d", tag, i)
				resp, err := client.Post(d.URL("/guestbook"), "application/json",
					strings.NewReader(fmt.Sprintf(`{"name":"load","message":%q}`, msg)))
				status := "error"
				if err == nil {
					resp.Body.Close()
					status = strconv.Itoa(resp.StatusCode)
				}
				mu.Lock()
				statuses[status]++
				if err == nil && resp.StatusCode/100 == 2 {
					acked = append(acked, msg)
					if ok.Add(1) == int64(n/4) {
						once.Do(func() { go after() })
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d writes: %v", n, statuses)
	return acked
}

// checkDurable checks that db is intact and holds every acked message.
func checkDurable(t *testing.T, db string, acked []string) {
	t.Helper()
	if got := dbQuery(t, db, "PRAGMA integrity_check"); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("integrity_check: %q", got)
	}
	stored := map[string]bool{}
	for _, m := range dbQuery(t, db, "SELECT message FROM entries") {
		stored[m] = true
	}
	missing := 0
	for _, m := range acked {
		if !stored[m] {
			missing++
			t.Errorf("write %q was acknowledged but is not in the database", m)
		}
	}
	t.Logf("%d acknowledged writes, %d rows stored, %d missing", len(acked), len(stored), missing)
}

// sqlitePluginPID finds the sqlite plugin among the daemon's children.
func sqlitePluginPID(t *testing.T, d *Daemon) int {
	t.Helper()
	for _, pid := range pluginPIDs(t, d.cmd.Process.Pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("socketd-plugin-sqlite")) {
			return pid
		}
	}
	t.Fatal("no socketd-plugin-sqlite among the daemon's children")
	return 0
}

func TestSqliteSurvivesPluginKill(t *testing.T) {
	d := startGuestbook(t, "")
	db := filepath.Join(d.dir, "data", "guestbook.db")
	pid := sqlitePluginPID(t, d)
	acked := writeLoad(t, d, "plugin-kill", 300, func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill -9 %d: %v", pid, err)
		}
	})
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("plugin %d still alive", pid)
	}
	// The core restarted the plugin by itself and serves again.
	waitLog(t, d, "plugin restarted")
	select {
	case <-d.done:
		t.Fatalf("the daemon exited:\n%s", d.Log())
	default:
	}
	if newPID := sqlitePluginPID(t, d); newPID == pid {
		t.Fatalf("plugin pid unchanged: %d", pid)
	}
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged of 300", len(acked))
	}
	resp, body := do(t, "POST", d.URL("/guestbook"), strings.NewReader(`{"name":"after","message":"after the kill"}`), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("write after restart: %d %s", resp.StatusCode, body)
	}
	acked = append(acked, "after the kill")
	if n := len(entries(t, d)); n < len(acked) {
		t.Fatalf("GET /api/entries lists %d entries, %d were acknowledged", n, len(acked))
	}
	checkDurable(t, db, acked)
}

func TestSqliteSurvivesDaemonKill(t *testing.T) {
	db := filepath.Join(t.TempDir(), "guestbook.db")
	d := startGuestbook(t, db)
	pid := sqlitePluginPID(t, d)
	acked := writeLoad(t, d, "daemon-kill", 300, func() {
		d.cmd.Process.Kill() // SIGKILL: no drain, no goodbye to the plugins
	})
	d.Wait(10 * time.Second)
	waitFor(t, "the orphaned plugin to exit", func() bool { return syscall.Kill(pid, 0) != nil })
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}

	// A new daemon on the same file.
	d2 := startGuestbook(t, db)
	resp, body := do(t, "POST", d2.URL("/guestbook"), strings.NewReader(`{"name":"after","message":"after the restart"}`), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("write after restart: %d %s", resp.StatusCode, body)
	}
	acked = append(acked, "after the restart")
	stored := map[string]bool{}
	for _, e := range entries(t, d2) {
		stored[e["message"].(string)] = true
	}
	for _, m := range acked {
		if !stored[m] {
			t.Errorf("acknowledged write %q not served after the restart", m)
		}
	}
	checkDurable(t, db, acked)
}

// TestSqliteStopLeavesOneFile: a stopped socketd leaves the database as one
// file. The plugin closes its connections when the core stops it, which
// checkpoints the WAL into the file and removes it (and the -shm index).
func TestSqliteStopLeavesOneFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "guestbook.db")
	d := startGuestbook(t, db)
	resp, body := do(t, "POST", d.URL("/guestbook"), strings.NewReader(`{"name":"Ada","message":"kept"}`), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Fatalf("a running database has its WAL: %v", err)
	}
	// A read too: a reader connection then has the WAL open, and a
	// read-only connection closed last cannot fold the WAL back in.
	if resp, body := get(t, d.URL("/guestbook")); resp.StatusCode != 200 || !strings.Contains(string(body), "kept") {
		t.Fatalf("read: %d %s", resp.StatusCode, body)
	}
	d.Stop()
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(db + side); err == nil {
			t.Errorf("%s is left after the stop:\n%s", filepath.Base(db+side), d.Log())
		}
	}
	if got := dbQuery(t, db, "SELECT message FROM entries"); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("the file holds %q", got)
	}
}

// dbQuery runs one statement on the file with the sqlite3 shell, an
// implementation independent of the plugin's, or with the driver where the
// shell is not installed; it returns the first column of each row.
func dbQuery(t *testing.T, db, sql string) []string {
	t.Helper()
	if sh, err := exec.LookPath("sqlite3"); err == nil {
		out, err := exec.Command(sh, "-noheader", "-list", db, sql).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %q: %v\n%s", sql, err, out)
		}
		var rows []string
		for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
			if line != "" {
				rows = append(rows, line)
			}
		}
		return rows
	}
	c, err := sqlite3.OpenFlags(db, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _, err := c.Prepare(sql)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rows []string
	for s.Step() {
		rows = append(rows, s.ColumnText(0))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
