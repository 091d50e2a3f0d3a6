// Package lazyctx is the cancellation half of a request's context, made
// to cost nothing until someone asks for it.
//
// A request context built with context.WithCancel costs a context, a
// channel and, under a cancelable parent, a place in the parent's map of
// children, taken and given back under the parent's lock, on every
// request. Most requests never look: a kept file, a handler that never
// waits. Cancel makes its channel at the first Done, and contexts derived
// from one that embeds it register through AfterFunc, a slot in a slice.
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
}

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
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedDone, false
		}
		c.done = make(chan struct{})
		return c.done, true
	}
	return c.done, false
}

// Err returns nil while the context lives, then why it ended.
func (c *Cancel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
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

// End ends the context with err (context.Canceled if nil). Only the first
// call counts; it reports whether this was it.
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
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	for _, f := range afters {
		if f != nil {
			go f()
		}
	}
	return true
}
