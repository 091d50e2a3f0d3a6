// Package exchange is the calling side of the plugin protocol's Exchange
// stream (socketd.proto): small HTTP requests travel to a plugin process as
// one tagged message each way on a stream opened once per connection,
// rather than as a gRPC call each, which costs a new HTTP/2 stream, its
// headers and a goroutine on both sides. socketd's HTTP front sends
// requests through it, and so does sdktest, so a plugin's tests take the
// path its requests take in production.
package exchange

import (
	"context"
	"io"
	"net/http"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// Stream is the calling end of one plugin connection's Exchange stream.
type Stream struct {
	client pluginpb.PluginClient
	stream pluginpb.Plugin_ExchangeClient
	sendMu sync.Mutex // a gRPC stream takes one Send at a time

	mu    sync.Mutex
	calls map[uint64]chan *pluginpb.ExchangeIn
	next  uint64
	// done is closed when the stream broke; err says why.
	done chan struct{}
	err  error
}

// streams holds the open Exchange stream of each plugin connection. An
// entry leaves when its stream breaks, which it does when the plugin
// process exits or its connection is closed.
var streams sync.Map // pluginpb.PluginClient -> *Stream

// Fits reports whether a request goes on the Exchange stream: the plugin
// (described by d) offers it, and the whole body, of known length, fits in
// the first frame. Other requests are ServeHTTP calls of their own.
func Fits(d *pluginpb.DescribeResponse, contentLength int64) bool {
	return d.GetHttpExchange() && contentLength >= 0 && contentLength <= sdk.ChunkSize
}

// For returns client's Exchange stream, opening it at first use.
func For(client pluginpb.PluginClient) (*Stream, error) {
	if v, ok := streams.Load(client); ok {
		return v.(*Stream), nil
	}
	// The stream outlives every request; it ends with the connection.
	stream, err := client.Exchange(context.Background())
	if err != nil {
		return nil, err
	}
	x := &Stream{client: client, stream: stream, calls: make(map[uint64]chan *pluginpb.ExchangeIn), done: make(chan struct{})}
	if v, loaded := streams.LoadOrStore(client, x); loaded {
		// Another request opened one first; this one is not used.
		stream.CloseSend()
		return v.(*Stream), nil
	}
	go x.read()
	return x, nil
}

// inbound keeps the frames the stream's reader receives into, each
// decoded into the same memory again once its call is done with it.
var inbound = sync.Pool{New: func() any { return new(pluginpb.ExchangeIn) }}

// read hands each answer frame to its request, until the stream breaks.
func (x *Stream) read() {
	for {
		in := inbound.Get().(*pluginpb.ExchangeIn)
		if err := x.stream.RecvMsg(in); err != nil {
			inbound.Put(in)
			if err == io.EOF {
				err = status.Error(codes.Unavailable, "plugin closed its exchange stream")
			}
			x.mu.Lock()
			x.err = err
			close(x.done)
			x.mu.Unlock()
			streams.CompareAndDelete(x.client, x)
			return
		}
		// Under the lock, so that no frame reaches a call's channel
		// after Close took it out: the channel goes on to the next call.
		x.mu.Lock()
		delivered := false
		if ch := x.calls[in.Frame.GetId()]; ch != nil { // else the request is over (cancelled, timed out)
			select {
			case ch <- in:
				delivered = true
			default:
				// More frames than the window: the plugin broke the
				// protocol. Only that request fails; closing its channel
				// says so.
				delete(x.calls, in.Frame.GetId())
				close(ch)
			}
		}
		x.mu.Unlock()
		if !delivered {
			inbound.Put(in)
		}
	}
}

func (x *Stream) send(f *pluginpb.ExchangeFrame) error {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	return x.stream.Send(f)
}

// Start sends req, which must carry the whole request (head, body, end),
// as a new request; its answer is read from the returned call, which the
// caller must Close. ctx bounds the wait for the answer.
func (x *Stream) Start(ctx context.Context, req *pluginpb.HTTPRequestFrame) (*Call, error) {
	c := callPool.Get().(*Call)
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		callPool.Put(c)
		// Not sent: Unavailable, like a call on a closed connection.
		return nil, status.Error(codes.Unavailable, "plugin exchange stream is gone")
	}
	x.next++
	c.x, c.id, c.ctx = x, x.next, ctx
	x.calls[c.id] = c.frames
	x.mu.Unlock()
	if err := c.send(req, 0, false); err != nil {
		c.ended = true
		err = c.streamErr(err)
		c.Close()
		return nil, err
	}
	return c, nil
}

