package httpfront

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// browserGET is a typical head a browser sends: the request the lane is
// for, used by the benchmarks and as a seed.
const browserGET = "GET /static/app.js?v=3 HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: */*\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Referer: https://example.com/\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=abc123; theme=dark\r\n" +
	"\r\n"

// laneSeeds are the fuzz seeds: the requests the lane should take and
// the near misses it must leave to net/http.
var laneSeeds = []string{
	"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
	browserGET,
	"HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\nuser-agent: y\r\nx-custom-thing: z\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nAccept: */*\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET /a%20b/c?q=%E2%9C%93&x=1+2 HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
	"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Tab:\ta\tb\t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Trailing: a   \r\n\r\n",
	"GET /page#frag HTTP/1.1\r\nHost: x\r\n\r\n",
	// Targets at the edges of the plain ones (plainurl.Parse).
	"GET /a/b;c=d,e@f:g$h&i+j~k_.-?x=1&y=%20z?w HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /p? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /p?? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET //x/y HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a!b(c)*'d HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n",
	// The framing headers the lane declines, so that mutations of their
	// values and names reach net/http's own handling of them.
	"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTrailer: X-A\r\nHttp2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
}

// FuzzLaneParseMatchesNetHTTP holds parseLaneRequest to its contract:
// whatever it accepts, net/http's server would have accepted too and read
// into the same request, consuming the same bytes. A difference would mean
// handlers behind the lane see requests net/http never would produce.
func FuzzLaneParseMatchesNetHTTP(f *testing.F) {
	for _, s := range laneSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, verdict := parseLaneRequest(b)
		switch verdict {
		case laneMore:
			if bytes.Contains(b, []byte("\r\n\r\n")) {
				t.Fatalf("laneMore for a complete head: %q", b)
			}
			return
		case laneDecline:
			return
		}
		want, used := netHTTPServerRead(t, b)
		if n != used {
			t.Errorf("lane consumed %d bytes, net/http %d", n, used)
		}
		compareLaneRequest(t, got, want)
		if t.Failed() {
			t.Logf("input: %q", b)
		}
	})
}

// netHTTPServerRead reads b the way net/http's server does in
// (*conn).readRequest: http.ReadRequest followed by the server's own
// checks, which turn a parsed request into a 400. It fails the test if
// net/http would not serve the request, since the lane accepted it.
func netHTTPServerRead(t *testing.T, b []byte) (*http.Request, int) {
	t.Helper()
	r := bytes.NewReader(b)
	br := bufio.NewReader(r)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("lane accepted, http.ReadRequest failed: %v\ninput: %q", err, b)
	}
	used := len(b) - br.Buffered() - r.Len()
	if req.ProtoMajor != 1 {
		t.Fatalf("lane accepted, server rejects version %q\ninput: %q", req.Proto, b)
	}
	// ReadRequest has already dropped Host from the header, so read the
	// header again, with the same textproto reader it uses, to see the
	// Host values the server checks.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	if _, err := tp.ReadLine(); err != nil {
		t.Fatalf("rereading request line: %v", err)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("rereading header: %v", err)
	}
	hosts := mh["Host"]
	if req.ProtoAtLeast(1, 1) && len(hosts) == 0 && req.Method != "CONNECT" && req.Method != "PRI" {
		t.Fatalf("lane accepted, server rejects: missing Host\ninput: %q", b)
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		t.Fatalf("lane accepted, server rejects: malformed Host %q\ninput: %q", hosts[0], b)
	}
	for k, vv := range mh {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Fatalf("lane accepted, server rejects header name %q\ninput: %q", k, b)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("lane accepted, server rejects %s value %q\ninput: %q", k, v, b)
			}
		}
	}
	delete(req.Header, "Host")
	return req, used
}

