package httpfront

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// exchanger is the core's end of one plugin connection's Exchange stream
// (socketd.proto): small requests travel as one tagged message each way on
// a stream opened once, rather than as a gRPC call each, which costs a new
// HTTP/2 stream, its headers and a goroutine on both sides.
type exchanger struct {
	client pluginpb.PluginClient
	stream pluginpb.Plugin_ExchangeClient
	sendMu sync.Mutex // a gRPC stream takes one Send at a time

	mu    sync.Mutex
	calls map[uint64]chan *pluginpb.ExchangeFrame
	next  uint64
	// done is closed when the stream broke; err says why.
	done chan struct{}
	err  error
}

// exchangers holds the open Exchange stream of each plugin connection. An
// entry leaves when its stream breaks, which it does when the plugin
// process exits or its connection is closed.
var exchangers sync.Map // pluginpb.PluginClient -> *exchanger

// errExchangeGone means the stream was already broken: the request was not
// sent, so it may go to the plugin's next process.
var errExchangeGone = errors.New("exchange stream is gone")

// exchangerFor returns client's Exchange stream, opening it at first use.
func exchangerFor(client pluginpb.PluginClient) (*exchanger, error) {
	if v, ok := exchangers.Load(client); ok {
		return v.(*exchanger), nil
	}
	// The stream outlives every request; it ends with the connection.
	stream, err := client.Exchange(context.Background())
	if err != nil {
		return nil, err
	}
	x := &exchanger{client: client, stream: stream, calls: make(map[uint64]chan *pluginpb.ExchangeFrame), done: make(chan struct{})}
	if v, loaded := exchangers.LoadOrStore(client, x); loaded {
		// Another request opened one first; this one is not used.
		stream.CloseSend()
		return v.(*exchanger), nil
	}
	go x.read()
	return x, nil
}

// read hands each answer frame to its request, until the stream breaks.
func (x *exchanger) read() {
	for {
		f, err := x.stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = status.Error(codes.Unavailable, "plugin closed its exchange stream")
			}
			x.mu.Lock()
			x.err = err
			close(x.done)
			x.mu.Unlock()
			exchangers.CompareAndDelete(x.client, x)
			return
		}
		x.mu.Lock()
		ch := x.calls[f.GetId()]
		x.mu.Unlock()
		if ch == nil {
			continue // the request is over (cancelled, timed out)
		}
		select {
		case ch <- f:
		default:
			// More frames than the window: the plugin broke the protocol.
			// Only that request fails; closing its channel says so.
			x.mu.Lock()
			if x.calls[f.GetId()] == ch {
				delete(x.calls, f.GetId())
				close(ch)
			}
			x.mu.Unlock()
		}
	}
}

func (x *exchanger) send(f *pluginpb.ExchangeFrame) error {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	return x.stream.Send(f)
}

// start sends req as a new request; its answer is read from the returned
// call, which the caller must close.
func (x *exchanger) start(ctx context.Context, req *pluginpb.HTTPRequestFrame) (*exchangeCall, error) {
	ch := make(chan *pluginpb.ExchangeFrame, sdk.ExchangeWindow)
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return nil, errExchangeGone
	}
	x.next++
	id := x.next
	x.calls[id] = ch
	x.mu.Unlock()
	c := &exchangeCall{x: x, id: id, frames: ch, ctx: ctx}
	if err := x.send(&pluginpb.ExchangeFrame{Id: id, Request: req}); err != nil {
		c.ended = true
		c.close()
		return nil, c.streamErr(err)
	}
	return c, nil
}

// exchangeCall is one request's answer on an Exchange stream. Its Recv
// behaves as a ServeHTTP stream's does.
type exchangeCall struct {
	x      *exchanger
	id     uint64
	frames chan *pluginpb.ExchangeFrame
	ctx    context.Context
	got    int
	ended  bool
}

// Recv returns the next frame of the answer. Calling it again means the
// previous frame was passed on, so the plugin gets credit for one more.
func (c *exchangeCall) Recv() (*pluginpb.HTTPResponseFrame, error) {
	if c.got > 0 && !c.ended {
		if err := c.x.send(&pluginpb.ExchangeFrame{Id: c.id, Credit: 1}); err != nil {
			return nil, c.streamErr(err)
		}
	}
	select {
	case f, ok := <-c.frames:
		switch {
		case !ok:
			return nil, status.Error(codes.Internal, "plugin sent more frames than its window")
		case f.GetAbort():
			c.ended = true
			return nil, status.Error(codes.Aborted, "plugin aborted the answer")
		case f.GetResponse() == nil:
			return nil, status.Error(codes.Internal, "plugin sent an exchange frame without a response")
		}
		c.got++
		c.ended = f.GetResponse().GetEnd()
		return f.GetResponse(), nil
	case <-c.x.done:
		return nil, c.x.err
	case <-c.ctx.Done():
		return nil, status.FromContextError(c.ctx.Err()).Err()
	}
}

// close ends the request; one the plugin has not finished is cancelled.
func (c *exchangeCall) close() {
	c.x.mu.Lock()
	if c.x.calls[c.id] == c.frames {
		delete(c.x.calls, c.id)
	}
	broken := c.x.err != nil
	c.x.mu.Unlock()
	if !c.ended && !broken {
		c.x.send(&pluginpb.ExchangeFrame{Id: c.id, Cancel: true})
	}
}

// streamErr is the error of a failed Send: the stream's own when it broke.
func (c *exchangeCall) streamErr(err error) error {
	select {
	case <-c.x.done:
		return c.x.err
	default:
		return err
	}
}
