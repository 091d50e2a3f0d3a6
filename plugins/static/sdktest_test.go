package main

import (
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

// These tests run the plugin through the real plugin protocol (sdktest),
// as the core does: the schema is checked, requests are matched to the
// routes, and file answers are served from the path and identity the
// plugin hands over, which is what the core trusts.

func TestProtocolDescribe(t *testing.T) {
	d := sdktest.New(t, newPlugin()).Describe()
	if d.Name != "static" || !slices.Equal(d.Protocols, []string{"http", "tcp"}) {
		t.Errorf("described as %q serving %v", d.Name, d.Protocols)
	}
}

func TestProtocolFiles(t *testing.T) {
	root, _ := tree(t)
	h := sdktest.New(t, newPlugin())
	h.MustConfigure(&sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"root": root}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /", Config: sdk.MustJSON(map[string]any{"cache_control": "max-age=60"})},
			{ID: "GET /hello", Config: sdk.MustJSON(map[string]any{"body": "hi there", "status": 201})},
		},
	})
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, target string
		status       int
		body         string
		file         string // the path of the file answer, relative to root
		cacheable    bool
	}{
		{"index", "/", 200, "<h1>home</h1>\n", "index.html", true},
		{"file", "/hello.txt", 200, "hello\n", "hello.txt", true},
		{"symlink inside is resolved to its target", "/inside-link", 200, "hello\n", "inside-link", true},
		{"symlink escaping the root", "/escape-link", 404, "", "", false},
		{"symlink climbing out", "/sub/deep-link", 404, "", "", false},
		{"dotfile", "/.secret", 404, "", "", false},
		{"inline body", "/hello", 201, "hi there", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Do(httptest.NewRequest("GET", tt.target, nil))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || tt.body != "" && string(resp.Body) != tt.body {
				t.Fatalf("%d %q, want %d %q", resp.Status, resp.Body, tt.status, tt.body)
			}
			if strings.Contains(string(resp.Body), secret) {
				t.Fatalf("leaked the secret: %q", resp.Body)
			}
			if tt.file == "" {
				if resp.File != nil {
					t.Errorf("unexpected file answer %+v", resp.File)
				}
				return
			}
			if resp.File == nil {
				t.Fatal("answered bytes, want a file answer")
			}
			if want := filepath.Join(real, tt.file); resp.File.Path != want || resp.File.Cacheable != tt.cacheable {
				t.Errorf("file answer %s (cacheable %t), want %s (%t)", resp.File.Path, resp.File.Cacheable, want, tt.cacheable)
			}
			if resp.Header.Get("Cache-Control") != "max-age=60" || resp.Header.Get("Etag") != resp.File.ETag {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
}

func TestProtocolConfigErrors(t *testing.T) {
	h := sdktest.New(t, newPlugin())
	diags := h.Configure(&sdk.Config{
		Plugin:    sdk.MustJSON(map[string]any{"root": filepath.Join(t.TempDir(), "missing")}),
		Listeners: []sdk.ListenerConfig{{Name: "hear", Protocol: "tcp"}},
	})
	got := sdktest.Format(diags)
	// reply is required: the core refuses the block before the plugin is
	// asked, so the missing root is not reported yet.
	if want := `error: listener "hear": Missing required argument`; !strings.Contains(got, want) {
		t.Errorf("diagnostics:%s\nwant %q", got, want)
	}
	diags = h.Configure(&sdk.Config{Plugin: sdk.MustJSON(map[string]any{"root": filepath.Join(t.TempDir(), "missing")})})
	if got := sdktest.Format(diags); !strings.Contains(got, "at root: root") || !strings.Contains(got, "does not exist") {
		t.Errorf("missing root:%s", got)
	}
}

func TestProtocolReply(t *testing.T) {
	h := sdktest.New(t, newPlugin())
	h.MustConfigure(&sdk.Config{Listeners: []sdk.ListenerConfig{
		{Name: "hear", Protocol: "tcp", Config: sdk.MustJSON(map[string]any{"reply": "Yes"})},
	}})
	c := h.Dial("hear")
	if _, err := io.WriteString(c, "can you hear me?\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "Yes\n" {
		t.Errorf("got %q, %v; want \"Yes\\n\"", got, err)
	}
}
