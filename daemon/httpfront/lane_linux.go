//go:build linux

package httpfront

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketd/socketd/internal/lazyctx"
	"github.com/socketd/socketd/internal/rawio"
)

// The fast lane.
//
// net/http spends about 15 µs of CPU on each request of a keep-alive
// connection before and after the handler: a reader and writer per
// request, a context with a goroutine watching the connection, a header
// clone, deadlines set four times. nginx spends 8 µs on its whole
// request. So the front reads and answers the commonest requests itself:
// a plain GET or HEAD (laneparse.go says exactly which), answered by the
// same handler through a ResponseWriter that follows net/http's rules
// (laneresponse.go). The first request that is anything else hands the
// connection, with every byte read, to net/http, which serves it from
// there on as it always did; when net/http parks the connection idle, it
// comes back to the lane. Between requests a lane connection waits in the
// lane's epoll set, served by a worker per processor (laneset_linux.go).
//
// The lane is Linux-only, as parking is: it is the same connection type,
// and waits in epoll as a parked one does.

// laneBufSize is the largest request head the lane reads; a longer one
// goes to net/http (which allows MaxHeaderBytes).
const laneBufSize = 4096

// laneIO is what a lane worker (or a detached goroutine) serves
// connections with: the read buffer and the state of its raw reads and
// writes. RawConn.Read and Write take a callback, and a closure over a
// call's arguments escapes to the heap: four allocations a request. So
// the callbacks are made once per laneIO and take their arguments and
// results through it; a laneIO has one goroutine, so one call at a time.
type laneIO struct {
	l   *lane
	c   *parkConn
	w   *laneWorker // the worker this laneIO serves for (nil in tests)
	buf []byte
	// a, b: what the call reads into (a) or writes (a, then b); n, err:
	// what it read and how it failed.
	a, b            []byte
	n               int
	err             error
	readFn, writeFn func(fd uintptr) bool
	// writeBy is the answer's write deadline (zero: none), set on the
	// connection only if a write must wait (deadlineSet).
	writeBy     time.Time
	deadlineSet bool
	ctl         epollCtl
}

var laneIOs = sync.Pool{New: func() any {
	lio := &laneIO{buf: make([]byte, laneBufSize)}
	lio.readFn, lio.writeFn = lio.readRaw, lio.writeRaw
	return lio
}}

// newLaneIO takes a laneIO for c; release gives it back.
func newLaneIO(c *parkConn) *laneIO {
	lio := laneIOs.Get().(*laneIO)
	lio.c = c
	return lio
}

func (lio *laneIO) release() {
	lio.l, lio.c, lio.w, lio.a, lio.b, lio.err = nil, nil, nil, nil, nil, nil
	laneIOs.Put(lio)
}

// offWorker readies lio for a wait in Go's poller: a worker gives its
// place to another.
func (lio *laneIO) offWorker() {
	if lio.w != nil {
		lio.w.detach()
	}
}

// awaitWritable readies lio for a write that waits in Go's poller: off
// the worker, within the answer's write deadline.
func (lio *laneIO) awaitWritable() {
	lio.offWorker()
	if !lio.writeBy.IsZero() && !lio.deadlineSet {
		lio.c.TCPConn.SetWriteDeadline(lio.writeBy)
		lio.deadlineSet = true
	}
}

// aLongTimeAgo is a deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// lane serves the fast lane's connections of one listener.
type lane struct {
	handler http.Handler
	srv     *http.Server
	lim     Limits
	log     *slog.Logger
	// handoff gives a connection to net/http; false if the listener is
	// closed (the connection is then closed).
	handoff func(net.Conn) bool
	set     *laneSet // nil until openSet

	shutting atomic.Bool
	mu       sync.Mutex
	conns    map[*parkConn]struct{}
	wg       sync.WaitGroup
}

func newLane(srv *http.Server, handler http.Handler, lim Limits, log *slog.Logger) *lane {
	return &lane{handler: handler, srv: srv, lim: lim, log: log, conns: make(map[*parkConn]struct{})}
}

