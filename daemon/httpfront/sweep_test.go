package httpfront

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type expiry struct {
	mu      sync.Mutex
	expired bool
	at      chan struct{}
}

func newExpiry() *expiry { return &expiry{at: make(chan struct{})} }

func (e *expiry) expire() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.expired {
		panic("expired twice")
	}
	e.expired = true
	close(e.at)
}

func (e *expiry) done() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.expired
}

// TestSweepExpiresWhatIsDue adds slots due in the past, soon and much
// later, and one taken out: only the first two expire, each once, and
// the sweep's goroutine ends once nothing waits.
func TestSweepExpiresWhatIsDue(t *testing.T) {
	var w sweeper
	now := time.Now()
	past, soon, later, removed := newExpiry(), newExpiry(), newExpiry(), newExpiry()
	slots := [4]sweepSlot{}
	w.add(&slots[0], now.Add(-time.Second), past)
	w.add(&slots[1], now.Add(3*sweepEvery), soon)
	w.add(&slots[2], now.Add(time.Hour), later)
	w.add(&slots[3], now.Add(sweepEvery), removed)
	w.remove(&slots[3])
	<-past.at
	<-soon.at
	if time.Since(now) < 3*sweepEvery {
		t.Error("a slot expired before its time")
	}
	time.Sleep(2 * sweepEvery)
	if later.done() || removed.done() {
		t.Fatalf("expired: later %v, removed %v", later.done(), removed.done())
	}
	w.remove(&slots[2])
	w.remove(&slots[2]) // twice is harmless
	for {
		w.mu.Lock()
		running := w.running
		w.mu.Unlock()
		if !running {
			break
		}
		time.Sleep(sweepEvery)
	}
	if later.done() || len(w.waiting) != 0 {
		t.Fatal("a removed slot expired, or one is left")
	}
}

func TestCallCtxEndsAtItsDeadline(t *testing.T) {
	ctx := withTimeout(context.Background(), 2*sweepEvery)
	defer ctx.cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 2*sweepEvery {
		t.Fatalf("deadline %v %v", d, ok)
	}
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", ctx.Err())
	}

	// Err alone tells the deadline passed, before anyone waited.
	unasked := withTimeout(context.Background(), time.Nanosecond)
	defer unasked.cancel()
	time.Sleep(time.Millisecond)
	if !errors.Is(unasked.Err(), context.DeadlineExceeded) {
		t.Fatalf("err without Done: %v", unasked.Err())
	}
}

func TestCallCtxEndsWithItsParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx := withTimeout(parent, time.Hour)
	defer ctx.cancel()
	derived, cancelDerived := context.WithCancel(ctx)
	defer cancelDerived()
	cancelParent()
	<-ctx.Done()
	<-derived.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("err %v", ctx.Err())
	}
	early, cancelEarly := context.WithDeadline(context.Background(), time.Now().Add(time.Minute))
	defer cancelEarly()
	if d, _ := (&callCtx{parent: early, deadline: time.Now().Add(time.Hour)}).Deadline(); d.After(time.Now().Add(time.Minute)) {
		t.Fatal("Deadline is not the parent's earlier one")
	}
}

// tieCounter is a parent that counts the contexts tied to it and how many
// are still tied.
type tieCounter struct {
	context.Context
	mu          sync.Mutex
	ties, still int
}

func (p *tieCounter) AfterFunc(func()) func() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ties++
	p.still++
	return func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.still--
		return true
	}
}

// A call's cancel takes it out of the sweep and from under its parent; a
// Done after the cancel adds nothing.
func TestCallCtxCancelLeavesNothing(t *testing.T) {
	parentCtx, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	parent := &tieCounter{Context: parentCtx}
	ctx := withTimeout(parent, time.Hour)
	ctx.Done()
	if ctx.slot.i < 0 || parent.ties != 1 {
		t.Fatalf("waiting on the call did not put it in the sweep (slot %d) and under its parent (%d ties)", ctx.slot.i, parent.ties)
	}
	ctx.cancel()
	if ctx.slot.i >= 0 || parent.still != 0 || !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("after cancel: slot %d, %d still tied, err %v", ctx.slot.i, parent.still, ctx.Err())
	}
	late := withTimeout(parent, time.Hour)
	late.cancel()
	<-late.Done()
	if late.slot.i >= 0 || parent.ties != 1 {
		t.Fatal("a Done after the cancel joined the sweep, or tied the call to its parent")
	}
}
