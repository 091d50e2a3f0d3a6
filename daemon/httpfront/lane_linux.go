//go:build linux

package httpfront

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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
// comes back to the lane.
//
// The lane is Linux-only, as parking is: it is the same connection type,
// parked and woken the same way.

// laneBufSize is the largest request head the lane reads; a longer one
// goes to net/http (which allows MaxHeaderBytes).
const laneBufSize = 4096

// laneIO is a lane visit's read buffer and the state of its raw reads
// and writes. RawConn.Read and Write take a callback, and a closure over
// a call's arguments escapes to the heap: four allocations a request. So
// the callbacks are made once per laneIO and take their arguments and
// results through it; a visit has one goroutine, so one call at a time.
type laneIO struct {
	c   *parkConn
	buf []byte
	// a, b: what the call reads into (a) or writes (a, then b); n, err:
	// what it read and how it failed.
	a, b            []byte
	n               int
	err             error
	readFn, writeFn func(fd uintptr) bool
}

var laneIOs = sync.Pool{New: func() any {
	lio := &laneIO{buf: make([]byte, laneBufSize)}
	lio.readFn, lio.writeFn = lio.readRaw, lio.writeRaw
	return lio
}}

// newLaneIO takes a laneIO for a visit to c; release gives it back.
func newLaneIO(c *parkConn) *laneIO {
	lio := laneIOs.Get().(*laneIO)
	lio.c = c
	return lio
}

func (lio *laneIO) release() {
	lio.c, lio.a, lio.b, lio.err = nil, nil, nil, nil
	laneIOs.Put(lio)
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
	park    func(*parkConn) bool

	shutting atomic.Bool
	mu       sync.Mutex
	conns    map[*parkConn]struct{}
	wg       sync.WaitGroup
}

func newLane(srv *http.Server, handler http.Handler, lim Limits, log *slog.Logger) *lane {
	return &lane{handler: handler, srv: srv, lim: lim, log: log, conns: make(map[*parkConn]struct{})}
}

// laneState is what the lane keeps of a connection between its visits:
// little, as a parked connection should cost little.
type laneState struct {
	// served: the connection has had a request (a new one waits for its
	// first under read_header_timeout, a used one under idle_timeout).
	served bool
	// waiting: the lane waits for the connection's next request, so a
	// shutdown may close it.
	waiting atomic.Bool
}

// laneVisit is what the lane needs of a connection while it serves it,
// made again at each visit rather than kept while the connection is
// parked.
type laneVisit struct {
	base   context.Context // the requests' contexts derive from it
	remote string
	// lastHead is the previous request's head text, for the next parse
	// to reuse (laneRequest.head).
	lastHead string
}

// start serves c in the lane, on a goroutine of its own.
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
	go l.serve(c)
}

