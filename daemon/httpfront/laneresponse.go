package httpfront

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Writing answers in the fast lane.
//
// laneResponse is the lane's http.ResponseWriter. It follows net/http's
// HTTP/1.1 response writer rule by rule (server.go: response,
// chunkWriter.writeHeader), so a handler cannot tell the two apart and a
// client gets the same answer: the head waits until the handler is done
// or has written more than 2 KiB, and then a missing Content-Length is
// computed or the body is chunked; a missing Content-Type is sniffed; Date
// is added; 204, 304 and HEAD carry no body; a short body closes the
// connection. TestLaneAnswersAsNetHTTPDoes compares them answer by answer.
//
// What differs is the cost: the head is written without a header clone,
// and the whole answer, head and body, leaves in one write when it fits
// in maxLaneOut.

const (
	// laneChunkingAfter is net/http's bufferBeforeChunkingSize: a body
	// longer than this, without a Content-Length, is chunked.
	laneChunkingAfter = 2048
	// maxLaneOut bounds the bytes held before a write.
	maxLaneOut = maxMemFile + 8<<10
	// laneSniffLen is how much of the body Content-Type sniffing reads.
	laneSniffLen = 512
	// laneCopyUpTo: a kept body up to this size is copied behind the
	// head; a larger one is written from where it is, with the head
	// (writev).
	laneCopyUpTo = 16 << 10
)

var laneOutPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

type laneResponse struct {
	dst io.Writer
	rf  io.ReaderFrom // the connection's sendfile, or nil
	req *http.Request

	header http.Header

	status        int
	wroteHeader   bool // WriteHeader was called (or implied)
	headSent      bool // the whole head is in out (or on the wire)
	chunking      bool
	contentLength int64 // from the handler's Content-Length, or -1
	written       int64
	handlerDone   bool
	// closeAfter: the connection closes after this answer.
	closeAfter bool
	// shuttingDown: the server is closing (nil: never); the answer says
	// it is the last.
	shuttingDown *atomic.Bool
	werr         error

	// What WriteHeader saw of the header, for the parts of the head that
	// wait for the body (see frameHead).
	late struct {
		hasDate, hasType, hasCE, hasTE, hasCLHeader, trailers bool
		// chunkUnlessDone: the body is chunked unless the handler ends
		// before the head must go (then it gets a Content-Length).
		chunkUnlessDone bool
		connClose       bool
	}
	// declared names the trailers the handler announced.
	declared []string

	// pending holds the body written before the head was complete (at
	// most laneChunkingAfter bytes); out the bytes not yet written.
	pending *[]byte
	out     *[]byte
	// tail is a kept body that follows out, written with it (writev)
	// rather than copied.
	tail []byte
}

func newLaneResponse(dst io.Writer, rf io.ReaderFrom, req *http.Request, shuttingDown *atomic.Bool) *laneResponse {
	w := new(laneResponse)
	w.start(dst, rf, req, shuttingDown)
	return w
}

// start readies w to answer req. It keeps w's header map, which must be
// empty: a pooled laneRequest's map is cleared on release, so a request
// does not allocate one.
func (w *laneResponse) start(dst io.Writer, rf io.ReaderFrom, req *http.Request, shuttingDown *atomic.Bool) {
	*w = laneResponse{
		dst: dst, rf: rf, req: req, header: w.header,
		contentLength: -1, shuttingDown: shuttingDown,
		out: laneOutPool.Get().(*[]byte),
	}
}

// Header is the handler's header. Changes after WriteHeader do not reach
// the head (net/http snapshots it there); trailers are read at the end.
func (w *laneResponse) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, 8)
	}
	return w.header
}

// keptWriter takes a whole 200 answer to a plain GET or HEAD in one call:
// head is the status line and header (laneHeadPrefix), body the content,
// which stays untouched and so is written without a copy. It reports
// false, having done nothing, where it cannot.
type keptWriter interface {
	writeKept(head, body []byte, withBody bool) bool
}

// laneHeadPrefix is h as the lane's head for a 200 answer with the
// Content-Length and Content-Type h holds: the status line and the sorted
// header, to which writeKept adds only Date, Connection and the blank
// line, as frameHead and endHead would. It is nil for a header whose head
// needs more of the rules.
func laneHeadPrefix(h http.Header) []byte {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return nil
		}
	}
	for _, k := range []string{"Transfer-Encoding", "Trailer", "Connection", "Date", "Content-Encoding"} {
		if _, ok := h[k]; ok {
			return nil
		}
	}
	if first(h, "Content-Type") == "" || first(h, "Content-Length") == "" {
		return nil
	}
	if _, err := strconv.ParseUint(first(h, "Content-Length"), 10, 63); err != nil {
		return nil
	}
	return appendHeader(appendStatusLine(nil, http.StatusOK), h, func(string) bool { return false })
}

