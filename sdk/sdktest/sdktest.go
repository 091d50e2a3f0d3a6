// Package sdktest runs a socketd plugin in-process, behind the real plugin
// protocol, for unit tests: the plugin is registered on a gRPC server with
// the same code sdk.Serve uses, and every call goes through gRPC over an
// in-memory connection, as it would from the core. What a test sees is what
// the core would see: the description, the diagnostics, the response head
// and body chunks, the file answers, the bytes of a tcp connection.
//
//	func TestHello(t *testing.T) {
//		h := sdktest.New(t, &hello{})
//		h.MustConfigure(&sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /hello/{name}"}}})
//		resp, err := h.Do(httptest.NewRequest("GET", "/hello/gopher", nil))
//		if err != nil {
//			t.Fatal(err)
//		}
//		if resp.Status != 200 || string(resp.Body) != "Hello, gopher!\n" {
//			t.Errorf("got %d %q", resp.Status, resp.Body)
//		}
//	}
//
// Like the core, the harness checks each config block against the schema
// the plugin declared (unknown and missing required attributes are
// diagnostics, absent attributes arrive as null) and matches requests to the
// configured routes with net/http's ServeMux (route id, path values, 404,
// 405). It does not convert values to the declared types: write them as
// the core would send them (numbers as numbers, lists as lists).
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/exchange"
	"github.com/socketd/socketd/sdk/internal/frames"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// Addresses the harness reports for its clients: RemoteAddr is the
// client's address of every request, connection and datagram (the same as
// httptest's), LocalAddr the listener's address of every tcp connection.
const (
	RemoteAddr = "192.0.2.1:1234"
	LocalAddr  = "192.0.2.2:1313"
)

// Harness is a plugin running behind an in-process gRPC connection. Its
// methods may be called from several goroutines at once, except those that
// fail the test (New, Describe, Configure, MustConfigure, Dial), which
// belong to the test's goroutine.
type Harness struct {
	t      testing.TB
	client pluginpb.PluginClient
	desc   *pluginpb.DescribeResponse

	mu  sync.Mutex
	mux *http.ServeMux // the configured routes; nil until Configure
}