// compareLaneRequest reports every field a handler could see differ
// between the lane's request and net/http's.
func compareLaneRequest(t *testing.T, got, want *http.Request) {
	t.Helper()
	if got.Method != want.Method {
		t.Errorf("Method: lane %q, net/http %q", got.Method, want.Method)
	}
	if got.RequestURI != want.RequestURI {
		t.Errorf("RequestURI: lane %q, net/http %q", got.RequestURI, want.RequestURI)
	}
	if !reflect.DeepEqual(got.URL, want.URL) {
		t.Errorf("URL: lane %#v, net/http %#v", got.URL, want.URL)
	}
	if got.Proto != want.Proto || got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
		t.Errorf("Proto: lane %q %d.%d, net/http %q %d.%d",
			got.Proto, got.ProtoMajor, got.ProtoMinor, want.Proto, want.ProtoMajor, want.ProtoMinor)
	}
	if !(len(got.Header) == 0 && len(want.Header) == 0) && !reflect.DeepEqual(got.Header, want.Header) {
		t.Errorf("Header:\nlane     %q\nnet/http %q", got.Header, want.Header)
	}
	if got.Host != want.Host {
		t.Errorf("Host: lane %q, net/http %q", got.Host, want.Host)
	}
	if got.Close != want.Close {
		t.Errorf("Close: lane %v, net/http %v", got.Close, want.Close)
	}
	if got.ContentLength != 0 || want.ContentLength != 0 {
		t.Errorf("ContentLength: lane %d, net/http %d", got.ContentLength, want.ContentLength)
	}
	if len(want.TransferEncoding) != 0 || want.Trailer != nil {
		t.Errorf("net/http sees a body framing: TransferEncoding %q, Trailer %q", want.TransferEncoding, want.Trailer)
	}
	if got.Body != http.NoBody {
		t.Errorf("lane Body is %T, want http.NoBody", got.Body)
	}
	if want.Body != http.NoBody {
		if p, err := io.ReadAll(want.Body); err != nil || len(p) != 0 {
			t.Errorf("net/http body: %q, %v; want none", p, err)
		}
	}
}