// Call is one request's answer on an Exchange stream. Its Recv
// behaves as a ServeHTTP stream's does.
type Call struct {
	x      *Stream
	id     uint64
	frames chan *pluginpb.ExchangeIn
	ctx    context.Context
	got    int
	ended  bool
	// last is the frame Recv returned last, received into again once
	// the call is done with it.
	last *pluginpb.ExchangeIn
	// out is the frame the call sends (its request, credit, a cancel),
	// one at a time, each marshalled before the send returns.
	out pluginpb.ExchangeFrame
}

// callPool keeps Calls, with their channels, from one request to the
// next: a channel, a Call and a frame were three allocations a request.
var callPool = sync.Pool{New: func() any {
	return &Call{frames: make(chan *pluginpb.ExchangeIn, sdk.ExchangeWindow)}
}}

// send sends one of the call's frames (a request, credit or a cancel), in
// its reused one.
func (c *Call) send(req *pluginpb.HTTPRequestFrame, credit uint32, cancel bool) error {
	c.out.Id, c.out.Request, c.out.Credit, c.out.Cancel = c.id, req, credit, cancel
	err := c.x.send(&c.out)
	c.out.Request = nil
	return err
}

// Recv returns the next frame of the answer. Calling it again means the
// previous frame was passed on, so the plugin gets credit for one more.
// A frame is good until the next Recv or Close, which receive into it
// again: its strings and body may be kept, not its headers' slices
// (CopyHeaders copies them).
func (c *Call) Recv() (*pluginpb.HTTPResponseFrame, error) {
	c.done()
	if c.got > 0 && !c.ended {
		if err := c.send(nil, 1, false); err != nil {
			return nil, c.streamErr(err)
		}
	}
	select {
	case in, ok := <-c.frames:
		if !ok {
			return nil, status.Error(codes.Internal, "plugin sent more frames than its window")
		}
		c.last = in
		f := &in.Frame
		switch {
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

// Close ends the request; one the plugin has not finished is cancelled.
// It must be called once, and the Call not used after: it goes on to
// another request.
func (c *Call) Close() {
	c.x.mu.Lock()
	if c.x.calls[c.id] == c.frames {
		delete(c.x.calls, c.id)
	}
	broken := c.x.err != nil
	c.x.mu.Unlock()
	if !c.ended && !broken {
		c.send(nil, 0, true)
	}
	// Frames of an answer left unread stay in the channel; a channel
	// closed for a broken window cannot be used again.
	c.done()
	for drained := false; !drained; {
		select {
		case in, open := <-c.frames:
			if !open {
				c.frames = make(chan *pluginpb.ExchangeIn, sdk.ExchangeWindow)
				drained = true
			} else {
				inbound.Put(in)
			}
		default:
			drained = true
		}
	}
	c.x, c.id, c.ctx, c.got, c.ended = nil, 0, nil, 0, false
	callPool.Put(c)
}

// done gives back the frame Recv returned last.
func (c *Call) done() {
	if c.last != nil {
		inbound.Put(c.last)
		c.last = nil
	}
}

// CopyHeaders sets an answer's headers on dst, all but the hop-by-hop
// ones, with values of their own (one allocation for all): dst may
// outlive the frame, whose slices are reused (Call.Recv).
func CopyHeaders(dst http.Header, src []*pluginpb.Header) {
	n := 0
	for _, h := range src {
		n += len(h.GetValues())
	}
	values := make([]string, 0, n)
	for _, h := range src {
		if sdk.IsHopByHop(h.GetName()) {
			continue
		}
		start := len(values)
		values = append(values, h.GetValues()...)
		dst[http.CanonicalHeaderKey(h.GetName())] = values[start:len(values):len(values)]
	}
}

// streamErr is the error of a failed Send: the stream's own when it broke.
func (c *Call) streamErr(err error) error {
	select {
	case <-c.x.done:
		return c.x.err
	default:
		return err
	}
}
