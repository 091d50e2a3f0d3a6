package httpfront

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/exchange"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// Forward is the handler of one route: it sends each request to the
// route's plugin and streams the answer back.
type Forward struct {
	Route    string // route id, e.g. "GET /guestbook"
	Listener string
	Plugin   *pluginhost.Plugin
	// Timeout bounds the whole plugin call (504 past it).
	Timeout time.Duration
	// MaxBodyBytes bounds the request body (413 past it).
	MaxBodyBytes int64
	Log          *slog.Logger

	files fileCache
	names struct {
		once sync.Once
		list []string
	}
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, sdk.ChunkSize); return &b }}

func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(w)
	info.plugin = f.Plugin.Name()
	if cacheable(r) {
		if e := f.files.get(r.URL.Path); e != nil && f.files.serve(w, r, r.URL.Path, e) {
			info.outcome = "cached"
			return
		}
	}
	if r.ContentLength > f.MaxBodyBytes {
		fail(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Msg: "request body too large", Close: true})
		return
	}
	release, err := f.Plugin.Acquire()
	if err != nil {
		fail(w, r, &Error{Status: http.StatusServiceUnavailable, Msg: "plugin overloaded", RetryAfter: 1, Err: err})
		return
	}
	defer release()
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, f.MaxBodyBytes)
	}

	for attempt := 0; ; attempt++ {
		err := f.forward(w, r)
		if err == nil {
			return
		}
		var fe *Error
		if errors.As(err, &fe) && fe.Retry && attempt == 0 {
			// The file changed between the plugin's answer and our open:
			// ask again once (only GET/HEAD answer with files).
			continue
		}
		fail(w, r, err)
		return
	}
}

// forward makes one plugin call. An *Error it returns has not touched w.
func (f *Forward) forward(w http.ResponseWriter, r *http.Request) error {
	out := outgoings.Get().(*outgoing)
	defer out.recycle() // deferred first, so it runs after the body's sender is done
	if err := f.requestHead(r, out); err != nil {
		return err
	}
	ctx := withTimeout(r.Context(), f.Timeout)
	defer ctx.cancel()
	client, err := f.Plugin.Client(ctx)
	if err != nil {
		return f.callError(r, err)
	}
	if exchange.Fits(f.Plugin.Description(), r.ContentLength) {
		return f.exchange(ctx, w, r, client, &out.frame)
	}
	stream, client, err := open(f, ctx, r, client, func(c pluginpb.PluginClient) (pluginpb.Plugin_ServeHTTPClient, error) {
		return c.ServeHTTP(ctx)
	})
	if err != nil {
		return f.callError(r, err)
	}

	first := &out.frame
	var sendErr chan error
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		first.End = true
		if err := stream.Send(first); err != nil {
			return f.callError(r, recvErr(stream, err))
		}
	} else {
		// The body streams while the answer is read, so a plugin may answer
		// before it has read everything, and memory stays at a few chunks.
		sendErr = make(chan error, 1)
		go func() { sendErr <- sendBody(stream, first, r.Body) }()
	}
	// bodyErr waits for the sender; a body that broke a limit outranks the
	// plugin's reaction to the cut-off stream.
	bodyErr := func() error {
		if sendErr == nil {
			return nil
		}
		err := <-sendErr
		sendErr = nil
		return err
	}
	defer func() {
		ctx.cancel()
		bodyErr()
	}()
	return f.relay(w, r, stream, client, ctx, bodyErr)
}

// exchange sends a request whose whole body fits in one frame over the
// plugin connection's Exchange stream, and relays the answer.
func (f *Forward) exchange(ctx *callCtx, w http.ResponseWriter, r *http.Request, client pluginpb.PluginClient, first *pluginpb.HTTPRequestFrame) error {
	first.End = true
	if r.ContentLength > 0 {
		bp := chunkPool.Get().(*[]byte)
		defer chunkPool.Put(bp)
		n, err := io.ReadFull(r.Body, (*bp)[:r.ContentLength])
		if err != nil {
			return f.bodyError(r, err)
		}
		first.Body = (*bp)[:n]
	}
	call, client, err := open(f, ctx, r, client, func(c pluginpb.PluginClient) (*exchange.Call, error) {
		x, err := exchange.For(c)
		if err != nil {
			return nil, err
		}
		return x.Start(ctx, first)
	})
	if err != nil {
		return f.callError(r, err)
	}
	defer call.Close()
	return f.relay(w, r, call, client, ctx, func() error { return nil })
}

