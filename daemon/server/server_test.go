package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/daemon/config"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustParse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse(t.TempDir()+"/config.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return cfg
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// addrOf returns the bound address of a listener (or "@admin").
func (d *Daemon) addrOf(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fronts[name].sock.Addr().String()
}

// TestReloadKeepsAndReplacesSockets reloads plugin-less configs: a
// listener whose address is unchanged keeps its socket and its front, one
// whose limits changed keeps its socket under a new front, a removed one
// is closed, an added one opens, and the admin listener follows suit.
func TestReloadKeepsAndReplacesSockets(t *testing.T) {
	base := `
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
listener "other" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
admin { address = "127.0.0.1:0" }
`
	d, diags := Prepare(context.Background(), mustParse(t, base), quiet)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := d.Bind(nil); err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer d.Shutdown()
	web, other, admin := d.addrOf("web"), d.addrOf("other"), d.addrOf(adminFront)
	if code := status(t, "http://"+web+"/"); code != http.StatusNotFound {
		t.Fatalf("no routes: %d, want 404", code)
	}
	if code := status(t, "http://"+admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	webFront := d.fronts["web"]

	// "other" goes, "third" comes, web's limits change.
	next := `
listener "web" {
  protocol     = "http"
  address      = "127.0.0.1:0"
  idle_timeout = "5s"
}
listener "third" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
admin { address = "127.0.0.1:0" }
`
	if diags := d.Reload(context.Background(), mustParse(t, next)); diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := d.addrOf("web"); got != web {
		t.Errorf("web moved from %s to %s; its socket should be kept", web, got)
	}
	if d.fronts["web"] == webFront || d.fronts["web"].sock != webFront.sock {
		t.Errorf("web's limits changed: want a new front on the same socket")
	}
	if status(t, "http://"+web+"/") != http.StatusNotFound || status(t, "http://"+d.addrOf("third")+"/") != http.StatusNotFound {
		t.Error("web or third does not answer")
	}
	if d.addrOf(adminFront) != admin {
		t.Error("the admin socket was not kept")
	}
	d.drains.Wait()
	if _, err := http.Get("http://" + other + "/"); err == nil {
		t.Errorf("the removed listener %s still answers", other)
	}

	// Unchanged: the very same front.
	webFront = d.fronts["web"]
	if diags := d.Reload(context.Background(), mustParse(t, next)); diags.HasErrors() {
		t.Fatal(diags)
	}
	if d.fronts["web"] != webFront {
		t.Error("an unchanged listener got a new front")
	}
}

// TestReloadBindFailureKeepsServing asks a reload for an address that is
// taken: the reload fails as a whole and the running config serves on.
func TestReloadBindFailureKeepsServing(t *testing.T) {
	d, _ := Prepare(context.Background(), mustParse(t, `
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}`), quiet)
	if err := d.Bind(nil); err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer d.Shutdown()
	web := d.addrOf("web")
	taken := `
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
listener "clash" {
  protocol = "tcp"
  address  = "` + web + `"
  plugin   = "x"
}
plugin "x" {}
`
	cfg, diags := config.Parse(t.TempDir()+"/config.hcl", []byte(taken))
	if !diags.HasErrors() { // no binary for x: config refuses it already
		diags = d.Reload(context.Background(), cfg)
	}
	if !diags.HasErrors() {
		t.Fatal("the reload succeeded")
	}
	clash := `
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
listener "clash" {
  protocol = "http"
  address  = "` + web + `"
}`
	diags = d.Reload(context.Background(), mustParse(t, clash))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "address already in use") {
		t.Fatalf("reload onto a taken address: %v", diags)
	}
	if status(t, "http://"+web+"/") != http.StatusNotFound {
		t.Error("the running config stopped serving")
	}
	if ok, _ := d.Ready(); !ok {
		t.Error("not ready after a failed reload")
	}
}

func TestShutdownStopsServing(t *testing.T) {
	d, _ := Prepare(context.Background(), mustParse(t, `
shutdown_timeout = "1s"
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}`), quiet)
	if err := d.Bind(nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Serve(ctx) }()
	waitReady(t, d)
	web := d.addrOf("web")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get("http://" + web + "/"); err == nil {
		t.Error("still answering after Shutdown")
	}
	if ok, why := d.Ready(); ok || why != "stopping" {
		t.Errorf("Ready after Shutdown: %v %q", ok, why)
	}
}

func waitReady(t *testing.T, d *Daemon) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if ok, _ := d.Ready(); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("never ready")
}
