//go:build linux

package httpfront

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parking idle keep-alive connections.
//
// net/http serves each connection with a goroutine that waits in a read,
// holding its stack and 8 KiB of buffers, about 20 KiB per connection even
// when the client sends nothing for a minute. nginx keeps an idle
// connection in a few hundred bytes. A connection idle for parkAfter is
// therefore handed back: its read says end-of-file, net/http closes it
// (which parks it instead), its goroutine and buffers go, and an epoll set
// watches the socket. When the next request arrives, the connection is
// accepted again, as new, and served. A parked connection still honours
// net/http's idle timeout, and is closed with the listener.
//
// Only a read into net/http's empty buffer at a request boundary
// (StateIdle) may park, so no byte net/http has read is ever dropped: a
// connection with a partial pipelined request in the buffer waits as
// before.

// parked counts the parked connections of every listener.
var parked atomic.Int64

// ParkedConnections is the number of idle keep-alive connections parked
// now, across listeners (a metric): net/http's parked ones, and the fast
// lane's waiting for their next request.
func ParkedConnections() int64 { return parked.Load() + waitingInLanes() }

// parkAfter is how long a connection must be idle before it is parked:
// longer than a busy client's pause between requests (wrk's 64 connections
// wait about 4 ms each), so load does not pay for the trip through the
// parker, and short enough that a burst of new connections parks before
// many of them hold goroutines at once (10,000 connections opened back to
// back: 40 MB of RSS at 25 ms, 44 MB at 100 ms).
const parkAfter = 25 * time.Millisecond

// parkIdle wraps ln so that its idle connections can be parked, and its
// connections start in the fast lane l (if not nil); without epoll it
// returns ln as it is.
func parkIdle(ln net.Listener, log *slog.Logger, l *lane) net.Listener {
	pl := &parkListener{inner: ln, conns: make(chan net.Conn), errc: make(chan error, 1), closed: make(chan struct{})}
	p, err := newParker(pl.wake)
	if err != nil {
		log.Warn("idle connections will not be parked", "error", err)
		return ln
	}
	pl.p = p
	if l != nil {
		if err := l.openSet(); err != nil {
			log.Warn("the fast lane is off", "error", err)
		} else {
			pl.lane = l
			l.handoff = pl.deliver
		}
	}
	go pl.acceptLoop()
	go p.run()
	return pl
}

// parkConnState tells a connection it is between requests.
func parkConnState(c net.Conn, s http.ConnState) {
	if pc, ok := c.(*parkConn); ok && s == http.StateIdle {
		pc.mu.Lock()
		pc.idle = true
		pc.mu.Unlock()
	}
}

type parkListener struct {
	inner  net.Listener
	p      *parker
	lane   *lane         // nil: every connection goes to net/http
	conns  chan net.Conn // accepted, or woken from the parker
	errc   chan error
	once   sync.Once
	closed chan struct{}
}

func (pl *parkListener) acceptLoop() {
	for {
		c, err := pl.inner.Accept()
		if err != nil {
			pl.errc <- err
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if pc, err := newParkConn(tc, pl.p); err == nil {
				if pl.lane != nil {
					pl.lane.start(pc)
					continue
				}
				c = pc
			}
		}
		if !pl.deliver(c) {
			return
		}
	}
}

// wake takes a parked connection whose next request arrived: to the fast
// lane if there is one, else to net/http.
func (pl *parkListener) wake(c net.Conn) bool {
	if pc, ok := c.(*parkConn); ok && pl.lane != nil {
		pl.lane.start(pc)
		return true
	}
	return pl.deliver(c)
}

// deliver hands c to net/http's Accept; it closes c if the listener is
// closed.
func (pl *parkListener) deliver(c net.Conn) bool {
	select {
	case pl.conns <- c:
		return true
	case <-pl.closed:
		c.Close()
		return false
	}
}