// New starts p behind a gRPC server on an in-memory connection and asks it
// to describe itself. Everything is stopped when the test ends.
func New(t testing.TB, p sdk.Plugin) *Harness {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(sdk.ServerOptions()...)
	sdk.RegisterServer(srv, p)
	go srv.Serve(ln)
	conn, err := grpc.NewClient("passthrough:///sdktest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(sdk.MaxMessageBytes), grpc.MaxCallSendMsgSize(sdk.MaxMessageBytes)),
	)
	if err != nil {
		t.Fatalf("sdktest: connect: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	h := &Harness{t: t, client: pluginpb.NewPluginClient(conn)}
	h.desc, err = h.client.Describe(t.Context(), &pluginpb.DescribeRequest{})
	if err != nil {
		t.Fatalf("sdktest: Describe: %v", err)
	}
	return h
}

// AttributeNames returns the names of s's attributes in order, and fails
// the test for any without a description or a type: `socketd plugins`
// shows both to the people writing config.hcl.
func AttributeNames(t testing.TB, s sdk.Schema) []string {
	t.Helper()
	var out []string
	for _, a := range s {
		if a.Description == "" {
			t.Errorf("attribute %s has no description", a.Name)
		}
		if a.Type == "" {
			t.Errorf("attribute %s has no type", a.Name)
		}
		out = append(out, a.Name)
	}
	return out
}

// Description is what the plugin told the core about itself.
type Description struct {
	sdk.Description
	// Protocols lists what the plugin serves: "http", "tcp" (a
	// StreamHandler) and "udp" (a DatagramHandler), in that order.
	Protocols []string
}

// Describe returns the plugin's description as it crossed the protocol.
// Attribute defaults come back decoded from JSON (numbers as float64).
func (h *Harness) Describe() Description {
	h.t.Helper()
	d := Description{Description: sdk.Description{
		Name:           h.desc.GetName(),
		Version:        h.desc.GetVersion(),
		PluginSchema:   h.schema(h.desc.GetPluginSchema()),
		RouteSchema:    h.schema(h.desc.GetRouteSchema()),
		ListenerSchema: h.schema(h.desc.GetListenerSchema()),
	}}
	for _, p := range h.desc.GetProtocols() {
		d.Protocols = append(d.Protocols, protocolNames[p])
	}
	return d
}

var protocolNames = map[pluginpb.Protocol]string{
	pluginpb.Protocol_PROTOCOL_HTTP:     "http",
	pluginpb.Protocol_PROTOCOL_STREAM:   "tcp",
	pluginpb.Protocol_PROTOCOL_DATAGRAM: "udp",
}

func (h *Harness) schema(s *pluginpb.Schema) sdk.Schema {
	var out sdk.Schema
	for _, a := range s.GetAttributes() {
		at := sdk.Attribute{Name: a.GetName(), Type: a.GetType(), Required: a.GetRequired(), Description: a.GetDescription()}
		if js := a.GetDefaultJson(); js != "" {
			if err := json.Unmarshal([]byte(js), &at.Default); err != nil {
				h.t.Errorf("sdktest: attribute %q: default %q is not JSON: %v", a.GetName(), js, err)
			}
		}
		out = append(out, at)
	}
	return out
}

func (h *Harness) serves(p pluginpb.Protocol) bool {
	return slices.Contains(h.desc.GetProtocols(), p)
}

// Configure sends cfg to the plugin as the core would and returns the
// diagnostics: first the core's own (an attribute the schema does not
// declare, a required one missing, a route or listener of a kind the
// plugin does not serve), which keep the plugin from being called, as they
// keep socketd from starting; then the plugin's. Build the blocks with
// sdk.MustJSON; a listener's Protocol is "tcp" (or empty) or "udp".
//
// After a Configure without errors, Do and RoundTrip match requests to
// cfg's routes. cfg.CheckOnly reaches the plugin as `socketd validate`
// sends it, to test that checking a config leaves nothing behind.
func (h *Harness) Configure(cfg *sdk.Config) sdk.Diagnostics {
	h.t.Helper()
	var diags sdk.Diagnostics
	req := &pluginpb.ConfigureRequest{CheckOnly: cfg.CheckOnly}
	req.PluginConfig, diags = h.block(cfg.Plugin, h.desc.GetPluginSchema(), diags, "", "")
	for _, r := range cfg.Routes {
		if !h.serves(pluginpb.Protocol_PROTOCOL_HTTP) {
			diags = append(diags, coreError("", "", nil, "Plugin cannot serve this",
				fmt.Sprintf("Plugin %q does not serve HTTP routes; route %q cannot use it.", h.desc.GetName(), r.ID)))
			continue
		}
		var js []byte
		js, diags = h.block(r.Config, h.desc.GetRouteSchema(), diags, r.ID, "")
		req.Routes = append(req.Routes, &pluginpb.RouteConfig{Id: r.ID, Config: js})
	}
	for _, l := range cfg.Listeners {
		var proto pluginpb.Protocol
		switch l.Protocol {
		case "", "tcp":
			proto = pluginpb.Protocol_PROTOCOL_STREAM
		case "udp":
			proto = pluginpb.Protocol_PROTOCOL_DATAGRAM
		default:
			h.t.Fatalf("sdktest: listener %q: protocol %q is not tcp or udp", l.Name, l.Protocol)
		}
		if !h.serves(proto) {
			diags = append(diags, coreError("", "", nil, "Plugin cannot serve this",
				fmt.Sprintf("Plugin %q does not serve %s listeners; listener %q cannot use it.", h.desc.GetName(), protocolNames[proto], l.Name)))
			continue
		}
		var js []byte
		js, diags = h.block(l.Config, h.desc.GetListenerSchema(), diags, "", l.Name)
		req.Listeners = append(req.Listeners, &pluginpb.ListenerConfig{Name: l.Name, Protocol: proto, Config: js})
	}
	if diags.HasErrors() {
		return diags
	}
	resp, err := h.client.Configure(h.t.Context(), req)
	if err != nil {
		h.t.Fatalf("sdktest: Configure: %v", err)
	}
	for _, d := range resp.GetDiagnostics() {
		sev := sdk.Error
		if d.GetSeverity() == pluginpb.Severity_SEVERITY_WARNING {
			sev = sdk.Warning
		}
		diags = append(diags, sdk.Diagnostic{
			Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(),
			Route: d.GetRoute(), Listener: d.GetListener(), Path: d.GetPath(),
		})
	}
	if !diags.HasErrors() {
		h.setRoutes(cfg.Routes)
	}
	return diags
}

// MustConfigure is Configure for a config that must be valid: any
// diagnostic, even a warning, fails the test.
func (h *Harness) MustConfigure(cfg *sdk.Config) {
	h.t.Helper()
	if diags := h.Configure(cfg); len(diags) > 0 {
		h.t.Fatalf("sdktest: Configure: %s", Format(diags))
	}
}

// Format renders diagnostics one per line, for test failure messages.
func Format(diags sdk.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == sdk.Warning {
			sev = "warning"
		}
		where := "plugin block"
		switch {
		case d.Route != "":
			where = "route " + strconv.Quote(d.Route)
		case d.Listener != "":
			where = "listener " + strconv.Quote(d.Listener)
		}
		if len(d.Path) > 0 {
			where += " at " + strings.Join(d.Path, ".")
		}
		fmt.Fprintf(&b, "\n%s: %s: %s", sev, where, d.Summary)
		if d.Detail != "" {
			b.WriteString(": " + d.Detail)
		}
	}
	return b.String()
}

func coreError(route, listener string, path []string, summary, detail string) sdk.Diagnostic {
	return sdk.Diagnostic{Severity: sdk.Error, Summary: summary, Detail: detail, Route: route, Listener: listener, Path: path}
}

// block checks one config block against its schema as the core does and
// returns the JSON the core would send: every declared attribute, null
// when absent.
func (h *Harness) block(raw sdk.RawConfig, schema *pluginpb.Schema, diags sdk.Diagnostics, route, listener string) ([]byte, sdk.Diagnostics) {
	obj := map[string]json.RawMessage{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &obj); err != nil {
			h.t.Fatalf("sdktest: config %s is not a JSON object: %v", raw, err)
		}
	}
	declared := map[string]bool{}
	for _, a := range schema.GetAttributes() {
		declared[a.GetName()] = true
		v, ok := obj[a.GetName()]
		if !ok {
			obj[a.GetName()] = json.RawMessage("null")
		}
		if a.GetRequired() && (!ok || string(v) == "null") {
			diags = append(diags, coreError(route, listener, nil, "Missing required argument",
				fmt.Sprintf("The argument %q is required, but no definition was found.", a.GetName())))
		}
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !declared[name] {
			diags = append(diags, coreError(route, listener, []string{name}, "Unsupported argument",
				fmt.Sprintf("An argument named %q is not expected here.", name)))
		}
	}
	js, err := json.Marshal(obj)
	if err != nil {
		h.t.Fatalf("sdktest: %v", err)
	}
	return js, diags
}

