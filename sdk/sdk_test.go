package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

// kitchen serves every protocol and misbehaves on request, to check what
// the SDK does around a plugin's code.
type kitchen struct {
	greeting map[string]string // route id → greeting
	dir      string
}

type kitchenRoute struct {
	Greeting string `json:"greeting"`
	Panic    bool   `json:"panic"`
}

func (k *kitchen) Describe() sdk.Description {
	return sdk.Description{
		Name:    "kitchen",
		Version: "0.1.0",
		PluginSchema: sdk.Schema{
			{Name: "dir", Type: "string", Description: "Folder of files."},
		},
		RouteSchema: sdk.Schema{
			{Name: "greeting", Type: "string", Default: "Hello", Description: "First word."},
			{Name: "panic", Type: "bool", Description: "Panic in Configure."},
		},
		ListenerSchema: sdk.Schema{
			{Name: "mode", Type: "string", Required: true, Description: "What to do."},
		},
	}
}

func (k *kitchen) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	var pc struct {
		Dir string `json:"dir"`
	}
	if err := cfg.Plugin.Decode(&pc); err != nil {
		return sdk.Diagnostics{{Summary: err.Error()}}
	}
	k.dir = pc.Dir
	k.greeting = map[string]string{}
	for _, r := range cfg.Routes {
		rc, err := sdk.Decode[kitchenRoute](r.Config)
		if err != nil {
			return sdk.Diagnostics{{Route: r.ID, Summary: err.Error()}}
		}
		if rc.Panic {
			panic("configure exploded")
		}
		if rc.Greeting == "Bonjour" {
			return sdk.Diagnostics{{Severity: sdk.Warning, Route: r.ID, Path: []string{"greeting"}, Summary: "French"}}
		}
		k.greeting[r.ID] = rc.Greeting
	}
	for _, l := range cfg.Listeners {
		if l.Protocol != "tcp" && l.Protocol != "udp" {
			return sdk.Diagnostics{{Listener: l.Name, Summary: "protocol " + l.Protocol}}
		}
	}
	return nil
}

func (k *kitchen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/panic":
		panic("handler exploded")
	case "/echo":
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
		io.Copy(w, r.Body)
		return
	case "/info":
		fmt.Fprintf(w, "route=%s listener=%s tls=%t remote=%s name=%s",
			sdk.RouteID(r), sdk.Listener(r), r.TLS != nil, r.RemoteAddr, r.PathValue("name"))
		return
	}
	if name, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok {
		path := filepath.Join(k.dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		f := sdk.FileFor(path, fi)
		f.Cacheable = true
		w.Header().Set("Cache-Control", "max-age=60")
		sdk.ServeFile(w, r, f)
		return
	}
	fmt.Fprintf(w, "%s, %s!\n", k.greeting[sdk.RouteID(r)], r.PathValue("name"))
}

func (k *kitchen) ServeStream(ctx context.Context, c *sdk.Conn) error {
	switch c.Listener {
	case "panic":
		panic("stream exploded")
	case "fail":
		return errors.New("refused")
	}
	line := make([]byte, 64)
	n, _ := c.Read(line)
	fmt.Fprintf(c, "%s from %s to %s: %s", c.Listener, c.RemoteAddr, c.LocalAddr, bytes.ToUpper(line[:n]))
	return nil
}

func (k *kitchen) ServeDatagram(_ context.Context, d *sdk.Datagram) ([]byte, error) {
	switch d.Listener {
	case "panic":
		panic("datagram exploded")
	case "silent":
		return nil, nil
	}
	return append([]byte(d.RemoteAddr+" "), d.Data...), nil
}

func newKitchen(t *testing.T) (*sdktest.Harness, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := sdktest.New(t, &kitchen{})
	h.MustConfigure(&sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"dir": dir}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /hello/{name}", Config: sdk.MustJSON(map[string]any{"greeting": "Hi"})},
			{ID: "GET /default/{name}"},
			{ID: "/info"},
			{ID: "/echo"},
			{ID: "/panic"},
			{ID: "GET /files/"},
		},
		Listeners: []sdk.ListenerConfig{
			{Name: "upper", Protocol: "tcp", Config: sdk.MustJSON(map[string]any{"mode": "x"})},
			{Name: "dgram", Protocol: "udp", Config: sdk.MustJSON(map[string]any{"mode": "x"})},
		},
	})
	return h, dir
}

