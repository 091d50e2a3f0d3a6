package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/socketd/socketd/sdk"
)

// version is reported by Describe and shown by `socketd plugins`.
const version = "1.0.0"

// defaultIndex is what nginx and Caddy look for in a directory.
var defaultIndex = []string{"index.html"}

// static is the plugin. Configure fills its maps once, before any request;
// afterwards they are only read, so requests need no locking.
type static struct {
	// sites maps a route id to what that route serves. The key "" holds
	// the plugin block's settings, used for a route the core did not list.
	sites map[string]*site
	// replies maps a tcp listener's name to its reply.
	replies map[string]reply
}

func newPlugin() *static { return &static{} }

// Describe declares the schemas, so the core reports a misspelt attribute
// with its line and column before the plugin ever sees it.
func (*static) Describe() sdk.Description {
	return sdk.Description{
		Name:    "static",
		Version: version,
		PluginSchema: sdk.Schema{
			{Name: "root", Type: "string", Description: "Directory to serve; routes inherit it. A relative path resolves against the config file's folder."},
			{Name: "index", Type: "list(string)", Description: `File names tried, in order, for a directory; default ["index.html"].`},
		},
		RouteSchema: sdk.Schema{
			{Name: "root", Type: "string", Description: "Directory this route serves, instead of the plugin's root."},
			{Name: "index", Type: "list(string)", Description: "File names tried for a directory, instead of the plugin's index."},
			{Name: "strip_prefix", Type: "string", Description: "Path prefix removed before the file is looked up, e.g. \"/static\"."},
			{Name: "allow_dotfiles", Type: "bool", Description: "Serve names starting with a dot; default false (only /.well-known/ is served)."},
			{Name: "cache_control", Type: "string", Description: "Cache-Control header sent with every successful answer."},
			{Name: "body", Type: "string", Description: "Answer this text instead of a file."},
			{Name: "content_type", Type: "string", Description: "Content-Type of body; default \"text/plain; charset=utf-8\"."},
			{Name: "status", Type: "number", Description: "HTTP status answered with body; default 200."},
		},
		ListenerSchema: sdk.Schema{
			{Name: "reply", Type: "string", Required: true, Description: "Text sent to each client before the connection closes."},
			{Name: "read_request", Type: "bool", Description: "Wait for the client's first line (at most 4 KiB or 2 s) before replying; default true."},
			{Name: "newline", Type: "bool", Description: "End the reply with a newline; default true."},
		},
	}
}

// pluginConfig is the plugin block. Pointers and nil slices tell an absent
// (or null) attribute from one set to its zero value.
type pluginConfig struct {
	Root  *string  `json:"root"`
	Index []string `json:"index"`
}

// routeConfig is a route's config block.
type routeConfig struct {
	Root          *string  `json:"root"`
	Index         []string `json:"index"`
	StripPrefix   *string  `json:"strip_prefix"`
	AllowDotfiles *bool    `json:"allow_dotfiles"`
	CacheControl  *string  `json:"cache_control"`
	Body          *string  `json:"body"`
	ContentType   *string  `json:"content_type"`
	Status        *float64 `json:"status"`
}

// listenerConfig is a tcp listener's config block.
type listenerConfig struct {
	Reply       *string `json:"reply"`
	ReadRequest *bool   `json:"read_request"`
	Newline     *bool   `json:"newline"`
}

// Configure checks everything that can be checked before the first
// request (roots exist and are directories, attributes agree with each
// other) so a mistake fails the start or the reload, not a request. Each
// root directory is opened once, as an os.Root, and kept for serving.
func (p *static) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	c := configurer{roots: map[string]*os.Root{}}
	sites := map[string]*site{}

	var pc pluginConfig
	if c.decode(cfg.Plugin, &pc, "", "") {
		base := &site{index: defaultIndex}
		if pc.Index != nil && c.checkIndex(pc.Index, "") {
			base.index = pc.Index
		}
		baseOK := true
		if pc.Root != nil {
			baseOK = c.openRoot(base, *pc.Root, "")
		}
		if base.root != nil {
			sites[""] = base
		}
		for _, rc := range cfg.Routes {
			if s := c.route(base, baseOK, rc); s != nil {
				sites[rc.ID] = s
			}
		}
	}

	replies := map[string]reply{}
	for _, lc := range cfg.Listeners {
		if r, ok := c.listener(lc); ok {
			replies[lc.Name] = r
		}
	}

	if c.diags.HasErrors() {
		for _, r := range c.roots {
			r.Close()
		}
		return c.diags
	}
	p.sites, p.replies = sites, replies
	return c.diags
}

