package lazyctx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type testCtx struct {
	Cancel
}

func (*testCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*testCtx) Value(any) any               { return nil }

func ended(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDoneIsMadeOnceAndClosedByEnd(t *testing.T) {
	c := new(testCtx)
	if c.Err() != nil {
		t.Fatal("a new context has ended")
	}
	ch, first := c.DoneFirst()
	if !first || ended(ch) {
		t.Fatalf("first Done: first %v, ended %v", first, ended(ch))
	}
	if again, first := c.DoneFirst(); first || again != ch {
		t.Fatal("a second Done made another channel")
	}
	if !c.End(nil) || c.End(errors.New("later")) {
		t.Fatal("End must count once")
	}
	if !ended(ch) || !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("after End: ended %v, err %v", ended(ch), c.Err())
	}

	unasked := new(testCtx)
	unasked.End(context.DeadlineExceeded)
	if ch, first := unasked.DoneFirst(); first || !ended(ch) || unasked.Err() != context.DeadlineExceeded {
		t.Fatal("Done after End must be closed at once")
	}
}

// Contexts derived from one end with it, through AfterFunc (no watching
// goroutine), and one cancelled first leaves nothing behind.
func TestDerivedContextsEndWithIt(t *testing.T) {
	c := new(testCtx)
	timeout, cancelTimeout := context.WithTimeout(c, time.Hour)
	defer cancelTimeout()
	early, cancelEarly := context.WithCancel(c)
	cancelEarly()
	if len(c.afters) != 2 || c.afters[1] != nil {
		t.Fatalf("derived contexts did not register through AfterFunc, or did not leave: %d", len(c.afters))
	}
	ran := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(ran) })
	stopped := false
	context.AfterFunc(c, func() { stopped = true })()
	c.End(nil)
	<-timeout.Done()
	<-ran
	if !errors.Is(timeout.Err(), context.Canceled) || !errors.Is(early.Err(), context.Canceled) || stop() || stopped {
		t.Fatalf("timeout %v, early %v, stopped func ran %v", timeout.Err(), early.Err(), stopped)
	}
	late := make(chan struct{})
	if context.AfterFunc(c, func() { close(late) })() {
		t.Fatal("stop after the end reported success")
	}
	<-late
}

func TestConcurrentUse(t *testing.T) {
	c := new(testCtx)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			d, cancel := context.WithCancel(c)
			defer cancel()
			<-c.Done()
			<-d.Done()
		})
	}
	wg.Go(func() { c.End(nil) })
	wg.Wait()
}

// Children tied, ending and untying while their parent ends: each ends,
// with the parent's error unless it ended first, and none stays tied.
func TestChildrenRaceTheirParent(t *testing.T) {
	for range 100 {
		parent := new(testCtx)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				child := new(testCtx)
				child.Under(parent)
				done := child.Done()
				if i%2 == 0 {
					child.End(context.DeadlineExceeded)
				}
				<-done
				if err := child.Err(); err != context.Canceled && err != context.DeadlineExceeded {
					t.Errorf("child ended with %v", err)
				}
			})
		}
		wg.Go(func() { parent.End(nil) })
		wg.Wait()
		for _, ch := range parent.children[:cap(parent.children)] {
			if ch != nil {
				t.Fatal("a child is still tied to its ended parent")
			}
		}
	}
}

// A context Under a parent ties itself to it only at its first Done,
// through Adopt when the parent is a Cancel (no channel or function of the
// parent's), and lets go when it ends first.
func TestUnderAParent(t *testing.T) {
	parent := new(testCtx)
	child := new(testCtx)
	child.Under(parent)
	if len(parent.children) != 0 {
		t.Fatal("tied before anyone waited")
	}
	done := child.Done()
	if len(parent.children) != 1 || parent.done != nil || len(parent.afters) != 0 {
		t.Fatalf("the first Done did not tie the child through Adopt alone: %d children, channel %v, %d functions",
			len(parent.children), parent.done != nil, len(parent.afters))
	}
	parent.End(context.DeadlineExceeded)
	<-done
	if child.Err() != context.DeadlineExceeded {
		t.Fatalf("child err %v", child.Err())
	}

	// Ended first, the child unties itself.
	parent, child = new(testCtx), new(testCtx)
	child.Under(parent)
	child.Done()
	child.End(nil)
	if parent.children[0] != nil {
		t.Fatal("an ended child is still tied to its parent")
	}
	// Under a parent that has ended, the first Done is closed at once.
	child = new(testCtx)
	child.Under(parent)
	parent.End(nil)
	if !ended(child.Done()) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatal("a first Done under an ended Cancel is open")
	}

	// Err sees the parent's end without a Done; a Done after it is closed.
	std, cancel := context.WithCancel(context.Background())
	child = new(testCtx)
	child.Under(std)
	cancel()
	if !errors.Is(child.Err(), context.Canceled) || !ended(child.Done()) {
		t.Fatal("the parent's end did not reach Err")
	}
	child = new(testCtx)
	child.Under(std)
	if !ended(child.Done()) {
		t.Fatal("a first Done under an ended parent is open")
	}
}

// Only an ended context that nobody awaited is made live again: a Done
// channel handed out or a function registered must see the end for good.
func TestReuseOnlyWhatNobodyAwaited(t *testing.T) {
	c := new(testCtx)
	if c.Reuse() {
		t.Fatal("a live context was reused")
	}
	c.End(nil)
	if !c.Reuse() || c.Err() != nil {
		t.Fatalf("an ended, unawaited context was not made live: err %v", c.Err())
	}
	if ch, first := c.DoneFirst(); !first || ended(ch) {
		t.Fatal("a reused context must be live, with a channel of its own")
	}

	awaited := new(testCtx)
	ch := awaited.Done()
	awaited.End(nil)
	if awaited.Reuse() || !ended(ch) || awaited.Err() == nil {
		t.Fatal("a context whose Done was handed out was reused")
	}

	registered := new(testCtx)
	registered.AfterFunc(func() {})
	registered.End(nil)
	if registered.Reuse() || registered.Err() == nil {
		t.Fatal("a context with an AfterFunc was reused")
	}

	// A registration stopped or untied before the end still counts: its
	// holder may still ask (a child's Deadline and Value reach the
	// parent), and its owner may have started what ends it.
	stopped := new(testCtx)
	stopped.AfterFunc(func() {})()
	stopped.End(nil)
	if stopped.Reuse() {
		t.Fatal("a context whose AfterFunc was stopped was reused")
	}
	for _, childFirst := range []bool{false, true} {
		parent, child := new(testCtx), new(testCtx)
		child.Under(parent)
		child.Done()
		if childFirst {
			child.End(nil)
		}
		parent.End(nil)
		if parent.Reuse() {
			t.Fatalf("a context that adopted a child was reused (child ended first: %v)", childFirst)
		}
	}

	derived := new(testCtx)
	_, cancel := context.WithCancel(derived)
	defer cancel()
	derived.End(nil)
	if derived.Reuse() {
		t.Fatal("a context with a derived context was reused")
	}

	under := new(testCtx)
	under.Under(context.Background())
	under.End(nil)
	if under.Reuse() {
		t.Fatal("a context under a parent was reused")
	}
}