func TestDescribe(t *testing.T) {
	h := sdktest.New(t, &kitchen{})
	d := h.Describe()
	if d.Name != "kitchen" || d.Version != "0.1.0" {
		t.Errorf("name, version = %q, %q", d.Name, d.Version)
	}
	if want := []string{"http", "tcp", "udp"}; !slices.Equal(d.Protocols, want) {
		t.Errorf("protocols = %v, want %v", d.Protocols, want)
	}
	if len(d.RouteSchema) != 2 || d.RouteSchema[0].Default != "Hello" || d.RouteSchema[1].Default != nil {
		t.Errorf("route schema = %+v, want greeting with default Hello", d.RouteSchema)
	}
	if !d.ListenerSchema[0].Required {
		t.Errorf("listener schema = %+v", d.ListenerSchema)
	}
}

func TestHTTP(t *testing.T) {
	h, _ := newKitchen(t)
	tests := []struct {
		name, method, target string
		status               int
		body, route          string
	}{
		{"path value and route config", "GET", "/hello/gopher", 200, "Hi, gopher!\n", "GET /hello/{name}"},
		{"schema default", "GET", "/default/you", 200, "Hello, you!\n", "GET /default/{name}"},
		{"head", "HEAD", "/hello/gopher", 200, "", "GET /hello/{name}"},
		{"no route", "GET", "/nowhere", 404, "404 page not found\n", ""},
		{"wrong method", "POST", "/hello/gopher", 405, "Method Not Allowed\n", ""},
		{"panic is a 500", "GET", "/panic", 500, "Internal Server Error\n", "/panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Do(httptest.NewRequest(tt.method, tt.target, nil))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || string(resp.Body) != tt.body || resp.Route != tt.route {
				t.Errorf("got %d %q via %q, want %d %q via %q", resp.Status, resp.Body, resp.Route, tt.status, tt.body, tt.route)
			}
		})
	}
	// The plugin is still there after its handler panicked.
	if resp, err := h.Do(httptest.NewRequest("GET", "/hello/again", nil)); err != nil || resp.Status != 200 {
		t.Errorf("after a panic: %v %v", resp, err)
	}
}

func TestRequestDetails(t *testing.T) {
	h, _ := newKitchen(t)
	req := httptest.NewRequest("GET", "https://example.test/info", nil)
	req = sdk.WithListener(req, "web")
	resp, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "route=/info listener=web tls=true remote=192.0.2.1:1234 name="; string(resp.Body) != want {
		t.Errorf("body %q, want %q", resp.Body, want)
	}
	resp, err = h.Do(httptest.NewRequest("GET", "/info", nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Body), "tls=false") {
		t.Errorf("plain request: %q", resp.Body)
	}
}

