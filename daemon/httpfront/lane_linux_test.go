//go:build linux

package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
	"golang.org/x/sys/unix"
)

// serveFront serves h through the front (and so its fast lane) on a
// loopback port until the test ends.
func serveFront(t testing.TB, lim Limits, h http.Handler) (*Server, string) {
	t.Helper()
	srv := NewServer("web", lim, h, nil, slog.New(slog.DiscardHandler))
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(t.Context())
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv, ln.Addr().String()
}

// rawConn is a client connection that writes requests as given.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{c, bufio.NewReader(c)}
}

// answer reads one answer for a request with method.
func (c *rawConn) answer(t *testing.T, method string) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// TestHandoffKeepsRequestContexts serves plugin-like requests (which
// watch their context) on one connection before and after a request the
// lane hands to net/http: no request's context may end while its client
// is still waiting. A connection handed over with bytes already read once
// made net/http's watch of every later request fail at once.
func TestHandoffKeepsRequestContexts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := r.Context().Done() // starts the watch of the connection
		time.Sleep(2 * time.Millisecond)
		select {
		case <-done:
			http.Error(w, "context ended: "+r.Context().Err().Error(), http.StatusInternalServerError)
		default:
			io.WriteString(w, r.Method+" "+r.URL.Path)
		}
	})
	_, addr := serveFront(t, Limits{}, h)
	c := dialRaw(t, addr)
	for i, req := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /d HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /e HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		io.WriteString(c, req)
		method, _, _ := strings.Cut(req, " ")
		if code, body := c.answer(t, method); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
}

// TestLaneCancelsWhenTheClientLeaves: a request the lane serves must see
// its context end when the client closes the connection, as with net/http
// (the hop then cancels the plugin's call).
func TestLaneCancelsWhenTheClientLeaves(t *testing.T) {
	// A route's timeout is a context derived from the request's; it must
	// end with it, as must one whose cancel came first, and plugin calls'
	// (withTimeout), two at a time, tied through the lane context's
	// Adopt, which must start the watch as a Done does.
	for _, derive := range []string{"none", "context", "calls"} {
		started, ended := make(chan struct{}), make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, also := r.Context(), r.Context()
			switch derive {
			case "context":
				early, cancelEarly := context.WithCancel(ctx)
				cancelEarly()
				<-early.Done()
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			case "calls":
				first := withTimeout(ctx, time.Hour)
				defer first.cancel()
				first.Done()
				second := withTimeout(ctx, time.Hour)
				defer second.cancel()
				ctx, also = first, second
			}
			close(started)
			for _, ctx := range []context.Context{ctx, also} {
				select {
				case <-ctx.Done():
				case <-time.After(time.Minute):
					ended <- errors.New("the context did not end")
					return
				}
			}
			ended <- ctx.Err()
		})
		_, addr := serveFront(t, Limits{}, h)
		c := dialRaw(t, addr)
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		c.Close()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("derived by %s, after the client left: %v", derive, err)
		}
	}
}

// A lane context that adopted a plugin call's context is never reused,
// even once the call ended first: the sweep may still start the watch it
// armed, which would read the next request's connection, and gRPC may
// still ask the call's context for the request's deadline and values.
func TestAdoptedLaneContextIsNotReused(t *testing.T) {
	ctx := newLaneCtx()
	ctx.base = context.Background()
	call := withTimeout(ctx, time.Hour)
	call.Done()
	if !ctx.armed {
		t.Fatal("adopting a call did not arm the watch")
	}
	call.cancel()
	ctx.finish()
	if ctx.Reuse() {
		t.Fatal("a lane context that adopted a call was made live again")
	}
	unasked := newLaneCtx()
	unasked.base = context.Background()
	unasked.finish()
	if !unasked.Reuse() {
		t.Fatal("a lane context nobody awaited was not reused")
	}
}

