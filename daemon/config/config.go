// Package config loads and validates socketd's config.hcl.
//
// Every value it hands on keeps the source range it came from, so any later
// complaint — from the core, or from a plugin checking its own config block —
// is reported as config.hcl:LINE:COL with the offending source shown, the way
// Terraform does. Load and Parse always return a non-nil *Config, even for a
// file that does not parse, so a caller can always print the diagnostics with
// Config.WriteDiagnostics; when the diagnostics hold an error, the rest of the
// Config is incomplete and must not be used.
//
// Plugin-owned config { } blocks are kept as hcl.Body and decoded later with
// DecodeBlock, once the plugin has described its schema.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Config is a loaded, validated config.hcl.
type Config struct {
	Filename        string        // as given; used in diagnostics
	Dir             string        // absolute folder of the config file; relative paths start here
	PluginDir       string        // absolute; plugin_dir, default "./bin" relative to Dir
	ShutdownTimeout time.Duration // shutdown_timeout, default 10s
	PIDFile         string        // pid_file, absolute; "" (the default) writes none
	Admin           *Admin        // admin { }, nil if absent
	Listeners       []*Listener
	Plugins         []*Plugin
	Routes          []*Route

	files map[string]*hcl.File // parsed sources, for the diagnostic writer
	ctx   *hcl.EvalContext     // env() and file(), for config blocks decoded later
}

// Listener is a listener block: one socket and the protocol spoken on it.
// Attributes that do not apply to the protocol are rejected, but every field
// holds its default so the zero value never leaks out as "no limit".
type Listener struct {
	Name, Protocol, Address string   // protocol: "http" | "tcp" | "udp"; address "host:port"
	Plugin                  string   // tcp/udp only: the plugin that gets each connection or datagram
	Config                  hcl.Body // tcp/udp only: the config { } body, nil if absent

	// HTTP limits.
	ReadHeaderTimeout time.Duration // read_header_timeout, default 10s
	ReadTimeout       time.Duration // read_timeout, default 5m (whole request incl. body)
	WriteTimeout      time.Duration // write_timeout, default 5m
	IdleTimeout       time.Duration // idle_timeout, default 2m
	MaxHeaderBytes    int           // max_header_bytes, default 32768
	MaxURIBytes       int           // max_uri_bytes, default 8192 (longer: 414)
	// FastLane: plain GET and HEAD requests are read and answered by the
	// front's own loop, not net/http's (fast_lane, default true; Linux).
	FastLane bool

	// Stream and datagram limits.
	MaxConnections    int            // max_connections, default 1024 (tcp)
	MaxPerSource      int            // max_connections_per_source, default 0 = unlimited (tcp)
	StreamIdleTimeout time.Duration  // idle_timeout on a tcp listener, default 5m
	Allow, Deny       []netip.Prefix // allow / deny: source address filters (any protocol)
	MaxDatagramReply  int            // max_reply_bytes, default 1232 (udp)

	DeclRange, NameRange, PluginRange hcl.Range

	addrRange hcl.Range
}

// Admin is the admin block: an HTTP listener of socketd's own with
// /healthz, /readyz and Prometheus /metrics.
type Admin struct {
	Address string // address, default "127.0.0.1:9180": loopback only
	// Pprof serves Go's profiler under /debug/pprof/ (pprof = true): how
	// the performance figures are taken. Off by default.
	Pprof bool

	DeclRange hcl.Range

	addrRange hcl.Range
}

// DefaultAdminAddress is where admin { } listens when it names no address.
const DefaultAdminAddress = "127.0.0.1:9180"

// Plugin is a plugin block: a plugin binary socketd starts and the config it
// is handed.
type Plugin struct {
	Name           string
	Binary         string        // absolute: PluginDir/socketd-plugin-NAME
	Config         hcl.Body      // config { } body, nil if absent
	MaxConcurrency int           // max_concurrency, default 1024
	StartTimeout   time.Duration // start_timeout, default 10s
	SHA256         string        // sha256, optional, lower-case hex
	// Processors, if set, is the plugin process's GOMAXPROCS (processors);
	// 0 leaves the process socketd's own environment.
	Processors int

	DeclRange, NameRange hcl.Range
}

