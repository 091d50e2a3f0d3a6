package main

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

const testSchema = `CREATE TABLE entries (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  message TEXT NOT NULL,
  email   TEXT UNIQUE,
  created TEXT NOT NULL DEFAULT '2026-01-02 03:04:05'
);`

// configure runs Configure on a fresh plugin with a database in a
// temporary folder; routes maps route ids to their config blocks.
func configure(t *testing.T, plugin map[string]any, routes map[string]map[string]any) (*sqlitePlugin, sdk.Diagnostics) {
	t.Helper()
	if plugin == nil {
		plugin = map[string]any{}
	}
	if _, ok := plugin["database"]; !ok {
		plugin["database"] = filepath.Join(t.TempDir(), "test.db")
	}
	if _, ok := plugin["schema"]; !ok {
		plugin["schema"] = testSchema
	}
	cfg := &sdk.Config{Plugin: sdk.MustJSON(plugin)}
	ids := make([]string, 0, len(routes))
	for id := range routes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		cfg.Routes = append(cfg.Routes, sdk.RouteConfig{ID: id, Config: sdk.MustJSON(routes[id])})
	}
	p := newPlugin()
	diags := p.Configure(context.Background(), cfg)
	t.Cleanup(func() {
		if st := p.state.Load(); st != nil {
			st.db.closeNow()
		}
	})
	return p, diags
}

// mustConfigure is configure that fails the test on any error.
func mustConfigure(t *testing.T, plugin map[string]any, routes map[string]map[string]any) *sqlitePlugin {
	t.Helper()
	p, diags := configure(t, plugin, routes)
	if diags.HasErrors() {
		t.Fatalf("Configure: %+v", diags)
	}
	return p
}