// laneState is what the lane keeps of a connection between requests:
// little, as a waiting connection should cost little.
type laneState struct {
	// state: connBusy, connClosed, or the deadline it waits in the set
	// until (laneset_linux.go). Whoever moves it to connClosed closes the
	// connection and takes it out of the lane.
	state atomic.Int64
	// gen is the connection's registration in the set, in its events.
	gen atomic.Uint32
	// served: the connection has had a request (a new one waits for its
	// first under read_header_timeout, a used one under idle_timeout).
	// Only whoever holds the connection busy touches it, and visit.
	served bool
	visit  *laneVisit
}

// laneVisit is what the lane's requests need of their connection, made
// at its first request in the lane.
type laneVisit struct {
	base   context.Context // the requests' contexts derive from it
	remote string
	// lastHead is the previous request's head text, for the next parse
	// to reuse (laneRequest.head).
	lastHead string
}

// start takes c into the lane: it waits in the set for its first request
// (or its next, if net/http served it before).
func (l *lane) start(c *parkConn) {
	l.mu.Lock()
	if l.shutting.Load() {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	c.lane.gen.Store(laneGens.Add(1))
	if !laneTable.store(c) {
		l.leave(c)
		if !l.handoff(c) {
			c.Close()
		}
		return
	}
	var e epollCtl
	l.rest(&e, c, syscall.EPOLL_CTL_ADD)
}

// rest puts c, which the caller holds busy, in the set until its next
// request or its timeout; from then on someone else may hold it.
func (l *lane) rest(e *epollCtl, c *parkConn, op int) {
	deadline := laneDeadline(l.waitLimit(c.lane.served))
	c.lane.state.Store(deadline)
	if err := e.arm(l.set, op, c); err != nil || l.shutting.Load() {
		// A shutdown that began meanwhile may have found c busy.
		if c.lane.state.CompareAndSwap(deadline, connClosed) {
			l.end(c)
		}
	}
}

// end closes c, which the caller holds (busy, or moved to connClosed
// itself), and takes it out.
func (l *lane) end(c *parkConn) {
	c.lane.state.Store(connClosed)
	c.Close()
	l.leave(c)
}

func (l *lane) leave(c *parkConn) {
	laneTable.remove(c)
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// serve serves the requests c has sent, which lio's caller holds busy,
// then puts it back in the set, closes it or hands it to net/http. The
// raw calls on c's descriptor are safe because nobody else closes a busy
// connection (close shuts it down instead).
func (l *lane) serve(lio *laneIO, c *parkConn) {
	lio.c = c // kept until lio serves another, or is released
	v := c.lane.visit
	if v == nil {
		v = &laneVisit{
			base: context.WithValue(context.WithValue(context.Background(),
				http.ServerContextKey, l.srv), http.LocalAddrContextKey, c.LocalAddr()),
			remote: c.RemoteAddr().String(),
		}
		c.lane.visit = v
	}
	buf := lio.buf
	n := 0
	for {
		if n == 0 {
			m, ready, err := rawio.Read(uintptr(c.fd), buf)
			if !ready {
				l.rest(&lio.ctl, c, syscall.EPOLL_CTL_MOD) // a stale event
				return
			}
			if err != nil {
				l.end(c)
				return
			}
			n = m
		}
		lr := laneRequests.Get().(*laneRequest)
		lr.head = v.lastHead
		req, used, verdict := l.readHead(lio, lr, &n)
		if verdict != laneOK {
			lr.release()
		}
		switch verdict {
		case laneMore: // the head never completed
			l.end(c)
			return
		case laneDecline:
			c.lane.served = true // back from net/http, it waits as a used one
			c.pending = append([]byte(nil), buf[:n]...)
			l.leaveForNetHTTP(lio, c)
			return
		}
		c.lane.served = true
		v.lastHead = lr.head
		keep, extra := l.serveRequest(lio, v, req, &lr.resp)
		lr.release()
		n = copy(buf, buf[used:n])
		if extra >= 0 {
			if n == len(buf) {
				l.end(c)
				return
			}
			buf[n] = byte(extra)
			n++
		}
		if !keep || l.shutting.Load() {
			l.end(c)
			return
		}
		if n == 0 {
			// Re-arming finds a next request already here as well as a
			// read would, and saves the read that finds none.
			l.rest(&lio.ctl, c, syscall.EPOLL_CTL_MOD)
			return
		}
	}
}

// leaveForNetHTTP takes c out of the lane and gives it to net/http.
func (l *lane) leaveForNetHTTP(lio *laneIO, c *parkConn) {
	lio.ctl.arm(l.set, syscall.EPOLL_CTL_DEL, c)
	c.lane.state.Store(connClosed)
	l.leave(c)
	if !l.handoff(c) {
		c.Close()
	}
}

// waitLimit is how long a connection may wait for a request's first byte:
// net/http's idle timeout, or its header timeout before the first request.
func (l *lane) waitLimit(served bool) time.Duration {
	if served {
		if l.lim.IdleTimeout > 0 {
			return l.lim.IdleTimeout
		}
		return l.lim.ReadTimeout
	}
	return l.headerLimit()
}

func (l *lane) headerLimit() time.Duration {
	if l.lim.ReadHeaderTimeout > 0 {
		return l.lim.ReadHeaderTimeout
	}
	return l.lim.ReadTimeout
}

// readHead parses the request at the start of lio.buf[:*n], reading more
// while its head is incomplete. A head that has not all arrived is waited
// for in Go's poller, within the header timeout, off the worker.
func (l *lane) readHead(lio *laneIO, lr *laneRequest, n *int) (*http.Request, int, laneParse) {
	buf := lio.buf
	waiting := false
	for {
		req, used, verdict := lr.parse(buf[:*n])
		if verdict != laneMore {
			return req, used, verdict
		}
		if *n == len(buf) {
			return nil, 0, laneDecline // a long head: net/http's to judge
		}
		m, ready, err := rawio.Read(uintptr(lio.c.fd), buf[*n:])
		if !ready {
			if !waiting {
				waiting = true
				lio.offWorker()
				var deadline time.Time
				if d := l.headerLimit(); d > 0 {
					deadline = time.Now().Add(d)
				}
				lio.c.TCPConn.SetReadDeadline(deadline)
			}
			m, err = lio.read(buf[*n:])
		}
		*n += m
		if m == 0 && err != nil {
			return nil, 0, laneMore
		}
	}
}

// serveRequest runs the handler for req and writes its answer. keep says
// whether the connection may carry another request; extra is a byte of
// the next request read while watching the connection, or -1.
func (l *lane) serveRequest(lio *laneIO, v *laneVisit, req *http.Request, w *laneResponse) (keep bool, extra int) {
	c := lio.c
	now := time.Now()
	ctx := laneCtxs.Get().(*laneCtx)
	ctx.base, ctx.conn, ctx.w = v.base, c, lio.w
	if l.lim.ReadTimeout > 0 {
		ctx.readDeadline = now.Add(l.lim.ReadTimeout)
	}
	*req = *req.WithContext(ctx)
	req.RemoteAddr = v.remote
	lio.writeBy, lio.deadlineSet = time.Time{}, false
	if l.lim.WriteTimeout > 0 {
		lio.writeBy = now.Add(l.lim.WriteTimeout)
	}
	w.start(lio, lio, req, &l.shutting)
	ok := l.call(w, req)
	if ok {
		keep = w.finish()
	}
	dead := ctx.finish()
	extra = ctx.extra
	ctx.recycle()
	return keep && !dead, extra
}

// call runs the handler; a panic ends the connection, as in net/http.
func (l *lane) call(w http.ResponseWriter, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				l.log.Error("http: panic serving "+req.RemoteAddr, "panic", err, "stack", string(buf))
			}
			ok = false
		}
	}()
	l.handler.ServeHTTP(w, req)
	return true
}