// TestLaneParseDeclines pins the verdict for requests named in the lane's
// design, so that a change to what it takes is a deliberate one.
func TestLaneParseDeclines(t *testing.T) {
	type accepted struct {
		method, path, rawQuery, host string
		header                       http.Header // values that must be present
		close                        bool
	}
	tests := []struct {
		name string
		in   string
		want laneParse
		ok   *accepted // for laneOK
	}{
		{"post with body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", laneDecline, nil},
		{"http/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", laneDecline, nil},
		{"missing host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", laneDecline, nil},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", laneDecline, nil},
		{"expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", laneDecline, nil},
		{"chunked", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", laneDecline, nil},
		{"websocket", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", laneDecline, nil},
		{"lf only", "GET / HTTP/1.1\nHost: x\n\n", laneDecline, nil},
		{"lf only, incomplete", "GET / HTTP/1.1\nHost: x\n", laneDecline, nil},
		{"long header, no end", "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("a", 8000) + "\r\n", laneMore, nil},
		{"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", laneMore, nil},
		{"empty", "", laneMore, nil},
		{"options *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", laneDecline, nil},
		{"space in header name", "GET / HTTP/1.1\r\nHost: x\r\nX Bad: y\r\n\r\n", laneDecline, nil},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", laneDecline, nil},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", laneDecline, nil},
		{"curl", "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n", laneOK,
			&accepted{method: "GET", path: "/a/b", rawQuery: "c=d", host: "example.com",
				header: http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"}}}},
		{"head, lower case, close", "HEAD /x HTTP/1.1\r\nhost: h:8080\r\nconnection: Close\r\nx-a: 1\r\nX-A: 2 \r\n\r\n", laneOK,
			&accepted{method: "HEAD", path: "/x", host: "h:8080",
				header: http.Header{"Connection": {"Close"}, "X-A": {"1", "2"}}, close: true}},
		{"pragma", "GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n", laneOK,
			&accepted{method: "GET", path: "/", host: "x", header: http.Header{"Cache-Control": {"no-cache"}}}},
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n", laneOK,
			&accepted{method: "GET", path: "/1", host: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, verdict := parseLaneRequest([]byte(tt.in))
			if verdict != tt.want {
				t.Fatalf("verdict %d, want %d", verdict, tt.want)
			}
			if tt.ok == nil {
				return
			}
			w := tt.ok
			if head := strings.Index(tt.in, "\r\n\r\n") + 4; n != head {
				t.Errorf("n = %d, want %d", n, head)
			}
			if req.Method != w.method || req.URL.Path != w.path || req.URL.RawQuery != w.rawQuery || req.Host != w.host {
				t.Errorf("got %s %q ? %q host %q, want %s %q ? %q host %q",
					req.Method, req.URL.Path, req.URL.RawQuery, req.Host, w.method, w.path, w.rawQuery, w.host)
			}
			if _, ok := req.Header["Host"]; ok {
				t.Errorf("Host left in Header: %q", req.Header)
			}
			for k, vv := range w.header {
				if !reflect.DeepEqual(req.Header[k], vv) {
					t.Errorf("Header[%q] = %q, want %q", k, req.Header[k], vv)
				}
			}
			if req.Close != w.close {
				t.Errorf("Close = %v, want %v", req.Close, w.close)
			}
		})
	}
}

// BenchmarkLaneParse measures the lane on the request it exists for;
// compare with BenchmarkNetHTTPReadRequest on the same bytes.
func BenchmarkLaneParse(b *testing.B) {
	in := []byte(browserGET)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, v := parseLaneRequest(in); v != laneOK {
			b.Fatalf("verdict %d", v)
		}
	}
}

// BenchmarkNetHTTPReadRequest is the baseline the lane is measured
// against: net/http reading the same head.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	in := []byte(browserGET)
	r := bytes.NewReader(in)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReusedLaneRequestStartsClean parses into a laneRequest that served
// a request with more header fields: nothing of the first may show in
// the second.
func TestReusedLaneRequestStartsClean(t *testing.T) {
	lr := new(laneRequest)
	first := "GET /a?x=1 HTTP/1.1\r\nHost: one\r\nRange: bytes=0-1\r\nCookie: a=b\r\nCookie: c=d\r\nConnection: close\r\n\r\n"
	if _, _, v := lr.parse([]byte(first)); v != laneOK {
		t.Fatalf("first request: verdict %d", v)
	}
	req, _, v := lr.parse([]byte("HEAD /b HTTP/1.1\r\nHost: two\r\nAccept: */*\r\n\r\n"))
	if v != laneOK {
		t.Fatalf("second request: verdict %d", v)
	}
	want := http.Header{"Accept": {"*/*"}}
	if req.Method != "HEAD" || req.URL.String() != "/b" || req.Host != "two" || req.Close || !reflect.DeepEqual(req.Header, want) {
		t.Fatalf("second request: %s %s host %q close %v header %v", req.Method, req.URL, req.Host, req.Close, req.Header)
	}
}

// The answer writer of a reused laneRequest keeps its header map but
// nothing in it, nor anything else of the last answer.
func TestReusedLaneResponseStartsClean(t *testing.T) {
	lr := new(laneRequest)
	req, _, _ := lr.parse([]byte("GET /a HTTP/1.1\r\nHost: one\r\n\r\n"))
	var first bytes.Buffer
	lr.resp.start(&first, nil, req, nil)
	lr.resp.Header().Set("X-First", "1")
	lr.resp.Header().Set("Trailer", "X-T")
	lr.resp.WriteHeader(http.StatusTeapot)
	io.WriteString(&lr.resp, "first")
	lr.resp.finish()
	lr.reset()

	req, _, _ = lr.parse([]byte("GET /b HTTP/1.1\r\nHost: two\r\n\r\n"))
	var second bytes.Buffer
	lr.resp.start(&second, nil, req, nil)
	if len(lr.resp.Header()) != 0 {
		t.Fatalf("reused header: %v", lr.resp.Header())
	}
	io.WriteString(&lr.resp, "second")
	lr.resp.finish()
	got := second.String()
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || strings.Contains(got, "X-First") || strings.Contains(got, "chunked") ||
		!strings.Contains(got, "Content-Length: 6\r\n") || !strings.HasSuffix(got, "\r\n\r\nsecond") {
		t.Fatalf("second answer:\n%s", got)
	}
}

// A repeated head reuses the connection's previous head text; a different
// one, even of the same length, is read afresh.
func TestLaneParseReusesARepeatedHead(t *testing.T) {
	first := "GET /a HTTP/1.1\r\nHost: one\r\n\r\n"
	lr := new(laneRequest)
	if _, _, v := lr.parse([]byte(first)); v != laneOK {
		t.Fatalf("first request: verdict %d", v)
	}
	prev := lr.head

	lr.reset()
	lr.head = prev
	req, _, v := lr.parse([]byte(first))
	if v != laneOK || unsafe.StringData(lr.head) != unsafe.StringData(prev) {
		t.Fatalf("the same head was not reused (verdict %d)", v)
	}
	if req.URL.Path != "/a" || req.Host != "one" {
		t.Fatalf("repeated request: path %q host %q", req.URL.Path, req.Host)
	}

	lr.reset()
	lr.head = prev
	req, _, v = lr.parse([]byte("GET /b HTTP/1.1\r\nHost: two\r\n\r\n"))
	if v != laneOK || req.URL.Path != "/b" || req.Host != "two" || unsafe.StringData(lr.head) == unsafe.StringData(prev) {
		t.Fatalf("other request: verdict %d path %q host %q", v, req.URL.Path, req.Host)
	}
}
