package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/sdk"
)

// version is reported by Describe and shown by `socketd plugins`.
const version = "1.0.0"

// Defaults of the attributes a user may leave out (README.md lists them).
const (
	defaultBusyTimeout = 5 * time.Second
	defaultTimeLimit   = 5 * time.Second
	defaultMaxRows     = 1000
	defaultSynchronous = "full"
)

// defaultReaders is the read pool's size: enough to keep every core busy,
// and at least 4 so a slow query does not hold up the rest.
var defaultReaders = max(4, runtime.GOMAXPROCS(0))

// sqlitePlugin is the plugin. Configure builds a whole state and swaps it
// in, so a request sees one configuration from start to end.
type sqlitePlugin struct {
	state atomic.Pointer[state]
}

func newPlugin() *sqlitePlugin { return &sqlitePlugin{} }

// state is one validated configuration and the database it opened.
type state struct {
	db     *database
	routes map[string]*route
	cop    *http.CrossOriginProtection
}

// route is what one route runs.
type route struct {
	id    string
	write bool   // exec (true) or query
	sql   string // exactly one statement
	// params are the declared parameters; binds maps each bind position of
	// the statement (from 1, so binds[i-1]) to its index in params.
	params    []*param
	binds     []int
	maxRows   int
	timeLimit time.Duration
	format    string // answer when the client states no preference
	tmpl      *template.Template
	redirect  string // after a form post; "" is the request's path
}

// Describe declares the schemas, so the core reports a misspelt attribute
// with its line and column before the plugin ever sees it.
func (*sqlitePlugin) Describe() sdk.Description {
	return sdk.Description{
		Name:    "sqlite",
		Version: version,
		PluginSchema: sdk.Schema{
			{Name: "database", Type: "string", Required: true, Description: "SQLite file, created if missing; a relative path resolves against the config file's folder."},
			{Name: "schema", Type: "string", Description: `SQL applied once, when the database is new, e.g. file("./data/schema.sql").`},
			{Name: "migrations", Type: "string", Description: "Folder of *.sql files applied once each, in name order, after schema."},
			{Name: "busy_timeout", Type: "string", Description: `How long a statement waits for another process's lock; default "5s".`},
			{Name: "read_connections", Type: "number", Description: "Size of the read-only connection pool; default 4 or the number of CPUs, whichever is larger."},
			{Name: "synchronous", Type: "string", Description: `"full" (default: a commit survives power loss) or "normal" (survives a crash of the process only).`},
			{Name: "trusted_origins", Type: "list(string)", Description: `Origins allowed to post cross-site, e.g. ["https://example.com"].`},
		},
		RouteSchema: sdk.Schema{
			{Name: "query", Type: "string", Description: "One read-only SQL statement with :named parameters, answered on GET and HEAD."},
			{Name: "exec", Type: "string", Description: "One SQL statement that writes, run in an IMMEDIATE transaction, answered on POST, PUT, PATCH and DELETE."},
			{Name: "params", Type: "any", Description: `Declared parameters: { NAME = { type = "integer", default = 50, min = 1, max = 500, required = false, max_length = 100 } }.`},
			{Name: "max_rows", Type: "number", Description: "Most rows answered; more are cut off and marked truncated; default 1000."},
			{Name: "time_limit", Type: "string", Description: `Longest a statement may run before it is interrupted (504); default "5s".`},
			{Name: "format", Type: "string", Description: `Answer when the client states no preference: "json", "ndjson", "csv" or "html"; default "html" with a template, else "json".`},
			{Name: "template", Type: "string", Description: "html/template file that renders the rows as a page; relative to the config file's folder."},
			{Name: "redirect", Type: "string", Description: "Where a form post is sent after an exec (303); {column} takes a RETURNING value; default the request's path."},
		},
	}
}

type pluginConfig struct {
	Database        *string  `json:"database"`
	Schema          *string  `json:"schema"`
	Migrations      *string  `json:"migrations"`
	BusyTimeout     *string  `json:"busy_timeout"`
	ReadConnections *float64 `json:"read_connections"`
	Synchronous     *string  `json:"synchronous"`
	TrustedOrigins  []string `json:"trusted_origins"`
}

type routeConfig struct {
	Query     *string         `json:"query"`
	Exec      *string         `json:"exec"`
	Params    json.RawMessage `json:"params"`
	MaxRows   *float64        `json:"max_rows"`
	TimeLimit *string         `json:"time_limit"`
	Format    *string         `json:"format"`
	Template  *string         `json:"template"`
	Redirect  *string         `json:"redirect"`
}

