package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/socketd/socketd/internal/plainurl"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// serveHTTPStream runs one request through h: frames in, *http.Request to
// the handler, frames out.
func serveHTTPStream(h http.Handler, stream pluginpb.Plugin_ServeHTTPServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	head := first.GetHead()
	if head == nil {
		return status.Error(codes.InvalidArgument, "first frame carries no request head")
	}
	ctx := &requestCtx{Context: stream.Context(), requestValues: valuesOf(head)}
	r, err := newRequest(ctx, head, &requestBody{stream: stream, buf: first.GetBody(), done: first.GetEnd()})
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	w := &responseWriter{stream: stream, header: make(http.Header), status: http.StatusOK}
	if err := runHandler(h, w, r); err != nil {
		return err
	}
	return w.finish()
}

// runHandler calls h and turns a panic into a 500 (or a broken stream when
// the head is already out), as net/http does.
func runHandler(h http.Handler, w *responseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				err = status.Error(codes.Aborted, "handler aborted the response")
				return
			}
			slog.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "route", RouteID(r),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if w.headSent {
				err = status.Error(codes.Internal, "handler panicked")
				return
			}
			w.reset(http.StatusInternalServerError)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

// newRequest makes the handler's request from head. ctx must answer the
// head's values (a requestCtx, an exchangeCall).
func newRequest(ctx context.Context, head *pluginpb.HTTPRequest, body io.ReadCloser) (*http.Request, error) {
	// The request and its URL in one allocation; a plain target (most)
	// is read into that URL without one of its own.
	ru := new(struct {
		r http.Request
		u url.URL
	})
	u := &ru.u
	if !plainurl.Parse(head.GetTarget(), u) {
		parsed, err := url.ParseRequestURI(head.GetTarget())
		if err != nil {
			// A target net/http accepted but url cannot parse (rare):
			// keep the decoded path the core saw.
			parsed = &url.URL{Path: head.GetPath(), RawQuery: head.GetRawQuery()}
		}
		u = parsed
	}
	if head.GetPath() != "" {
		u.Path = head.GetPath()
	}
	r := &ru.r
	*r = http.Request{
		Method:        head.GetMethod(),
		URL:           u,
		Proto:         head.GetProto(),
		Header:        make(http.Header, len(head.GetHeaders())),
		Body:          body,
		ContentLength: head.GetContentLength(),
		Host:          head.GetHost(),
		RemoteAddr:    head.GetRemoteAddr(),
		RequestURI:    head.GetTarget(),
	}
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(r.Proto); !ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	}
	for _, hv := range head.GetHeaders() {
		r.Header[hv.GetName()] = hv.GetValues()
	}
	for k, v := range head.GetPathValues() {
		r.SetPathValue(k, v)
	}
	if head.GetTls() {
		// The core terminated TLS; what it would take to say more (peer
		// certificates, ALPN) does not cross the protocol, so this only
		// tells handlers that check r.TLS != nil, as net/http code does.
		r.TLS = &tls.ConnectionState{}
	}
	// The copy WithContext makes stays on the stack: one Request a call.
	*r = *r.WithContext(ctx)
	return r, nil
}

// requestValues are the values the core names in a request's head, which
// its context answers (RouteID, Listener).
type requestValues struct{ route, listener string }

func valuesOf(head *pluginpb.HTTPRequest) requestValues {
	return requestValues{route: head.GetRoute(), listener: head.GetListener()}
}

// valuesContext is a request context the SDK made (a requestCtx, an
// exchangeCall), whose values RouteID and Listener read directly: through
// Value, each string would be boxed, an allocation per request. A context
// a handler derived from it answers through Value, as any context does.
type valuesContext interface {
	context.Context
	values() *requestValues
}

func (v *requestValues) values() *requestValues { return v }

func (v *requestValues) value(key any) (any, bool) {
	switch key.(type) {
	case routeKey:
		return v.route, true
	case listenerKey:
		return v.listener, true
	}
	return nil, false
}

// requestCtx is a ServeHTTP call's request context: the call's, answering
// the request's values too (one context where two WithValue would be two).
type requestCtx struct {
	context.Context
	requestValues
}

func (c *requestCtx) Value(key any) any {
	if v, ok := c.value(key); ok {
		return v
	}
	return c.Context.Value(key)
}

