//go:build linux

package httpfront

import (
	"errors"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// How lane connections wait.
//
// A goroutine per connection waits in Go's poller; when its next request
// arrives, the poller queues the goroutine on some processor, and it runs
// when that processor gets to it. On a machine the server shares with its
// clients, the kernel preempts the thread holding a processor for a whole
// tick (4 ms at HZ=250), and every goroutine queued there waits with it:
// Go's scheduler asks the poller for new work before it steals queued
// work, so under load nobody takes them. That made the lane's p99 5 ms
// where nginx has 1-4 ms (bench/README.md, "The tail is the shape of the
// waiting").
//
// So lane connections wait in an epoll set of the lane's own, each armed
// for one event (EPOLLONESHOT), and one worker per processor takes one
// ready connection at a time and serves what it sent. A worker the kernel
// preempts holds up only the connection it took; the others stay in the
// kernel's ready list for the next worker that asks. Between requests a
// connection has no goroutine and no buffer, so it is parked from its
// first idle moment, and its idle and header timeouts are kept by the
// set's monitor rather than by deadlines (whose timers alone moved the
// tail).
//
// A worker must wait for nothing but the set. Where a request would make
// it wait, the worker detaches: a new worker takes its place, and the
// goroutine it ran on finishes the connection's requests as an ordinary
// one, gives the connection back to the set and ends. A request detaches
// when its context is awaited (a plugin call, which watches its client),
// when its answer fills the socket, and when its head arrives in pieces;
// one that holds its worker for a monitor tick anyway (a handler that
// sleeps) is detached by the monitor.

// Connection states (laneState.state): busy while a worker or a detached
// goroutine serves it, closed once it left, and otherwise waiting in the
// set until a deadline on laneClock (idleForever if none).
const (
	connBusy    int64 = 0
	connClosed  int64 = -1
	idleForever int64 = math.MaxInt64
)

// laneEpoch starts laneClock.
var laneEpoch = time.Now()

// laneClock is monotonic nanoseconds since laneEpoch: positive, so a
// deadline is never taken for busy or closed.
func laneClock() int64 { return int64(time.Since(laneEpoch)) + 1 }

// laneDeadline is the state of a connection that may wait d (0: no limit).
func laneDeadline(d time.Duration) int64 {
	if d <= 0 {
		return idleForever
	}
	return laneClock() + int64(d)
}

// stuckTick is how often the monitor looks at busy workers: one busy
// with the same connection at two looks in a row is detached. A kept
// file's answer takes 10 µs, so only a handler that waits without asking
// its context is caught.
const stuckTick = 5 * time.Millisecond

// yieldEvery is how many connections a worker serves before it lets the
// goroutines queued behind it run. Under load a worker always finds a
// ready connection, so it never parks, and what its requests woke (the
// access log's writer, the plugin calls' readers) and its processor's
// timers would wait for the scheduler's 10 ms preemption: the log's
// buffer outgrew its 64 KB and was reallocated over and over, 3 times the
// bytes a request allocated. 16 kept files' answers are about 160 µs.
const yieldEvery = 16

// laneEvents is what a waiting connection is armed for: its next bytes,
// or its end.
const laneEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// laneSet is a lane's epoll set, its workers and its monitor.
type laneSet struct {
	l *lane
	// file is the set, in Go's poller: a worker that finds nothing ready
	// waits there, without holding a processor. Every use goes through
	// ep, its RawConn, so the descriptor is never closed under a call.
	file *os.File
	ep   syscall.RawConn

	slots []atomic.Pointer[laneWorker]
	// spares are detached goroutines that finished their connection,
	// waiting to take a detached worker's place: a new goroutine's stack
	// grows again through a plugin call's depth, which cost a /time
	// request a microsecond. used: a detach took one since the last
	// sweep (otherwise the sweep lets them go).
	spares chan *laneWorker
	used   atomic.Bool
	// dozing: the monitor sleeps until the next sweep; a worker that
	// takes a connection wakes it through kick.
	dozing atomic.Bool
	kick   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// openSet makes l's set and starts a worker per processor and the
// monitor.
func (l *lane) openSet() error {
	l.mu.Lock() // against a shutdown that came before Serve got here
	defer l.mu.Unlock()
	if l.shutting.Load() {
		return errors.New("the server is shutting down")
	}
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile puts the set in Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "lane-epoll")
	ep, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	s := &laneSet{l: l, file: f, ep: ep, slots: make([]atomic.Pointer[laneWorker], runtime.GOMAXPROCS(0)),
		kick: make(chan struct{}, 1), done: make(chan struct{}), spares: make(chan *laneWorker, maxSpares)}
	l.set = s
	liveLanes.Store(l, struct{}{})
	for i := range s.slots {
		s.startWorker(i, nil)
	}
	go s.monitor()
	return nil
}

// closeSet stops the workers and the monitor, if they started; a
// connection still served finds the set closed when it would wait again,
// and closes.
func (l *lane) closeSet() {
	l.mu.Lock()
	s := l.set
	l.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (s *laneSet) close() {
	s.once.Do(func() {
		liveLanes.Delete(s.l)
		close(s.done)
		s.file.Close()
	})
}

// maxSpares bounds the goroutines kept to replace detached workers: at
// 64 connections to a plugin route, about as many requests wait for
// their plugin at once.
const maxSpares = 128

// laneWorker takes ready connections from the set, one at a time.
type laneWorker struct {
	set  *laneSet
	slot int
	lio  *laneIO
	// busy: serving a connection, the seq-th it took (for the monitor).
	busy     atomic.Bool
	seq      atomic.Uint32
	detached atomic.Bool
	// resume gives a spare its slot (-1: end).
	resume chan int

	ev     [1]syscall.EpollEvent
	got    int // events the last look found; -1: the set failed
	peekFn func(fd uintptr)
	lookFn func(fd uintptr) bool
}

// startWorker puts a worker in slot: spare if there is one, else a new
// goroutine.
func (s *laneSet) startWorker(slot int, spare *laneWorker) {
	w := spare
	if w == nil {
		w = &laneWorker{set: s, lio: newLaneIO(nil), resume: make(chan int, 1)}
		w.lio.l, w.lio.w = s.l, w
		w.peekFn = func(fd uintptr) { w.look(fd) }
		w.lookFn = w.look
	}
	w.slot = slot
	w.detached.Store(false)
	s.slots[slot].Store(w)
	if spare != nil {
		spare.resume <- slot
		return
	}
	go w.loop()
}

// detach gives w's place to another worker: w's goroutine is about to
// wait for something other than the set. It may be called from any
// goroutine, more than once.
func (w *laneWorker) detach() {
	if w.detached.CompareAndSwap(false, true) {
		var spare *laneWorker
		select {
		case spare = <-w.set.spares:
			w.set.used.Store(true)
		default:
		}
		w.set.startWorker(w.slot, spare)
	}
}

// loop works until the set closes; detached, it waits as a spare until
// another worker detaches.
func (w *laneWorker) loop() {
	defer w.lio.release()
	for w.run() {
		select {
		case w.set.spares <- w:
		default:
			return // enough spares
		}
		select {
		case slot := <-w.resume:
			if slot < 0 {
				return
			}
		case <-w.set.done:
			return
		}
	}
}

// run takes and serves connections until w is detached (true) or the set
// closes (false).
func (w *laneWorker) run() bool {
	served := 0
	for {
		c, ok := w.next()
		if !ok {
			return false
		}
		if c == nil {
			continue
		}
		w.seq.Add(1)
		w.busy.Store(true)
		if w.set.dozing.Load() && w.set.dozing.CompareAndSwap(true, false) {
			select {
			case w.set.kick <- struct{}{}:
			default:
			}
		}
		w.set.l.serve(w.lio, c)
		w.busy.Store(false)
		if w.detached.Load() {
			return true
		}
		if served++; served%yieldEvery == 0 {
			runtime.Gosched()
		}
	}
}

// trimSpares lets the spares go if no detach took one since the last
// call.
func (s *laneSet) trimSpares() {
	if s.used.Swap(false) {
		return
	}
	for {
		select {
		case w := <-s.spares:
			w.resume <- -1
		default:
			return
		}
	}
}

// next takes a ready connection: nil if the event was stale, and false
// once the set is closed. It looks without waiting first, outside the
// poller's lock on the set, which the waiting worker holds.
func (w *laneWorker) next() (*parkConn, bool) {
	w.got = 0
	if w.set.ep.Control(w.peekFn) != nil {
		return nil, false
	}
	if w.got == 0 && w.set.ep.Read(w.lookFn) != nil {
		return nil, false
	}
	if w.got < 0 {
		return nil, false
	}
	if w.got == 0 {
		return nil, true
	}
	c := laneTable.load(w.ev[0].Fd)
	if c == nil || c.lane.gen.Load() != uint32(w.ev[0].Pad) {
		return nil, true // a connection that left since
	}
	s := c.lane.state.Load()
	if s <= 0 || !c.lane.state.CompareAndSwap(s, connBusy) {
		return nil, true // closed by a sweep or a shutdown
	}
	return c, true
}

// look takes one ready event from the set without waiting; false asks
// the poller to wait until the set has one.
func (w *laneWorker) look(fd uintptr) bool {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, fd, uintptr(unsafe.Pointer(&w.ev[0])), 1, 0, 0, 0)
	switch e {
	case 0:
		w.got = int(r)
		return r > 0
	case syscall.EINTR:
		return false
	default:
		w.got = -1
		return true
	}
}

// epollCtl adds, re-arms or removes a connection in the set. Its
// callbacks are made once per laneIO, as a closure per call would be an
// allocation per request.
type epollCtl struct {
	set     *laneSet
	op      int
	ev      syscall.EpollEvent
	errno   syscall.Errno
	err     error
	onConn  func(fd uintptr)
	onEpoll func(epfd uintptr)
}

// arm applies op (EPOLL_CTL_ADD, _MOD or _DEL) to c in the set. It holds
// c's descriptor meanwhile: a connection put back to wait may be closed
// by a sweep at once, and its descriptor must not be another's by then.
func (e *epollCtl) arm(set *laneSet, op int, c *parkConn) error {
	if e.onConn == nil {
		e.onConn, e.onEpoll = e.held, e.ctl
	}
	e.set, e.op, e.err = set, op, nil
	e.ev = syscall.EpollEvent{Events: laneEvents, Fd: c.fd, Pad: int32(c.lane.gen.Load())}
	if err := c.raw.Control(e.onConn); err != nil {
		return err
	}
	return e.err
}

func (e *epollCtl) held(uintptr) {
	e.errno = 0
	if err := e.set.ep.Control(e.onEpoll); err != nil {
		e.err = err
	} else if e.errno != 0 {
		e.err = os.NewSyscallError("epoll_ctl", e.errno)
	}
}

func (e *epollCtl) ctl(epfd uintptr) {
	_, _, e.errno = syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, epfd, uintptr(e.op), uintptr(e.ev.Fd), uintptr(unsafe.Pointer(&e.ev)), 0, 0)
}