// Configure opens the database (creating it), applies the schema and new
// migrations, then checks every route's SQL against the result: one
// statement, reads only for query and writes for exec, every :name
// declared. A mistake fails the start or the reload, never a request.
// When the config is only checked (socketd validate), the same checks run
// against a scratch copy of the schema (scratchCopy), and the file is left
// as it was.
func (p *sqlitePlugin) Configure(ctx context.Context, cfg *sdk.Config) sdk.Diagnostics {
	c := &configurer{}
	var pc pluginConfig
	opts, scripts, cop, ok := c.plugin(cfg.Plugin, &pc)

	var db *database
	var check *sqlite3.Conn
	if ok {
		var err error
		if cfg.CheckOnly {
			check, err = scratchCopy(opts)
		} else if db, err = openDatabase(opts); err == nil {
			check = db.all[0].db
		}
		if err != nil {
			c.errorf("", []string{"database"}, fmt.Sprintf("cannot open the database %q", *pc.Database),
				fmt.Sprintf("%s (a relative path resolves against the config file's folder; the folder must exist)", sqliteMessage(err)))
		} else if changed, err := migrate(ctx, check, scripts); err != nil {
			path, name := []string{"schema"}, "the schema"
			if me, ok := errors.AsType[*migrationError](err); ok && me.name != "schema" {
				path, name = []string{"migrations"}, "migration "+me.name
			}
			c.errorf("", path, "cannot apply "+name, sqliteMessage(err))
		} else {
			for _, name := range changed {
				path, what := []string{"migrations"}, "migration "+name
				if name == "schema" {
					path, what = []string{"schema"}, "the schema"
				}
				c.warnf("", path, what+" changed after it was applied; the change is not applied",
					"each script is applied once; put changes to an existing database in a new migration file")
			}
		}
	}

	against := check
	if c.diags.HasErrors() {
		against = nil
	}
	routes := map[string]*route{}
	for _, rc := range cfg.Routes {
		if rt := c.route(rc, against); rt != nil {
			routes[rc.ID] = rt
		}
	}

	if cfg.CheckOnly || c.diags.HasErrors() {
		if db != nil {
			db.closeNow()
		} else if check != nil {
			check.Close()
		}
		return c.diags
	}
	if old := p.state.Swap(&state{db: db, routes: routes, cop: cop}); old != nil {
		old.db.close()
	}
	return c.diags
}

// closeWait bounds Close's wait for requests still holding a connection:
// the core kills a process that has not exited 2 s after asking it to.
const closeWait = 1500 * time.Millisecond

// Close closes the database once the requests in flight are done with it,
// when the core stops the process (a reload replaced it, or socketd is
// stopping). The last connection to close checkpoints the WAL into the
// database file and removes it, so the file alone holds every commit.
func (p *sqlitePlugin) Close() error {
	st := p.state.Load()
	if st == nil {
		return nil
	}
	st.db.close()
	select {
	case <-st.db.closed:
		return nil
	case <-time.After(closeWait):
		return errors.New("requests still held the database; it was left open (the WAL keeps every commit)")
	}
}

// configurer collects diagnostics, every one of them rather than the
// first, so a user fixes a whole config in one round.
type configurer struct {
	diags sdk.Diagnostics
}

func (c *configurer) errorf(route string, path []string, summary, detail string) {
	c.diags = append(c.diags, sdk.Diagnostic{Severity: sdk.Error, Summary: summary, Detail: detail, Route: route, Path: path})
}

func (c *configurer) warnf(route string, path []string, summary, detail string) {
	c.diags = append(c.diags, sdk.Diagnostic{Severity: sdk.Warning, Summary: summary, Detail: detail, Route: route, Path: path})
}

// decode unmarshals a block, pointing a type mismatch at its attribute.
func (c *configurer) decode(raw sdk.RawConfig, v any, route string) bool {
	err := raw.Decode(v)
	if err == nil {
		return true
	}
	d := sdk.Diagnostic{Severity: sdk.Error, Summary: "invalid config", Detail: err.Error(), Route: route}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
		d.Path = strings.Split(te.Field, ".")
	}
	c.diags = append(c.diags, d)
	return false
}