// setRoutes builds the ServeMux that matches requests to routes, as the
// core's route table does.
func (h *Harness) setRoutes(routes []sdk.RouteConfig) {
	h.t.Helper()
	mux := http.NewServeMux()
	for _, r := range routes {
		func() {
			defer func() {
				if p := recover(); p != nil {
					h.t.Fatalf("sdktest: route %q: %v", r.ID, p)
				}
			}()
			id := r.ID
			mux.HandleFunc(id, func(w http.ResponseWriter, req *http.Request) {
				m := w.(*match)
				m.route = id
				for _, name := range sdk.PatternWildcards(id) {
					m.values[name] = req.PathValue(name)
				}
			})
		}()
	}
	h.mu.Lock()
	h.mux = mux
	h.mu.Unlock()
}

// match records which route a request matched; when none does, it holds
// the ServeMux's answer (404, 405 with Allow, or a redirect).
type match struct {
	*httptest.ResponseRecorder
	route  string
	values map[string]string
}

// Response is a plugin's answer as the client of the core would get it.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the answer's headers, as the core passes them on.
	Header http.Header
	// Body is the whole answer: the bytes the plugin sent, or the file's
	// content (and Range, conditional requests, HEAD) for a file answer.
	Body []byte
	// File is the plugin's file answer (path, identity, ETag, Cacheable,
	// content type); nil when the plugin answered with bytes. The core
	// serves the file with http.ServeContent, and so does the harness.
	File *sdk.File
	// Route is the route the request matched (the RouteConfig.ID sent to
	// the plugin); empty when none did and the answer is the core's own
	// 404 or 405.
	Route string
}