// beginShutdown stops new lane connections and closes the waiting ones;
// busy ones close after their current answer, which says so. (Ending a
// busy one would end its request's context as if the client had left.)
func (l *lane) beginShutdown() {
	l.mu.Lock()
	l.shutting.Store(true)
	idle := l.takeWaitingLocked()
	l.mu.Unlock()
	for _, c := range idle {
		l.end(c)
	}
}

// takeWaitingLocked moves the connections waiting in the set to
// connClosed, for the caller to end.
func (l *lane) takeWaitingLocked() []*parkConn {
	var idle []*parkConn
	for c := range l.conns {
		if s := c.lane.state.Load(); s > 0 && c.lane.state.CompareAndSwap(s, connClosed) {
			idle = append(idle, c)
		}
	}
	return idle
}

// wait waits for the lane's connections to finish until ctx ends, then
// closes what is left, and the set.
func (l *lane) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		l.closeSet()
		return nil
	case <-ctx.Done():
		l.close()
		return ctx.Err()
	}
}

// close closes every lane connection now, and the set.
func (l *lane) close() {
	l.shutting.Store(true)
	l.mu.Lock()
	idle := l.takeWaitingLocked()
	for c := range l.conns {
		if c.lane.state.Load() == connBusy {
			// Its server's reads and writes fail, and it ends c. A close
			// would wait for the raw calls' hold, or free the descriptor
			// under them.
			c.TCPConn.CloseRead()
			c.TCPConn.CloseWrite()
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		l.end(c)
	}
	l.closeSet()
}

// laneCtx is a lane request's context. Like net/http's, it ends when the
// client goes away, which takes a read on the connection while the handler
// runs. That watch costs a goroutine, a read that waits in the poller and
// two deadline changes, about 5 µs, so it starts only for a request that
// asked for Done and is still running watchAfter later: a kept file never
// asks, and most plugin answers are back by then. Its cancellation is a
// lazyctx.Cancel, so a plugin call's context under it (callCtx) costs a
// slot in a slice, not a second cancelable context and a map.
type laneCtx struct {
	lazyctx.Cancel
	base         context.Context
	conn         *parkConn
	readDeadline time.Time
	// w is the worker serving the request, if any: a request whose
	// context is awaited will wait, so it detaches.
	w *laneWorker

	mu       sync.Mutex
	slot     sweepSlot // starts the watch
	armed    bool      // slot was added
	finished bool
	watching chan struct{} // closed when the watch ends; nil if none
	// extra is a byte of the next request the watch read, or -1; dead:
	// the watch saw the client go.
	extra int
	dead  bool
}

// laneCtxs holds request contexts that nobody awaited, for reuse: a kept
// file's request never asks for Done, and the context was a third of
// the bytes such a request allocated.
var laneCtxs = sync.Pool{New: func() any { return newLaneCtx() }}

func newLaneCtx() *laneCtx { return &laneCtx{extra: -1, slot: sweepSlot{i: -1}} }

// recycle gives an ended context back to laneCtxs if nobody awaited it;
// one that was awaited stays ended for whoever holds it. Every handler of
// the front is synchronous, so nothing holds an unawaited one after it.
// One that adopted a plugin call's context was awaited: gRPC may still
// hold the call's context, and the watch armed for it may still run.
func (c *laneCtx) recycle() {
	if !c.Reuse() {
		return
	}
	c.base, c.conn, c.readDeadline, c.w = nil, nil, time.Time{}, nil
	c.armed, c.finished, c.watching, c.extra, c.dead = false, false, nil, -1, false
	laneCtxs.Put(c)
}

// watchAfter is how long a request runs before its connection is watched
// for the client leaving. It must be longer than a busy server's usual
// answer, queueing included (p50 about 5 ms at 64 connections on /time),
// or the watch runs anyway; a plugin call whose client left is then
// cancelled at most this much later than with net/http.
const watchAfter = 100 * time.Millisecond

func (c *laneCtx) Deadline() (time.Time, bool) { return c.base.Deadline() }

func (c *laneCtx) Done() <-chan struct{} {
	done, first := c.DoneFirst()
	if first {
		c.arm()
	}
	return done
}

// Adopt ties a plugin call's context (callCtx) to the request's, which
// awaits the request's end as a Done would: the watch starts.
func (c *laneCtx) Adopt(child *lazyctx.Cancel) {
	c.arm()
	c.Cancel.Adopt(child)
}

// arm starts the wait for the watch, once someone awaits the context,
// and takes the request off its worker: whoever awaits it will wait.
func (c *laneCtx) arm() {
	c.mu.Lock()
	if !c.finished && !c.armed {
		c.armed = true
		sweeps.add(&c.slot, time.Now().Add(watchAfter), c)
		if c.w != nil {
			c.w.detach()
		}
	}
	c.mu.Unlock()
}

func (c *laneCtx) Value(key any) any { return c.base.Value(key) }

func (c *laneCtx) expire() { go c.watch() }

// watch reads one byte: the client's next request (kept for it), or the
// end of the connection, which cancels the request.
func (c *laneCtx) watch() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.watching = make(chan struct{})
	defer close(c.watching)
	// Under the lock, so that finish's abort comes after.
	c.conn.TCPConn.SetReadDeadline(c.readDeadline)
	c.mu.Unlock()
	var b [1]byte
	n, err := c.conn.TCPConn.Read(b[:])
	if n == 1 {
		c.extra = int(b[0])
		return
	}
	c.mu.Lock()
	aborted := c.finished
	c.mu.Unlock()
	if aborted && errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	c.dead = true
	c.End(nil)
}