// duration reads a duration attribute such as "5s"; it must be positive.
func (c *configurer) duration(s *string, def time.Duration, route, attr string) time.Duration {
	if s == nil {
		return def
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d <= 0 {
		c.errorf(route, []string{attr}, fmt.Sprintf("%s %q is not a positive duration", attr, *s), `write a number with a unit, like "500ms" or "5s"`)
		return def
	}
	return d
}

// whole reads a whole-number attribute in [lo, hi].
func (c *configurer) whole(f *float64, def, lo, hi int, route, attr string) int {
	if f == nil {
		return def
	}
	if *f != math.Trunc(*f) || *f < float64(lo) || *f > float64(hi) {
		c.errorf(route, []string{attr}, fmt.Sprintf("%s must be a whole number from %d to %d", attr, lo, hi), fmt.Sprintf("got %v", *f))
		return def
	}
	return int(*f)
}

// plugin reads the plugin block.
func (c *configurer) plugin(raw sdk.RawConfig, pc *pluginConfig) (dbOptions, []migration, *http.CrossOriginProtection, bool) {
	n := len(c.diags)
	if !c.decode(raw, pc, "") {
		return dbOptions{}, nil, nil, false
	}
	o := dbOptions{synchronous: defaultSynchronous}
	if pc.Database == nil || strings.TrimSpace(*pc.Database) == "" {
		c.errorf("", []string{"database"}, "database is required", `name the SQLite file, e.g. database = "./data/guestbook.db"`)
	} else if strings.HasPrefix(*pc.Database, "file:") || strings.HasPrefix(*pc.Database, ":memory:") {
		c.errorf("", []string{"database"}, "database must be a file path", "URIs and in-memory databases are not supported: every connection of the pool must see the same file")
	} else if abs, err := filepath.Abs(*pc.Database); err != nil {
		c.errorf("", []string{"database"}, "cannot resolve database", err.Error())
	} else {
		o.path = abs
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			c.errorf("", []string{"database"}, fmt.Sprintf("database %q is a folder", *pc.Database), "name a file inside it, e.g. "+filepath.Join(*pc.Database, "app.db"))
		}
	}
	o.busyTimeout = c.duration(pc.BusyTimeout, defaultBusyTimeout, "", "busy_timeout")
	o.readers = c.whole(pc.ReadConnections, defaultReaders, 1, 256, "", "read_connections")
	if pc.Synchronous != nil {
		switch s := strings.ToLower(*pc.Synchronous); s {
		case "full", "normal":
			o.synchronous = s
		default:
			c.errorf("", []string{"synchronous"}, fmt.Sprintf("synchronous %q is not \"full\" or \"normal\"", *pc.Synchronous),
				`"full" syncs every commit to disk (survives power loss); "normal" survives a crash of the process but may lose the last commits on power loss`)
		}
	}

	var scripts []migration
	if pc.Schema != nil && strings.TrimSpace(*pc.Schema) != "" {
		scripts = append(scripts, migration{name: "schema", sql: *pc.Schema})
	}
	if pc.Migrations != nil {
		ms, err := readMigrations(*pc.Migrations)
		if err != nil {
			c.errorf("", []string{"migrations"}, fmt.Sprintf("cannot read migrations %q", *pc.Migrations),
				err.Error()+" (a relative path resolves against the config file's folder)")
		}
		for _, m := range ms {
			if m.name == "schema" {
				continue
			}
			scripts = append(scripts, m)
		}
	}

	cop := http.NewCrossOriginProtection()
	for i, o := range pc.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			c.errorf("", []string{"trusted_origins", fmt.Sprint(i)}, fmt.Sprintf("%q is not an origin", o), `write scheme://host[:port], e.g. "https://example.com"`)
		}
	}
	return o, scripts, cop, len(c.diags) == n
}

