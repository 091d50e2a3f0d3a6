package sdk

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/socketd/socketd/internal/lazyctx"
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

// exchangeCall is one request in flight on the stream, and its handler's
// context: it ends when the core cancels the request, the handler returns
// or the stream ends, and answers the request's values. What a context
// usually costs per request (a cancelable context registered with the
// stream's, two values, a channel of credit) is made only if asked for.
type exchangeCall struct {
	lazyctx.Cancel // under the Exchange stream's context
	stream         context.Context
	requestValues
	id  uint64
	req *pluginpb.HTTPRequestFrame
	x   *exchangeServer

	body requestBody // the request's, all in its frame

	// out wraps the call's response frames, one at a time: the handler
	// sends them in turn, and each is marshalled before Send returns.
	out pluginpb.ExchangeFrame

	mu sync.Mutex
	// credit counts the response frames the call may still send; a Send
	// without credit waits on creditCame.
	credit     int
	creditCame chan struct{}
}

func (c *exchangeCall) Deadline() (time.Time, bool) { return c.stream.Deadline() }

func (c *exchangeCall) Value(key any) any {
	if v, ok := c.value(key); ok {
		return v
	}
	return c.stream.Value(key)
}

func serveExchange(h http.Handler, stream pluginpb.Plugin_ExchangeServer) error {
	x := &exchangeServer{stream: stream, h: h, calls: make(map[uint64]*exchangeCall)}
	// Requests run on workers that outlive them: a new goroutine per request
	// would grow its stack through gRPC's send path every time, which cost
	// a quarter of the plugin's CPU under load.
	work := make(chan *exchangeCall) // hands calls to idle workers
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
			c := x.open(f.GetId(), f.GetRequest())
			select {
			case work <- c: // an idle worker took it
			default:
				running.Add(1)
				go func() {
					defer running.Done()
					for ; c != nil; c = <-work {
						c.serve()
					}
				}()
			}
		case f.GetCancel():
			if c := x.call(f.GetId()); c != nil {
				c.End(nil)
			}
		case f.GetCredit() > 0:
			if c := x.call(f.GetId()); c != nil {
				c.addCredit(int(f.GetCredit()))
			}
		}
	}
}

func (x *exchangeServer) open(id uint64, req *pluginpb.HTTPRequestFrame) *exchangeCall {
	c := &exchangeCall{stream: x.stream.Context(), requestValues: valuesOf(req.GetHead()), id: id, req: req, x: x, credit: ExchangeWindow}
	c.Under(c.stream)
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

// responseWriters are reused from one call to the next, header map
// included: a handler may not use its ResponseWriter once it returned.
var responseWriters = sync.Pool{New: func() any { return &responseWriter{header: make(http.Header)} }}

// serve runs the handler for the call's request, as serveHTTPStream does
// for a ServeHTTP call.
func (c *exchangeCall) serve() {
	w := responseWriters.Get().(*responseWriter)
	w.stream, w.status = c, http.StatusOK
	defer func() {
		c.x.mu.Lock()
		delete(c.x.calls, c.id)
		c.x.mu.Unlock()
		c.End(nil)
		w.recycle()
		responseWriters.Put(w)
	}()
	head := c.req.GetHead()
	if head == nil {
		w.reset(http.StatusBadRequest)
		w.finish()
		return
	}
	// The core sends only requests whose whole body fits in this frame.
	c.body = requestBody{buf: c.req.GetBody(), done: true}
	r, err := newRequest(c, head, &c.body)
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

// addCredit lets the call send n more frames, up to the window (more is
// the core's bug, ignored).
func (c *exchangeCall) addCredit(n int) {
	c.mu.Lock()
	c.credit = min(c.credit+n, ExchangeWindow)
	came := c.creditCame
	c.mu.Unlock()
	if came != nil {
		select {
		case came <- struct{}{}:
		default: // already signalled
		}
	}
}

// Send passes one response frame on, once the core has credit for it.
func (c *exchangeCall) Send(f *pluginpb.HTTPResponseFrame) error {
	if err := c.Err(); err != nil {
		return err // cancelled: the core no longer listens for this id
	}
	c.mu.Lock()
	for c.credit == 0 {
		if c.creditCame == nil {
			c.creditCame = make(chan struct{}, 1)
		}
		came := c.creditCame
		c.mu.Unlock()
		select {
		case <-came:
		case <-c.Done():
			return c.Err()
		}
		c.mu.Lock()
	}
	c.credit--
	c.mu.Unlock()
	c.out.Id, c.out.Response = c.id, f
	err := c.x.send(&c.out)
	c.out.Response = nil
	return err
}

func (x *exchangeServer) send(f *pluginpb.ExchangeFrame) error {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	return x.stream.Send(f)
}
