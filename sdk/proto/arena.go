package pluginpb

import "google.golang.org/protobuf/encoding/protowire"

// Decoding a request or response head into messages made ready for it.
//
// vtprotobuf's decoder allocates every message it meets and grows each
// repeated field one append at a time: a /time answer's head with four
// headers cost fourteen allocations in the core (the frame, the head, a
// Header and a values slice for each header, and the headers' slice three
// times as it grew), the largest share of what a plugin request allocated.
// Before the codec decodes a frame, prepare reads how many heads and
// headers the bytes hold and lays out those messages in one allocation,
// each Header with room for one value; the decoder fills them as it would
// have filled its own (HTTPRequest and HTTPResponse are marked in the
// Makefile's VTPROTO_REUSE, so it reuses the Headers it finds in the
// slice). The result is the same message: only where it lives differs.
// Counts are only sizes; input the count misjudges (a field repeated in
// an odd way) decodes correctly with allocations of its own.

// readyHeaders is how many headers a head's arena holds in place; a head
// with more has them made in three allocations of their own.
const readyHeaders = 8

type headerBlock struct {
	ptrs    [readyHeaders]*Header
	headers [readyHeaders]Header
	values  [readyHeaders]string
}

// ready returns an empty slice of n Headers to decode into, each with
// room for one value. The block may have been decoded into before
// (ExchangeIn): the decoder merges into a Header it finds, so each is
// made empty again.
func (b *headerBlock) ready(n int) []*Header {
	ptrs, headers, values := b.ptrs[:], b.headers[:], b.values[:]
	if n > readyHeaders {
		ptrs, headers, values = make([]*Header, n), make([]Header, n), make([]string, n)
	}
	for i := range n {
		headers[i] = Header{Values: values[i : i : i+1]}
		ptrs[i] = &headers[i]
	}
	return ptrs[:0:n]
}

type responseArena struct {
	frame HTTPResponseFrame
	head  HTTPResponse
	headerBlock
}

type requestArena struct {
	frame HTTPRequestFrame
	head  HTTPRequest
	headerBlock
}

// Field numbers prepare looks for (socketd.proto).
const (
	exchangeRequest  = 2 // ExchangeFrame.request
	exchangeResponse = 3 // ExchangeFrame.response
	frameHead        = 1 // HTTPRequestFrame.head, HTTPResponseFrame.head
	requestHeaders   = 7 // HTTPRequest.headers
	responseHeaders  = 2 // HTTPResponse.headers
)

// prepare readies m, just reset, for decoding b.
func prepare(m any, b []byte) {
	switch m := m.(type) {
	case *ExchangeFrame:
		req, resp := exchangeShape(b)
		if resp.present {
			m.Response = newResponseArena(resp.heads, resp.headers)
		}
		if req.present {
			m.Request = newRequestArena(req.heads, req.headers)
		}
	case *ExchangeIn:
		// A request is not the calling side's to get: one decodes with
		// allocations of its own.
		if _, resp := exchangeShape(b); resp.present {
			m.Frame.Response = m.resp.reuse(resp.heads, resp.headers)
		}
	case *HTTPResponseFrame: // a ServeHTTP call's answer
		var s frameShape
		if s.add(b, responseHeaders); s.heads > 0 {
			m.Head = newResponseArena(s.heads, s.headers).Head
		}
	case *HTTPRequestFrame: // a ServeHTTP call's request
		var s frameShape
		if s.add(b, requestHeaders); s.heads > 0 {
			m.Head = newRequestArena(s.heads, s.headers).Head
		}
	}
}

// newResponseArena and newRequestArena lay out a frame with its head and
// the head's headers when it has any (a request from wrk or curl has
// none but Host, which travels apart), in one allocation either way: the
// arena with its block of headers is 1.2 KB to clear.
func newResponseArena(heads, headers int) *HTTPResponseFrame {
	switch {
	case heads == 0:
		return new(HTTPResponseFrame)
	case headers == 0:
		a := new(struct {
			frame HTTPResponseFrame
			head  HTTPResponse
		})
		a.frame.Head = &a.head
		return &a.frame
	}
	return new(responseArena).reuse(heads, headers)
}

func newRequestArena(heads, headers int) *HTTPRequestFrame {
	switch {
	case heads == 0:
		return new(HTTPRequestFrame)
	case headers == 0:
		a := new(struct {
			frame HTTPRequestFrame
			head  HTTPRequest
		})
		a.frame.Head = &a.head
		return &a.frame
	}
	a := new(requestArena)
	a.frame.Head = &a.head
	a.head.Headers = a.ready(headers)
	return &a.frame
}

// exchangeShape is what the request and the response frames of
// ExchangeFrame b hold.
func exchangeShape(b []byte) (req, resp frameShape) {
	eachBytes(b, func(num protowire.Number, v []byte) {
		switch num {
		case exchangeRequest:
			req.add(v, requestHeaders)
		case exchangeResponse:
			resp.add(v, responseHeaders)
		}
	})
	return req, resp
}

// frameShape is what a request or response frame holds, over every
// occurrence of it in a message: how many heads, and how many headers
// (field headersField of a head) those hold.
type frameShape struct {
	present        bool
	heads, headers int
}

// add counts frame f, whose heads' headers are field headersField.
func (s *frameShape) add(f []byte, headersField protowire.Number) {
	s.present = true
	eachBytes(f, func(num protowire.Number, h []byte) {
		if num != frameHead {
			return
		}
		s.heads++
		eachBytes(h, func(num protowire.Number, _ []byte) {
			if num == headersField {
				s.headers++
			}
		})
	})
}

// eachBytes calls f with the number and bytes of every length-delimited
// field of message b, in one pass. It stops early on malformed input,
// which the decoder then refuses.
func eachBytes(b []byte, f func(protowire.Number, []byte)) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return
		}
		b = b[l:]
		if typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return
			}
			f(n, v)
			b = b[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return
		}
		b = b[l:]
	}
}

// ExchangeIn is an ExchangeFrame to be received into again and again, by
// the calling side of an Exchange stream (package exchange): an answer's
// head and headers are decoded into the same memory each time, where a
// bare ExchangeFrame gets an arena of its own (1 KB: nearly half the
// bytes a /time request allocated in the core, and so of its garbage
// collections).
// What is decoded into it is good until the next decode: a string in it
// points into the received bytes and may be kept, a slice of its headers
// or values may not.
type ExchangeIn struct {
	Frame ExchangeFrame
	resp  responseArena
}

// reuse readies the arena's frame, new or decoded into before, for a
// decode.
func (a *responseArena) reuse(heads, headers int) *HTTPResponseFrame {
	a.frame = HTTPResponseFrame{}
	if heads > 0 {
		a.head = HTTPResponse{}
		a.frame.Head = &a.head
		if headers > 0 {
			a.head.Headers = a.ready(headers)
		}
	}
	return &a.frame
}

// Reset, SizeVT, MarshalToSizedBufferVT and UnmarshalVTUnsafe make an
// ExchangeIn one of the codec's messages (vtMessage), encoded and
// decoded as its frame; prepare readies it for a decode.

func (in *ExchangeIn) Reset()      { in.Frame.Reset() }
func (in *ExchangeIn) SizeVT() int { return in.Frame.SizeVT() }

func (in *ExchangeIn) MarshalToSizedBufferVT(b []byte) (int, error) {
	return in.Frame.MarshalToSizedBufferVT(b)
}

func (in *ExchangeIn) UnmarshalVTUnsafe(b []byte) error { return in.Frame.UnmarshalVTUnsafe(b) }
