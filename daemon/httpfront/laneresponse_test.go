//go:build linux

package httpfront

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// laneCases are handlers that exercise every rule of net/http's response
// writer the lane copies: computed lengths, chunking, sniffing, bodiless
// statuses, trailers, early hints, short bodies, late headers, sendfile.
func laneCases(t *testing.T) map[string]http.HandlerFunc {
	t.Helper()
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<10/16)
	file := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(file, bytes.Repeat(big, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	modTime := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return map[string]http.HandlerFunc{
		"/small": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
		"/html":  func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<!DOCTYPE html><p>hi") },
		"/empty": func(w http.ResponseWriter, r *http.Request) {},
		"/big":   func(w http.ResponseWriter, r *http.Request) { w.Write(big) },
		"/pieces": func(w http.ResponseWriter, r *http.Request) {
			for range 5 {
				w.Write(big[:1000])
			}
		},
		"/length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "0123456789")
		},
		"/short": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "01234")
		},
		"/too-long": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			if _, err := io.WriteString(w, "01234"); err == nil {
				panic("writing past Content-Length succeeded")
			}
		},
		"/bad-length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "ten")
			io.WriteString(w, "xyz")
		},
		"/length-and-chunked": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "xyz")
		},
		"/identity": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, "until close")
		},
		"/no-content": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "never"); err != http.ErrBodyNotAllowed {
				panic("a 204 took a body")
			}
		},
		"/not-modified": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		},
		"/error": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no tea", http.StatusTeapot) },
		"/redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		},
		"/unknown-status": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(599)
			io.WriteString(w, "odd")
		},
		"/twice": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusConflict)
		},
		"/late-header": func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Early", "1")
			w.WriteHeader(http.StatusOK)
			h.Set("X-Late", "1")
			w.Header().Set("X-Later", "1")
			io.WriteString(w, "x")
		},
		"/flush": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		},
		"/close": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		},
		"/dated": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", "Thu, 01 Jan 2026 00:00:00 GMT")
			io.WriteString(w, "x")
		},
		"/odd-values": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["X-Break"] = []string{"a\r\nb", "  padded\t"}
			w.Header()["Bad Name"] = []string{"dropped"}
			w.Header()["Zeta"] = []string{"z"}
			io.WriteString(w, "x")
		},
		"/trailers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, Content-Length")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Extra", "7")
		},
		"/hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.Header().Set("Content-Length", "9")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after 103")
		},
		"/content": func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "a.txt", modTime, bytes.NewReader(big))
		},
		"/file": func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(file)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			http.ServeContent(w, r, "big.txt", modTime, f)
		},
		"/abort": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "lost")
			panic(http.ErrAbortHandler)
		},
		"/ping": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") },
	}
}

// laneAnswer is what a client can observe of an answer.
type laneAnswer struct {
	Informational []string
	Status        string
	Header        http.Header
	Trailer       http.Header
	Body          string
	BodyErr       bool
	Length        int64
	Chunked       bool
	Close         bool
	ReadErr       string
	// Reused: the next pipelined request was answered.
	Reused bool
}

// ask sends req and a pipelined GET /ping on a new connection to addr and
// reads what comes back.
func ask(t *testing.T, addr, method, target string, extra ...string) laneAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	raw := method + " " + target + " HTTP/1.1\r\nHost: example.test\r\n" + strings.Join(extra, "") + "\r\n" +
		"GET /ping HTTP/1.1\r\nHost: example.test\r\n\r\n"
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var a laneAnswer
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			a.ReadErr = err.Error()
			return a
		}
		if resp.StatusCode < 200 {
			a.Informational = append(a.Informational, fmt.Sprint(resp.Status, resp.Header))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		a.Status, a.Body, a.BodyErr = resp.Status, string(body), err != nil
		a.Header = resp.Header
		delete(a.Header, "Date")
		a.Trailer, a.Length, a.Close = resp.Trailer, resp.ContentLength, resp.Close
		a.Chunked = len(resp.TransferEncoding) > 0
		break
	}
	if resp, err := http.ReadResponse(br, nil); err == nil {
		body, _ := io.ReadAll(resp.Body)
		a.Reused = string(body) == "pong"
	}
	return a
}