// configurer collects diagnostics and shares opened roots between the
// blocks that name the same directory.
type configurer struct {
	diags sdk.Diagnostics
	roots map[string]*os.Root // by resolved directory
}

func (c *configurer) errorf(route string, path []string, summary, detail string) {
	c.diags = append(c.diags, sdk.Diagnostic{
		Severity: sdk.Error, Summary: summary, Detail: detail, Route: route, Path: path,
	})
}

// decode unmarshals a block, pointing a type mismatch at its attribute.
func (c *configurer) decode(raw sdk.RawConfig, v any, route, listener string) bool {
	err := raw.Decode(v)
	if err == nil {
		return true
	}
	d := sdk.Diagnostic{Severity: sdk.Error, Summary: "invalid config", Detail: err.Error(), Route: route, Listener: listener}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
		d.Path = strings.Split(te.Field, ".")
	}
	c.diags = append(c.diags, d)
	return false
}

// route builds one route's site from its block and the plugin block's
// settings. baseOK is false when the plugin block's root was bad, which is
// reported once, at the plugin block, not again for each route.
func (c *configurer) route(base *site, baseOK bool, rc sdk.RouteConfig) *site {
	var cfg routeConfig
	if !c.decode(rc.Config, &cfg, rc.ID, "") {
		return nil
	}
	id := rc.ID
	s := &site{index: base.index, root: base.root, dir: base.dir}
	ok := true

	if cfg.Index != nil {
		if c.checkIndex(cfg.Index, id) {
			s.index = cfg.Index
		} else {
			ok = false
		}
	}
	if cfg.StripPrefix != nil {
		if !strings.HasPrefix(*cfg.StripPrefix, "/") {
			c.errorf(id, []string{"strip_prefix"}, "strip_prefix must start with \"/\"", fmt.Sprintf("got %q", *cfg.StripPrefix))
			ok = false
		}
		// "/static/" and "/static" mean the same; keeping no trailing
		// slash leaves the rest of the path absolute.
		s.stripPrefix = strings.TrimRight(*cfg.StripPrefix, "/")
	}
	if cfg.AllowDotfiles != nil {
		s.allowDotfiles = *cfg.AllowDotfiles
	}
	if cfg.CacheControl != nil {
		if !c.checkHeader(*cfg.CacheControl, id, "cache_control") {
			ok = false
		}
		s.cacheControl = *cfg.CacheControl
	}

	if cfg.Body != nil {
		if cfg.Root != nil {
			c.errorf(id, []string{"body"}, "body and root are both set",
				"a route answers either fixed text (body) or files (root); remove one of them")
			return nil
		}
		in := &inline{body: []byte(*cfg.Body), contentType: "text/plain; charset=utf-8", status: 200}
		if cfg.ContentType != nil {
			if !c.checkHeader(*cfg.ContentType, id, "content_type") {
				ok = false
			}
			in.contentType = *cfg.ContentType
		}
		if cfg.Status != nil {
			st, good := c.checkStatus(*cfg.Status, len(in.body) > 0, id)
			ok = ok && good
			in.status = st
		}
		s.inline, s.root, s.dir = in, nil, ""
	} else {
		for _, a := range []struct {
			name string
			set  bool
		}{{"content_type", cfg.ContentType != nil}, {"status", cfg.Status != nil}} {
			if a.set {
				c.errorf(id, []string{a.name}, a.name+" needs body", a.name+" applies to the fixed text of body; a file's status and type come from the file")
				ok = false
			}
		}
		switch {
		case cfg.Root != nil:
			ok = c.openRoot(s, *cfg.Root, id) && ok
		case !baseOK:
			ok = false // already reported at the plugin block
		case s.root == nil:
			c.errorf(id, nil, "no root for this route",
				`set root in this route's config block or in plugin "static" { config { root = ... } }, or answer fixed text with body`)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return s
}

// openRoot resolves dir and opens it as an os.Root for s. The path is
// resolved through symlinks once, here, so the paths handed to the core
// name the same directory the os.Root holds.
func (c *configurer) openRoot(s *site, dir, route string) bool {
	path := []string{"root"}
	if dir == "" {
		c.errorf(route, path, "root is empty", "set root to the directory to serve")
		return false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		c.errorf(route, path, "cannot resolve root", err.Error())
		return false
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		summary := fmt.Sprintf("root %q cannot be used", dir)
		if errors.Is(err, os.ErrNotExist) {
			summary = fmt.Sprintf("root %q does not exist", dir)
		}
		c.errorf(route, path, summary, fmt.Sprintf("looked for %s (a relative root resolves against the config file's folder): %v", abs, err))
		return false
	}
	if r, ok := c.roots[real]; ok {
		s.root, s.dir = r, real
		return true
	}
	fi, err := os.Stat(real)
	if err != nil {
		c.errorf(route, path, fmt.Sprintf("root %q cannot be used", dir), err.Error())
		return false
	}
	if !fi.IsDir() {
		c.errorf(route, path, fmt.Sprintf("root %q is not a directory", dir), real+" is a "+fi.Mode().Type().String()+" file; root names the directory whose files are served")
		return false
	}
	r, err := os.OpenRoot(real)
	if err != nil {
		c.errorf(route, path, fmt.Sprintf("root %q cannot be opened", dir), err.Error())
		return false
	}
	c.roots[real] = r
	s.root, s.dir = r, real
	return true
}

// checkIndex allows plain file names only: an index entry is looked up in
// the requested directory and must not lead out of it.
func (c *configurer) checkIndex(index []string, route string) bool {
	ok := true
	for i, name := range index {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
			c.errorf(route, []string{"index", strconv.Itoa(i)}, fmt.Sprintf("index entry %q is not a file name", name),
				"each index entry is a file name looked up in the requested directory, without any slash")
			ok = false
		}
	}
	return ok
}

// checkHeader refuses control characters, which would end the header line.
func (c *configurer) checkHeader(v, route, attr string) bool {
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		c.errorf(route, []string{attr}, attr+" holds a control character", "a header value cannot hold newlines or other control characters")
		return false
	}
	return true
}

