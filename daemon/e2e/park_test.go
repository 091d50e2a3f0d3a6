package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

const parkConfig = `
plugin_dir = "{{BIN}}"

admin {
  address = "127.0.0.1:0"
}

listener "web" {
  protocol     = "http"
  address      = "127.0.0.1:0"
  idle_timeout = "3s"
}

plugin "testkit" {}

route "GET /items/{id}" {
  plugin = "testkit"
  config { mode = "headers" }
}
`

// keepAlive is a client connection sending one request at a time.
type keepAlive struct {
	net.Conn
	r *bufio.Reader
}

func (k *keepAlive) get(t *testing.T, path string) {
	t.Helper()
	fmt.Fprintf(k, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	k.expect200(t, path)
}

func (k *keepAlive) expect200(t *testing.T, path string) {
	t.Helper()
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

// TestIdleConnectionsAreParked checks that idle keep-alive connections
// are parked without a goroutine (in the fast lane's epoll set, or
// net/http's parker; the metric counts both), serve their next request as
// before, and are still closed at the listener's idle timeout.
func TestIdleConnectionsAreParked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections are parked on Linux only")
	}
	d := startDaemon(t, parkConfig, nil)
	admin := fmt.Sprint(waitLog(t, d, "admin listening")["address"])
	const n = 20
	conns := make([]*keepAlive, n)
	for i := range conns {
		c, err := net.Dial("tcp", d.Addr("web"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = &keepAlive{Conn: c, r: bufio.NewReader(c)}
		conns[i].get(t, fmt.Sprintf("/items/%d", i))
	}
	parked := func() float64 { return metric(scrape(t, admin), "socketd_http_parked_connections") }
	waitFor(t, "every idle connection parked", func() bool { return parked() == n })

	for i, c := range conns {
		c.get(t, fmt.Sprintf("/items/%d", n+i))
	}
	waitFor(t, "parked again after their second request", func() bool { return parked() == n })

	// The idle timeout (3s) still holds: the daemon closes each connection.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("connection %d after the idle timeout: %v, want EOF", i, err)
		}
	}
	waitFor(t, "no parked connection left", func() bool { return parked() == 0 })
}

// TestParkingKeepsAPartialPipelinedRequest sends a request with the first
// bytes of the next one behind it, then the rest of that one after a pause
// longer than a connection takes to be parked. Those first bytes sit in
// net/http's buffer, so the connection must not be parked, and the second
// request must be answered whole.
func TestParkingKeepsAPartialPipelinedRequest(t *testing.T) {
	d := startDaemon(t, parkConfig, nil)
	c, err := net.Dial("tcp", d.Addr("web"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := &keepAlive{Conn: c, r: bufio.NewReader(c)}
	io.WriteString(c, "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\nGE")
	k.expect200(t, "/items/1")
	time.Sleep(500 * time.Millisecond) // far past parkAfter
	io.WriteString(c, "T /items/2 HTTP/1.1\r\nHost: x\r\n\r\n")
	k.expect200(t, "/items/2 (split by a pause)")
}
