// Package logbuf gathers the daemon's log lines into few writes. Under load
// the access log is a line per request; written one by one they cost a
// system call each, more than the rest of a cached static request's
// logging. A Writer appends lines to a buffer and one goroutine writes what
// has gathered whenever it can, so a quiet daemon still logs at once while
// a busy one writes many lines per system call, in order.
package logbuf

import (
	"io"
	"sync"
)

// maxPending bounds the bytes waiting to be written: past it, Write waits,
// so a stalled log reader slows the daemon rather than growing its memory.
const maxPending = 1 << 20

// Writer is an io.Writer safe for concurrent use. Close writes what is
// pending; later writes go straight through.
type Writer struct {
	out     io.Writer
	mu      sync.Mutex
	drained sync.Cond // signalled after each write to out
	pending []byte
	spare   []byte
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// New starts a Writer in front of out.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.drained.L = &w.mu
	go w.loop()
	return w
}

// Write queues p; each call is kept whole and in order.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= maxPending && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken: the loop will see these bytes too
	}
	return len(p), nil
}

func (w *Writer) loop() {
	defer close(w.done)
	for range w.wake {
		for {
			w.mu.Lock()
			batch := w.pending
			if len(batch) == 0 {
				closed := w.closed
				w.mu.Unlock()
				if closed {
					return
				}
				break
			}
			w.pending = w.spare[:0]
			w.mu.Unlock()

			w.out.Write(batch) // a log with nowhere to go has no one to tell

			w.mu.Lock()
			if cap(batch) <= maxPending {
				w.spare = batch[:0]
			}
			w.drained.Broadcast()
			w.mu.Unlock()
		}
	}
}

// Close writes everything pending and stops the writing goroutine.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.drained.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}
