package pluginpb

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registered first: the fallback
	"google.golang.org/grpc/mem"
)

// gRPC's "proto" codec, replaced in every process that imports this
// package (the core, and plugins through the SDK) by one that encodes the
// protocol's messages with the methods vtprotobuf generates
// (socketd_vtproto.pb.go, `make proto`): plain Go for each field, where
// the protobuf runtime walks a table and validates as it goes. On /time
// it took a tenth of the core's CPU and a sixth of the plugin's (6
// alternating pairs). Other messages (go-plugin's own services) keep the
// default codec.
//
// The bytes are the same protobuf. One difference: a string that is not
// UTF-8 is not refused. The core checks what it sends (a request with
// such a header or path gets 400); what a plugin sends in an answer's
// headers reaches the client as bytes, as HTTP allows.

type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVTUnsafe([]byte) error
}

type codec struct{ fallback encoding.CodecV2 }

func init() {
	encoding.RegisterCodecV2(codec{fallback: encoding.GetCodecV2(codecName)})
}

const codecName = "proto"

func (codec) Name() string { return codecName }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		s := &smallMessage{data: make(mem.SliceBuffer, size)}
		if _, err := m.MarshalToSizedBufferVT(s.data); err != nil {
			return nil, err
		}
		s.slice[0] = &s.data
		return s.slice[:], nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT(*buf); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// smallMessage holds an encoded message too small for gRPC's buffer pool
// and the one-buffer slice that carries it, in one allocation: boxed as
// an interface, a SliceBuffer (three words) and the slice's array would
// be two more, for every message sent.
type smallMessage struct {
	data  mem.SliceBuffer
	slice [1]mem.Buffer
}

// Unmarshal replaces v's content, as proto.Unmarshal does (UnmarshalVT
// alone would merge). The message's bytes are in a slice of their own that
// nothing else writes to (copied there once, unless gRPC's buffer is
// already such a slice), and decoded without copying again
// (vtprotobuf's unsafe unmarshal): every string and bytes field points into
// that slice, where the safe unmarshal made one allocation per field (a
// response's header names and values, a request's method, path, query...).
// gRPC's own buffer goes back to its pool at once. A field kept after the
// message is dropped keeps the slice alive, as a substring keeps its string.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	if r, ok := v.(interface{ Reset() }); ok {
		r.Reset()
	}
	var b []byte
	if sb, ok := onlyBuffer(data).(mem.SliceBuffer); ok {
		// A message that came in one small frame: gRPC read it into a
		// slice made for that frame, which it never pools (a
		// SliceBuffer's Free does nothing), so nothing writes to it
		// again. Decoded in place, without the copy.
		b = sb
	} else {
		b = data.Materialize()
	}
	prepare(v, b) // arena.go
	return m.UnmarshalVTUnsafe(b)
}

// onlyBuffer is data's one buffer, or nil if it has none or several.
func onlyBuffer(data mem.BufferSlice) mem.Buffer {
	if len(data) != 1 {
		return nil
	}
	return data[0]
}