// finish ends the request's context after its answer and reports whether
// the client went away meanwhile.
func (c *laneCtx) finish() (dead bool) {
	c.mu.Lock()
	c.finished = true
	sweeps.remove(&c.slot)
	watching := c.watching
	c.mu.Unlock()
	if watching != nil {
		c.conn.TCPConn.SetReadDeadline(aLongTimeAgo)
		<-watching
	}
	c.End(nil)
	return c.dead
}

// Write and writeTwo write a lane connection's answers with a raw system
// call (internal/rawio says why). A write that fills the socket waits on
// the poller for the rest, off the worker (block). A write to a loopback
// peer takes 15-20 µs for a 28 KB answer; as an ordinary call, the
// processor's hand-off to another thread and back cost about as much CPU
// as the write itself on the JPEG.
func (lio *laneIO) Write(p []byte) (int, error) {
	err := lio.writeTwo(p, nil)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (lio *laneIO) writeTwo(a, b []byte) error {
	a, b, ready, err := rawio.Writev(uintptr(lio.c.fd), a, b)
	if err != nil || ready {
		return err
	}
	lio.awaitWritable()
	lio.a, lio.b, lio.err = a, b, nil
	err = lio.c.raw.Write(lio.writeFn)
	lio.a, lio.b = nil, nil
	if err != nil {
		return err
	}
	return lio.err
}

// ReadFrom sends a file body with sendfile, off the worker: a body too
// large to keep in memory fills the socket.
func (lio *laneIO) ReadFrom(src io.Reader) (int64, error) {
	lio.awaitWritable()
	return lio.c.TCPConn.ReadFrom(src)
}

// writeRaw is writeTwo's RawConn callback: false asks the poller to wait
// until the socket drains.
func (lio *laneIO) writeRaw(fd uintptr) bool {
	var ready bool
	lio.a, lio.b, ready, lio.err = rawio.Writev(fd, lio.a, lio.b)
	return ready
}

// read reads from the lane connection with a raw system call (rawio),
// inside RawConn.Read, which waits on the poller (and the read deadline)
// when nothing has arrived; only a detached goroutine waits so. With
// ordinary reads the monitor thread woke about 3,300 times a second under
// the JPEG load and used 8% of a core;
// with the lane's reads, writes and the kept file's stat all raw
// (filecache.go), a cached static request enters no system call the
// scheduler sees.
func (lio *laneIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	lio.a, lio.n, lio.err = p, 0, nil
	err := lio.c.raw.Read(lio.readFn)
	lio.a = nil
	if err != nil {
		return 0, err
	}
	return lio.n, lio.err
}

// readRaw is read's RawConn callback: false asks the poller to wait for
// data or the deadline.
func (lio *laneIO) readRaw(fd uintptr) bool {
	var ready bool
	lio.n, ready, lio.err = rawio.Read(fd, lio.a)
	return ready
}