// TestLaneHandsOverWhatItDoesNotTake sends, on one connection, requests
// the lane leaves to net/http between ones it takes, some pipelined in one
// write: each is answered, in order, as net/http answers it.
func TestLaneHandsOverWhatItDoesNotTake(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Proto+" "+string(body))
	})
	_, addr := serveFront(t, Limits{MaxHeaderBytes: 64 << 10}, h)
	long := "X-Long: " + strings.Repeat("a", 6000) + "\r\n"
	steps := []struct {
		write string
		want  []string // bodies of the answers, in order
	}{
		{"GET /lane HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET /lane HTTP/1.1 "}},
		{"GET /lf HTTP/1.1\nHost: x\n\n", []string{"GET /lf HTTP/1.1 "}},
		{"GET /long HTTP/1.1\r\nHost: x\r\n" + long + "\r\n", []string{"GET /long HTTP/1.1 "}},
		{"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"GET /one HTTP/1.1 ", "POST /two HTTP/1.1 abc", "GET /three HTTP/1.1 "}},
		{"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []string{"GET /old HTTP/1.0 "}},
	}
	c := dialRaw(t, addr)
	for _, s := range steps {
		io.WriteString(c, s.write)
		for _, want := range s.want {
			method, _, _ := strings.Cut(want, " ")
			if code, body := c.answer(t, method); code != 200 || body != want {
				t.Fatalf("got %d %q, want 200 %q", code, body, want)
			}
		}
	}

	// Past MaxHeaderBytes, net/http's 431 and a closed connection.
	c = dialRaw(t, addr)
	io.WriteString(c, "GET /huge HTTP/1.1\r\nHost: x\r\nX-Huge: "+strings.Repeat("b", 80<<10)+"\r\n\r\n")
	if code, _ := c.answer(t, "GET"); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a huge head: %d, want 431", code)
	}
}

