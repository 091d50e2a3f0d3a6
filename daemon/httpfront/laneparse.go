package httpfront

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/socketd/socketd/internal/plainurl"
)

// Reading requests in the fast lane.
//
// The lane takes only the commonest request there is: a GET or HEAD in
// HTTP/1.1, with a Host, no body and nothing that changes how the
// connection is used (no Upgrade, no Expect, Connection at most "close" or
// "keep-alive"), all of its head in one buffer and every line ending in
// CRLF. For those, parseLaneRequest builds the same *http.Request net/http
// would. For anything else it declines, and the connection goes to
// net/http from that request on, with every byte read so far: net/http
// parses it from the start and answers as it always has, errors (400, 431,
// 505, ...) included. FuzzLaneParseMatchesNetHTTP holds the lane to that:
// whatever it accepts, net/http reads the same way.

// laneParse is parseLaneRequest's verdict.
type laneParse int

const (
	// laneMore: the head is not complete yet; read more.
	laneMore laneParse = iota
	// laneDecline: not the lane's kind of request; net/http takes it.
	laneDecline
	// laneOK: a request, and the length of its head.
	laneOK
)

// commonHeaderKeys interns the canonical names of headers clients send
// most, so that a lower-case name costs no allocation.
var commonHeaderKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Cookie", "Dnt", "Host", "If-Modified-Since", "If-None-Match", "If-Range",
		"Origin", "Pragma", "Range", "Referer", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-User", "Te", "Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
	} {
		m[k] = k
	}
	return m
}()

// parseLaneRequest reads one request head from the start of b. With
// laneOK it returns the request (without context or remote address) and
// the length of the head; the request has no body.
func parseLaneRequest(b []byte) (*http.Request, int, laneParse) {
	return new(laneRequest).parse(b)
}

// laneRequest holds a request's struct, header map and value slots, so
// that the lane can reuse them for the next request once an answer is
// out (laneRequests). A request's header map alone is a 300-byte
// allocation, and the three were nearly half of the 1.3 KB a kept page's
// request allocated, which sets how often the collector runs (every 30 ms
// at 35,000 requests a second). So, unlike with net/http, a handler on
// the lane must not use the request, its URL or its header after it
// returns; every handler of the front is synchronous, and one that starts
// a goroutine must copy what the goroutine reads.
type laneRequest struct {
	req    http.Request
	header http.Header
	values []string
	url    url.URL
	// head is the text of the request's head once parsed. Set before
	// parse to the head of the connection's previous request, it is
	// reused when the new head is the same: clients on a kept-alive
	// connection often repeat themselves (polls, health checks, load
	// generators), and then a request allocates nothing.
	head string
	// resp writes the request's answer; its header map is reused as well.
	resp laneResponse
}

var laneRequests = sync.Pool{New: func() any { return new(laneRequest) }}

// release returns lr for reuse; nothing may hold its request any more.
func (lr *laneRequest) release() {
	lr.reset()
	laneRequests.Put(lr)
}

// reset empties lr, keeping the header maps' and value slots' room.
func (lr *laneRequest) reset() {
	clear(lr.header)
	clear(lr.values)
	lr.req = http.Request{}
	lr.url = url.URL{}
	lr.head = ""
	h := lr.resp.header
	clear(h)
	lr.resp = laneResponse{header: h}
}

// parse is parseLaneRequest into lr.
func (lr *laneRequest) parse(b []byte) (*http.Request, int, laneParse) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if bareLineEnd(b) {
			return nil, 0, laneDecline
		}
		return nil, 0, laneMore
	}
	n := end + 4
	// A bare CR or LF inside a complete head is a control byte in a name,
	// a value or the request line, which the checks below decline.
	// One string holds the whole head; every name and value is a slice
	// of it, so a request costs one allocation for all its text, and none
	// when it repeats the head lr was given (the comparison allocates
	// nothing).
	head := lr.head
	if head != string(b[:end+2]) {
		head = string(b[:end+2])
	}
	lr.head = head

	line, rest, _ := strings.Cut(head, "\r\n")
	var method string
	switch {
	case strings.HasPrefix(line, "GET "):
		method, line = http.MethodGet, line[4:]
	case strings.HasPrefix(line, "HEAD "):
		method, line = http.MethodHead, line[5:]
	default:
		return nil, 0, laneDecline
	}
	target, proto, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" || target == "" || target[0] != '/' {
		return nil, 0, laneDecline
	}
	u := &lr.url
	if !plainurl.Parse(target, u) {
		parsed, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, 0, laneDecline
		}
		*u = *parsed
	}

	lines := strings.Count(rest, "\r\n")
	if lr.header == nil {
		lr.header = make(http.Header, lines)
	}
	hdr := lr.header
	clear(hdr)
	if cap(lr.values) < lines {
		lr.values = make([]string, lines)
	}
	values := lr.values[:lines]
	var host string
	hosts := 0
	closing := false
	for i := 0; rest != ""; i++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, 0, laneDecline
		}
		name := line[:colon]
		for j := 0; j < len(name); j++ {
			if !httpguts.IsTokenRune(rune(name[j])) {
				return nil, 0, laneDecline
			}
		}
		value := strings.Trim(line[colon+1:], " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, 0, laneDecline
		}
		key := canonicalKey(name)
		switch key {
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Http2-Settings":
			return nil, 0, laneDecline
		case "Connection":
			c, ok := laneConnection(value)
			if !ok {
				return nil, 0, laneDecline
			}
			closing = closing || c
		case "Host":
			host = value
			hosts++
		}
		values[i] = value
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
		} else {
			hdr[key] = values[i : i+1 : i+1]
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return nil, 0, laneDecline
	}
	delete(hdr, "Host")
	// What net/http's reader does for HTTP/1.0 caches.
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	lr.req = http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Body:       http.NoBody,
		Host:       host,
		Close:      closing,
		RequestURI: target,
	}
	return &lr.req, n, laneOK
}

// bareLineEnd reports a LF without its CR, or a CR without its LF: line
// ends net/http reads differently, left to it.
func bareLineEnd(b []byte) bool {
	for i, c := range b {
		switch c {
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return true
			}
		case '\r':
			if i+1 < len(b) && b[i+1] != '\n' {
				return true
			}
		}
	}
	return false
}

// laneConnection reads a Connection header: whether it says close, and
// whether it says nothing but close and keep-alive.
func laneConnection(v string) (closing, ok bool) {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		tok = strings.Trim(tok, " \t")
		switch {
		case tok == "":
		case asciiEqualFold(tok, "close"):
			closing = true
		case asciiEqualFold(tok, "keep-alive"):
		default:
			return false, false
		}
	}
	return closing, true
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey without an allocation
// for names already canonical or common.
func canonicalKey(name string) string {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if len(name) <= 64 {
		var buf [64]byte
		b := buf[:len(name)]
		upper = true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if k, ok := commonHeaderKeys[string(b)]; ok {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