// TestLaneAnswersAsNetHTTPDoes serves every case through the front, whose
// fast lane takes these GETs and HEADs, and through a plain net/http
// server, and requires the same answer: status, header (but Date), body,
// framing, trailers and whether the connection carries on.
func TestLaneAnswersAsNetHTTPDoes(t *testing.T) {
	cases := laneCases(t)
	mux := http.NewServeMux()
	for path, h := range cases {
		mux.Handle(path, h)
	}
	quiet := slog.New(slog.DiscardHandler)

	lane := NewServer("lane", Limits{}, mux, nil, quiet)
	laneLn := listen(t)
	go lane.Serve(laneLn)
	t.Cleanup(func() { lane.Shutdown(t.Context()) })

	plain := &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(quiet.Handler(), slog.LevelError)}
	plainLn := listen(t)
	go plain.Serve(plainLn)
	t.Cleanup(func() { plain.Close() })

	extras := map[string][]string{
		"":            nil,
		"close":       {"Connection: close\r\n"},
		"range":       {"Range: bytes=10-19\r\n"},
		"conditional": {"If-Modified-Since: Sun, 01 Nov 2026 12:00:00 GMT\r\n"},
	}
	for path := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			for name, extra := range extras {
				if (name == "range" || name == "conditional") && path != "/content" && path != "/file" {
					continue
				}
				want := ask(t, plainLn.Addr().String(), method, path, extra...)
				got := ask(t, laneLn.Addr().String(), method, path, extra...)
				if method == "HEAD" && path == "/bad-length" {
					// net/http sends the invalid "Content-Length: ten"
					// it warns about; the lane leaves it out.
					want = laneAnswer{Status: "200 OK", Length: -1, Close: name == "close", Reused: name != "close",
						Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s %s:\n lane:     %+v\n net/http: %+v", method, path, name, got, want)
				}
			}
		}
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestKeptAnswerIsTheGeneralOne: a kept file's answer, written whole from
// its prepared head (writeKept), must be byte for byte what the lane
// writes when a handler sets the same header and body the usual way,
// which TestLaneAnswersAsNetHTTPDoes holds to net/http.
func TestKeptAnswerIsTheGeneralOne(t *testing.T) {
	header := http.Header{
		"Content-Type":   {"image/jpeg"},
		"Etag":           {`"abc"`},
		"Last-Modified":  {"Sun, 01 Nov 2026 12:00:00 GMT"},
		"Accept-Ranges":  {"bytes"},
		"Cache-Control":  {"public, max-age=60"},
		"X-Padded-Value": {" spaced\t"},
	}
	for _, size := range []int{0, 333, laneCopyUpTo + 1, 200 << 10} {
		body := bytes.Repeat([]byte{0xff, 0xd8, 'j'}, size/3+1)[:size]
		header.Set("Content-Length", fmt.Sprint(size))
		for _, method := range []string{"GET", "HEAD"} {
			for _, closing := range []bool{false, true} {
				req := &http.Request{Method: method, Close: closing}
				var general, kept bytes.Buffer
				w := newLaneResponse(&general, nil, req, nil)
				for k, v := range header {
					w.Header()[k] = v
				}
				w.WriteHeader(http.StatusOK)
				if method == "GET" {
					w.Write(body)
				}
				keepGeneral := w.finish()

				head := laneHeadPrefix(header)
				if head == nil {
					t.Fatal("no prepared head for a plain file header")
				}
				w = newLaneResponse(&kept, nil, req, nil)
				if !w.writeKept(head, body, method == "GET") {
					t.Fatal("writeKept refused a fresh answer")
				}
				keepKept := w.finish()
				if g, k := withoutDate(general.String()), withoutDate(kept.String()); g != k || keepGeneral != keepKept {
					t.Errorf("%s %d bytes, close %v:\n kept:    %q (keep-alive %v)\n general: %q (keep-alive %v)",
						method, size, closing, trim(k), keepKept, trim(g), keepGeneral)
				}
			}
		}
	}
}

func withoutDate(s string) string {
	i := strings.Index(s, "\r\nDate: ")
	if i < 0 {
		return s
	}
	j := strings.Index(s[i+2:], "\r\n")
	return s[:i] + s[i+2+j:]
}

func trim(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// BenchmarkLaneAnswer writes a plugin's typical small answer (four header
// fields and a line of text) through the lane's writer: the per-request
// cost of the head and framing, without a connection.
func BenchmarkLaneAnswer(b *testing.B) {
	req := &http.Request{Method: "GET"}
	body := []byte("Tue, 24 Nov 2026 04:44:04 +0000 (UTC)\n")
	b.ReportAllocs()
	for b.Loop() {
		w := newLaneResponse(io.Discard, nil, req, nil)
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Cache-Control"] = []string{"no-store"}
		h["Vary"] = []string{"Accept"}
		h["Content-Length"] = []string{"38"}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		w.finish()
	}
}