func (w *laneResponse) writeKept(head, body []byte, withBody bool) bool {
	if w.wroteHeader || len(w.header) > 0 || w.out == nil {
		return false
	}
	w.wroteHeader, w.headSent, w.status = true, true, http.StatusOK
	w.contentLength = int64(len(body))
	w.closeAfter = w.req.Close || w.shuttingDown != nil && w.shuttingDown.Load()
	out := append(*w.out, head...)
	out = appendDate(out, time.Now())
	if w.closeAfter {
		out = append(out, "Connection: close\r\n"...)
	}
	*w.out = append(out, "\r\n"...)
	if withBody {
		w.written = int64(len(body))
		if len(body) > laneCopyUpTo {
			w.tail = body
		} else {
			*w.out = append(*w.out, body...)
		}
	}
	return true
}

// first is h.Get(key) for a canonical key, without Get's
// canonicalization.
func first(h http.Header, key string) string { return firstOf(h[key]) }

func firstOf(values []string) string {
	if len(values) > 0 {
		return values[0]
	}
	return ""
}

func (w *laneResponse) WriteHeader(code int) {
	if w.wroteHeader || w.out == nil {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An informational answer goes out at once; the header map stays
		// as it is (RFC 8297).
		out := appendStatusLine(*w.out, code)
		out = appendHeader(out, w.header, func(k string) bool {
			return k == "Content-Length" || k == "Transfer-Encoding"
		})
		*w.out = append(out, "\r\n"...)
		w.flushOut()
		return
	}
	w.wroteHeader = true
	w.status = code
	// A Content-Length the handler set, even one dropped as invalid, rules
	// out a computed one (so such a body is chunked, as in net/http).
	_, w.late.hasCLHeader = w.header["Content-Length"]
	if cl := first(w.header, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.header.Del("Content-Length")
		}
	}
	w.frameHead()
}

