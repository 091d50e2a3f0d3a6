package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// pipeExchange is an Exchange stream in memory: the test plays the core.
type pipeExchange struct {
	grpc.ServerStream
	ctx context.Context
	in  chan *pluginpb.ExchangeFrame
	out chan *pluginpb.ExchangeFrame
}

func (p *pipeExchange) Recv() (*pluginpb.ExchangeFrame, error) {
	f, ok := <-p.in
	if !ok {
		return nil, io.EOF
	}
	return f, nil
}

// Send passes on a copy, as gRPC passes on the bytes it marshals before
// Send returns: the SDK reuses a frame for the next one.
func (p *pipeExchange) Send(f *pluginpb.ExchangeFrame) error {
	p.out <- proto.Clone(f).(*pluginpb.ExchangeFrame)
	return nil
}

func (p *pipeExchange) Context() context.Context { return p.ctx }

// startExchange serves h on an in-memory Exchange stream until the test ends.
func startExchange(t *testing.T, h http.Handler) *pipeExchange {
	t.Helper()
	p := &pipeExchange{ctx: t.Context(), in: make(chan *pluginpb.ExchangeFrame), out: make(chan *pluginpb.ExchangeFrame, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveExchange(h, p)
	}()
	t.Cleanup(func() {
		close(p.in)
		<-done
	})
	return p
}

func (p *pipeExchange) request(id uint64, path string) {
	p.in <- &pluginpb.ExchangeFrame{Id: id, Request: &pluginpb.HTTPRequestFrame{
		Head: &pluginpb.HTTPRequest{Method: "GET", Target: path, Path: path, Proto: "HTTP/1.1"}, End: true,
	}}
}

func (p *pipeExchange) next(t *testing.T) *pluginpb.ExchangeFrame {
	t.Helper()
	select {
	case f := <-p.out:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame from the plugin")
		return nil
	}
}

// TestExchangeRequestsDoNotWaitForEachOther sends a request whose handler
// blocks, then one that answers at once: the second answer must come
// first.
func TestExchangeRequestsDoNotWaitForEachOther(t *testing.T) {
	release := make(chan struct{})
	p := startExchange(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}))
	p.request(1, "/slow")
	p.request(2, "/fast")
	f := p.next(t)
	if f.GetId() != 2 || string(f.GetResponse().GetBody()) != "/fast" || !f.GetResponse().GetEnd() {
		t.Fatalf("first answer: %v", f)
	}
	close(release)
	if f := p.next(t); f.GetId() != 1 || string(f.GetResponse().GetBody()) != "/slow" {
		t.Fatalf("second answer: %v", f)
	}
}

// TestExchangeWindowHoldsBackALongAnswer checks the plugin sends no more
// than ExchangeWindow frames of one answer ahead of the core's credit.
func TestExchangeWindowHoldsBackALongAnswer(t *testing.T) {
	const frames = ExchangeWindow + 3
	p := startExchange(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range frames {
			io.WriteString(w, "chunk")
			w.(http.Flusher).Flush()
		}
	}))
	p.request(7, "/long")
	for range ExchangeWindow {
		p.next(t)
	}
	select {
	case f := <-p.out:
		t.Fatalf("frame past the window without credit: %v", f)
	case <-time.After(100 * time.Millisecond):
	}
	got := ExchangeWindow
	for !func() bool {
		p.in <- &pluginpb.ExchangeFrame{Id: 7, Credit: 1}
		f := p.next(t)
		got++
		return f.GetResponse().GetEnd()
	}() {
	}
	if got != frames+1 { // the flushed chunks, then the end frame
		t.Fatalf("%d frames, want %d", got, frames+1)
	}
}

// TestExchangeCancelEndsTheHandlersContext checks a cancel frame reaches
// the handler, and that a handler failing after its head aborts the answer.
func TestExchangeCancelEndsTheHandlersContext(t *testing.T) {
	cancelled := make(chan struct{})
	p := startExchange(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		if r.URL.Path == "/panic" {
			panic("after the head")
		}
		<-r.Context().Done()
		close(cancelled)
	}))
	p.request(3, "/wait")
	if f := p.next(t); f.GetResponse().GetHead().GetStatus() != 200 {
		t.Fatalf("head: %v", f)
	}
	p.in <- &pluginpb.ExchangeFrame{Id: 3, Cancel: true}
	<-cancelled

	p.request(4, "/panic")
	p.next(t) // the head
	if f := p.next(t); f.GetId() != 4 || !f.GetAbort() {
		t.Fatalf("after a panic past the head: %v, want abort", f)
	}
}

// TestExchangeStreamEndEndsHandlersContexts checks that when the stream
// ends (the core went away) every handler's context ends: one that waits,
// one derived from it, and one first asked after the end.
func TestExchangeStreamEndEndsHandlersContexts(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	waiting, ended := make(chan struct{}, 3), make(chan struct{})
	errs := make(chan error, 3)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.Context()
		switch r.URL.Path {
		case "/derived":
			var stop context.CancelFunc
			c, stop = context.WithTimeout(c, time.Hour)
			defer stop()
		case "/late":
			waiting <- struct{}{}
			<-ended
			if c.Err() == nil {
				errs <- errors.New("Err is nil after the stream ended")
				return
			}
			<-c.Done()
			errs <- c.Err()
			return
		}
		waiting <- struct{}{}
		<-c.Done()
		errs <- c.Err()
	})
	p := &pipeExchange{ctx: ctx, in: make(chan *pluginpb.ExchangeFrame), out: make(chan *pluginpb.ExchangeFrame, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveExchange(h, p)
	}()
	for i, path := range []string{"/plain", "/derived", "/late"} {
		p.request(uint64(i+1), path)
	}
	for range 3 {
		<-waiting
	}
	cancel()
	close(ended)
	for range 3 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
	close(p.in)
	<-done
}
