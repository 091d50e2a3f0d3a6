// Package logbuf gathers the daemon's log lines into few writes. Under load
// the access log is a line per request; written one by one, or even handed
// one by one to a writing goroutine, each line costs a system call or a
// thread wake-up, which measured about a sixth of a cached static
// request's CPU. A Writer appends lines to a buffer that is written when
// it holds flushSize bytes or flushDelay after its first line, as nginx's
// access_log buffer= and flush= do: a busy daemon writes a few times per
// second per megabyte of log, a quiet one within flushDelay, in order.
package logbuf

import (
	"io"
	"sync"
	"time"
)

const (
	// flushDelay bounds how long a line waits before it is written.
	flushDelay = 10 * time.Millisecond
	// flushSize is the buffer size that is written without waiting.
	flushSize = 64 << 10
	// maxPending bounds the bytes waiting to be written: past it, Write
	// waits, so a stalled log reader slows the daemon rather than growing
	// its memory.
	maxPending = 1 << 20
)

// Writer is an io.Writer safe for concurrent use. Close writes what is
// pending; later writes go straight through.
type Writer struct {
	out     io.Writer
	mu      sync.Mutex
	drained sync.Cond // signalled after each write to out
	pending []byte
	spare   []byte
	closed  bool
	timer   *time.Timer // flushes flushDelay after the first pending line
	wake    chan struct{}
	done    chan struct{}
}

// New starts a Writer in front of out.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.drained.L = &w.mu
	w.timer = time.AfterFunc(time.Hour, w.signal)
	w.timer.Stop()
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
		<-w.done // after what was pending, in order
		return w.out.Write(p)
	}
	first := len(w.pending) == 0
	w.pending = append(w.pending, p...)
	full := len(w.pending) >= flushSize
	if first && !full {
		w.timer.Reset(flushDelay)
	}
	w.mu.Unlock()
	if full {
		w.signal()
	}
	return len(p), nil
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // already signalled: the loop will see these bytes too
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		batch := w.pending
		closed := w.closed
		w.pending = w.spare[:0]
		w.timer.Stop()
		w.mu.Unlock()

		if len(batch) > 0 {
			w.out.Write(batch) // a log with nowhere to go has no one to tell
		}

		w.mu.Lock()
		if cap(batch) <= maxPending {
			w.spare = batch[:0]
		}
		w.drained.Broadcast()
		w.mu.Unlock()
		if closed {
			return
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
	w.signal()
	<-w.done
	return nil
}