func (w *laneResponse) Write(p []byte) (int, error) {
	if w.out == nil {
		return 0, errLaneFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headSent {
		if w.pending == nil {
			w.pending = laneOutPool.Get().(*[]byte)
		}
		if len(*w.pending)+len(p) <= laneChunkingAfter {
			*w.pending = append(*w.pending, p...)
			return len(p), nil
		}
		first := p
		if len(*w.pending) > 0 {
			first = append(*w.pending, p...)
			*w.pending = first
		}
		w.endHead(first)
		w.body(first)
	} else {
		w.body(p)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	return len(p), nil
}

// body adds p to the answer, framed, or drops it for HEAD.
func (w *laneResponse) body(p []byte) {
	if w.req.Method == http.MethodHead || len(p) == 0 || w.werr != nil {
		return
	}
	out := *w.out
	if w.chunking {
		out = strconv.AppendInt(out, int64(len(p)), 16)
		out = append(out, "\r\n"...)
	}
	if len(out)+len(p) > maxLaneOut {
		*w.out = out
		w.flushOut()
		if w.werr == nil {
			_, w.werr = w.dst.Write(p)
		}
		out = *w.out
	} else {
		out = append(out, p...)
	}
	if w.chunking {
		out = append(out, "\r\n"...)
	}
	*w.out = out
}

// completeHead ends the head with the body written so far and moves that
// body behind it.
func (w *laneResponse) completeHead() {
	if w.headSent {
		return
	}
	var p []byte
	if w.pending != nil {
		p = *w.pending
	}
	w.endHead(p)
	w.body(p)
}

// Flush sends what the handler wrote so far.
func (w *laneResponse) Flush() {
	if w.out == nil {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.completeHead()
	w.flushOut()
}

// ReadFrom sends a file body with sendfile once the head is out, as
// net/http's response does.
func (w *laneResponse) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	if !w.headSent {
		n0, err := io.Copy(writerOnly{w}, io.LimitReader(src, laneSniffLen))
		n += n0
		if err != nil || n0 < laneSniffLen {
			return n, err
		}
	}
	w.Flush()
	if w.werr != nil {
		return n, w.werr
	}
	if w.rf != nil && !w.chunking && bodyAllowedForStatus(w.status) && w.req.Method != http.MethodHead {
		n0, err := w.rf.ReadFrom(src)
		n += n0
		w.written += n0
		if err != nil {
			w.werr = err
		}
		return n, err
	}
	n0, err := io.Copy(writerOnly{w}, src)
	return n + n0, err
}

// twoWriter writes two slices as one (writev).
type twoWriter interface {
	writeTwo(a, b []byte) error
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

func (w *laneResponse) flushOut() {
	switch {
	case w.werr != nil:
	case w.tail != nil:
		if tw, ok := w.dst.(twoWriter); ok {
			w.werr = tw.writeTwo(*w.out, w.tail)
		} else {
			bufs := net.Buffers{*w.out, w.tail}
			_, w.werr = bufs.WriteTo(w.dst)
		}
		w.tail = nil
	case len(*w.out) > 0:
		_, w.werr = w.dst.Write(*w.out)
	}
	*w.out = (*w.out)[:0]
}

// finish completes the answer after the handler returned and writes it.
// It reports whether the connection may carry another request.
func (w *laneResponse) finish() bool {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.completeHead()
	if w.chunking {
		out := append(*w.out, "0\r\n"...)
		out = w.appendTrailers(out)
		*w.out = append(out, "\r\n"...)
	}
	w.flushOut()
	for _, b := range []*[]byte{w.out, w.pending} {
		if b != nil && cap(*b) <= maxLaneOut {
			*b = (*b)[:0]
			laneOutPool.Put(b)
		}
	}
	w.out, w.pending = nil, nil
	if w.closeAfter || w.werr != nil {
		return false
	}
	// A body shorter than its Content-Length leaves the client waiting
	// for the rest.
	return w.req.Method == http.MethodHead || w.contentLength == -1 ||
		!bodyAllowedForStatus(w.status) || w.contentLength == w.written
}

// frameHead starts the head when WriteHeader is called: the status line
// and the handler's header, less what the framing removes, sorted by name
// (net/http's chunkWriter.writeHeader for HTTP/1.1, which writes the
// header as it was at WriteHeader). Only the Content-Length a finished
// handler gets, a sniffed Content-Type and the choice of chunking wait
// for the body; they come after the handler's header, as in net/http, so
// endHead appends them. When none of them applies, the head is complete
// here.
func (w *laneResponse) frameHead() {
	isHEAD := w.req.Method == http.MethodHead
	bodyOK := bodyAllowedForStatus(w.status)
	l := &w.late
	// One pass over the header: the pairs to write, and the names the
	// rules look at.
	var pairsBuf [16]headerPair
	pairs := pairsBuf[:0]
	var te, conn, upgrade string
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			l.trailers = true
			continue
		}
		switch k {
		case "Transfer-Encoding":
			te = firstOf(vv)
		case "Content-Type":
			l.hasType = true
		case "Date":
			l.hasDate = true
		case "Content-Encoding":
			l.hasCE = firstOf(vv) != ""
		case "Connection":
			conn = firstOf(vv)
		case "Upgrade":
			upgrade = firstOf(vv)
		case "Trailer":
			for _, v := range vv {
				l.trailers = true
				for _, t := range strings.Split(v, ",") {
					if t = http.CanonicalHeaderKey(strings.Trim(t, " \t")); t != "" && httpguts.ValidTrailerHeader(t) {
						w.declared = append(w.declared, t)
					}
				}
			}
		}
		pairs = append(pairs, headerPair{k, vv})
	}
	l.hasTE = te != ""
	hasCL := w.contentLength != -1
	if w.req.Close || conn == "close" || w.shuttingDown != nil && w.shuttingDown.Load() {
		w.closeAfter = true
	}
	var dropCL, dropTE, dropCT, dropConn bool
	if !bodyOK {
		dropCL, dropTE = true, true
		dropCT = w.status == http.StatusNotModified
	}
	if hasCL && l.hasTE && te != "identity" {
		dropCL, hasCL = true, false
	}
	switch {
	case isHEAD || !bodyOK || w.status == http.StatusNoContent:
		dropTE = true
	case hasCL:
		dropTE = true
	case l.hasTE && te == "identity":
		w.closeAfter = true
		dropTE = true
	default:
		l.chunkUnlessDone = true
		dropTE = dropTE || te == "chunked"
	}
	if w.closeAfter && !(w.status == http.StatusSwitchingProtocols && upgrade != "") {
		dropConn, l.connClose = true, true
	}
	kept := pairs[:0]
	for _, p := range pairs {
		switch {
		case p.name == "Content-Length" && dropCL, p.name == "Transfer-Encoding" && dropTE,
			p.name == "Content-Type" && dropCT, p.name == "Connection" && dropConn:
		default:
			kept = append(kept, p)
		}
	}
	*w.out = appendPairs(appendStatusLine(*w.out, w.status), kept)

	autoLength := !l.trailers && !l.hasTE && bodyOK && !l.hasCLHeader
	sniff := bodyOK && !l.hasCE && !l.hasType && !l.hasTE
	if !autoLength && !sniff && !l.chunkUnlessDone {
		w.endHead(nil)
	}
}

// endHead ends the head begun by frameHead, given the body's first bytes
// p (all of it when the handler is done).
func (w *laneResponse) endHead(p []byte) {
	w.headSent = true
	l := &w.late
	bodyOK := bodyAllowedForStatus(w.status)
	out := *w.out
	if !l.hasDate {
		out = appendDate(out, time.Now())
	}
	if w.handlerDone && !l.trailers && !l.hasTE && bodyOK && !l.hasCLHeader && (w.req.Method != http.MethodHead || len(p) > 0) {
		w.contentLength = int64(len(p))
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(p)), 10)
		out = append(out, "\r\n"...)
	} else if l.chunkUnlessDone {
		w.chunking = true
	}
	if bodyOK && !l.hasCE && !l.hasType && !l.hasTE && len(p) > 0 {
		out = append(out, "Content-Type: "...)
		out = append(out, http.DetectContentType(p)...)
		out = append(out, "\r\n"...)
	}
	if l.connClose {
		out = append(out, "Connection: close\r\n"...)
	}
	if w.chunking {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	*w.out = append(out, "\r\n"...)
}