// monitor detaches workers a request holds, and closes connections past
// their idle or header timeout. It ticks every stuckTick while a worker
// is busy, and sleeps until the next sweep while none is.
func (s *laneSet) monitor() {
	seen := make([]workerLook, len(s.slots))
	every := s.l.sweepEvery()
	nextSweep := time.Now().Add(every)
	timer := time.NewTimer(stuckTick)
	defer timer.Stop()
	for {
		busy := s.lookAtWorkers(seen)
		if !busy {
			s.dozing.Store(true)
			if busy = s.lookAtWorkers(seen); busy {
				s.dozing.Store(false)
			}
		}
		wait := stuckTick
		if !busy {
			wait = max(time.Until(nextSweep), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-s.done:
			return
		case <-s.kick:
			timer.Stop()
		case <-timer.C:
		}
		s.dozing.Store(false)
		if now := time.Now(); !now.Before(nextSweep) {
			s.l.sweepIdle()
			s.trimSpares()
			nextSweep = now.Add(every)
		}
	}
}

// workerLook is what the monitor saw of a busy worker.
type workerLook struct {
	w   *laneWorker
	seq uint32
}

// lookAtWorkers detaches a worker busy with the same connection as at
// the last look, and reports whether any is busy.
func (s *laneSet) lookAtWorkers(seen []workerLook) bool {
	busy := false
	for i := range s.slots {
		w := s.slots[i].Load()
		if w == nil {
			continue
		}
		if !w.busy.Load() {
			seen[i].w = nil
			continue
		}
		busy = true
		seq := w.seq.Load()
		if seen[i].w == w && seen[i].seq == seq {
			w.detach()
			seen[i].w = nil
			continue
		}
		seen[i].w, seen[i].seq = w, seq
	}
	return busy
}

// sweepEvery is how often the monitor closes connections past their
// timeouts: a quarter of the shortest, between 10 ms and a second.
func (l *lane) sweepEvery() time.Duration {
	every := time.Second
	for _, d := range []time.Duration{l.headerLimit(), l.waitLimit(true)} {
		if d > 0 {
			every = min(every, d/4)
		}
	}
	return max(every, 10*time.Millisecond)
}

// sweepIdle closes the waiting connections whose time is up.
func (l *lane) sweepIdle() {
	now := laneClock()
	var expired []*parkConn
	l.mu.Lock()
	for c := range l.conns {
		if s := c.lane.state.Load(); s > 0 && s <= now && c.lane.state.CompareAndSwap(s, connClosed) {
			expired = append(expired, c)
		}
	}
	l.mu.Unlock()
	for _, c := range expired {
		l.end(c)
	}
}

// liveLanes holds the lanes with an open set, for ParkedConnections.
var liveLanes sync.Map // *lane -> struct{}

// waitingInLanes counts the lane connections waiting for a request.
func waitingInLanes() int64 {
	var n int64
	liveLanes.Range(func(k, _ any) bool {
		l := k.(*lane)
		l.mu.Lock()
		for c := range l.conns {
			if c.lane.state.Load() > 0 {
				n++
			}
		}
		l.mu.Unlock()
		return true
	})
	return n
}

// laneTable finds a connection by its descriptor. An event's 8 bytes of
// data cannot hold a Go pointer, so they hold the descriptor and the
// connection's registration number (laneState.gen), which tells a stale
// event, of a connection that left, from one of the connection that has
// the descriptor now.
var laneTable connTable

const (
	tableChunkBits = 10
	tableChunk     = 1 << tableChunkBits
	// maxLaneFD bounds the descriptors the lane takes; a connection with
	// a larger one goes to net/http.
	maxLaneFD = tableChunk * tableChunk
)

type connTable struct {
	mu     sync.Mutex // held to add a chunk
	chunks [tableChunk]atomic.Pointer[[tableChunk]atomic.Pointer[parkConn]]
}

func (t *connTable) load(fd int32) *parkConn {
	if fd < 0 || fd >= maxLaneFD {
		return nil
	}
	chunk := t.chunks[fd>>tableChunkBits].Load()
	if chunk == nil {
		return nil
	}
	return chunk[fd&(tableChunk-1)].Load()
}

// store enters c under its descriptor; false if the descriptor is too
// large.
func (t *connTable) store(c *parkConn) bool {
	if c.fd < 0 || c.fd >= maxLaneFD {
		return false
	}
	i := c.fd >> tableChunkBits
	chunk := t.chunks[i].Load()
	if chunk == nil {
		t.mu.Lock()
		if chunk = t.chunks[i].Load(); chunk == nil {
			chunk = new([tableChunk]atomic.Pointer[parkConn])
			t.chunks[i].Store(chunk)
		}
		t.mu.Unlock()
	}
	chunk[c.fd&(tableChunk-1)].Store(c)
	return true
}

// remove takes c out, unless its descriptor has another connection now.
func (t *connTable) remove(c *parkConn) {
	if c.fd < 0 || c.fd >= maxLaneFD {
		return
	}
	if chunk := t.chunks[c.fd>>tableChunkBits].Load(); chunk != nil {
		chunk[c.fd&(tableChunk-1)].CompareAndSwap(c, nil)
	}
}

// laneGens numbers the registrations of connections in lanes' sets.
var laneGens atomic.Uint32