// TestLaneShutdownWaitsForBusyConnections shuts the server down while the
// lane serves one request and another connection is idle: the idle one is
// closed, the busy one's request runs on, uncancelled, and gets its whole
// answer, marked as the last.
func TestLaneShutdownWaitsForBusyConnections(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			close(started)
			select { // like a plugin call, which watches the client
			case <-release:
			case <-r.Context().Done():
				io.WriteString(w, "cancelled by the shutdown")
				return
			}
		}
		io.WriteString(w, "done "+r.URL.Path)
	})
	srv, addr := serveFront(t, Limits{}, h)
	idle := dialRaw(t, addr)
	io.WriteString(idle, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	if code, _ := idle.answer(t, "GET"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	busy := dialRaw(t, addr)
	io.WriteString(busy, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	if _, err := idle.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection at shutdown: %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(busy.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "done /busy" || !resp.Close {
		t.Fatalf("busy request: %q, Connection: close %v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestLaneOutlivesHandlersThatBlock blocks more handlers than the lane
// has workers, in each way a handler can wait: on its context (a plugin
// call), on something else (a sleep, which only the monitor notices), on
// a client too slow for its answer, and on a request head that stops
// halfway. Another connection must still be answered meanwhile, and each
// blocked one once it is let go.
func TestLaneOutlivesHandlersThatBlock(t *testing.T) {
	release := make(chan struct{})
	big := bytes.Repeat([]byte("z"), 8<<20)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/context":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/other":
			<-release
		case "/big":
			w.Write(big)
			return
		}
		io.WriteString(w, "done "+r.URL.Path)
	})
	_, addr := serveFront(t, Limits{}, h)
	workers := runtime.GOMAXPROCS(0)
	var blocked []*rawConn
	for i := range 2 * workers {
		for _, path := range []string{"/context", "/other", "/big"} {
			c := dialRaw(t, addr)
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			blocked = append(blocked, c)
		}
		half := dialRaw(t, addr)
		io.WriteString(half, "GET /half HTTP/1.1\r\nHo")
		if i == 0 {
			defer func() {
				io.WriteString(half, "st: x\r\n\r\n")
				if code, body := half.answer(t, "GET"); code != 200 || body != "done /half" {
					t.Errorf("the head sent in two parts: %d %q", code, body)
				}
			}()
		}
	}
	time.Sleep(50 * time.Millisecond) // let every handler start waiting
	for i := range 3 {
		c := dialRaw(t, addr)
		io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
		if code, body := c.answer(t, "GET"); code != 200 || body != "done /quick" {
			t.Fatalf("quick request %d while others block: %d %q", i, code, body)
		}
	}
	close(release)
	for _, c := range blocked {
		code, body := c.answer(t, "GET")
		if code != 200 || (body != "done /context" && body != "done /other" && body != string(big)) {
			t.Fatalf("a blocked request, let go: %d, %d bytes", code, len(body))
		}
	}
}

// TestWaitingLaneConnectionsCountAsParked: a lane connection between
// requests holds no goroutine, so the parked metric counts it; it stops
// counting when it closes.
func TestWaitingLaneConnectionsCountAsParked(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, addr := serveFront(t, Limits{}, h)
	before := ParkedConnections()
	var conns []*rawConn
	for range 5 {
		c := dialRaw(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if code, _ := c.answer(t, "GET"); code != 200 {
			t.Fatalf("answer: %d", code)
		}
		conns = append(conns, c)
	}
	waitUntil(t, "5 more parked connections", func() bool { return ParkedConnections() == before+5 })
	for _, c := range conns {
		c.Close()
	}
	waitUntil(t, "the closed ones gone", func() bool { return ParkedConnections() == before })
}

// TestLaneSetUnderChurn runs clients that do what clients do, all at
// once, against an idle timeout short enough that the monitor closes
// connections while others arrive: requests one at a time, pipelined,
// with their head split, pauses past the idle timeout, and leaving
// mid-request. Every answer a client reads must be its own, a connection
// that was not idle must not be closed, and the shutdown must find every
// connection accounted for.
func TestLaneSetUnderChurn(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("wait") {
			<-r.Context().Done() // a plugin call whose client leaves
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	lim := Limits{IdleTimeout: churnIdle, ReadHeaderTimeout: time.Second}
	srv := NewServer("web", lim, h, nil, slog.New(slog.DiscardHandler))
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	const clients, rounds = 16, 40
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			errs <- churn(addr, i, rounds)
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// churnIdle is TestLaneSetUnderChurn's idle timeout.
const churnIdle = 100 * time.Millisecond

// churn is one client of TestLaneSetUnderChurn.
func churn(addr string, id, rounds int) error {
	var c net.Conn
	var r *bufio.Reader
	var lastAnswer time.Time
	dial := func() error {
		if c != nil {
			c.Close()
		}
		var err error
		c, err = net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(time.Minute))
		r = bufio.NewReader(c)
		lastAnswer = time.Now()
		return nil
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	if err := dial(); err != nil {
		return err
	}
	for i := range rounds {
		path := fmt.Sprintf("/%d/%d", id, i)
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		answers := 1
		switch (id + i) % 5 {
		case 1: // pipelined with the next
			req += req
			answers = 2
		case 3: // past the idle timeout first: the server closes
			time.Sleep(churnIdle + 30*time.Millisecond)
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("client %d, idle past the timeout: %v, want EOF", id, err)
			}
			if err := dial(); err != nil {
				return err
			}
		case 4: // leaves while its request waits
			io.WriteString(c, "GET /leave?wait HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := dial(); err != nil {
				return err
			}
		}
		// A request sent well within the idle timeout of the last answer
		// must be answered. (One sent later may find the connection
		// closed, if the client was slow to run: then it dials again.)
		sentBy := time.Since(lastAnswer)
		var err error
		if (id+i)%5 == 2 { // the head in two writes
			if _, err = io.WriteString(c, req[:10]); err == nil {
				time.Sleep(time.Millisecond)
				_, err = io.WriteString(c, req[10:])
			}
		} else {
			_, err = io.WriteString(c, req)
		}
		for n := 0; n < answers && err == nil; n++ {
			var resp *http.Response
			if resp, err = http.ReadResponse(r, nil); err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				if err == nil && string(body) != path {
					return fmt.Errorf("client %d asked for %s, got %q", id, path, body)
				}
			}
		}
		if err != nil {
			if sentBy < churnIdle/2 {
				return fmt.Errorf("client %d, %s sent %v after the last answer: %v", id, path, sentBy.Round(time.Millisecond), err)
			}
			if err := dial(); err != nil {
				return err
			}
		}
		lastAnswer = time.Now()
	}
	return nil
}

// waitUntil polls cond until it holds, for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// TestLaneWriterSurvivesAFullSocket writes two slices, larger together
// than the socket's buffers, to a reader that starts late, so the raw
// writes come back partial and then with EAGAIN: every byte must arrive,
// in order, once.
func TestLaneWriterSurvivesAFullSocket(t *testing.T) {
	ln := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := (<-accepted).(*net.TCPConn)
	defer server.Close()
	pc, err := newParkConn(server, nil)
	if err != nil {
		t.Fatal(err)
	}

	a := bytes.Repeat([]byte("head-"), 20000)
	b := bytes.Repeat([]byte("0123456789"), 3<<20)
	written := make(chan error, 1)
	go func() { lio := newLaneIO(pc); defer lio.release(); written <- lio.writeTwo(a, b) }()
	time.Sleep(50 * time.Millisecond) // let the socket fill up
	got := make([]byte, len(a)+len(b))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(a)], a) || !bytes.Equal(got[len(a):], b) {
		t.Fatal("the bytes arrived changed")
	}
}

// TestParkConnBoundsUnsentBytes: every connection the front takes bounds
// what its socket queues unsent (sendLowat).
func TestParkConnBoundsUnsentBytes(t *testing.T) {
	ln := listen(t)
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := newParkConn(c.(*net.TCPConn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	pc.raw.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	})
	if gerr != nil || got != sendLowat {
		t.Errorf("TCP_NOTSENT_LOWAT is %d (%v), want %d", got, gerr, sendLowat)
	}
}

// TestNoFastLaneLeavesAllToNetHTTP: fast_lane = false gives every request
// to net/http; otherwise a plain GET takes the lane.
func TestNoFastLaneLeavesAllToNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, lane := w.(*recorder).ResponseWriter.(*laneResponse)
		io.WriteString(w, strconv.FormatBool(lane))
	})
	for _, off := range []bool{false, true} {
		_, addr := serveFront(t, Limits{NoFastLane: off}, h)
		c := dialRaw(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := c.answer(t, "GET"); body != strconv.FormatBool(!off) {
			t.Errorf("NoFastLane %v: served by the lane: %s", off, body)
		}
	}
}

