package httpfront

import (
	"context"
	"sync"
	"time"

	"github.com/socketd/socketd/internal/lazyctx"
)

// Deadlines without runtime timers.
//
// Every plugin request had two runtime timers: its route's timeout
// (context.WithTimeout) and the lane's client watch (watchAfter). Each
// went into a processor's timer heap and out again a few milliseconds
// later, and one due sooner than the network poller's sleep woke the
// poller to say so. Neither needs a timer's precision: a 504 or a watch
// that comes a few milliseconds late is as good. So they wait in a
// sweep: one goroutine, running only while something waits, looks every
// sweepEvery for what is due. On /time the core spends 4-5% less CPU
// than with the timers (6 alternating pairs).

// sweepEvery is how late a sweep may be.
const sweepEvery = 10 * time.Millisecond

// expirer is what a sweep ends when its time comes.
type expirer interface{ expire() }

// sweepSlot is what a waiting expirer holds of its place in the sweep.
type sweepSlot struct {
	at   time.Time
	what expirer
	i    int // in sweeper.waiting; -1 once out
}

type sweeper struct {
	mu      sync.Mutex
	waiting []*sweepSlot
	running bool
}

// sweeps holds the core's deadlines.
var sweeps sweeper

// add makes s wait until at, when what.expire runs in the sweep's
// goroutine (so it must not block).
func (w *sweeper) add(s *sweepSlot, at time.Time, what expirer) {
	s.at, s.what = at, what
	w.mu.Lock()
	s.i = len(w.waiting)
	w.waiting = append(w.waiting, s)
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
}

// remove takes s out unless it expired already. A slot that never waited
// must have i == -1.
func (w *sweeper) remove(s *sweepSlot) {
	w.mu.Lock()
	if s.i >= 0 {
		w.drop(s)
	}
	w.mu.Unlock()
}

func (w *sweeper) drop(s *sweepSlot) {
	last := w.waiting[len(w.waiting)-1]
	w.waiting[s.i], last.i = last, s.i
	w.waiting[len(w.waiting)-1] = nil
	w.waiting = w.waiting[:len(w.waiting)-1]
	s.i = -1
}

func (w *sweeper) run() {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	var due []expirer
	for now := range tick.C {
		w.mu.Lock()
		if len(w.waiting) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		for i := 0; i < len(w.waiting); {
			s := w.waiting[i]
			if s.at.After(now) {
				i++
				continue
			}
			due = append(due, s.what)
			w.drop(s) // the last one moved to i
		}
		w.mu.Unlock()
		for i, what := range due {
			what.expire()
			due[i] = nil
		}
		due = due[:0]
	}
}

// callCtx is a plugin call's context: the request's, ended with
// context.DeadlineExceeded at the route's timeout, as context.WithTimeout
// would, but through the sweep and a lazyctx.Cancel: nothing is set up
// until someone waits on it.
type callCtx struct {
	lazyctx.Cancel
	parent   context.Context
	deadline time.Time
	slot     sweepSlot
}

// withTimeout is context.WithTimeout for a plugin call. Its cancel must be
// called once the call is over (a method, not a returned func: a method
// value would cost an allocation per request).
func withTimeout(parent context.Context, timeout time.Duration) *callCtx {
	c := &callCtx{parent: parent, deadline: time.Now().Add(timeout), slot: sweepSlot{i: -1}}
	c.Under(parent)
	return c
}

func (c *callCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} {
	done, first := c.DoneFirst()
	if first {
		sweeps.add(&c.slot, c.deadline, c)
		if c.Cancel.Err() != nil {
			// Ended meanwhile: its cancel may have found nothing to remove.
			sweeps.remove(&c.slot)
		}
	}
	return done
}

func (c *callCtx) Err() error {
	if err := c.Cancel.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		c.End(context.DeadlineExceeded)
	}
	return c.Cancel.Err()
}

func (c *callCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callCtx) expire() { c.End(context.DeadlineExceeded) }

// cancel ends the call and gives back its place in the sweep (End lets
// go of the parent).
func (c *callCtx) cancel() {
	c.End(context.Canceled)
	sweeps.remove(&c.slot)
}
