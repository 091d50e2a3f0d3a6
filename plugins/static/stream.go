package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/socketd/socketd/sdk"
)

// Bounds on waiting for the client's request line. A client that never
// sends a newline still gets its reply, after at most this much.
const (
	maxRequest  = 4 << 10
	requestWait = 2 * time.Second
)

// reply is a tcp listener's answer: the tutorial's first server, which
// hears "can you hear me?" and says "Yes".
type reply struct {
	text        string // with the newline already appended when configured
	readRequest bool
}

// ServeStream answers one connection of a tcp listener; the SDK
// half-closes the connection when it returns.
func (p *static) ServeStream(ctx context.Context, conn *sdk.Conn) error {
	rp, ok := p.replies[conn.Listener]
	if !ok {
		return fmt.Errorf("static: listener %q has no config", conn.Listener)
	}
	return rp.answer(ctx, conn, requestWait)
}

// answer is ServeStream over any io.ReadWriter, so it can be tested
// without a gRPC stream.
func (rp reply) answer(ctx context.Context, rw io.ReadWriter, wait time.Duration) error {
	if rp.readRequest {
		awaitRequest(ctx, rw, maxRequest, wait)
	}
	if _, err := io.WriteString(rw, rp.text); err != nil {
		return fmt.Errorf("static: write reply: %w", err)
	}
	return nil
}

// awaitRequest reads until the first newline, limit bytes, EOF or an
// error, or until wait passes or ctx ends, whichever comes first. What was
// read is discarded: the reply does not depend on it.
//
// sdk.Conn has no read deadline, so the reading happens in a goroutine
// that may outlive this call; it ends when the connection's stream does,
// right after ServeStream returns.
func awaitRequest(ctx context.Context, r io.Reader, limit int, wait time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for n := 0; n < limit; {
			k, err := r.Read(buf[:min(len(buf), limit-n)])
			if bytes.IndexByte(buf[:k], '\n') >= 0 || err != nil {
				return
			}
			n += k
		}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}