// Route is a route block: requests matching a net/http ServeMux pattern go
// to a plugin.
type Route struct {
	ID           string        // the label exactly as written, e.g. "GET /guestbook"
	Plugin       string        // plugin
	Listeners    []string      // listener = "web" or ["web", "admin"]; empty: every http listener
	Timeout      time.Duration // timeout, default 30s
	MaxBodyBytes int64         // max_body_bytes, default 10 MiB; 0 means no body
	Config       hcl.Body      // nil if absent

	DeclRange, LabelRange, PluginRange hcl.Range

	listenerRanges []hcl.Range // one per Listeners entry
}

// Defaults, documented on the fields above.
const (
	defaultShutdownTimeout = 10 * time.Second
	defaultMaxConcurrency  = 1024
	defaultStartTimeout    = 10 * time.Second
	defaultRouteTimeout    = 30 * time.Second
	defaultMaxBodyBytes    = 10 << 20
)

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "pid_file"}, {Name: "plugin_dir"}, {Name: "shutdown_timeout"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "admin"},
		{Type: "listener", LabelNames: []string{"name"}},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "route", LabelNames: []string{"pattern"}},
	},
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		c := newConfig(path)
		return c, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read config file",
			Detail:   fmt.Sprintf("%v. Pass the path of an existing config.hcl with -config.", err),
		}}
	}
	return Parse(path, src)
}

// Parse parses and validates src as the config file filename; relative paths
// in it resolve against filename's folder.
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	c := newConfig(filename)
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	c.files = p.Files()
	if diags.HasErrors() {
		return c, diags
	}
	content, d := f.Body.Content(rootSchema)
	dec := &decoder{c: c, diags: append(diags, d...)}

	pluginDirOK := true
	if a := content.Attributes["plugin_dir"]; a != nil {
		var dir string
		if pluginDirOK = dec.str(a, &dir); pluginDirOK {
			c.PluginDir = c.abs(dir)
		}
	}
	dec.duration(content.Attributes["shutdown_timeout"], &c.ShutdownTimeout)
	if a := content.Attributes["pid_file"]; a != nil {
		var p string
		if dec.str(a, &p) {
			if p == "" {
				dec.errorf(a.Expr.Range(), "Missing value",
					`pid_file cannot be empty. Name a file, like "/run/socketd/socketd.pid", or remove the attribute.`)
			} else {
				c.PIDFile = c.abs(p)
			}
		}
	}

	for _, b := range content.Blocks {
		switch b.Type {
		case "admin":
			if c.Admin != nil {
				dec.errorf(b.DefRange, "Duplicate admin block",
					"An admin block is also defined at %s. socketd has one admin listener; merge the blocks.", pos(c.Admin.DeclRange))
				continue
			}
			c.Admin = dec.admin(b)
		case "listener":
			if l := dec.listener(b); l != nil {
				c.Listeners = append(c.Listeners, l)
			}
		case "plugin":
			if p := dec.plugin(b, c.PluginDir, pluginDirOK); p != nil {
				c.Plugins = append(c.Plugins, p)
			}
		case "route":
			c.Routes = append(c.Routes, dec.route(b))
		}
	}
	diags = append(dec.diags, c.check()...)
	sortDiags(diags)
	return c, diags
}

func newConfig(filename string) *Config {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil { // only when the working directory is gone
		dir = filepath.Dir(filename)
	}
	c := &Config{
		Filename:        filename,
		Dir:             dir,
		PluginDir:       filepath.Join(dir, "bin"),
		ShutdownTimeout: defaultShutdownTimeout,
	}
	c.ctx = &hcl.EvalContext{Functions: c.functions()}
	return c
}

// abs resolves a path written in the config against the config's folder.
func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

// display shortens an absolute path under the config's folder to "./rel",
// which is how the user wrote it and keeps messages short.
func (c *Config) display(p string) string {
	if rel, err := filepath.Rel(c.Dir, p); err == nil && filepath.IsLocal(rel) {
		return "./" + filepath.ToSlash(rel)
	}
	return p
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// sortDiags puts diagnostics in file order, so the output reads top to bottom.
func sortDiags(diags hcl.Diagnostics) {
	key := func(d *hcl.Diagnostic) (string, int) {
		if d.Subject == nil {
			return "", -1
		}
		return d.Subject.Filename, d.Subject.Start.Byte
	}
	sort.SliceStable(diags, func(i, j int) bool {
		fi, bi := key(diags[i])
		fj, bj := key(diags[j])
		if fi != fj {
			return fi < fj
		}
		return bi < bj
	})
}

// pos formats a range's start the way compilers do: file:line:col.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
