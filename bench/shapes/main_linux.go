//go:build linux

// Command shapes serves one fixed page in one of two shapes, to measure
// how the way a Go server waits for its connections shapes its latency
// tail when it shares a 2-core machine with its client (bench/README.md,
// "The tail is the shape of the waiting"):
//
//   - goroutine: a goroutine per connection, waiting in Go's poller between
//     requests, reads and writes as raw system calls (internal/rawio).
//     net/http waits this way, as socketd's fast lane did.
//   - epoll: one epoll set, each connection in it with EPOLLONESHOT, served
//     by -workers goroutines that each take one ready connection at a
//     time. socketd's fast lane waits this way now
//     (daemon/httpfront/laneset_linux.go).
//
// -work adds that much CPU to each request, a spin standing for what a
// real server does between reading a request and answering it. Only the
// waiting differs between the shapes.
//
//	go run ./bench/shapes -shape goroutine -work 3.5us &
//	wrk -t1 -c64 -d5s --latency http://127.0.0.1:18300/
//
// It is a measuring tool, not a server: every request, whatever it asks,
// gets the page; in the epoll shape a connection whose answer does not fit
// its socket at once is closed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/socketd/socketd/internal/rawio"
)

func main() {
	shape := flag.String("shape", "goroutine", "goroutine or epoll")
	addr := flag.String("addr", "127.0.0.1:18300", "listen address")
	page := flag.String("page", "www/index.html", "the page every request gets")
	work := flag.Duration("work", 0, "CPU spent on each request (a spin)")
	workers := flag.Int("workers", 2, "epoll shape: goroutines taking ready connections")
	flag.Parse()

	body, err := os.ReadFile(*page)
	if err != nil {
		log.Fatal(err)
	}
	answer := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{answer: answer, work: *work}
	switch *shape {
	case "goroutine":
		s.acceptEach(ln)
	case "epoll":
		s.acceptShared(ln, *workers)
	default:
		log.Fatalf("unknown shape %q: goroutine or epoll", *shape)
	}
}

type server struct {
	answer []byte
	work   time.Duration
}

// answerAll answers every complete request head at the start of buf[:n]
// through write and returns how many bytes of an incomplete one remain
// (moved to the front of buf).
func (s *server) answerAll(buf []byte, n int, write func([]byte) bool) (int, bool) {
	for {
		end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if end < 0 {
			return n, true
		}
		if s.work > 0 {
			for t := time.Now(); time.Since(t) < s.work; {
			}
		}
		if !write(s.answer) {
			return 0, false
		}
		n = copy(buf, buf[end+4:n])
	}
}

// acceptEach serves each connection on a goroutine of its own.
func (s *server) acceptEach(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serveEach(c.(*net.TCPConn))
	}
}

// serveEach reads and answers c's requests as the lane does: rawio's reads
// and writes in RawConn callbacks made once, waiting in Go's poller when
// they must.
func (s *server) serveEach(c *net.TCPConn) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	var n, got int
	var rerr error
	read := func(fd uintptr) bool {
		var ready bool
		got, ready, rerr = rawio.Read(fd, buf[n:])
		return ready
	}
	var out []byte
	var werr error
	write := func(fd uintptr) bool {
		var ready bool
		out, _, ready, werr = rawio.Writev(fd, out, nil)
		return ready
	}
	for n < len(buf) {
		if rc.Read(read) != nil || rerr != nil {
			return
		}
		var ok bool
		n, ok = s.answerAll(buf, n+got, func(p []byte) bool {
			out = p
			return rc.Write(write) == nil && werr == nil
		})
		if !ok {
			return
		}
	}
}

// sharedConn is a connection of the epoll shape. Only the worker that
// took its readiness touches it until it is re-armed.
type sharedConn struct {
	c   *net.TCPConn // kept so the descriptor stays open
	fd  int
	buf []byte
	n   int
}

// conns finds a connection by descriptor: epoll's 8 bytes of user data
// cannot hold a Go pointer.
var conns [1 << 16]atomic.Pointer[sharedConn]

// acceptShared puts each connection into one epoll set that workers
// goroutines serve.
func (s *server) acceptShared(ln net.Listener, workers int) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	for range workers {
		go s.work1(ep)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		rc, err := tc.SyscallConn()
		if err != nil {
			tc.Close()
			continue
		}
		fd := -1
		rc.Control(func(d uintptr) { fd = int(d) })
		if fd < 0 || fd >= len(conns) {
			tc.Close()
			continue
		}
		conns[fd].Store(&sharedConn{c: tc, fd: fd, buf: make([]byte, 4096)})
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			conns[fd].Store(nil)
			tc.Close()
		}
	}
}

// work1 takes one ready connection at a time: a worker whose thread the
// kernel preempts holds up only the connection it took. It looks without
// blocking first (a raw call), then waits in an ordinary system call, so
// the runtime can give its processor away while it sleeps.
func (s *server) work1(ep int) {
	var ev [1]syscall.EpollEvent
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&ev[0])), 1, 0, 0, 0)
		if e == 0 && r == 0 {
			r, _, e = syscall.Syscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&ev[0])), 1, 1000, 0, 0)
		}
		if e != 0 || r == 0 {
			continue
		}
		c := conns[ev[0].Fd].Load()
		if c == nil {
			continue
		}
		if s.serveShared(c) {
			ev[0] = syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: int32(c.fd)}
			syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(ep), syscall.EPOLL_CTL_MOD, uintptr(c.fd), uintptr(unsafe.Pointer(&ev[0])), 0, 0)
			continue
		}
		conns[c.fd].Store(nil)
		c.c.Close()
	}
}

// serveShared reads what c has and answers it; false closes c.
func (s *server) serveShared(c *sharedConn) bool {
	if c.n == len(c.buf) {
		return false
	}
	got, ready, err := rawio.Read(uintptr(c.fd), c.buf[c.n:])
	if !ready {
		return true
	}
	if err != nil {
		return false
	}
	var ok bool
	c.n, ok = s.answerAll(c.buf, c.n+got, func(p []byte) bool {
		rest, _, ready, err := rawio.Writev(uintptr(c.fd), p, nil)
		return ready && err == nil && len(rest) == 0
	})
	return ok
}