// route reads and checks one route's block. check is a connection to the
// migrated database, nil when the plugin block is broken: the SQL is then
// left unchecked rather than reported against a database that is not there.
func (c *configurer) route(rc sdk.RouteConfig, check *sqlite3.Conn) *route {
	id := rc.ID
	var cfg routeConfig
	if !c.decode(rc.Config, &cfg, id) {
		return nil
	}
	n := len(c.diags)
	rt := &route{id: id, maxRows: defaultMaxRows, timeLimit: defaultTimeLimit, format: formatJSON}
	attr := "query"
	switch {
	case cfg.Query != nil && cfg.Exec != nil:
		c.errorf(id, []string{"exec"}, "query and exec are both set", "a route runs one statement: query for reading, exec for writing")
		return nil
	case cfg.Query != nil:
		rt.sql = *cfg.Query
	case cfg.Exec != nil:
		rt.sql, rt.write, attr = *cfg.Exec, true, "exec"
	default:
		c.errorf(id, nil, "the route has no SQL", `set query = "SELECT ..." to read, or exec = "INSERT ..." to write`)
		return nil
	}

	method, wildcards := parsePattern(id)
	switch {
	case !rt.write && method != "" && method != http.MethodGet && method != http.MethodHead:
		c.errorf(id, []string{"query"}, fmt.Sprintf("a query route answers GET and HEAD, but this route is %s", method),
			`use exec for a statement that writes, or route "GET ..." for a query`)
	case rt.write && method != "" && !slices.Contains(writeMethods, method):
		c.errorf(id, []string{"exec"}, fmt.Sprintf("an exec route answers %s, but this route is %s", strings.Join(writeMethods, ", "), method),
			"a write must not be reachable by GET (links, prefetching and crawlers follow GETs); route it as POST")
	}

	params := map[string]*param{}
	// UseNumber keeps every digit of defaults and bounds.
	var decl any
	if len(cfg.Params) > 0 {
		dec := json.NewDecoder(bytes.NewReader(cfg.Params))
		dec.UseNumber()
		dec.Decode(&decl)
	}
	switch decl := decl.(type) {
	case nil:
	case map[string]any:
		names := make([]string, 0, len(decl))
		for name := range decl {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if !validParamName(name) {
				c.errorf(id, []string{"params", name}, fmt.Sprintf("%q cannot be a parameter name", name),
					`use letters, digits and "_", not starting with a digit or "_" (names starting with "_" are for controls such as _format)`)
				continue
			}
			p := parseParam(name, decl[name], func(path []string, summary, detail string) {
				c.errorf(id, append([]string{"params", name}, path...), summary, detail)
			})
			if p == nil {
				// Reported; declared all the same, so its uses in the SQL
				// are not reported again as undeclared.
				p = &param{name: name, typ: typeText}
			}
			p.path = slices.Contains(wildcards, name)
			params[name] = p
		}
	default:
		c.errorf(id, []string{"params"}, "params must be an object",
			`write params = { limit = { type = "integer", default = 50 } }`)
	}

	if cfg.MaxRows != nil {
		rt.maxRows = c.whole(cfg.MaxRows, defaultMaxRows, 1, 1_000_000, id, "max_rows")
	}
	rt.timeLimit = c.duration(cfg.TimeLimit, defaultTimeLimit, id, "time_limit")
	if cfg.Template != nil {
		if rt.write {
			c.errorf(id, []string{"template"}, "template applies to query routes", "an exec route answers JSON, or a redirect after a form post")
		} else if t, err := loadTemplate(*cfg.Template); err != nil {
			c.errorf(id, []string{"template"}, fmt.Sprintf("cannot use template %q", *cfg.Template), err.Error())
		} else {
			rt.tmpl, rt.format = t, formatHTML
		}
	}
	if cfg.Format != nil {
		if !slices.Contains(formats, *cfg.Format) {
			c.errorf(id, []string{"format"}, fmt.Sprintf("unknown format %q", *cfg.Format), "format is one of json, ndjson, csv, html")
		} else {
			rt.format = *cfg.Format
		}
	}
	if cfg.Redirect != nil {
		r := *cfg.Redirect
		switch {
		case !rt.write:
			c.errorf(id, []string{"redirect"}, "redirect applies to exec routes", "it is where a form post goes after the write")
		case !strings.HasPrefix(r, "/") || strings.HasPrefix(r, "//") || strings.HasPrefix(r, "/\\") || strings.ContainsAny(r, "\r\n"):
			c.errorf(id, []string{"redirect"}, "redirect must be a path on this site", `start it with a single "/", e.g. "/guestbook"; other sites are never a redirect target`)
		default:
			rt.redirect = r
		}
	}

	if check != nil {
		c.checkSQL(rt, attr, check, params, wildcards)
	}
	if len(c.diags) > n && c.diags[n:].HasErrors() {
		return nil
	}
	return rt
}

