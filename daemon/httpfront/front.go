// Package httpfront is the HTTP side of socketd: net/http servers with every
// timeout and limit set, the access log, and the hop that forwards a request
// to its plugin and streams the answer back.
package httpfront

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/socketd/socketd/daemon/logline"
)

// Limits are the per-listener protections, each with an answer a client
// can understand (DESIGN.md, "Failure rules").
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds the request line and headers together; net/http
	// answers 431 past it.
	MaxHeaderBytes int
	// MaxURIBytes bounds the request target; past it the answer is 414.
	MaxURIBytes int
	// NoFastLane leaves every request to net/http (fast_lane = false).
	NoFastLane bool
}

// Observer is told of every request a listener finished, once, from the
// same record the access log line is made of (metrics use it), so status,
// duration and route are decided in one place. route is the pattern of
// the route that served the request, empty when none matched (404, 405).
type Observer interface {
	ObserveRequest(listener, route string, status int, took time.Duration)
}

// Server is one HTTP listener.
type Server struct {
	Name string
	srv  *http.Server
	lane *lane // nil where there is no fast lane
	log  *slog.Logger
}

// NewServer wraps handler with the front's checks and access log; obs (may
// be nil) is told of every finished request.
func NewServer(name string, lim Limits, handler http.Handler, obs Observer, log *slog.Logger) *Server {
	log = log.With("listener", name)
	h := &front{name: name, next: handler, maxURI: lim.MaxURIBytes, obs: obs, log: log}
	s := &Server{
		Name: name,
		log:  log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ConnState:         parkConnState,
			ConnContext:       withConn,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	if !lim.NoFastLane {
		s.lane = newLane(s.srv, h, lim, log)
	}
	return s
}

// Serve accepts on ln until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(parkIdle(ln, s.log, s.lane)); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.lane != nil {
		s.lane.beginShutdown()
	}
	err := s.srv.Shutdown(ctx)
	if s.lane != nil {
		if lerr := s.lane.wait(ctx); err == nil {
			err = lerr
		}
	}
	if err != nil {
		s.srv.Close()
	}
	return err
}

// front applies the checks net/http does not make and writes the access log.
type front struct {
	name   string
	next   http.Handler
	maxURI int
	obs    Observer
	log    *slog.Logger
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := recorders.Get().(*recorder)
	rec.ResponseWriter = w
	defer rec.release()
	info := &rec.info
	if f.maxURI > 0 && len(r.RequestURI) > f.maxURI {
		rec.Header().Set("Connection", "close")
		http.Error(rec, "414 URI too long", http.StatusRequestURITooLong)
	} else {
		f.next.ServeHTTP(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
		if info.outcome == "client went away" {
			// nginx's convention: nothing was sent because nobody listened.
			rec.status = statusClientClosed
		}
	}
	now := time.Now()
	took := now.Sub(start)
	// ServeMux stamps the matched pattern on the request, and a route's id
	// is its pattern.
	route := r.Pattern
	if f.obs != nil {
		f.obs.ObserveRequest(f.name, route, rec.status, took)
	}
	line := logline.Request{
		Method: r.Method, URI: r.RequestURI, Proto: r.Proto,
		Status: rec.status, Bytes: rec.bytes, Duration: took, Remote: r.RemoteAddr,
		Route: route, Plugin: info.plugin, Outcome: info.outcome,
	}
	// The daemon's handler writes the line itself; any other gets a
	// Record, handed to it directly rather than through Logger.LogAttrs,
	// which would walk the stack for a program counter the line has no
	// use for.
	h := f.log.Handler()
	if lh, ok := h.(*logline.Handler); ok && lh.WriteRequest(now, &line) {
		return
	}
	if h.Enabled(r.Context(), slog.LevelInfo) {
		h.Handle(r.Context(), line.Record(now))
	}
}

// statusClientClosed is logged (never sent) for requests whose client left
// before an answer, as nginx logs 499.
const statusClientClosed = 499

// requestInfo carries what the hop learned back to the access log. It
// travels in the front's recorder rather than the request's context, which
// would cost a copy of the request each time.
type requestInfo struct {
	plugin string
	// outcome explains a failure ("client went away", "plugin crashed", ...).
	outcome string
}

// infoFrom finds the request's record in the front's recorder; handlers
// called without the front (tests) get a throwaway one.
func infoFrom(w http.ResponseWriter) *requestInfo {
	if rec, ok := w.(*recorder); ok {
		return &rec.info
	}
	return &requestInfo{}
}

// recorder notes the status and size for the access log. It keeps
// io.ReaderFrom so file bodies still go out with sendfile.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	info   requestInfo
}

// recorders are reused: a handler keeps no ResponseWriter past its
// return (net/http's rule), and a recorder was a tenth of the bytes a
// kept file's request allocated.
var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (r *recorder) release() {
	*r = recorder{}
	recorders.Put(r)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// writeKept passes a kept file's answer to a ResponseWriter that takes it
// whole (the fast lane's), noting status and size.
func (r *recorder) writeKept(head, body []byte, withBody bool) bool {
	kw, ok := r.ResponseWriter.(keptWriter)
	if !ok || r.status != 0 || !kw.writeKept(head, body, withBody) {
		return false
	}
	r.status = http.StatusOK
	if withBody {
		r.bytes += int64(len(body))
	}
	return true
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
