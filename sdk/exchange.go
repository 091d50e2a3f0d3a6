package sdk

import (
	"context"
	"net/http"
	"sync"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// ExchangeWindow is how many response frames of one request a plugin may
// send on an Exchange stream ahead of the core's credit (socketd.proto,
// ExchangeFrame).
const ExchangeWindow = 4

// exchangeServer is the plugin's end of one Exchange stream: it reads
// requests and runs each in its own goroutine, as a ServeHTTP call would
// run, sending every answer back on the one stream.
type exchangeServer struct {
	stream pluginpb.Plugin_ExchangeServer
	h      http.Handler
	sendMu sync.Mutex // a gRPC stream takes one Send at a time
	mu     sync.Mutex
	calls  map[uint64]*exchangeCall
}

// exchangeCall is one request in flight on the stream.
type exchangeCall struct {
	id     uint64
	ctx    context.Context
	cancel context.CancelFunc
	// credit holds one token per response frame the call may still send.
	credit chan struct{}
	x      *exchangeServer
}

func serveExchange(h http.Handler, stream pluginpb.Plugin_ExchangeServer) error {
	x := &exchangeServer{stream: stream, h: h, calls: make(map[uint64]*exchangeCall)}
	// Requests run on workers that outlive them: a new goroutine per request
	// would grow its stack through gRPC's send path every time, which cost
	// a quarter of the plugin's CPU under load.
	work := make(chan func())
	var running sync.WaitGroup
	// Handlers must be done with the stream before it ends: gRPC forbids a
	// Send after the method returns. Their contexts end with the stream's.
	defer running.Wait()
	defer close(work)
	for {
		f, err := stream.Recv()
		if err != nil {
			return nil // the core closed the stream or went away
		}
		switch {
		case f.GetRequest() != nil:
			c := x.open(f.GetId())
			job := func() { c.serve(f.GetRequest()) }
			select {
			case work <- job: // an idle worker took it
			default:
				running.Add(1)
				go func() {
					defer running.Done()
					for ; job != nil; job = <-work {
						job()
					}
				}()
			}
		case f.GetCancel():
			if c := x.call(f.GetId()); c != nil {
				c.cancel()
			}
		case f.GetCredit() > 0:
			if c := x.call(f.GetId()); c != nil {
				for range f.GetCredit() {
					select {
					case c.credit <- struct{}{}:
					default: // more credit than the window: the core's bug, ignored
					}
				}
			}
		}
	}
}

func (x *exchangeServer) open(id uint64) *exchangeCall {
	ctx, cancel := context.WithCancel(x.stream.Context())
	c := &exchangeCall{id: id, ctx: ctx, cancel: cancel, credit: make(chan struct{}, ExchangeWindow), x: x}
	for range ExchangeWindow {
		c.credit <- struct{}{}
	}
	x.mu.Lock()
	x.calls[id] = c
	x.mu.Unlock()
	return c
}

func (x *exchangeServer) call(id uint64) *exchangeCall {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls[id]
}

// serve runs the handler for one request, as serveHTTPStream does for a
// ServeHTTP call.
func (c *exchangeCall) serve(req *pluginpb.HTTPRequestFrame) {
	defer func() {
		c.x.mu.Lock()
		delete(c.x.calls, c.id)
		c.x.mu.Unlock()
		c.cancel()
	}()
	w := &responseWriter{stream: c, header: make(http.Header), status: http.StatusOK}
	head := req.GetHead()
	if head == nil {
		w.reset(http.StatusBadRequest)
		w.finish()
		return
	}
	// The core sends only requests whose whole body fits in this frame.
	r, err := newRequest(c.ctx, head, &requestBody{buf: req.GetBody(), done: true})
	if err != nil {
		w.reset(http.StatusBadRequest)
		w.finish()
		return
	}
	if err := runHandler(c.x.h, w, r); err != nil {
		c.x.send(&pluginpb.ExchangeFrame{Id: c.id, Abort: true})
		return
	}
	w.finish()
}

// Send passes one response frame on, once the core has credit for it.
func (c *exchangeCall) Send(f *pluginpb.HTTPResponseFrame) error {
	if err := c.ctx.Err(); err != nil {
		return err // cancelled: the core no longer listens for this id
	}
	select {
	case <-c.credit:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	return c.x.send(&pluginpb.ExchangeFrame{Id: c.id, Response: f})
}

func (x *exchangeServer) send(f *pluginpb.ExchangeFrame) error {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	return x.stream.Send(f)
}
