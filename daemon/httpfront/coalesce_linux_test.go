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

// segmentsOut is how many TCP segments the request's connection has sent.
func segmentsOut(t *testing.T, r *http.Request) uint32 {
	pc, _ := r.Context().Value(connKey{}).(*parkConn)
	if pc == nil {
		t.Error("the handler cannot reach its connection")
		return 0
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		t.Error(err)
		return 0
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Error(err)
		return 0
	}
	return info.Segs_out
}

// TestWholeAnswerLeavesInOneSegment serves a 28 KB body, larger than
// net/http's 4 KiB write buffer, with writeWhole, and counts the segments
// the server sent for it: head and body must leave together (a plain
// w.Write sends two), on every request of a keep-alive connection.
func TestWholeAnswerLeavesInOneSegment(t *testing.T) {
	body := bytes.Repeat([]byte("socketd "), 28<<10/8)
	segments := make(chan uint32, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		before := segmentsOut(t, r)
		writeWhole(w, r, body)
		segments <- segmentsOut(t, r) - before
	})
	srv := NewServer("web", Limits{}, h, nil, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 3 {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("request %d: %d bytes, %v", i, len(got), err)
		}
		if n := <-segments; n != 1 {
			t.Errorf("request %d: the answer left in %d segments, want 1", i, n)
		}
	}
}
