//go:build linux

package httpfront

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// segmentsOut is how many TCP segments c has sent.
func segmentsOut(t *testing.T, c *net.TCPConn) uint32 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	return info.Segs_out
}

// acceptRecorder hands on the connections it accepts, so a test can ask
// the server's side of a connection about itself.
type acceptRecorder struct {
	net.Listener
	conns chan *net.TCPConn
}

func (a acceptRecorder) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		a.conns <- tc
	}
	return c, err
}

// TestWholeAnswerLeavesInOneSegment serves a 28 KB body, larger than
// net/http's 4 KiB write buffer, with writeWhole, and counts the segments
// the server sent for it: head and body must leave together (a plain
// w.Write through net/http sends two), on every request of a keep-alive
// connection, whether the fast lane serves it (GET) or net/http (POST).
func TestWholeAnswerLeavesInOneSegment(t *testing.T) {
	body := bytes.Repeat([]byte("socketd "), 28<<10/8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := acceptRecorder{ln, make(chan *net.TCPConn, 1)}
	var server *net.TCPConn
	before := make(chan uint32, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if server == nil {
			server = <-rec.conns // one keep-alive connection
		}
		before <- segmentsOut(t, server)
		writeWhole(w, r, body)
	})
	srv := NewServer("web", Limits{}, h, nil, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(rec) }()
	defer func() {
		srv.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i, method := range []string{"GET", "GET", "GET", "POST", "POST", "POST"} {
		req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+"/", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("request %d: %d bytes, %v", i, len(got), err)
		}
		start := <-before
		if n := segmentsOut(t, server) - start; n != 1 {
			t.Errorf("request %d (%s): the answer left in %d segments, want 1", i, method, n)
		}
	}
}
