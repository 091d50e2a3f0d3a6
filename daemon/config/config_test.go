package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the want section of testdata/*.txtar")

// TestGolden loads each testdata/NAME.txtar's config.hcl, next to the
// archive's other files, and compares the diagnostics, then the normalized
// config if there was no error, with the archive's want file.
//
// Archive files: config.hcl; any files it refers to (socketd-plugin-* are
// made executable unless their text starts with "not executable"); env, NAME=VALUE lines set for the test; schema.json,
// {"PLUGIN": {"plugin": [Attribute], "route": [...], "listener": [...]}},
// against which config blocks are decoded (without it they are printed as
// plain JSON); want.
func TestGolden(t *testing.T) {
	archives, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range archives {
		path, _ := filepath.Abs(path)
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := runGolden(t, ar)
			want := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					want = i
				}
			}
			if *update {
				if want < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					want = len(ar.Files) - 1
				}
				ar.Files[want].Data = []byte(got)
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want < 0 {
				t.Fatalf("no want file; run go test -update\ngot:\n%s", got)
			}
			if w := string(ar.Files[want].Data); got != w {
				t.Errorf("output differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", got, w)
			}
		})
	}
}

func runGolden(t *testing.T, ar *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	var schemas map[string]map[string][]Attribute
	for _, f := range ar.Files {
		switch f.Name {
		case "want":
		case "env":
			for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				k, v, _ := strings.Cut(line, "=")
				t.Setenv(k, v)
			}
		case "schema.json":
			if err := json.Unmarshal(f.Data, &schemas); err != nil {
				t.Fatalf("schema.json: %v", err)
			}
		default:
			name := filepath.Join(dir, filepath.FromSlash(f.Name))
			mode := os.FileMode(0o644)
			if strings.HasPrefix(filepath.Base(name), "socketd-plugin-") && !bytes.HasPrefix(f.Data, []byte("not executable")) {
				mode = 0o755
			}
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, f.Data, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Chdir(dir)
	c, diags := Load("config.hcl")
	if c == nil {
		t.Fatal("Load returned a nil Config")
	}

	var out strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	block := func(body hcl.Body, owner hcl.Range, plugin, kind string) {
		var js []byte
		var d hcl.Diagnostics
		if schema, ok := schemas[plugin]; ok {
			js, d = c.DecodeBlock(body, owner, schema[kind], plugin)
		} else if body != nil {
			js, d = plainJSON(c, body)
		}
		diags = append(diags, d...)
		if js != nil && string(js) != "{}" {
			line("  config %s", js)
		}
	}
	{
		line("plugin_dir %s", c.display(c.PluginDir))
		line("shutdown_timeout %s", c.ShutdownTimeout)
		if c.PIDFile != "" {
			line("pid_file %s", c.display(c.PIDFile))
		}
		if c.Admin != nil {
			line("admin %s", c.Admin.Address)
		}
		for _, l := range c.Listeners {
			switch l.Protocol {
			case "http":
				line("listener %q http %s read_header_timeout=%s read_timeout=%s write_timeout=%s idle_timeout=%s max_header_bytes=%d max_uri_bytes=%d",
					l.Name, l.Address, l.ReadHeaderTimeout, l.ReadTimeout, l.WriteTimeout, l.IdleTimeout, l.MaxHeaderBytes, l.MaxURIBytes)
				if !l.FastLane {
					line("  fast_lane=false")
				}
			case "tcp":
				line("listener %q tcp %s plugin=%s idle_timeout=%s max_connections=%d max_connections_per_source=%d",
					l.Name, l.Address, l.Plugin, l.StreamIdleTimeout, l.MaxConnections, l.MaxPerSource)
			case "udp":
				line("listener %q udp %s plugin=%s max_reply_bytes=%d", l.Name, l.Address, l.Plugin, l.MaxDatagramReply)
			}
			if l.Allow != nil || l.Deny != nil {
				line("  allow=%v deny=%v", l.Allow, l.Deny)
			}
			if l.Plugin != "" {
				block(l.Config, l.DeclRange, l.Plugin, "listener")
			}
		}
		for _, p := range c.Plugins {
			line("plugin %q binary=%s max_concurrency=%d start_timeout=%s sha256=%q",
				p.Name, c.display(p.Binary), p.MaxConcurrency, p.StartTimeout, p.SHA256)
			if p.Processors > 0 {
				line("  processors=%d", p.Processors)
			}
			block(p.Config, p.DeclRange, p.Name, "plugin")
		}
		for _, r := range c.Routes {
			line("route %q plugin=%s listeners=%q timeout=%s max_body_bytes=%d",
				r.ID, r.Plugin, r.Listeners, r.Timeout, r.MaxBodyBytes)
			block(r.Config, r.DeclRange, r.Plugin, "route")
		}
	}
	sortDiags(diags) // plainJSON's come in map order
	var buf bytes.Buffer
	if err := c.WriteDiagnostics(&buf, diags); err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		return buf.String()
	}
	return buf.String() + out.String()
}

// plainJSON renders a config body with no schema, to show what env() and
// file() produced.
func plainJSON(c *Config, body hcl.Body) ([]byte, hcl.Diagnostics) {
	attrs, diags := body.JustAttributes()
	m := map[string]cty.Value{}
	for name, a := range attrs {
		v, d := a.Expr.Value(c.ctx)
		diags = append(diags, d...)
		m[name] = v
	}
	if diags.HasErrors() {
		return nil, diags
	}
	v := cty.ObjectVal(m)
	js, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error()})
	}
	return js, diags
}

func TestPathRange(t *testing.T) {
	src := `route "GET /" {
  plugin = "sqlite"
  config {
    params = { limit = 50, "order by" = ("name") }
    items  = ["a", { b = 1 }]
  }
}
`
	c, diags := Parse("config.hcl", []byte(src))
	if len(c.Routes) != 1 || c.Routes[0].Config == nil {
		t.Fatalf("no route config: %v", diags)
	}
	r := c.Routes[0]
	tests := []struct {
		path []string
		want string // the source text the range covers
	}{
		{[]string{"params"}, `params = { limit = 50, "order by" = ("name") }`},
		{[]string{"params", "limit"}, `limit = 50`},
		{[]string{"params", "order by"}, `"order by" = ("name")`},
		{[]string{"params", "missing"}, `params = { limit = 50, "order by" = ("name") }`},
		{[]string{"params", "limit", "deeper"}, `limit = 50`},
		{[]string{"items", "0"}, `"a"`},
		{[]string{"items", "1", "b"}, `b = 1`},
		{[]string{"items", "7"}, `items  = ["a", { b = 1 }]`},
		{[]string{"nothing"}, `route "GET /"`},
		{nil, `route "GET /"`},
	}
	for _, tt := range tests {
		rng := c.PathRange(r.Config, r.DeclRange, tt.path)
		if got := string(rng.SliceBytes([]byte(src))); got != tt.want {
			t.Errorf("PathRange(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got := c.PathRange(nil, r.DeclRange, []string{"params"}); got != r.DeclRange {
		t.Errorf("PathRange(nil body) = %v, want the owner %v", got, r.DeclRange)
	}
}

func TestWriteDiagnosticsWithoutConfig(t *testing.T) {
	_, diags := Load(filepath.Join(t.TempDir(), "missing.hcl"))
	if !diags.HasErrors() || diags[0].Subject != nil {
		t.Fatalf("Load(missing) = %v, want one error without a subject", diags)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, "config.hcl", []byte("x = 1\n"), hcl.Diagnostics{
		diags[0],
		{Severity: hcl.DiagWarning, Summary: "Careful", Subject: &hcl.Range{
			Filename: "config.hcl", Start: hcl.Pos{Line: 1, Column: 1}, End: hcl.Pos{Line: 1, Column: 2, Byte: 1},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{"config.hcl: Error: Cannot read config file\n", "config.hcl:1:1: Warning: Careful\n", "   1: x = 1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	var nilConfig *Config
	if err := nilConfig.WriteDiagnostics(&buf, diags); err != nil {
		t.Errorf("nil Config: %v", err)
	}
}

// subjectless lists the error summaries that may come without a position:
// there is no token to point at.
var subjectless = map[string]bool{"Cannot read config file": true}

// FuzzParse checks that no input makes Parse or WriteDiagnostics panic, and
// that every error points into the file.
func FuzzParse(f *testing.F) {
	archives, _ := filepath.Glob("testdata/*.txtar")
	for _, path := range archives {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if file.Name == "config.hcl" {
				f.Add(file.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, diags := Parse("config.hcl", src)
		if c == nil {
			t.Fatal("Parse returned a nil Config")
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil && !subjectless[d.Summary] {
				t.Errorf("error without a subject: %s: %s", d.Summary, d.Detail)
			}
		}
		if err := c.WriteDiagnostics(io.Discard, diags); err != nil {
			t.Fatal(err)
		}
	})
}