// Do sends req to the plugin as the core would and returns the whole
// answer. The request's route is the configured route it matches (a
// request no route matches is answered 404 or 405 without reaching the
// plugin, as by the core); without routes, sdk.RouteID(req) is sent. The
// listener is sdk.Listener(req), TLS is req.TLS != nil, and RemoteAddr
// defaults to RemoteAddr.
//
// An error means the call failed where the core answers 502 (the plugin
// ended the call with an error, answered no head or an invalid status) or
// breaks the connection (the stream broke after the head); it is the
// gRPC status.
func (h *Harness) Do(req *http.Request) (*Response, error) {
	a, err := h.serve(req)
	if err != nil {
		return nil, err
	}
	defer a.body.Close()
	body, err := io.ReadAll(a.body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: a.status, Header: a.header, Body: body, File: a.file, Route: a.route}, nil
}

// RoundTrip is Do as an http.RoundTripper: the body streams as the plugin
// sends it (for streamed answers), and closing it cancels the call. It
// makes h usable as an http.Client's Transport; see Client.
func (h *Harness) RoundTrip(req *http.Request) (*http.Response, error) {
	a, err := h.serve(req)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{
		Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header,
		Body:          a.body,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(a.header.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	return resp, nil
}

// Client returns an http.Client whose requests go to the plugin through h.
// It does not follow redirects, so a test sees them as the core sends them.
func (h *Harness) Client() *http.Client {
	return &http.Client{
		Transport:     h,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// answer is one response: from the plugin, from a file it named, or from
// the route table when no route matched.
type answer struct {
	status int
	header http.Header
	body   io.ReadCloser
	file   *sdk.File
	route  string
}

func recorded(rec *httptest.ResponseRecorder, route string, file *sdk.File) *answer {
	res := rec.Result()
	return &answer{status: res.StatusCode, header: res.Header, body: res.Body, file: file, route: route}
}

func (h *Harness) serve(req *http.Request) (*answer, error) {
	route, values := sdk.RouteID(req), map[string]string(nil)
	h.mu.Lock()
	mux := h.mux
	h.mu.Unlock()
	if mux != nil {
		m := &match{ResponseRecorder: httptest.NewRecorder(), values: map[string]string{}}
		mux.ServeHTTP(m, req)
		if m.route == "" {
			return recorded(m.ResponseRecorder, "", nil), nil
		}
		if route == "" {
			route = m.route
		}
		values = m.values
	}
	for attempt := 0; ; attempt++ {
		a, err := h.forward(req, route, values)
		var fe *fileError
		if !errors.As(err, &fe) {
			return a, err
		}
		if attempt == 0 {
			continue // the core asks the plugin again, once
		}
		rec := httptest.NewRecorder()
		rec.Header().Set("Retry-After", "1")
		http.Error(rec, "503 file is changing, try again", http.StatusServiceUnavailable)
		return recorded(rec, route, fe.file), nil
	}
}

// fileError is a file answer the core could not open as the plugin
// resolved it: it asks the plugin again once, then answers 503.
type fileError struct {
	file *sdk.File
	err  error
}

func (e *fileError) Error() string { return e.err.Error() }

// forward sends the request to the plugin as the core's HTTP front does:
// on the Exchange stream when the whole request fits in one frame and the
// plugin offers it, else as a ServeHTTP call of its own.
func (h *Harness) forward(req *http.Request, route string, values map[string]string) (*answer, error) {
	ctx, cancel := context.WithCancel(req.Context())
	wake := cancel
	target := req.RequestURI
	if target == "" {
		target = req.URL.RequestURI()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	remote := req.RemoteAddr
	if remote == "" {
		remote = RemoteAddr
	}
	proto := req.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	head := &pluginpb.HTTPRequest{
		Method: req.Method, Target: target, Path: req.URL.Path, RawQuery: req.URL.RawQuery,
		Proto: proto, Host: host, RemoteAddr: remote, Route: route, PathValues: values,
		ContentLength: req.ContentLength, Tls: req.TLS != nil, Listener: sdk.Listener(req),
	}
	for k, v := range req.Header {
		if !sdk.IsHopByHop(k) {
			head.Headers = append(head.Headers, &pluginpb.Header{Name: k, Values: v})
		}
	}
	body := req.Body
	if body == nil || body == http.NoBody {
		body = nil
	} else if head.ContentLength == 0 {
		head.ContentLength = -1 // a client request with a body of unknown length
	}
	first := &pluginpb.HTTPRequestFrame{Head: head}
	var stream frameSource
	if exchange.Fits(h.desc, head.ContentLength) {
		call, err := h.exchange(ctx, first, body)
		if err != nil {
			cancel()
			return nil, err
		}
		stream = call
		stop := cancel
		// The call goes on to another request once closed: only once,
		// and after the context's end has woken a Recv waiting on it.
		cancel = sync.OnceFunc(func() { stop(); call.Close() })
	} else {
		s, err := h.client.ServeHTTP(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		stream = s
		if body == nil {
			first.End = true
			if err := s.Send(first); err != nil && err != io.EOF {
				cancel()
				return nil, err
			}
		} else {
			go sendBody(s, first, body)
		}
	}

	frame, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	rh := frame.GetHead()
	if rh == nil {
		cancel()
		return nil, errors.New("sdktest: the plugin answered without a response head (the core answers 502)")
	}
	if fa := rh.GetFile(); fa != nil {
		cancel()
		return serveFile(req, route, rh, fa)
	}
	status := int(rh.GetStatus())
	if status < 200 || status > 999 {
		cancel()
		return nil, fmt.Errorf("sdktest: the plugin answered status %d (the core answers 502)", status)
	}
	header := http.Header{}
	exchange.CopyHeaders(header, rh.GetHeaders())
	if frame.GetEnd() && header.Get("Content-Length") == "" {
		header.Set("Content-Length", strconv.Itoa(len(frame.GetBody())))
	}
	var rb io.ReadCloser = &frameReader{stream: stream, wake: wake, cancel: cancel, buf: frame.GetBody(), done: frame.GetEnd()}
	if req.Method == http.MethodHead {
		rb = headBody{rb} // net/http drops a HEAD answer's body
	}
	return &answer{status: status, header: header, route: route, body: rb}, nil
}

// frameSource yields an answer's frames: a ServeHTTP call or an Exchange
// call.
type frameSource interface {
	Recv() (*pluginpb.HTTPResponseFrame, error)
}

// exchange sends a request whose whole body fits in one frame on the
// plugin's Exchange stream.
func (h *Harness) exchange(ctx context.Context, first *pluginpb.HTTPRequestFrame, body io.ReadCloser) (*exchange.Call, error) {
	first.End = true
	if body != nil {
		b, err := io.ReadAll(io.LimitReader(body, first.GetHead().GetContentLength()))
		body.Close()
		if err != nil {
			return nil, err
		}
		first.Body = b
	}
	x, err := exchange.For(h.client)
	if err != nil {
		return nil, err
	}
	return x.Start(ctx, first)
}

// headBody reads a HEAD answer's body to its end and returns none of it.
type headBody struct{ io.ReadCloser }

func (b headBody) Read([]byte) (int, error) {
	if _, err := io.Copy(io.Discard, b.ReadCloser); err != nil {
		return 0, err
	}
	return 0, io.EOF
}

// sendBody sends the head with the first chunk, then the rest in chunks
// of at most sdk.ChunkSize.
func sendBody(stream pluginpb.Plugin_ServeHTTPClient, first *pluginpb.HTTPRequestFrame, body io.ReadCloser) {
	defer body.Close()
	frame := first
	buf := make([]byte, sdk.ChunkSize)
	for {
		n, err := io.ReadFull(body, buf)
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			stream.CloseSend() // the plugin reads an unexpected EOF
			return
		}
		frame.Body, frame.End = buf[:n:n], end
		if stream.Send(frame) != nil {
			return
		}
		if end {
			stream.CloseSend()
			return
		}
		frame = &pluginpb.HTTPRequestFrame{}
		buf = make([]byte, sdk.ChunkSize)
	}
}

// frameReader reads the body frames of a response. Close may come from
// another goroutine, during a Read: it cancels first, which ends the Read.
type frameReader struct {
	stream frameSource
	wake   context.CancelFunc // ends the call's context
	cancel context.CancelFunc // ends the call
	mu     sync.Mutex         // a Read and the cancel's end of the call
	buf    []byte
	done   bool
	err    error
}

func (r *frameReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		f, err := r.stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.err = fmt.Errorf("sdktest: the response broke off (the core breaks the connection): %w", err)
			return 0, r.err
		}
		r.buf, r.done = f.GetBody(), f.GetEnd()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *frameReader) Close() error {
	r.wake()
	r.mu.Lock()
	r.cancel()
	if r.err == nil {
		r.err = errors.New("sdktest: read after the body was closed")
	}
	r.buf, r.done = nil, false
	r.mu.Unlock()
	return nil
}

// serveFile answers with the file the plugin named, as the core does:
// only if the opened file has the identity the plugin resolved.
func serveFile(req *http.Request, route string, head *pluginpb.HTTPResponse, fa *pluginpb.FileAnswer) (*answer, error) {
	id := fa.GetIdentity()
	f := &sdk.File{
		Path: fa.GetPath(),
		Identity: sdk.FileIdentity{
			Device: id.GetDevice(), Inode: id.GetInode(), Size: id.GetSize(), ModTimeNanos: id.GetMtimeUnixNano(),
		},
		ContentType: fa.GetContentType(),
		ETag:        fa.GetEtag(),
		Cacheable:   fa.GetCacheable(),
	}
	fh, err := sdk.OpenFile(*f)
	if err != nil {
		return nil, &fileError{file: f, err: err}
	}
	defer fh.Close()
	rec := httptest.NewRecorder()
	exchange.CopyHeaders(rec.Header(), head.GetHeaders())
	if f.ContentType != "" {
		rec.Header().Set("Content-Type", f.ContentType)
	}
	if f.ETag != "" {
		rec.Header().Set("Etag", f.ETag)
	}
	http.ServeContent(rec, req, f.Path, f.Identity.ModTime(), fh)
	return recorded(rec, route, f), nil
}

// Conn is the client's end of a tcp connection to the plugin's
// StreamHandler: what the client writes reaches the handler's Conn.Read,
// and what the handler writes comes out of Read.
type Conn struct {
	stream pluginpb.Plugin_ServeStreamClient
	cancel context.CancelFunc
	pipe   *frames.Pipe
}

// Dial opens a connection to the plugin as if listener had accepted it from
// RemoteAddr. Close it when done (it is closed when the test ends).
func (h *Harness) Dial(listener string) *Conn {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := h.client.ServeStream(ctx)
	if err != nil {
		cancel()
		h.t.Fatalf("sdktest: Dial: %v", err)
	}
	c := &Conn{stream: stream, cancel: cancel, pipe: frames.New(stream, nil, nil, net.ErrClosed)}
	if err := stream.Send(&pluginpb.StreamFrame{Open: &pluginpb.StreamOpen{
		Listener: listener, RemoteAddr: RemoteAddr, LocalAddr: LocalAddr,
	}}); err != nil && err != io.EOF {
		cancel()
		h.t.Fatalf("sdktest: Dial: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// Read reads what the handler wrote. It returns io.EOF once the handler
// has returned (or half-closed) and everything was read, and the call's
// error if the handler returned one or panicked (the core then closes the
// connection).
func (c *Conn) Read(p []byte) (int, error) { return c.pipe.Read(p) }

// Write sends p to the handler.
func (c *Conn) Write(p []byte) (int, error) { return c.pipe.Write(p) }

// CloseWrite half-closes the connection: the handler's Read returns
// io.EOF; the handler may still write.
func (c *Conn) CloseWrite() error {
	if err := c.pipe.CloseWrite(); err != nil && err != io.EOF {
		return err
	}
	return c.stream.CloseSend()
}

// Close ends the connection at once; the handler's context ends.
func (c *Conn) Close() error {
	c.pipe.Close()
	c.cancel()
	return nil
}

// Send delivers a datagram to the plugin's DatagramHandler as if listener
// had received it from RemoteAddr, and returns the reply (nil: none). An
// error is the handler's (the core logs it and sends nothing).
func (h *Harness) Send(listener string, data []byte) ([]byte, error) {
	reply, err := h.client.ServeDatagram(context.Background(), &pluginpb.Datagram{
		Listener: listener, RemoteAddr: RemoteAddr, Data: data,
	})
	if err != nil {
		return nil, err
	}
	if len(reply.GetData()) == 0 {
		return nil, nil
	}
	return reply.GetData(), nil
}