// writeMethods are the methods an exec route answers.
var writeMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// checkSQL prepares the route's SQL on the migrated database: the statement
// compiles (tables and columns exist), is the only one, reads or writes as
// its attribute says, and every :name it uses is declared.
func (c *configurer) checkSQL(rt *route, attr string, db *sqlite3.Conn, params map[string]*param, wildcards []string) {
	id, path := rt.id, []string{attr}
	if kw := firstKeyword(rt.sql); slices.Contains(refusedKeywords, kw) {
		c.errorf(id, path, fmt.Sprintf("%s cannot be a route's statement", kw),
			"each exec already runs in its own transaction, and a route cannot attach other files or vacuum")
		return
	}
	stmt, tail, err := db.Prepare(rt.sql)
	if err != nil {
		c.errorf(id, path, "the SQL does not compile", sqliteMessage(err))
		return
	}
	if stmt == nil {
		c.errorf(id, path, "the SQL is empty", "write one statement")
		return
	}
	defer stmt.Close()
	if more, _, err := db.Prepare(tail); more != nil || err != nil {
		if more != nil {
			more.Close()
		}
		c.errorf(id, path, "more than one SQL statement", fmt.Sprintf("a route runs exactly one statement; this one continues after the first with %q", shorten(strings.TrimSpace(tail))))
		return
	}
	switch ro := stmt.ReadOnly(); {
	case !rt.write && !ro:
		c.errorf(id, path, "query must only read", "this statement writes; use exec for it, on a POST route")
	case rt.write && ro:
		c.errorf(id, path, "exec is for statements that write", "this statement only reads; use query for it, on a GET route")
	}

	used := map[string]bool{}
	for i := 1; i <= stmt.BindCount(); i++ {
		full := stmt.BindName(i)
		if full == "" || full[0] == '?' {
			c.errorf(id, path, "positional parameters are not supported", `name every parameter, e.g. WHERE id = :id, and declare it in params`)
			return
		}
		name := full[1:]
		p := params[name]
		if p == nil && slices.Contains(wildcards, name) {
			// A {name} of the route pattern declares a text parameter.
			p = &param{name: name, typ: typeText, required: true, path: true}
			params[name] = p
		}
		if p == nil {
			c.errorf(id, path, fmt.Sprintf("parameter %s is not declared", full),
				fmt.Sprintf(`declare it in this route's params, e.g. params = { %s = { type = "text", required = true } }`, name))
			continue
		}
		idx := slices.Index(rt.params, p)
		if idx < 0 {
			idx = len(rt.params)
			rt.params = append(rt.params, p)
		}
		rt.binds = append(rt.binds, idx)
		used[name] = true
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !used[name] {
			c.warnf(id, []string{"params", name}, fmt.Sprintf("parameter %q is declared but the SQL does not use :%s", name, name), "")
		}
	}
	if rt.redirect != "" {
		cols := []string{"last_insert_id", "rows_affected"}
		for i := range stmt.ColumnCount() {
			cols = append(cols, stmt.ColumnName(i))
		}
		for _, ph := range placeholders(rt.redirect) {
			if !slices.Contains(cols, ph) {
				c.errorf(id, []string{"redirect"}, fmt.Sprintf("redirect uses {%s}, which the statement does not give", ph),
					"a placeholder is a column of the statement's RETURNING clause, {last_insert_id} or {rows_affected}")
			}
		}
	}
}

// refusedKeywords start statements a route may not run.
var refusedKeywords = []string{"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ATTACH", "DETACH", "VACUUM"}

// firstKeyword returns the first word of sql, upper-cased, after spaces and
// comments.
func firstKeyword(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n\f")
		switch {
		case strings.HasPrefix(sql, "--"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		case strings.HasPrefix(sql, "/*"):
			i := strings.Index(sql[2:], "*/")
			if i < 0 {
				return ""
			}
			sql = sql[i+4:]
		default:
			end := strings.IndexFunc(sql, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
			})
			if end < 0 {
				end = len(sql)
			}
			return strings.ToUpper(sql[:end])
		}
	}
}

// parsePattern splits a route id, a net/http ServeMux pattern
// ("[METHOD ][HOST]/PATH"), into its method and the names of its
// wildcards ({id}, {rest...}).
func parsePattern(id string) (method string, wildcards []string) {
	rest := strings.TrimSpace(id)
	if i := strings.IndexAny(rest, " \t"); i >= 0 && !strings.Contains(rest[:i], "/") {
		method, rest = rest[:i], strings.TrimSpace(rest[i+1:])
	}
	return method, sdk.PatternWildcards(rest)
}

// placeholders lists the {name}s of a redirect.
func placeholders(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+j])
		s = s[i+j+1:]
	}
}

// expandRedirect fills a redirect's placeholders, each query-escaped.
func expandRedirect(s string, vals map[string]string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(url.QueryEscape(vals[s[i+1:i+j]]))
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

func validParamName(s string) bool {
	if s == "" || s[0] == '_' || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// loadTemplate reads and parses an html/template file once, at
// configuration, so a syntax error fails the start rather than a request.
func loadTemplate(path string) (*template.Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (a relative path resolves against the config file's folder)", err)
	}
	return template.New(filepath.Base(path)).Parse(string(b))
}

// sqliteMessage is SQLite's own words without the driver's prefix.
func sqliteMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "sqlite3: ")
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}