func TestDescribe(t *testing.T) {
	// Over the real protocol, as the core sees it.
	if d := sdktest.New(t, newPlugin()).Describe(); d.Name != "sqlite" || !slices.Contains(d.Protocols, "http") {
		t.Errorf("Describe over the protocol: %+v", d)
	}
	d := newPlugin().Describe()
	if d.Name != "sqlite" || d.Version == "" {
		t.Errorf("Describe = %q %q", d.Name, d.Version)
	}
	if got, want := sdktest.AttributeNames(t, d.PluginSchema), []string{"database", "schema", "migrations", "busy_timeout", "read_connections", "synchronous", "trusted_origins"}; !slices.Equal(got, want) {
		t.Errorf("plugin schema = %v, want %v", got, want)
	}
	if got, want := sdktest.AttributeNames(t, d.RouteSchema), []string{"query", "exec", "params", "max_rows", "time_limit", "format", "template", "redirect"}; !slices.Equal(got, want) {
		t.Errorf("route schema = %v, want %v", got, want)
	}
	// The README documents every attribute.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(d.PluginSchema, d.RouteSchema...) {
		if !strings.Contains(string(readme), "| `"+a.Name+"` |") {
			t.Errorf("README.md has no table row for %s", a.Name)
		}
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "bad.html")
	os.WriteFile(tmpl, []byte("{{.Rows"), 0o644)
	type want struct {
		route   string
		path    []string
		summary string // substring
		warning bool
	}
	read := func(sql string) map[string]any { return map[string]any{"query": sql} }
	tests := []struct {
		name   string
		plugin map[string]any
		routes map[string]map[string]any
		want   []want
	}{
		{
			name:   "database is a folder",
			plugin: map[string]any{"database": dir},
			want:   []want{{path: []string{"database"}, summary: "is a folder"}},
		},
		{
			name:   "database folder missing",
			plugin: map[string]any{"database": filepath.Join(dir, "nope", "x.db")},
			want:   []want{{path: []string{"database"}, summary: "cannot open"}},
		},
		{
			name:   "database in memory",
			plugin: map[string]any{"database": ":memory:"},
			want:   []want{{path: []string{"database"}, summary: "file path"}},
		},
		{
			name:   "bad plugin attributes",
			plugin: map[string]any{"busy_timeout": "soon", "synchronous": "off", "read_connections": 0, "trusted_origins": []string{"example.com"}},
			want: []want{
				{path: []string{"busy_timeout"}, summary: "not a positive duration"},
				{path: []string{"read_connections"}, summary: "whole number"},
				{path: []string{"synchronous"}, summary: "synchronous"},
				{path: []string{"trusted_origins", "0"}, summary: "not an origin"},
			},
		},
		{
			name:   "schema does not apply",
			plugin: map[string]any{"schema": "CREATE TABLE t (a INT); CREATE TABLEX u (b INT);"},
			want:   []want{{path: []string{"schema"}, summary: "cannot apply the schema"}},
		},
		{
			name:   "migrations folder missing",
			plugin: map[string]any{"migrations": filepath.Join(dir, "none")},
			want:   []want{{path: []string{"migrations"}, summary: "cannot read migrations"}},
		},
		{
			name:   "no SQL",
			routes: map[string]map[string]any{"GET /a": {}},
			want:   []want{{route: "GET /a", summary: "no SQL"}},
		},
		{
			name:   "query and exec",
			routes: map[string]map[string]any{"GET /a": {"query": "SELECT 1", "exec": "DELETE FROM entries"}},
			want:   []want{{route: "GET /a", path: []string{"exec"}, summary: "both set"}},
		},
		{
			name:   "two statements",
			routes: map[string]map[string]any{"GET /a": read("SELECT 1; DROP TABLE entries")},
			want:   []want{{route: "GET /a", path: []string{"query"}, summary: "more than one SQL statement"}},
		},
		{
			name:   "trailing comment and semicolon are one statement",
			routes: map[string]map[string]any{"GET /a": read("SELECT 1; -- done\n")},
		},
		{
			name:   "query that writes",
			routes: map[string]map[string]any{"GET /a": read("DELETE FROM entries")},
			want:   []want{{route: "GET /a", path: []string{"query"}, summary: "must only read"}},
		},
		{
			name:   "exec that reads",
			routes: map[string]map[string]any{"POST /a": {"exec": "SELECT * FROM entries"}},
			want:   []want{{route: "POST /a", path: []string{"exec"}, summary: "statements that write"}},
		},
		{
			name:   "transaction control",
			routes: map[string]map[string]any{"POST /a": {"exec": "BEGIN"}, "GET /b": read("/* x */ ATTACH 'other.db' AS o")},
			want: []want{
				{route: "GET /b", path: []string{"query"}, summary: "ATTACH cannot be"},
				{route: "POST /a", path: []string{"exec"}, summary: "BEGIN cannot be"},
			},
		},
		{
			name:   "no such table",
			routes: map[string]map[string]any{"GET /a": read("SELECT * FROM entrys")},
			want:   []want{{route: "GET /a", path: []string{"query"}, summary: "does not compile"}},
		},
		{
			name:   "undeclared and positional parameters",
			routes: map[string]map[string]any{"GET /a": read("SELECT * FROM entries WHERE id = :id"), "GET /b": read("SELECT * FROM entries WHERE id = ?")},
			want: []want{
				{route: "GET /a", path: []string{"query"}, summary: "parameter :id is not declared"},
				{route: "GET /b", path: []string{"query"}, summary: "positional"},
			},
		},
		{
			name:   "path wildcard declares a parameter",
			routes: map[string]map[string]any{"GET /a/{id}": read("SELECT * FROM entries WHERE id = :id")},
		},
		{
			name:   "unused parameter is a warning",
			routes: map[string]map[string]any{"GET /a": {"query": "SELECT 1", "params": map[string]any{"limit": 5}}},
			want:   []want{{route: "GET /a", path: []string{"params", "limit"}, summary: "does not use :limit", warning: true}},
		},
		{
			name: "bad parameter declarations",
			routes: map[string]map[string]any{"GET /a": {
				"query": "SELECT :a, :b, :c, :d, :e, :f, :g",
				"params": map[string]any{
					"a":  map[string]any{"type": "integer", "maxx": 5},
					"b":  map[string]any{"type": "date"},
					"c":  map[string]any{"type": "integer", "default": "many"},
					"d":  map[string]any{"required": true, "default": "x"},
					"e":  map[string]any{"type": "text", "min": 1},
					"f":  map[string]any{"type": "integer", "min": 10, "max": 1},
					"g":  []int{1},
					"_h": 1,
				},
			}},
			want: []want{
				{route: "GET /a", path: []string{"params", "_h"}, summary: "cannot be a parameter name"},
				{route: "GET /a", path: []string{"params", "a", "maxx"}, summary: `unknown key "maxx"`},
				{route: "GET /a", path: []string{"params", "b", "type"}, summary: "unknown type"},
				{route: "GET /a", path: []string{"params", "c", "default"}, summary: "invalid default"},
				{route: "GET /a", path: []string{"params", "d", "default"}, summary: "no use for a default"},
				{route: "GET /a", path: []string{"params", "e", "min"}, summary: "applies to integer and real"},
				{route: "GET /a", path: []string{"params", "f", "min"}, summary: "min is above max"},
				{route: "GET /a", path: []string{"params", "g"}, summary: "object or a default"},
			},
		},
		{
			name:   "params not an object",
			routes: map[string]map[string]any{"GET /a": {"query": "SELECT 1", "params": []string{"a"}}},
			want:   []want{{route: "GET /a", path: []string{"params"}, summary: "must be an object"}},
		},
		{
			name: "route attributes",
			routes: map[string]map[string]any{
				"GET /a":  {"query": "SELECT 1", "max_rows": 0, "time_limit": "-1s", "format": "xml"},
				"GET /b":  {"query": "SELECT 1", "template": filepath.Join(dir, "missing.html")},
				"GET /c":  {"query": "SELECT 1", "template": tmpl},
				"GET /d":  {"query": "SELECT 1", "redirect": "/x"},
				"POST /e": {"exec": "DELETE FROM entries", "redirect": "https://evil.example/"},
				"POST /f": {"exec": "DELETE FROM entries RETURNING id", "redirect": "/x/{nope}"},
				"POST /g": {"exec": "DELETE FROM entries", "template": tmpl},
			},
			want: []want{
				{route: "GET /a", path: []string{"format"}, summary: "unknown format"},
				{route: "GET /a", path: []string{"max_rows"}, summary: "whole number"},
				{route: "GET /a", path: []string{"time_limit"}, summary: "positive duration"},
				{route: "GET /b", path: []string{"template"}, summary: "cannot use template"},
				{route: "GET /c", path: []string{"template"}, summary: "cannot use template"},
				{route: "GET /d", path: []string{"redirect"}, summary: "applies to exec"},
				{route: "POST /e", path: []string{"redirect"}, summary: "path on this site"},
				{route: "POST /f", path: []string{"redirect"}, summary: "{nope}"},
				{route: "POST /g", path: []string{"template"}, summary: "applies to query"},
			},
		},
		{
			name: "method and kind disagree",
			routes: map[string]map[string]any{
				"POST /a": read("SELECT 1"),
				"GET /b":  {"exec": "DELETE FROM entries"},
				"/c":      read("SELECT 1"),
			},
			want: []want{
				{route: "GET /b", path: []string{"exec"}, summary: "but this route is GET"},
				{route: "POST /a", path: []string{"query"}, summary: "but this route is POST"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := configure(t, tt.plugin, tt.routes)
			var got []want
			for _, d := range diags {
				got = append(got, want{route: d.Route, path: d.Path, summary: d.Summary, warning: d.Severity == sdk.Warning})
			}
			slices.SortStableFunc(got, func(a, b want) int {
				if c := strings.Compare(a.route, b.route); c != 0 {
					return c
				}
				return strings.Compare(strings.Join(a.path, "."), strings.Join(b.path, "."))
			})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%+v", len(got), len(tt.want), diags)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.route != w.route || !slices.Equal(g.path, w.path) || !strings.Contains(g.summary, w.summary) || g.warning != w.warning {
					t.Errorf("diagnostic %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "m.db")
	mig := filepath.Join(dir, "migrations")
	os.Mkdir(mig, 0o755)
	write := func(name, sql string) {
		if err := os.WriteFile(filepath.Join(mig, name), []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plugin := func() map[string]any {
		return map[string]any{"database": db, "schema": "CREATE TABLE a (x INTEGER);", "migrations": mig}
	}
	routes := map[string]map[string]any{"GET /": {"query": "SELECT * FROM a"}}
	applied := func() []string {
		t.Helper()
		c, err := sqlite3.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, _, err := c.Prepare("SELECT name FROM _socketd_migrations ORDER BY rowid")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out []string
		for s.Step() {
			out = append(out, s.ColumnText(0))
		}
		return out
	}

	write("002_b.sql", "CREATE TABLE b (y INTEGER);")
	write("001_a.sql", "ALTER TABLE a ADD COLUMN z TEXT; INSERT INTO a VALUES (1, 'one');")
	write("README.txt", "not a migration")
	mustConfigure(t, plugin(), routes)
	if got, want := applied(), []string{"schema", "001_a.sql", "002_b.sql"}; !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}

	// Again: nothing is applied twice (the INSERT would add a second row).
	write("003_c.sql", "INSERT INTO b VALUES (3);")
	p := mustConfigure(t, plugin(), map[string]map[string]any{"GET /": {"query": "SELECT count(*) AS n FROM a"}})
	if got, want := applied(), []string{"schema", "001_a.sql", "002_b.sql", "003_c.sql"}; !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if _, body := get(t, p, "GET /", "/"); !strings.Contains(body, `"n":1`) {
		t.Errorf("rows of a = %s, want one", body)
	}

	// A changed script is not applied again: a warning says so.
	pl := plugin()
	pl["schema"] = "CREATE TABLE a (x INTEGER, w TEXT);"
	_, diags := configure(t, pl, routes)
	if len(diags) != 1 || diags[0].Severity != sdk.Warning || !slices.Equal(diags[0].Path, []string{"schema"}) {
		t.Errorf("changed schema: %+v, want one warning at schema", diags)
	}

	// A new script that sorts before an applied one breaks the order.
	write("001b_late.sql", "CREATE TABLE late (q INTEGER);")
	_, diags = configure(t, plugin(), routes)
	if !diags.HasErrors() || !slices.Equal(diags[0].Path, []string{"migrations"}) || !strings.Contains(diags[0].Detail, "002_b.sql") {
		t.Errorf("out of order: %+v", diags)
	}
	os.Remove(filepath.Join(mig, "001b_late.sql"))

	// A failing script is rolled back whole and not recorded.
	write("004_bad.sql", "CREATE TABLE d (q INTEGER); INSERT INTO nope VALUES (1);")
	_, diags = configure(t, plugin(), routes)
	if !diags.HasErrors() || !strings.Contains(diags[0].Summary, "004_bad.sql") {
		t.Errorf("failing migration: %+v", diags)
	}
	if got := applied(); slices.Contains(got, "004_bad.sql") {
		t.Errorf("failed migration recorded: %v", got)
	}
	os.Remove(filepath.Join(mig, "004_bad.sql"))
	p = mustConfigure(t, plugin(), map[string]map[string]any{"GET /": {"query": "SELECT name FROM sqlite_schema WHERE name = 'd'"}})
	if _, body := get(t, p, "GET /", "/"); strings.Contains(body, `"d"`) {
		t.Errorf("table of the failed migration exists: %s", body)
	}
}

func TestParsePattern(t *testing.T) {
	for _, tt := range []struct {
		id, method string
		wildcards  []string
	}{
		{"GET /guestbook", "GET", nil},
		{"/x", "", nil},
		{"POST example.com/a/{id}/{rest...}", "POST", []string{"id", "rest"}},
		{"GET /{$}", "GET", nil},
		{"DELETE  /e/{id}", "DELETE", []string{"id"}},
	} {
		m, w := parsePattern(tt.id)
		if m != tt.method || !slices.Equal(w, tt.wildcards) {
			t.Errorf("parsePattern(%q) = %q %v, want %q %v", tt.id, m, w, tt.method, tt.wildcards)
		}
	}
}

func TestFirstKeyword(t *testing.T) {
	for sql, want := range map[string]string{
		"select 1":                 "SELECT",
		"  -- c\n /* d */ begin;":  "BEGIN",
		"WITH x AS (SELECT 1) ...": "WITH",
		"/* never closed":          "",
	} {
		if got := firstKeyword(sql); got != want {
			t.Errorf("firstKeyword(%q) = %q, want %q", sql, got, want)
		}
	}
}

// checkOnly runs Configure as `socketd validate` does.
func checkOnly(t *testing.T, plugin map[string]any, routes map[string]map[string]any) sdk.Diagnostics {
	t.Helper()
	cfg := &sdk.Config{Plugin: sdk.MustJSON(plugin), CheckOnly: true}
	for id, rc := range routes {
		cfg.Routes = append(cfg.Routes, sdk.RouteConfig{ID: id, Config: sdk.MustJSON(rc)})
	}
	p := newPlugin()
	diags := p.Configure(context.Background(), cfg)
	if p.state.Load() != nil {
		t.Error("a checked config was kept to serve")
	}
	return diags
}

// folderState is every file of dir with its content.
func folderState(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestCheckOnlyCreatesNoDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new.db")
	good := map[string]map[string]any{"GET /entries": {"query": "SELECT id, name FROM entries"}}
	if diags := checkOnly(t, map[string]any{"database": db, "schema": testSchema}, good); len(diags) > 0 {
		t.Fatalf("a good config: %+v", diags)
	}
	if files := folderState(t, dir); len(files) > 0 {
		t.Errorf("checking created %v", slices.Collect(maps.Keys(files)))
	}
	diags := checkOnly(t, map[string]any{"database": db, "schema": testSchema},
		map[string]map[string]any{"GET /entries": {"query": "SELECT id, nam FROM entries"}})
	if !diags.HasErrors() || !strings.Contains(diags[0].Detail, "nam") {
		t.Errorf("a typo in a column went unnoticed: %+v", diags)
	}
	diags = checkOnly(t, map[string]any{"database": filepath.Join(dir, "missing", "x.db"), "schema": testSchema}, good)
	if !diags.HasErrors() || !slices.Equal(diags[0].Path, []string{"database"}) {
		t.Errorf("a database in a missing folder: %+v", diags)
	}
}

func TestCheckOnlyLeavesAnExistingDatabaseAsItWas(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "app.db")
	schema := testSchema + `
CREATE INDEX entries_by_name ON entries(name);
CREATE VIEW named AS SELECT name FROM entries;
CREATE TABLE log (entry INTEGER, at TEXT);
CREATE TABLE sqlitelike (x TEXT); -- not one of SQLite's own (sqlite_...)
CREATE TRIGGER logged AFTER INSERT ON entries BEGIN INSERT INTO log VALUES (new.id, 'now'); END;`
	plugin := map[string]any{"database": db, "schema": schema}
	p := mustConfigure(t, plugin, nil)
	p.state.Load().db.closeNow()
	before := folderState(t, dir)
	if len(before) == 0 {
		t.Fatal("no database was made")
	}

	migrations := t.TempDir()
	if err := os.WriteFile(filepath.Join(migrations, "001_tags.sql"), []byte("CREATE TABLE tags (entry INTEGER REFERENCES entries(id), tag TEXT);"), 0o644); err != nil {
		t.Fatal(err)
	}
	plugin["migrations"] = migrations
	routes := map[string]map[string]any{
		"GET /tags":  {"query": "SELECT tag FROM tags JOIN entries ON entries.id = tags.entry"},
		"GET /named": {"query": "SELECT name FROM named"},
		"POST /add":  {"exec": "INSERT INTO entries (name, message) VALUES ('a', 'b')"},
		"GET /like":  {"query": "SELECT x FROM sqlitelike"},
	}
	if diags := checkOnly(t, plugin, routes); len(diags) > 0 {
		t.Fatalf("routes on the new migration's table and the existing schema: %+v", diags)
	}
	plugin["schema"] = schema + "\n-- edited"
	diags := checkOnly(t, plugin, routes)
	if len(diags) != 1 || diags[0].Severity != sdk.Warning || !slices.Equal(diags[0].Path, []string{"schema"}) {
		t.Errorf("an edited schema: want the start's warning, got %+v", diags)
	}
	if after := folderState(t, dir); !maps.Equal(before, after) {
		t.Errorf("checking changed the database's folder: %v files before, %v after", len(before), len(after))
	}
	// A real start then applies the migration.
	plugin["schema"] = schema
	p = mustConfigure(t, plugin, routes)
	p.state.Load().db.closeNow()
}

func TestCheckOnlyReadsARunningDatabase(t *testing.T) {
	dir := t.TempDir()
	migrations := t.TempDir()
	if err := os.WriteFile(filepath.Join(migrations, "001_tags.sql"), []byte("CREATE TABLE tags (tag TEXT);"), 0o644); err != nil {
		t.Fatal(err)
	}
	plugin := map[string]any{"database": filepath.Join(dir, "app.db"), "schema": testSchema, "migrations": migrations}
	mustConfigure(t, plugin, nil) // stays open, as under a running socketd
	before := folderState(t, dir)
	if _, ok := before["app.db-wal"]; !ok {
		t.Fatalf("want the open database's WAL, found %v", slices.Collect(maps.Keys(before)))
	}
	// The migration's record may sit in the WAL only: a check that missed
	// it would apply the edited script to its copy without a word.
	if err := os.WriteFile(filepath.Join(migrations, "001_tags.sql"), []byte("CREATE TABLE tags (tag TEXT, n INTEGER);"), 0o644); err != nil {
		t.Fatal(err)
	}
	diags := checkOnly(t, plugin, map[string]map[string]any{"GET /tags": {"query": "SELECT tag FROM tags"}})
	if len(diags) != 1 || diags[0].Severity != sdk.Warning || !slices.Equal(diags[0].Path, []string{"migrations"}) {
		t.Errorf("an edited migration of a running database: want the start's warning, got %+v", diags)
	}
	after := folderState(t, dir)
	if !slices.Equal(slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after))) || before["app.db"] != after["app.db"] {
		t.Errorf("checking changed the folder: %v, then %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
}

// TestCheckOnlyOverTheProtocol: CheckOnly crosses the plugin protocol
// (check_only) as socketd validate sends it.
func TestCheckOnlyOverTheProtocol(t *testing.T) {
	dir := t.TempDir()
	h := sdktest.New(t, newPlugin())
	diags := h.Configure(&sdk.Config{
		Plugin:    sdk.MustJSON(map[string]any{"database": filepath.Join(dir, "new.db"), "schema": testSchema}),
		Routes:    []sdk.RouteConfig{{ID: "GET /entries", Config: sdk.MustJSON(map[string]any{"query": "SELECT id FROM entries"})}},
		CheckOnly: true,
	})
	if len(diags) > 0 {
		t.Fatalf("a good config: %+v", diags)
	}
	if files := folderState(t, dir); len(files) > 0 {
		t.Errorf("checking over the protocol created %v", slices.Collect(maps.Keys(files)))
	}
}