// dateLine is the Date header of one second, formatted once.
type dateLine struct {
	sec  int64
	line []byte
}

var laneDate atomic.Pointer[dateLine]

// appendDate adds the Date header for now, formatting it once a second.
func appendDate(out []byte, now time.Time) []byte {
	sec := now.Unix()
	d := laneDate.Load()
	if d == nil || d.sec != sec {
		line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
		d = &dateLine{sec: sec, line: append(line, "\r\n"...)}
		laneDate.Store(d)
	}
	return append(out, d.line...)
}

// appendTrailers adds the trailers the handler declared or prefixed with
// http.TrailerPrefix, as net/http's finalTrailers does.
func (w *laneResponse) appendTrailers(out []byte) []byte {
	t := http.Header{}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			t[name] = vv
		}
	}
	for _, k := range w.declared {
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return appendHeader(out, t, func(string) bool { return false })
}

// appendStatusLine is net/http's writeStatusLine for HTTP/1.1.
func appendStatusLine(out []byte, code int) []byte {
	out = append(out, "HTTP/1.1 "...)
	if text := http.StatusText(code); text != "" {
		out = strconv.AppendInt(out, int64(code), 10)
		out = append(out, ' ')
		out = append(out, text...)
		return append(out, "\r\n"...)
	}
	return fmt.Appendf(out, "%03d status code %d\r\n", code, code)
}

// appendHeader writes h, but the names skip rejects, as net/http's
// Header.Write does (see appendPairs).
func appendHeader(out []byte, h http.Header, skip func(string) bool) []byte {
	var pairsBuf [16]headerPair
	pairs := pairsBuf[:0]
	for k, vv := range h {
		if !skip(k) {
			pairs = append(pairs, headerPair{k, vv})
		}
	}
	return appendPairs(out, pairs)
}

// headerPair is a header name and its values.
type headerPair struct {
	name   string
	values []string
}

// appendPairs writes the fields sorted by name, as net/http does:
// invalid names dropped, line breaks in values turned to spaces, values
// trimmed.
func appendPairs(out []byte, pairs []headerPair) []byte {
	slices.SortFunc(pairs, func(a, b headerPair) int { return strings.Compare(a.name, b.name) })
	for _, p := range pairs {
		if !httpguts.ValidHeaderFieldName(p.name) {
			continue
		}
		for _, v := range p.values {
			out = append(out, p.name...)
			out = append(out, ": "...)
			out = append(out, cleanValue(v)...)
			out = append(out, "\r\n"...)
		}
	}
	return out
}

// cleanValue is a header value with its line breaks turned to spaces and
// its ends trimmed, as net/http writes it; most values need neither.
func cleanValue(v string) string {
	plain := v == "" || v[0] != ' ' && v[0] != '\t' && v[len(v)-1] != ' ' && v[len(v)-1] != '\t'
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] != '\r' && v[i] != '\n'
	}
	if plain {
		return v
	}
	v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	return strings.Trim(v, " \t")
}

func bodyAllowedForStatus(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// errLaneFinished answers writes made after the handler returned.
var errLaneFinished = errors.New("http: write after the handler returned")