// open starts a call with start on client. When the plugin's connection
// turns out to be gone (Unavailable: it crashed a moment ago), nothing was
// delivered, so it waits for the restarted process and starts the call
// there, which is not a retry. It returns the client the call went to.
func open[S any](f *Forward, ctx context.Context, r *http.Request, client pluginpb.PluginClient, start func(pluginpb.PluginClient) (S, error)) (S, pluginpb.PluginClient, error) {
	s, err := start(client)
	if err != nil && status.Code(err) == codes.Unavailable && r.Context().Err() == nil {
		f.Plugin.Unreachable(client)
		if client, err = f.Plugin.Client(ctx); err == nil {
			s, err = start(client)
		}
	}
	return s, client, err
}

// answerStream is where a plugin's answer frames come from: a ServeHTTP
// call, or one request of an Exchange stream.
type answerStream interface {
	Recv() (*pluginpb.HTTPResponseFrame, error)
}

// relay passes the plugin's answer on to the client. bodyErr reports a
// request body that failed while being sent.
func (f *Forward) relay(w http.ResponseWriter, r *http.Request, stream answerStream, client pluginpb.PluginClient, ctx *callCtx, bodyErr func() error) error {
	frame, err := stream.Recv()
	if err != nil {
		if be := bodyErr(); be != nil {
			return f.bodyError(r, be)
		}
		if status.Code(err) == codes.Unavailable {
			f.Plugin.Unreachable(client)
		}
		return f.callError(r, err)
	}
	head := frame.GetHead()
	if head == nil {
		return &Error{Status: http.StatusBadGateway, Msg: "bad gateway", Err: errors.New("plugin answered without a response head")}
	}
	if file := head.GetFile(); file != nil {
		ctx.cancel()
		return f.serveFile(w, r, head, file)
	}
	status := int(head.GetStatus())
	if status < 200 || status > 999 {
		return &Error{Status: http.StatusBadGateway, Msg: "bad gateway", Err: errors.New("plugin answered status " + strconv.Itoa(status))}
	}
	exchange.CopyHeaders(w.Header(), head.GetHeaders())
	if frame.GetEnd() && w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(frame.GetBody())))
	}
	w.WriteHeader(status)
	for {
		if len(frame.GetBody()) > 0 {
			var err error
			if frame.GetEnd() {
				_, err = writeWhole(w, r, frame.GetBody()) // the whole rest: one write
			} else {
				_, err = w.Write(frame.GetBody())
			}
			if err != nil {
				// The client went away mid-answer; the deferred cancel
				// tells the plugin.
				infoFrom(w).outcome = "client went away"
				return nil
			}
		}
		if frame.GetEnd() {
			return nil
		}
		if frame, err = stream.Recv(); err != nil {
			// The head is out: the only honest signal left is a broken
			// connection, so the client cannot take a cut answer as whole.
			infoFrom(w).outcome = "plugin stream broke mid-answer: " + err.Error()
			panic(http.ErrAbortHandler)
		}
	}
}

// requestHead puts r in out's frame as the plugin protocol carries it.
// Its text fields are protobuf strings, which must be UTF-8, while HTTP
// allows other bytes in header values (obs-text) and a percent-decoded
// path may hold any: such a request is a 400 naming the part (encoded
// anyway, it was a 502 that blamed the plugin).
func (f *Forward) requestHead(r *http.Request, out *outgoing) error {
	if !utf8.ValidString(r.URL.Path) || !utf8.ValidString(r.RequestURI) {
		return notUTF8("the path")
	}
	h := &out.head
	h.Method, h.Target, h.Path, h.RawQuery, h.Proto, h.Host = r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Proto, r.Host
	h.RemoteAddr, h.Route, h.ContentLength, h.Tls, h.Listener = r.RemoteAddr, f.Route, r.ContentLength, r.TLS != nil, f.Listener
	if cap(out.headers) < len(r.Header) {
		out.headers = make([]pluginpb.Header, len(r.Header))
		out.heads = make([]*pluginpb.Header, 0, len(r.Header))
	}
	h.Headers = out.heads[:0]
	for k, v := range r.Header {
		if sdk.IsHopByHop(k) {
			continue
		}
		for _, s := range v {
			if !utf8.ValidString(s) {
				return notUTF8("the header " + k)
			}
		}
		hv := &out.headers[len(h.Headers)]
		hv.Name, hv.Values = k, v
		h.Headers = append(h.Headers, hv)
	}
	out.frame.Head = h
	if names := f.wildcards(); len(names) > 0 {
		h.PathValues = make(map[string]string, len(names))
		for _, n := range names {
			h.PathValues[n] = r.PathValue(n)
		}
	}
	return nil
}

// outgoing is a request's messages to its plugin, kept from one request
// to the next: each is marshalled before its send returns, and forward
// is done with them when it returns. A head, its frame and its headers
// were three allocations a request and one more a header.
type outgoing struct {
	frame   pluginpb.HTTPRequestFrame
	head    pluginpb.HTTPRequest
	headers []pluginpb.Header
	heads   []*pluginpb.Header
}