func (c *configurer) checkStatus(v float64, hasBody bool, route string) (int, bool) {
	path := []string{"status"}
	if v != math.Trunc(v) || v < 100 || v > 599 {
		c.errorf(route, path, fmt.Sprintf("status %v is not an HTTP status", v), "status must be a whole number from 100 to 599")
		return 0, false
	}
	st := int(v)
	switch {
	case st < 200:
		c.errorf(route, path, fmt.Sprintf("status %d is informational", st), "a 1xx status cannot be the final answer to a request; use 200 to 599")
		return 0, false
	case hasBody && (st == 204 || st == 304):
		c.errorf(route, path, fmt.Sprintf("status %d cannot carry a body", st), "HTTP forbids a body with 204 and 304; set body = \"\" or choose another status")
		return 0, false
	}
	return st, true
}

// listener reads a tcp listener's block.
func (c *configurer) listener(lc sdk.ListenerConfig) (reply, bool) {
	var cfg listenerConfig
	if !c.decode(lc.Config, &cfg, "", lc.Name) {
		return reply{}, false
	}
	errorf := func(path []string, summary, detail string) {
		c.diags = append(c.diags, sdk.Diagnostic{Severity: sdk.Error, Summary: summary, Detail: detail, Listener: lc.Name, Path: path})
	}
	if lc.Protocol != "tcp" {
		errorf(nil, "static serves tcp listeners only", fmt.Sprintf("listener %q has protocol %q", lc.Name, lc.Protocol))
		return reply{}, false
	}
	if cfg.Reply == nil {
		errorf([]string{"reply"}, "reply is required", `set the text sent to each client, e.g. reply = "Yes"`)
		return reply{}, false
	}
	r := reply{text: *cfg.Reply, readRequest: true}
	if cfg.ReadRequest != nil {
		r.readRequest = *cfg.ReadRequest
	}
	if cfg.Newline == nil || *cfg.Newline {
		r.text += "\n"
	}
	return r, true
}