func (pl *parkListener) Accept() (net.Conn, error) {
	select {
	case c := <-pl.conns:
		return c, nil
	case err := <-pl.errc:
		pl.errc <- err // every later Accept fails the same way
		return nil, err
	case <-pl.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: pl.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting and closes every parked connection.
func (pl *parkListener) Close() error {
	var err error
	pl.once.Do(func() {
		close(pl.closed)
		err = pl.inner.Close()
		pl.p.close()
	})
	return err
}

func (pl *parkListener) Addr() net.Addr { return pl.inner.Addr() }

// parkConn is a TCP connection that can leave net/http while idle. The
// embedded *net.TCPConn keeps ReadFrom (sendfile) and CloseWrite.
type parkConn struct {
	*net.TCPConn
	p   *parker
	fd  int32
	raw syscall.RawConn

	mu sync.Mutex
	// full is the length of net/http's first read: its buffer, empty.
	full int
	// idle: the connection is between requests and nothing has been read.
	idle bool
	// deadline is the read deadline net/http last set (its idle timeout
	// while idle).
	deadline time.Time
	// parkNext: Read said end-of-file to park, so the next Close parks.
	parkNext bool

	// held collects writes while a handler sends a whole answer
	// (writeWhole); nil otherwise.
	held *[]byte

	// pending is what the fast lane read before it handed the
	// connection to net/http; net/http's reads take it first.
	pending []byte
	lane    laneState
}

// sendLowat bounds what an HTTP connection's socket holds that is not
// sent yet (TCP_NOTSENT_LOWAT); it reports writable again once less than
// half is left. Without a bound the kernel queues up to its autotuned send
// buffer, megabytes per connection, and the queue drains as the client's
// acknowledgements come in, in whatever context receives them (on
// loopback, the client's own system calls). With it a file body waits in
// the page cache and sendfile hands the socket more as the client takes
// it. At 128 KiB a kept file (maxMemFile) still goes out in one write, and
// a link of 10 Gbit/s leaves the writer 50 µs to come back before the
// queue runs dry. Serving the 10 MB file to wrk -c8 on loopback: 1.3-1.8x
// the requests a second of no bound (6 alternating pairs).
const sendLowat = 128 << 10

func newParkConn(tc *net.TCPConn, p *parker) (*parkConn, error) {
	c := &parkConn{TCPConn: tc, p: p}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := rc.Control(func(fd uintptr) {
		c.fd = int32(fd)
		// Unsupported before Linux 3.12, where the socket queues as before.
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, sendLowat)
	}); err != nil {
		return nil, err
	}
	c.raw = rc
	return c, nil
}

func (c *parkConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.TCPConn.SetReadDeadline(t)
}

func (c *parkConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.TCPConn.SetDeadline(t)
}

func (c *parkConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.full == 0 {
		c.full = len(p)
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	if !c.idle || len(p) != c.full {
		c.mu.Unlock()
		return c.TCPConn.Read(p)
	}
	c.idle = false
	deadline := c.deadline
	c.mu.Unlock()
	park := time.Now().Add(parkAfter)
	if !deadline.IsZero() && deadline.Before(park) {
		return c.TCPConn.Read(p) // net/http's own deadline comes first
	}
	c.TCPConn.SetReadDeadline(park)
	n, err := c.TCPConn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		c.parkNext = true
		c.mu.Unlock()
		return 0, io.EOF
	}
	c.TCPConn.SetReadDeadline(deadline)
	return n, err
}

// Close parks the connection if its last read asked for it; otherwise it
// closes it for good.
func (c *parkConn) Close() error {
	c.mu.Lock()
	parkNext := c.parkNext
	c.parkNext = false
	c.mu.Unlock()
	if parkNext && c.p.park(c) {
		return nil
	}
	c.p.forget(c)
	return c.TCPConn.Close()
}

// parker watches parked connections with an epoll set of its own.
type parker struct {
	epfd    int
	wakeR   int // a pipe in the set, written to stop run
	wakeW   int
	deliver func(net.Conn) bool

	mu     sync.Mutex
	conns  map[int32]*parkConn
	closed bool
}

func newParker(deliver func(net.Conn) bool) (*parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pipe[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &parker{epfd: epfd, wakeR: pipe[0], wakeW: pipe[1], deliver: deliver, conns: make(map[int32]*parkConn)}, nil
}

// park adds c to the set; false means it could not (the listener closed).
func (p *parker) park(c *parkConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.fd}
	if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(c.fd), &ev) != nil {
		return false
	}
	p.conns[c.fd] = c
	parked.Add(1)
	return true
}

// forget takes c out of the set if it is there, before it is closed.
func (p *parker) forget(c *parkConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.fd] == c {
		p.unparkLocked(c)
	}
}

func (p *parker) unparkLocked(c *parkConn) {
	parked.Add(-1)
	delete(p.conns, c.fd)
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
}

// run wakes parked connections that became readable and closes those past
// their idle timeout, until close.
func (p *parker) run() {
	defer func() {
		syscall.Close(p.epfd)
		syscall.Close(p.wakeR)
		syscall.Close(p.wakeW)
	}()
	events := make([]syscall.EpollEvent, 128)
	lastSweep := time.Now()
	for {
		n, err := syscall.EpollWait(p.epfd, events, 1000)
		if err != nil && err != syscall.EINTR {
			return
		}
		var woken []*parkConn
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if c := p.conns[ev.Fd]; c != nil {
				p.unparkLocked(c)
				woken = append(woken, c)
			}
		}
		var expired []*parkConn
		if now := time.Now(); now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			for _, c := range p.conns {
				if d := c.readDeadline(); !d.IsZero() && now.After(d) {
					p.unparkLocked(c)
					expired = append(expired, c)
				}
			}
		}
		p.mu.Unlock()
		for _, c := range expired {
			c.TCPConn.Close()
		}
		for _, c := range woken {
			c.TCPConn.SetReadDeadline(time.Time{})
			p.deliver(c)
		}
	}
}

func (c *parkConn) readDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

// close closes every parked connection and stops run.
func (p *parker) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	for _, c := range conns {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	}
	parked.Add(-int64(len(conns)))
	p.mu.Unlock()
	for _, c := range conns {
		c.TCPConn.Close()
	}
	syscall.Write(p.wakeW, []byte{0})
}
