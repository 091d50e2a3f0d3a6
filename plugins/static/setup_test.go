package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

func TestDescribe(t *testing.T) {
	d := newPlugin().Describe()
	if d.Name != "static" || d.Version == "" {
		t.Errorf("Describe = %q %q", d.Name, d.Version)
	}
	for _, tt := range []struct {
		block  string
		schema sdk.Schema
		want   []string
	}{
		{"plugin", d.PluginSchema, []string{"root", "index"}},
		{"route", d.RouteSchema, []string{"root", "index", "strip_prefix", "allow_dotfiles", "cache_control", "body", "content_type", "status"}},
		{"listener", d.ListenerSchema, []string{"reply", "read_request", "newline"}},
	} {
		if got := sdktest.AttributeNames(t, tt.schema); !slices.Equal(got, tt.want) {
			t.Errorf("%s schema = %v, want %v", tt.block, got, tt.want)
		}
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	root, _ := tree(t)
	file := filepath.Join(root, "hello.txt")
	missing := filepath.Join(root, "no-such-dir")
	route := func(id string, cfg map[string]any) sdk.RouteConfig {
		return sdk.RouteConfig{ID: id, Config: sdk.MustJSON(cfg)}
	}
	type want struct {
		route, listener string
		path            []string
		summary         string // substring
	}
	tests := []struct {
		name string
		cfg  sdk.Config
		want []want
	}{
		{
			name: "plugin root missing",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": missing}), Routes: []sdk.RouteConfig{{ID: "GET /"}, {ID: "GET /b"}}},
			want: []want{{path: []string{"root"}, summary: "does not exist"}}, // once, not again per route
		},
		{
			name: "plugin root is a file",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": file})},
			want: []want{{path: []string{"root"}, summary: "not a directory"}},
		},
		{
			name: "plugin root empty",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": ""})},
			want: []want{{path: []string{"root"}, summary: "empty"}},
		},
		{
			name: "route root missing",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /", map[string]any{"root": missing})}},
			want: []want{{route: "GET /", path: []string{"root"}, summary: "does not exist"}},
		},
		{
			name: "route root is a file",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{route("GET /f", map[string]any{"root": file})}},
			want: []want{{route: "GET /f", path: []string{"root"}, summary: "not a directory"}},
		},
		{
			name: "no root anywhere",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /"}}},
			want: []want{{route: "GET /", summary: "no root"}},
		},
		{
			name: "body and root",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /hi", map[string]any{"root": root, "body": "hi"})}},
			want: []want{{route: "GET /hi", path: []string{"body"}, summary: "body and root"}},
		},
		{
			name: "status out of range",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /hi", map[string]any{"body": "hi", "status": 700})}},
			want: []want{{route: "GET /hi", path: []string{"status"}, summary: "not an HTTP status"}},
		},
		{
			name: "status not whole",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /hi", map[string]any{"body": "hi", "status": 200.5})}},
			want: []want{{route: "GET /hi", path: []string{"status"}, summary: "not an HTTP status"}},
		},
		{
			name: "status informational",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /hi", map[string]any{"body": "hi", "status": 101})}},
			want: []want{{route: "GET /hi", path: []string{"status"}, summary: "informational"}},
		},
		{
			name: "status 204 with body",
			cfg:  sdk.Config{Routes: []sdk.RouteConfig{route("GET /hi", map[string]any{"body": "hi", "status": 204})}},
			want: []want{{route: "GET /hi", path: []string{"status"}, summary: "cannot carry a body"}},
		},
		{
			name: "status and content_type without body",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{route("GET /", map[string]any{"status": 404, "content_type": "text/plain"})}},
			want: []want{
				{route: "GET /", path: []string{"content_type"}, summary: "needs body"},
				{route: "GET /", path: []string{"status"}, summary: "needs body"},
			},
		},
		{
			name: "index entry with a slash",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root, "index": []string{"index.html", "../x.html"}})},
			want: []want{{path: []string{"index", "1"}, summary: "not a file name"}},
		},
		{
			name: "route index entry empty",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{route("GET /", map[string]any{"index": []string{""}})}},
			want: []want{{route: "GET /", path: []string{"index", "0"}, summary: "not a file name"}},
		},
		{
			name: "strip_prefix relative",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{route("GET /s/", map[string]any{"strip_prefix": "s"})}},
			want: []want{{route: "GET /s/", path: []string{"strip_prefix"}, summary: "must start with"}},
		},
		{
			name: "cache_control with a newline",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": root}), Routes: []sdk.RouteConfig{route("GET /", map[string]any{"cache_control": "no-store\r\nX-Evil: 1"})}},
			want: []want{{route: "GET /", path: []string{"cache_control"}, summary: "control character"}},
		},
		{
			name: "wrong type",
			cfg:  sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": 5})},
			want: []want{{path: []string{"root"}, summary: "invalid config"}},
		},
		{
			name: "listener without reply",
			cfg:  sdk.Config{Listeners: []sdk.ListenerConfig{{Name: "hear", Protocol: "tcp", Config: sdk.MustJSON(map[string]any{"newline": false})}}},
			want: []want{{listener: "hear", path: []string{"reply"}, summary: "reply is required"}},
		},
		{
			name: "listener without config block",
			cfg:  sdk.Config{Listeners: []sdk.ListenerConfig{{Name: "hear", Protocol: "tcp"}}},
			want: []want{{listener: "hear", path: []string{"reply"}, summary: "reply is required"}},
		},
		{
			name: "udp listener",
			cfg:  sdk.Config{Listeners: []sdk.ListenerConfig{{Name: "dgram", Protocol: "udp", Config: sdk.MustJSON(map[string]any{"reply": "Yes"})}}},
			want: []want{{listener: "dgram", summary: "tcp listeners only"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlugin()
			diags := p.Configure(t.Context(), &tt.cfg)
			if len(diags) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d: %+v", len(diags), len(tt.want), diags)
			}
			for i, w := range tt.want {
				d := diags[i]
				if d.Severity != sdk.Error || d.Route != w.route || d.Listener != w.listener || !slices.Equal(d.Path, w.path) || !strings.Contains(d.Summary, w.summary) {
					t.Errorf("diagnostic %d = {Route:%q Listener:%q Path:%q Summary:%q}, want {Route:%q Listener:%q Path:%q Summary:~%q}",
						i, d.Route, d.Listener, d.Path, d.Summary, w.route, w.listener, w.path, w.summary)
				}
				if d.Detail == "" {
					t.Errorf("diagnostic %d has no detail", i)
				}
			}
			if p.sites != nil || p.replies != nil {
				t.Error("a rejected config was kept for serving")
			}
		})
	}
}

