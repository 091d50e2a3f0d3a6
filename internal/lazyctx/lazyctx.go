// Package lazyctx is the cancellation half of a request's context, made
// to cost nothing until someone asks for it.
//
// A request context built with context.WithCancel costs a context, a
// channel and, under a cancelable parent, a place in the parent's map of
// children, taken and given back under the parent's lock, on every
// request. Most requests never look: a kept file, a handler that never
// waits. Cancel makes its channel at the first Done, contexts derived
// from one that embeds it register through AfterFunc, a slot in a slice,
// and one that has a parent (Under) ties itself to it only at its first
// Done; under another Cancel, that is a place in the parent's list of
// children (Adopt), no function and no channel of the parent's.
// The fast lane's request contexts, the core's plugin-call contexts
// (httpfront.callCtx) and the SDK's Exchange calls embed it.
package lazyctx

import (
	"context"
	"sync"
)

// Cancel is embedded in a context type that supplies Deadline and Value.
// The zero value is a live context.
type Cancel struct {
	mu     sync.Mutex
	done   chan struct{}
	err    error
	afters []func() // AfterFunc's functions; a stopped one is nil
	// children are the Cancels Adopt tied to this one; one that ended
	// first is nil.
	children []*Cancel
	// parent, if any, ends this context too (Under); stopParent undoes the
	// tie made at the first Done, or adopter's Adopt did.
	parent     context.Context
	stopParent func() bool
	adopter    *Cancel
	// awaited: someone asked for Done, AfterFunc or Adopt while it lived,
	// and may still be told it ended (Reuse).
	awaited bool
}

// Under makes the context end when parent does, as a context derived from
// parent would. Call it before the context is used.
func (c *Cancel) Under(parent context.Context) { c.parent = parent }

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done returns the channel closed when the context ends.
func (c *Cancel) Done() <-chan struct{} {
	ch, _ := c.DoneFirst()
	return ch
}

// DoneFirst is Done, and reports whether this call made the channel, for
// an owner that starts what may end the context only once someone waits.
func (c *Cancel) DoneFirst() (ch <-chan struct{}, first bool) {
	c.mu.Lock()
	if c.done != nil {
		defer c.mu.Unlock()
		return c.done, false
	}
	if c.err != nil {
		c.mu.Unlock()
		return closedDone, false
	}
	c.done = make(chan struct{})
	c.awaited = true
	done := c.done
	c.mu.Unlock()
	if c.parent != nil {
		c.tie()
	}
	return done, true
}

// Adopter is a context that ties a child Cancel to its own end directly
// (Adopt): a Cancel, or a context type embedding one, which may override
// Adopt to start what ends it, as it would at a Done.
type Adopter interface {
	Adopt(child *Cancel)
}

// tie makes the parent's end reach this context: through Adopt when the
// parent is a Cancel (no channel, function or goroutine of the parent's),
// else through the parent's own AfterFunc if it has one, else
// context.AfterFunc.
func (c *Cancel) tie() {
	p := c.parent
	if a, ok := p.(Adopter); ok {
		a.Adopt(c)
		return
	}
	if p.Done() == nil {
		return // it never ends
	}
	if err := p.Err(); err != nil {
		c.End(err)
		return
	}
	f := func() { c.End(p.Err()) }
	var stop func() bool
	if af, ok := p.(interface{ AfterFunc(func()) func() bool }); ok {
		stop = af.AfterFunc(f)
	} else {
		stop = context.AfterFunc(p, f)
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		stop()
		return
	}
	c.stopParent = stop
	c.mu.Unlock()
}

// Adopt ties child to c: c's end ends child, with c's error, unless child
// ended first, which unties it. c counts as awaited (Reuse) from then on:
// the child, or whatever holds it, may still ask c for its deadline and
// values, and an owner may have started what ends c for it (a watch).
func (c *Cancel) Adopt(child *Cancel) {
	c.mu.Lock()
	if err := c.err; err != nil {
		c.mu.Unlock()
		child.End(err)
		return
	}
	c.awaited = true
	c.children = append(c.children, child)
	c.mu.Unlock()
	child.mu.Lock()
	child.adopter = c
	ended := child.err != nil
	child.mu.Unlock()
	if ended {
		c.release(child) // it ended before it could untie itself
	}
}

// release unties child from c.
func (c *Cancel) release(child *Cancel) {
	c.mu.Lock()
	for i, ch := range c.children {
		if ch == child {
			c.children[i] = nil
		}
	}
	c.mu.Unlock()
}

// Err returns nil while the context lives, then why it ended.
func (c *Cancel) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil && c.parent != nil {
		if err = c.parent.Err(); err != nil {
			c.End(err)
			return c.Err()
		}
	}
	return err
}

// AfterFunc runs f in its own goroutine once the context ends, unless stop
// is called first: context.AfterFunc's contract, through which the context
// package ties a derived context to this one.
func (c *Cancel) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.awaited = true
	i := len(c.afters)
	c.afters = append(c.afters, f)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i >= len(c.afters) || c.afters[i] == nil {
			return false
		}
		c.afters[i] = nil
		return true
	}
}

// End ends the context with err (context.Canceled if nil) and undoes its
// tie to a parent. Only the first call counts; it reports whether this
// was it.
func (c *Cancel) End(err error) bool {
	if err == nil {
		err = context.Canceled
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	afters, children, stop, adopter := c.afters, c.children, c.stopParent, c.adopter
	c.afters, c.children, c.stopParent, c.adopter = nil, nil, nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if adopter != nil {
		adopter.release(c)
	}
	for _, f := range afters {
		if f != nil {
			go f()
		}
	}
	for _, ch := range children {
		if ch != nil {
			ch.End(err)
		}
	}
	return true
}

// Reuse makes an ended context that nobody awaited live again, for its
// owner to hand out anew, and reports whether it did. One that was
// awaited (Done, AfterFunc or Adopt while it lived) stays ended: whoever
// holds its channel, registered a function or adopted a child must see
// it end and stay ended.
// The owner must know that nothing holds an unawaited one any more, as a
// holder's Err would read nil again.
func (c *Cancel) Reuse() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil || c.awaited || c.parent != nil {
		return false
	}
	c.err, c.done = nil, nil
	return true
}
