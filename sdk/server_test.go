package sdk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// recorder keeps the config Configure received.
type recorder struct{ cfg *Config }

func (*recorder) Describe() Description {
	return Description{Name: "recorder", RouteSchema: Schema{
		{Name: "n", Type: "number", Default: 50},
		{Name: "s", Type: "string"},
	}}
}

func (r *recorder) Configure(_ context.Context, cfg *Config) Diagnostics {
	r.cfg = cfg
	return nil
}

func TestListenerProtocols(t *testing.T) {
	rec := &recorder{}
	_, err := newServer(rec).Configure(t.Context(), &pluginpb.ConfigureRequest{Listeners: []*pluginpb.ListenerConfig{
		{Name: "s", Protocol: pluginpb.Protocol_PROTOCOL_STREAM},
		{Name: "d", Protocol: pluginpb.Protocol_PROTOCOL_DATAGRAM},
		{Name: "u", Protocol: pluginpb.Protocol_PROTOCOL_UNSPECIFIED},
		{Name: "future", Protocol: pluginpb.Protocol(42)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "tcp", "d": "udp", "u": "", "future": ""}
	for _, l := range rec.cfg.Listeners {
		if l.Protocol != want[l.Name] {
			t.Errorf("listener %s: protocol %q, want %q", l.Name, l.Protocol, want[l.Name])
		}
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `{"n":50}`},
		{`null`, `{"n":50}`},
		{`{"n":null,"s":null}`, `{"n":50,"s":null}`},
		{`{"n":7,"s":"x"}`, `{"n":7,"s":"x"}`},
		{`[1]`, `[1]`}, // not an object: left for Decode to report
	}
	for _, tt := range tests {
		rec := &recorder{}
		_, err := newServer(rec).Configure(t.Context(), &pluginpb.ConfigureRequest{
			Routes: []*pluginpb.RouteConfig{{Id: "GET /", Config: []byte(tt.in)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(rec.cfg.Routes[0].Config); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.in, got, tt.want)
		}
	}
	// A block of a schema without defaults is passed through untouched.
	if got := withDefaults(RawConfig(`{"a" : 1}`), Schema{{Name: "a"}}); string(got) != `{"a" : 1}` {
		t.Errorf("no defaults: got %s", got)
	}
}

func TestDescribeDefaultJSON(t *testing.T) {
	resp, err := newServer(&recorder{}).Describe(t.Context(), &pluginpb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	attrs := resp.GetRouteSchema().GetAttributes()
	if attrs[0].GetDefaultJson() != "50" || attrs[1].GetDefaultJson() != "" {
		t.Errorf("defaults %q, %q; want \"50\", \"\"", attrs[0].GetDefaultJson(), attrs[1].GetDefaultJson())
	}
}

// TestServeFileOutsideSocketd checks ServeFile's fallback for handlers
// called with a plain ResponseWriter.
func TestServeFileOutsideSocketd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	good := FileFor(path, fi)
	changed := good
	changed.Identity.Size++
	gone := good
	gone.Path = filepath.Join(dir, "missing.txt")

	tests := []struct {
		name   string
		f      File
		status int
	}{
		{"served", good, 200},
		{"changed", changed, 503},
		{"not there", gone, 404},
	}
	if os.Geteuid() != 0 {
		locked := filepath.Join(dir, "locked.txt")
		if err := os.WriteFile(locked, nil, 0); err != nil {
			t.Fatal(err)
		}
		f := good
		f.Path = locked
		tests = append(tests, struct {
			name   string
			f      File
			status int
		}{"unreadable", f, 403})
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		ServeFile(rec, httptest.NewRequest("GET", "/f.txt", nil), tt.f)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.status)
		}
		if tt.status == 200 && (rec.Body.String() != "content" || rec.Header().Get("Etag") != good.ETag) {
			t.Errorf("%s: body %q, headers %v", tt.name, rec.Body, rec.Header())
		}
	}
}

// TestTLSAndListener checks what newRequest makes of the head's tls and
// listener fields, under a ServeHTTP call's context and an Exchange call.
func TestTLSAndListener(t *testing.T) {
	for _, tls := range []bool{false, true} {
		head := &pluginpb.HTTPRequest{
			Method: "GET", Target: "/x", Path: "/x", Tls: tls, Listener: "web", Route: "GET /x",
		}
		for _, ctx := range []context.Context{
			&requestCtx{Context: t.Context(), requestValues: valuesOf(head)},
			&exchangeCall{stream: t.Context(), requestValues: valuesOf(head)},
		} {
			r, err := newRequest(ctx, head, http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			if (r.TLS != nil) != tls || Listener(r) != "web" || RouteID(r) != "GET /x" {
				t.Errorf("tls=%t: TLS %v, listener %q, route %q", tls, r.TLS, Listener(r), RouteID(r))
			}
		}
	}
}