func TestConfigureOpensRootOnce(t *testing.T) {
	root, _ := tree(t)
	link := filepath.Join(t.TempDir(), "www")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	p := configure(t, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": root}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /"},
			{ID: "GET /a/", Config: sdk.MustJSON(map[string]any{"root": root + "/"})},
			{ID: "GET /b/", Config: sdk.MustJSON(map[string]any{"root": link})},
			{ID: "GET /hi", Config: sdk.MustJSON(map[string]any{"body": "hi"})},
		},
	})
	r := p.sites[""].root
	for _, id := range []string{"GET /", "GET /a/", "GET /b/"} {
		if p.sites[id].root != r {
			t.Errorf("%s opened its own os.Root for the same directory", id)
		}
		if p.sites[id].dir != p.sites[""].dir {
			t.Errorf("%s: dir %q, want %q", id, p.sites[id].dir, p.sites[""].dir)
		}
	}
	if p.sites["GET /hi"].root != nil {
		t.Error("an inline route holds a root")
	}
}

// TestRelativeRoot pins down that a relative root resolves against the
// working directory, which the core sets to the config file's folder.
func TestRelativeRoot(t *testing.T) {
	root, _ := tree(t)
	t.Chdir(filepath.Dir(root))
	p := configure(t, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": "./root"})})
	if want, _ := filepath.EvalSymlinks(root); p.sites[""].dir != want {
		t.Errorf("dir = %q, want %q", p.sites[""].dir, want)
	}
}