func (l *lane) leave(c *parkConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// serve reads and answers requests on c until it closes, parks or goes to
// net/http.
func (l *lane) serve(c *parkConn) {
	defer l.leave(c)
	v := laneVisit{
		base: context.WithValue(context.WithValue(context.Background(),
			http.ServerContextKey, l.srv), http.LocalAddrContextKey, c.LocalAddr()),
		remote: c.RemoteAddr().String(),
	}
	lio := newLaneIO(c)
	defer lio.release()
	buf := lio.buf
	n := 0
	for {
		if n == 0 {
			m, next := l.await(lio)
			switch next {
			case awaitPark:
				if !l.park(c) {
					c.Close()
				}
				return
			case awaitClose:
				c.Close()
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
			c.Close()
			return
		case laneDecline:
			c.lane.served = true // back from net/http, it waits as a used one
			c.pending = append([]byte(nil), buf[:n]...)
			if !l.handoff(c) {
				c.Close()
			}
			return
		}
		c.lane.served = true
		v.lastHead = lr.head
		keep, extra := l.serveRequest(lio, &v, req, &lr.resp)
		lr.release()
		n = copy(buf, buf[used:n])
		if extra >= 0 {
			if n == len(buf) {
				c.Close()
				return
			}
			buf[n] = byte(extra)
			n++
		}
		if !keep || l.shutting.Load() {
			c.Close()
			return
		}
	}
}

type awaitNext int

const (
	awaitRead awaitNext = iota
	awaitPark
	awaitClose
)

// await waits for the first bytes of the next request: up to parkAfter,
// after which the connection is parked, and never past its idle (or, for a
// new connection, read_header) timeout.
func (l *lane) await(lio *laneIO) (int, awaitNext) {
	c := lio.c
	c.lane.waiting.Store(true)
	defer c.lane.waiting.Store(false)
	if l.shutting.Load() {
		return 0, awaitClose
	}
	now := time.Now()
	var limit time.Time
	if d := l.waitLimit(c.lane.served); d > 0 {
		limit = now.Add(d)
	}
	wait := now.Add(parkAfter)
	if !limit.IsZero() && limit.Before(wait) {
		wait = limit
	}
	c.TCPConn.SetReadDeadline(wait)
	m, err := lio.read(lio.buf)
	if m > 0 {
		return m, awaitRead
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || l.shutting.Load() || wait.Equal(limit) {
		return 0, awaitClose
	}
	c.mu.Lock()
	c.deadline = limit // the parker closes it then
	c.mu.Unlock()
	return 0, awaitPark
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
// while its head is incomplete, within the header timeout.
func (l *lane) readHead(lio *laneIO, lr *laneRequest, n *int) (*http.Request, int, laneParse) {
	buf := lio.buf
	var deadline time.Time
	for {
		req, used, verdict := lr.parse(buf[:*n])
		if verdict != laneMore {
			return req, used, verdict
		}
		if *n == len(buf) {
			return nil, 0, laneDecline // a long head: net/http's to judge
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(l.headerLimit())
			lio.c.TCPConn.SetReadDeadline(deadline)
		}
		m, err := lio.read(buf[*n:])
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
	ctx.base, ctx.conn = v.base, c
	if l.lim.ReadTimeout > 0 {
		ctx.readDeadline = now.Add(l.lim.ReadTimeout)
	}
	*req = *req.WithContext(ctx)
	req.RemoteAddr = v.remote
	if l.lim.WriteTimeout > 0 {
		c.TCPConn.SetWriteDeadline(now.Add(l.lim.WriteTimeout))
	}
	w.start(lio, c.TCPConn, req, &l.shutting)
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

// beginShutdown stops new lane connections and wakes idle ones to close;
// busy ones close after their current answer, which says so. (Waking a
// busy one would end its request's context as if the client had left.)
func (l *lane) beginShutdown() {
	l.mu.Lock()
	l.shutting.Store(true)
	for c := range l.conns {
		if c.lane.waiting.Load() {
			c.TCPConn.SetReadDeadline(aLongTimeAgo)
		}
	}
	l.mu.Unlock()
}

// wait waits for the lane's connections to finish until ctx ends, then
// closes what is left.
func (l *lane) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.close()
		return ctx.Err()
	}
}

// close closes every lane connection now.
func (l *lane) close() {
	l.shutting.Store(true)
	l.mu.Lock()
	for c := range l.conns {
		c.TCPConn.Close()
	}
	l.mu.Unlock()
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
	c.base, c.conn, c.readDeadline = nil, nil, time.Time{}
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

// arm starts the wait for the watch, once someone awaits the context.
func (c *laneCtx) arm() {
	c.mu.Lock()
	if !c.finished && !c.armed {
		c.armed = true
		sweeps.add(&c.slot, time.Now().Add(watchAfter), c)
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
// call (internal/rawio says why), waiting on the poller when the socket
// is full. A write to a loopback peer takes 15-20 µs for a 28 KB answer;
// as an ordinary call, the processor's hand-off to another thread and
// back cost about as much CPU as the write itself on the JPEG.
func (lio *laneIO) Write(p []byte) (int, error) {
	err := lio.writeTwo(p, nil)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (lio *laneIO) writeTwo(a, b []byte) error {
	lio.a, lio.b, lio.err = a, b, nil
	err := lio.c.raw.Write(lio.writeFn)
	lio.a, lio.b = nil, nil
	if err != nil {
		return err
	}
	return lio.err
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
// when nothing has arrived. With ordinary reads the monitor thread woke
// about 3,300 times a second under the JPEG load and used 8% of a core;
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