var outgoings = sync.Pool{New: func() any { return new(outgoing) }}

// recycle clears what o pointed to (the request's strings, its body) and
// gives it back.
func (o *outgoing) recycle() {
	clear(o.headers)
	clear(o.heads[:cap(o.heads)])
	o.head.Reset()
	o.frame.Head, o.frame.Body, o.frame.End = nil, nil, false
	outgoings.Put(o)
}

func notUTF8(what string) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: "bad request: " + what + " is not UTF-8",
		Err: errors.New(what + " is not UTF-8, which the plugin protocol cannot carry")}
}

// wildcards names the route pattern's path values, parsed once per route
// rather than per request.
func (f *Forward) wildcards() []string {
	f.names.once.Do(func() { f.names.list = sdk.PatternWildcards(f.Route) })
	return f.names.list
}

// sendBody sends the head with the first chunk, then the rest in chunks.
func sendBody(stream pluginpb.Plugin_ServeHTTPClient, first *pluginpb.HTTPRequestFrame, body io.Reader) error {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	frame := first
	for {
		n, err := io.ReadFull(body, buf)
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			stream.CloseSend()
			return err
		}
		frame.Body, frame.End = buf[:n], end
		if err := stream.Send(frame); err != nil {
			return nil // the plugin side ended the call; Recv reports why
		}
		if end {
			return stream.CloseSend()
		}
		frame = &pluginpb.HTTPRequestFrame{}
	}
}

// recvErr returns the call's real status after a failed Send (Send only
// says io.EOF).
func recvErr(stream pluginpb.Plugin_ServeHTTPClient, err error) error {
	if err == io.EOF {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// callError maps a failed plugin call to its answer (DESIGN.md's table).
func (f *Forward) callError(r *http.Request, err error) error {
	if r.Context().Err() != nil {
		return &Error{ClientGone: true, Err: err}
	}
	switch {
	case errors.Is(err, pluginhost.ErrFailed):
		return &Error{Status: http.StatusServiceUnavailable, Msg: "service unavailable", Err: err}
	case errors.Is(err, pluginhost.ErrUnavailable):
		return &Error{Status: http.StatusBadGateway, Msg: "bad gateway", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Msg: "gateway timeout", Err: err}
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return &Error{Status: http.StatusGatewayTimeout, Msg: "gateway timeout", Err: err}
	case codes.ResourceExhausted:
		return &Error{Status: http.StatusServiceUnavailable, Msg: "service unavailable", RetryAfter: 1, Err: err}
	case codes.Unimplemented:
		return &Error{Status: http.StatusNotImplemented, Msg: "not implemented", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Msg: "bad gateway", Err: err}
}

// bodyError maps a failure to read the request body.
func (f *Forward) bodyError(r *http.Request, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Msg: "request body too large", Close: true, Err: err}
	}
	if r.Context().Err() != nil {
		return &Error{ClientGone: true, Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Msg: "bad request body", Close: true, Err: err}
}

// serveFile serves a plugin's file answer with net/http's ServeContent:
// Range, conditional requests, HEAD and sendfile, after checking the file
// opened is the one the plugin resolved.
func (f *Forward) serveFile(w http.ResponseWriter, r *http.Request, head *pluginpb.HTTPResponse, fa *pluginpb.FileAnswer) error {
	id := fa.GetIdentity()
	file := sdk.File{
		Path: fa.GetPath(),
		Identity: sdk.FileIdentity{
			Device: id.GetDevice(), Inode: id.GetInode(), Size: id.GetSize(), ModTimeNanos: id.GetMtimeUnixNano(),
		},
	}
	fh, err := sdk.OpenFile(file)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Msg: "file is changing, try again", RetryAfter: 1, Retry: true, Err: err}
	}
	if fa.GetCacheable() && cacheable(r) {
		f.files.put(r.URL.Path, head, file)
	}
	serveOpenFile(w, r, head, fa, fh)
	return nil
}

// serveOpenFile answers with an opened, verified file and closes it.
func serveOpenFile(w http.ResponseWriter, r *http.Request, head *pluginpb.HTTPResponse, fa *pluginpb.FileAnswer, fh *os.File) {
	defer fh.Close()
	setFileHeaders(w.Header(), head, fa)
	http.ServeContent(w, r, fa.GetPath(), time.Unix(0, fa.GetIdentity().GetMtimeUnixNano()), fh)
}

// setFileHeaders sets a file answer's headers on hdr.
func setFileHeaders(hdr http.Header, head *pluginpb.HTTPResponse, fa *pluginpb.FileAnswer) {
	exchange.CopyHeaders(hdr, head.GetHeaders())
	if ct := fa.GetContentType(); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	if et := fa.GetEtag(); et != "" {
		hdr.Set("Etag", et)
	}
}
