package logline

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// slogLine is the access line through slog.
func slogLine(h slog.Handler, t time.Time, r *Request) {
	h.Handle(context.Background(), r.Record(t))
}

// compare writes r both ways, in both formats, and fails on any difference.
func compare(t *testing.T, listener string, when time.Time, r *Request) {
	t.Helper()
	for _, json := range []bool{false, true} {
		var fast, slow bytes.Buffer
		h := New(&fast, json, &slog.HandlerOptions{Level: slog.LevelInfo}).WithAttrs([]slog.Attr{slog.String("listener", listener)}).(*Handler)
		if !h.WriteRequest(when, r) {
			t.Fatal("WriteRequest declined a plain handler")
		}
		ref := New(&slow, json, &slog.HandlerOptions{Level: slog.LevelInfo}).Handler.WithAttrs([]slog.Attr{slog.String("listener", listener)})
		slogLine(ref, when, r)
		if fast.String() != slow.String() {
			t.Fatalf("json=%v\nWriteRequest: %q\nslog:         %q", json, fast.String(), slow.String())
		}
	}
}

func TestRequestLineMatchesSlog(t *testing.T) {
	when := time.Date(2026, 11, 24, 3, 44, 40, 971_000_000, time.UTC)
	compare(t, "web", when, &Request{Method: "GET", URI: "/", Proto: "HTTP/1.1", Status: 200, Bytes: 333,
		Duration: 2082299, Remote: "127.0.0.1:32844", Route: "GET /", Plugin: "static", Outcome: "cached"})
	// Quoting and escaping: spaces, quotes, control bytes, invalid UTF-8,
	// line separators, and an empty value.
	compare(t, "a b", when.Add(1500*time.Microsecond).In(time.FixedZone("X", -5*3600)), &Request{
		Method: "", URI: "/a b?q=\"x\"\\\n\t\x01\x7f\xff\u2028é", Proto: "HTTP/1.0", Status: 499,
		Duration: 0, Remote: "[::1]:1", Outcome: "plugin stream broke mid-answer: rpc error: code = Unavailable"})
}

func TestWriteRequestDeclinesWhatItCannotFormat(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, false, nil)
	if g, ok := h.WithGroup("g").(*Handler); ok && g.WriteRequest(time.Now(), &Request{}) {
		t.Error("a group kept the fast line")
	}
	if h.WithAttrs([]slog.Attr{slog.Int("n", 1)}).(*Handler).WriteRequest(time.Now(), &Request{}) {
		t.Error("an int attribute kept the fast line")
	}
	if New(&buf, false, &slog.HandlerOptions{AddSource: true}).WriteRequest(time.Now(), &Request{}) {
		t.Error("AddSource kept the fast line")
	}
	quiet := New(&buf, false, &slog.HandlerOptions{Level: slog.LevelWarn})
	if !quiet.WriteRequest(time.Now(), &Request{}) || buf.Len() != 0 {
		t.Errorf("a handler above Info wrote %q", buf.String())
	}
}

// FuzzRequestLineMatchesSlog compares WriteRequest with slog for any
// fields. Run it with -fuzzminimizetime 100x: minimizing an input of eight
// strings otherwise takes the fuzzer most of its time (0 execs/s shown).
func FuzzRequestLineMatchesSlog(f *testing.F) {
	f.Add("web", "GET", "/", "HTTP/1.1", 200, int64(333), int64(2082299), "127.0.0.1:1", "GET /", "static", "cached", int64(1795491880971000000))
	f.Add("", "", "\x00\"\\= é\u2029\xc3", "", 0, int64(-1), int64(-5), "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, listener, method, uri, proto string, status int, size, took int64, remote, route, plugin, outcome string, unixNano int64) {
		when := time.Unix(0, unixNano).UTC()
		if y := when.Year(); y < 0 || y >= 10000 {
			t.Skip("slog reports an error for years outside RFC 3339's four digits")
		}
		compare(t, listener, when, &Request{Method: method, URI: uri, Proto: proto, Status: status, Bytes: size,
			Duration: time.Duration(took), Remote: remote, Route: route, Plugin: plugin, Outcome: outcome})
	})
}

func BenchmarkRequestLine(b *testing.B) {
	r := &Request{Method: "GET", URI: "/test.jpg", Proto: "HTTP/1.1", Status: 200, Bytes: 28578,
		Duration: 123456, Remote: "127.0.0.1:45678", Route: "GET /", Plugin: "static", Outcome: "cached"}
	var sink discard
	b.Run("WriteRequest", func(b *testing.B) {
		h := New(sink, false, nil).WithAttrs([]slog.Attr{slog.String("listener", "web")}).(*Handler)
		b.ReportAllocs()
		for b.Loop() {
			h.WriteRequest(time.Now(), r)
		}
	})
	b.Run("slog", func(b *testing.B) {
		h := slog.NewTextHandler(sink, nil).WithAttrs([]slog.Attr{slog.String("listener", "web")})
		b.ReportAllocs()
		for b.Loop() {
			slogLine(h, time.Now(), r)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