// requestBody reads body frames as the handler asks for them; gRPC flow
// control keeps at most a few chunks in flight, so memory stays flat for
// any body size.
type requestBody struct {
	stream interface {
		Recv() (*pluginpb.HTTPRequestFrame, error)
	}
	buf  []byte
	done bool
	err  error
}

func (b *requestBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.done {
			return 0, io.EOF
		}
		f, err := b.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
			return 0, err
		}
		b.buf, b.done = f.GetBody(), f.GetEnd()
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *requestBody) Close() error { return nil }

// frameSender takes a response's frames: a ServeHTTP stream, or one request
// of an Exchange stream.
type frameSender interface {
	Send(*pluginpb.HTTPResponseFrame) error
}

// responseWriter holds the head back until the first body chunk fills or the
// handler returns, so a small response is exactly one frame.
type responseWriter struct {
	stream      frameSender
	header      http.Header
	status      int
	wroteHeader bool
	headSent    bool
	buf         []byte
	file        *pluginpb.FileAnswer
	err         error

	// The messages a response is sent as, reused by each send: a Send
	// marshals its frame before it returns. With the writers' pool, that
	// saves an allocation per message, header and body on every request.
	frame   pluginpb.HTTPResponseFrame
	head    pluginpb.HTTPResponse
	headers []pluginpb.Header
	heads   []*pluginpb.Header
}

// keptBodyBuffer bounds the body buffer a writer keeps for its next
// response: a large answer's buffer goes to the collector rather than
// staying with a pooled writer.
const keptBodyBuffer = 16 << 10

// recycle readies w for another request, keeping its header map, buffers
// and messages but nothing they pointed to.
func (w *responseWriter) recycle() {
	clear(w.header)
	clear(w.headers)
	clear(w.heads)
	buf := w.buf[:0]
	if cap(buf) > keptBodyBuffer {
		buf = nil
	}
	w.stream, w.status, w.wroteHeader, w.headSent, w.buf, w.file, w.err = nil, 0, false, false, buf, nil, nil
	w.frame.Head, w.frame.Body, w.frame.End = nil, nil, false
	w.head.Status, w.head.Headers, w.head.File = 0, nil, nil
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 {
		// Interim responses are not forwarded; the core sends 100
		// Continue itself when the body is read.
		return
	}
	w.wroteHeader = true
	w.status = code
}

func (w *responseWriter) Write(p []byte) (int, error) { return writeBody(w, p) }

// WriteString is Write without copying s to a []byte first (io.WriteString
// and fmt.Fprint use it).
func (w *responseWriter) WriteString(s string) (int, error) { return writeBody(w, s) }

func writeBody[B string | []byte](w *responseWriter, p B) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n := len(p)
	for len(p) > 0 {
		room := ChunkSize - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == ChunkSize {
			if err := w.send(false); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// Flush sends what is buffered now (streaming responses, server-sent events).
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.send(false)
}

func (w *responseWriter) send(end bool) error {
	if w.err != nil {
		return w.err
	}
	f := &w.frame
	f.Head, f.Body, f.End = nil, w.buf, end
	if !w.headSent {
		w.head.Status, w.head.Headers, w.head.File = int32(w.status), w.headersToProto(), w.file
		f.Head = &w.head
		w.headSent = true
	}
	w.err = w.stream.Send(f)
	w.buf = w.buf[:0]
	return w.err
}

func (w *responseWriter) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(true)
}

func (w *responseWriter) reset(code int) {
	w.header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	w.buf = append(w.buf[:0], http.StatusText(code)+"\n"...)
	w.file = nil
	w.status, w.wroteHeader = code, true
}

// headersToProto is the header map as the head's messages, in w's reused
// slices.
func (w *responseWriter) headersToProto() []*pluginpb.Header {
	if n := len(w.header); cap(w.headers) < n {
		w.headers = make([]pluginpb.Header, n)
		w.heads = make([]*pluginpb.Header, n)
	}
	out := w.heads[:0]
	i := 0
	for k, v := range w.header {
		w.headers[i].Name, w.headers[i].Values = k, v
		out = append(out, &w.headers[i])
		i++
	}
	return out
}

// IsHopByHop reports headers that describe one connection, not the message
// (RFC 9110 section 7.6.1). They never cross the plugin connection: the
// core drops them both ways, and sdktest does the same.
func IsHopByHop(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