// TestLaneEnforcesTheHeaderTimeout: a client that stops halfway through
// a request head, or never starts one, is closed once read_header_timeout
// has passed, as net/http closes it (without an answer).
func TestLaneEnforcesTheHeaderTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the handler: %s", r.URL)
	})
	_, addr := serveFront(t, Limits{ReadHeaderTimeout: 200 * time.Millisecond}, h)
	for _, start := range []string{"GET / HTTP/1.1\r\nHo", ""} {
		c := dialRaw(t, addr)
		io.WriteString(c, start)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if b, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("after %q: read %q, %v; want the connection closed", start, b, err)
		}
	}
}

// BenchmarkLaneKeptFile is a whole kept-file request on a keep-alive
// connection through the front: the lane's read and parse, the request's
// context, the front's record, the file's identity check and the writev.
// Its allocations are the server's (the client's loop makes none); they
// set how often the collector stops the world under load.
func BenchmarkLaneKeptFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.txt")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 1000), 0o644); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	fc := &fileCache{settle: time.Nanosecond}
	fc.put("/a.txt", nil, sdk.FileFor(path, fi))
	e := fc.get("/a.txt")
	_, addr := serveFront(b, Limits{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fc.serve(w, r, "/a.txt", e) {
			http.Error(w, "the file is not kept", http.StatusInternalServerError)
		}
	}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := []byte("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	// The first answer keeps the file's bytes; the next gives the
	// answer's length, the same for every answer after (Date's is fixed).
	var size int
	for range 2 {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		size = rawAnswerSize(b, conn)
	}
	buf := make([]byte, size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(buf, bytes.Repeat([]byte("x"), 100)) {
		b.Fatalf("the last answer: %q", buf)
	}
}

// rawAnswerSize reads one answer from c byte by byte (so nothing of the
// next is read) and returns its length, head and body.
func rawAnswerSize(b *testing.B, c net.Conn) int {
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		head = append(head, one[0])
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		b.Fatalf("answer %q: %v", head, err)
	}
	if _, err := io.ReadFull(c, make([]byte, resp.ContentLength)); err != nil {
		b.Fatal(err)
	}
	return len(head) + int(resp.ContentLength)
}