func TestBodyStreams(t *testing.T) {
	h, _ := newKitchen(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*sdk.ChunkSize/16+5) // several chunks each way
	resp, err := h.Do(httptest.NewRequest("POST", "/echo", bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Body, big) || resp.Header.Get("X-Length") != fmt.Sprint(len(big)) {
		t.Errorf("echo: %d bytes back (X-Length %s), want %d", len(resp.Body), resp.Header.Get("X-Length"), len(big))
	}
	// Through an http.Client, with a body of unknown length.
	req, _ := http.NewRequest("POST", "http://example.test/echo", io.MultiReader(bytes.NewReader(big)))
	r, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil || !bytes.Equal(got, big) || r.Header.Get("X-Length") != "-1" {
		t.Errorf("client echo: %d bytes, X-Length %s, err %v", len(got), r.Header.Get("X-Length"), err)
	}
}

func TestFileAnswer(t *testing.T) {
	h, dir := newKitchen(t)
	resp, err := h.Do(httptest.NewRequest("GET", "/files/a.txt", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.File == nil {
		t.Fatal("no file answer")
	}
	if resp.File.Path != filepath.Join(dir, "a.txt") || !resp.File.Cacheable || resp.File.Identity.Size != 10 || resp.File.ETag == "" {
		t.Errorf("file answer %+v", resp.File)
	}
	if resp.Status != 200 || string(resp.Body) != "0123456789" || resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Errorf("got %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	req := httptest.NewRequest("GET", "/files/a.txt", nil)
	req.Header.Set("Range", "bytes=2-4")
	if resp, err = h.Do(req); err != nil || resp.Status != 206 || string(resp.Body) != "234" {
		t.Errorf("range: %v %v", resp, err)
	}
	req = httptest.NewRequest("GET", "/files/a.txt", nil)
	req.Header.Set("If-None-Match", resp.File.ETag)
	if resp, err = h.Do(req); err != nil || resp.Status != 304 {
		t.Errorf("conditional: %v %v", resp, err)
	}
}

func TestStream(t *testing.T) {
	h, _ := newKitchen(t)
	c := h.Dial("upper")
	if _, err := io.WriteString(c, "can you hear me?"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "upper from 192.0.2.1:1234 to 192.0.2.2:1313: CAN YOU HEAR ME?"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}

	c = h.Dial("fail")
	if _, err := io.ReadAll(c); status.Convert(err).Message() != "refused" {
		t.Errorf("handler error: got %v", err)
	}
}

func TestStreamPanicKeepsPlugin(t *testing.T) {
	h, _ := newKitchen(t)
	c := h.Dial("panic")
	if _, err := io.ReadAll(c); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "stream exploded") {
		t.Errorf("panicking stream: got %v, want Internal naming the panic", err)
	}
	if resp, err := h.Do(httptest.NewRequest("GET", "/hello/again", nil)); err != nil || resp.Status != 200 {
		t.Errorf("after a panic: %v %v", resp, err)
	}
}

func TestDatagram(t *testing.T) {
	h, _ := newKitchen(t)
	if got, err := h.Send("dgram", []byte("ping")); err != nil || string(got) != "192.0.2.1:1234 ping" {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := h.Send("silent", []byte("ping")); err != nil || got != nil {
		t.Errorf("silent: got %q, %v", got, err)
	}
	if _, err := h.Send("panic", nil); status.Code(err) != codes.Internal {
		t.Errorf("panic: got %v, want Internal", err)
	}
	if got, err := h.Send("dgram", []byte("again")); err != nil || !strings.HasSuffix(string(got), "again") {
		t.Errorf("after a panic: %q, %v", got, err)
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		cfg     *sdk.Config
		want    string // in sdktest.Format's output
		warning bool
	}{
		{"unknown attribute", &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"dri": "x"})},
			`error: plugin block at dri: Unsupported argument`, false},
		{"missing required", &sdk.Config{Listeners: []sdk.ListenerConfig{{Name: "l", Protocol: "tcp"}}},
			`error: listener "l": Missing required argument`, false},
		{"plugin warning", &sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /", Config: sdk.MustJSON(map[string]any{"greeting": "Bonjour"})}}},
			`warning: route "GET /" at greeting: French`, true},
		{"panic in Configure", &sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /", Config: sdk.MustJSON(map[string]any{"panic": true})}}},
			`error: plugin block: The plugin failed while reading its configuration: It panicked: configure exploded`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := sdktest.New(t, &kitchen{}).Configure(tt.cfg)
			if got := sdktest.Format(diags); !strings.Contains(got, tt.want) {
				t.Errorf("diagnostics:%s\nwant one containing %q", got, tt.want)
			}
			if diags.HasErrors() == tt.warning {
				t.Errorf("HasErrors = %t", diags.HasErrors())
			}
		})
	}
}

func TestHandlerPlugin(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hi/{who}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hi %s", r.PathValue("who"))
	})
	h := sdktest.New(t, sdk.HandlerPlugin("mux", "2.0.0", mux))
	d := h.Describe()
	if d.Name != "mux" || d.Version != "2.0.0" || !slices.Equal(d.Protocols, []string{"http"}) ||
		len(d.PluginSchema)+len(d.RouteSchema)+len(d.ListenerSchema) != 0 {
		t.Errorf("description %+v", d)
	}
	diags := h.Configure(&sdk.Config{Routes: []sdk.RouteConfig{{ID: "/hi/", Config: sdk.MustJSON(map[string]any{"x": 1})}}})
	if !diags.HasErrors() {
		t.Error("a config attribute for a plugin without schema was accepted")
	}
	h.MustConfigure(&sdk.Config{Routes: []sdk.RouteConfig{{ID: "/hi/"}}})
	resp, err := h.Do(httptest.NewRequest("GET", "/hi/there", nil))
	if err != nil || resp.Status != 200 || string(resp.Body) != "hi there" {
		t.Errorf("got %v %v", resp, err)
	}
}
