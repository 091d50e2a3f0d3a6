// Package logline is the daemon's log handler: slog's text or JSON
// handler, plus a fast way to write the access log's line.
//
// The access log is a line per HTTP request. Through slog it cost about
// 5 µs of a cached page's 55-60 µs of CPU (alternating runs under wrk
// -c64): a Record holds five attributes inline and the line has ten, the
// handler walks them generically and locks around the write. WriteRequest
// formats the same line, byte for byte (FuzzRequestLineMatchesSlog checks
// it against slog), straight into a pooled buffer and writes it once.
package logline

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/socketd/socketd/internal/jsonstr"
)

// Handler is a slog.Handler that writes text or JSON lines to w. Its
// WriteRequest writes the access log's line; everything else goes through
// slog's own handler.
type Handler struct {
	slog.Handler
	w     io.Writer
	json  bool
	level slog.Leveler
	// attrs are the attributes of With, formatted as they follow the
	// message.
	attrs []byte
	// fast is false once the line cannot be formatted here (a group, an
	// attribute without a key or of another kind than string,
	// ReplaceAttr, AddSource);
	// WriteRequest then reports false.
	fast bool
}

// New returns a handler writing to w, which must be safe for concurrent
// use and keep each Write whole (a logbuf.Writer, an *os.File), as JSON
// lines if json, else as slog's text.
func New(w io.Writer, json bool, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	h := &Handler{w: w, json: json, level: opts.Level, fast: opts.ReplaceAttr == nil && !opts.AddSource}
	if h.level == nil {
		h.level = slog.LevelInfo
	}
	if json {
		h.Handler = slog.NewJSONHandler(w, opts)
	} else {
		h.Handler = slog.NewTextHandler(w, opts)
	}
	return h
}

// WithAttrs keeps the fast line for string attributes.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(as)
	c.attrs = append([]byte(nil), h.attrs...)
	for _, a := range as {
		if a.Key == "" || a.Value.Kind() != slog.KindString {
			c.fast = false
			break
		}
		c.attrs = c.appendString(c.appendKey(c.attrs, a.Key), a.Value.String())
	}
	return &c
}

// WithGroup returns slog's own handler: the access line has no groups.
func (h *Handler) WithGroup(name string) slog.Handler { return h.Handler.WithGroup(name) }

// Request is what the access log says of one request.
type Request struct {
	Method, URI, Proto string
	Status             int
	Bytes              int64
	Duration           time.Duration
	Remote             string
	// Route, Plugin and Outcome are left out when empty.
	Route, Plugin, Outcome string
}

// Record is the line as a slog.Record, for handlers other than Handler.
func (r *Request) Record(t time.Time) slog.Record {
	rec := slog.NewRecord(t, slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("method", r.Method),
		slog.String("uri", r.URI),
		slog.String("proto", r.Proto),
		slog.Int("status", r.Status),
		slog.Int64("bytes", r.Bytes),
		slog.Duration("duration", r.Duration),
		slog.String("remote", r.Remote),
	)
	for _, f := range r.optional() {
		if f.value != "" {
			rec.AddAttrs(slog.String(f.key, f.value))
		}
	}
	return rec
}

type field struct{ key, value string }

func (r *Request) optional() [3]field {
	return [3]field{{"route", r.Route}, {"plugin", r.Plugin}, {"outcome", r.Outcome}}
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteRequest writes msg="request" at level Info with r's fields, as
// slog's handler would, and reports whether it did; false means the line
// is not formatted here (see Handler.fast) and the caller must use slog.
// A disabled Info level writes nothing and reports true.
func (h *Handler) WriteRequest(t time.Time, r *Request) bool {
	if !h.fast {
		return false
	}
	if h.level.Level() > slog.LevelInfo {
		return true
	}
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	if h.json {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request"`...)
	} else {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t)
		b = append(b, " level=INFO msg=request"...)
	}
	b = append(b, h.attrs...)
	b = h.appendString(h.appendPlainKey(b, "method"), r.Method)
	b = h.appendString(h.appendPlainKey(b, "uri"), r.URI)
	b = h.appendString(h.appendPlainKey(b, "proto"), r.Proto)
	b = strconv.AppendInt(h.appendPlainKey(b, "status"), int64(r.Status), 10)
	b = strconv.AppendInt(h.appendPlainKey(b, "bytes"), r.Bytes, 10)
	b = h.appendPlainKey(b, "duration")
	if h.json {
		b = strconv.AppendInt(b, int64(r.Duration), 10)
	} else {
		b = append(b, r.Duration.String()...)
	}
	b = h.appendString(h.appendPlainKey(b, "remote"), r.Remote)
	for _, f := range r.optional() {
		if f.value != "" {
			b = h.appendString(h.appendPlainKey(b, f.key), f.value)
		}
	}
	if h.json {
		b = append(b, '}')
	}
	b = append(b, '\n')
	h.w.Write(b) // a log with nowhere to go has no one to tell
	*bp = b
	linePool.Put(bp)
	return true
}

// Enabled and Handle are slog's handler's, promoted.
var _ slog.Handler = (*Handler)(nil)

func (h *Handler) appendKey(b []byte, key string) []byte {
	if h.json {
		b = append(b, ',')
		b = h.appendString(b, key)
		return append(b, ':')
	}
	b = append(b, ' ')
	b = h.appendString(b, key)
	return append(b, '=')
}

// appendPlainKey is appendKey for a key of the request line: letters only,
// so it is written as it is, with no check for quoting or escaping.
func (h *Handler) appendPlainKey(b []byte, key string) []byte {
	if h.json {
		b = append(b, ',', '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	b = append(b, ' ')
	b = append(b, key...)
	return append(b, '=')
}

// appendString appends s as slog writes a string: quoted when it must be
// in text, always quoted and escaped in JSON.
func (h *Handler) appendString(b []byte, s string) []byte {
	if h.json {
		b = append(b, '"')
		b = jsonstr.AppendEscaped(b, s, false) // slog does not escape <, > and &
		return append(b, '"')
	}
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// appendRFC3339Millis is slog's text time: RFC 3339 with exactly three
// digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	// RFC3339Nano trims trailing zeros; a tenth of a millisecond more
	// keeps four digits, of which the fourth is dropped.
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// quoteASCII marks the ASCII bytes that make slog quote a text value: a
// space, '=', the double quote and the control characters (a table: this
// runs over every byte of every value of every request line).
var quoteASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range byte(utf8.RuneSelf) {
		t[c] = c != '\\' && (c == ' ' || c == '=' || !jsonstr.Safe(c))
	}
	return t
}()

// needsQuoting is slog's rule for text values: empty, or holding a space,
// '=', a byte JSON would escape (the backslash excepted), invalid UTF-8,
// or a rune that is a space or not printable.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if quoteASCII[c] {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
