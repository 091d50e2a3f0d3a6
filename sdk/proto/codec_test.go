package pluginpb

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fill sets every field of m (messages to depth 3) to random values, so
// a field the protocol gains is covered without a change here.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() != nil && depth == 0 {
			continue
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range 2 {
				mp.Set(value(r, fd.MapKey(), nil, depth).MapKey(), value(r, fd.MapValue(), mp.NewValue, depth))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				l.Append(value(r, fd, l.NewElement, depth))
			}
		case fd.Message() != nil:
			fill(r, m.Mutable(fd).Message(), depth-1)
		default:
			m.Set(fd, value(r, fd, nil, depth))
		}
	}
}

func value(r *rand.Rand, fd protoreflect.FieldDescriptor, newMsg func() protoreflect.Value, depth int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(1 + r.IntN(2)))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(r.Uint64())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(r.Float32())
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(r.Float64())
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("s%d é", r.IntN(1000)))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(r.Uint32()), 0, 0xff})
	case protoreflect.MessageKind:
		v := newMsg()
		fill(r, v.Message(), depth-1)
		return v
	}
	panic("kind " + fd.Kind().String())
}

// TestCodecMatchesProto encodes every message of the protocol, filled at
// random, with the codec and with the protobuf runtime, and decodes each
// with the other: the messages must come back equal.
func TestCodecMatchesProto(t *testing.T) {
	c := encoding.GetCodecV2(codecName)
	if _, ok := c.(codec); !ok {
		t.Fatalf("the registered proto codec is %T", c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Path() != File_socketd_proto.Path() {
			return true
		}
		n++
		for range 5 {
			m := mt.New()
			fill(r, m, 3)
			msg := m.Interface()
			if _, ok := msg.(vtMessage); !ok {
				t.Fatalf("%s has no vtprotobuf methods: run make proto", mt.Descriptor().FullName())
			}
			data, err := c.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			back := mt.New().Interface()
			if err := proto.Unmarshal(data.Materialize(), back); err != nil || !proto.Equal(msg, back) {
				t.Fatalf("%s: the codec's bytes decode to %v (%v), want %v", mt.Descriptor().FullName(), back, err, msg)
			}
			std, err := proto.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			// A small frame's bytes come as a SliceBuffer, which gRPC
			// never reuses; a pooled buffer goes back to its pool once
			// Unmarshal returns, so nothing decoded may point into it.
			pooled := make([]byte, len(std), 4096)
			copy(pooled, std)
			for _, in := range []mem.Buffer{mem.SliceBuffer(std), mem.NewBuffer(&pooled, mem.DefaultBufferPool())} {
				back = mt.New().Interface()
				fill(r, back.ProtoReflect(), 1) // decoding replaces, as proto.Unmarshal does
				err = c.Unmarshal(mem.BufferSlice{in}, back)
				if _, reused := in.(mem.SliceBuffer); !reused {
					for i := range pooled {
						pooled[i] = 0xff
					}
				}
				if err != nil || !proto.Equal(msg, back) {
					t.Fatalf("%s: the codec decodes proto's bytes (%T) to %v (%v), want %v", mt.Descriptor().FullName(), in, back, err, msg)
				}
			}
		}
		return true
	})
	if n < 10 {
		t.Fatalf("only %d messages checked", n)
	}
}

// FuzzCodecDecodesAsProto: what the codec decodes, it decodes as the
// protobuf runtime does, and it decodes all the runtime does but input no
// encoder writes: a known field in the wrong wire type, which the runtime
// keeps as an unknown field and the codec refuses. Unknown fields are kept
// by both, byte for byte by the codec. (The codec also takes
// strings that are not UTF-8, which the runtime refuses.)
func FuzzCodecDecodesAsProto(f *testing.F) {
	for _, m := range []proto.Message{
		&ExchangeFrame{Id: 7, Request: &HTTPRequestFrame{End: true, Body: []byte("b"), Head: &HTTPRequest{
			Method: "GET", Target: "/a?b", Path: "/a", Headers: []*Header{{Name: "Accept", Values: []string{"*/*", "x"}}},
			PathValues: map[string]string{"id": "1"}, Tls: true, ContentLength: -1,
		}}},
		&ExchangeFrame{Id: 1 << 40, Response: &HTTPResponseFrame{End: true, Body: []byte("ok\n"), Head: &HTTPResponse{
			Status: 200, Headers: []*Header{{Name: "Content-Type", Values: []string{"text/plain"}}},
		}}},
		&ExchangeFrame{Id: 3, Credit: 2},
		&ExchangeFrame{Id: 3, Cancel: true},
		// More headers than an arena holds in place, and values beyond
		// the one it has room for.
		&ExchangeFrame{Id: 9, Response: &HTTPResponseFrame{Head: &HTTPResponse{Status: 200, Headers: manyHeaders(11, 2)}}},
		&HTTPResponseFrame{Head: &HTTPResponse{Status: 204, Headers: manyHeaders(3, 3)}},
		&HTTPRequestFrame{Head: &HTTPRequest{Method: "GET", Headers: manyHeaders(9, 2)}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := codec{}
	// The messages the codec decodes with a prepared arena (arena.go):
	// what it decodes into, and the frame that is. One ExchangeIn serves
	// every input, as the calling side receives into it frame after
	// frame, so each decode starts from what the one before left there.
	in := new(ExchangeIn)
	frames := []func() (any, proto.Message){
		func() (any, proto.Message) { m := new(ExchangeFrame); return m, m },
		func() (any, proto.Message) { m := new(HTTPResponseFrame); return m, m },
		func() (any, proto.Message) { m := new(HTTPRequestFrame); return m, m },
		func() (any, proto.Message) { return in, &in.Frame },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newFrame := range frames {
			into, got := newFrame()
			want := got.ProtoReflect().New().Interface()
			if proto.Unmarshal(b, want) != nil {
				continue
			}
			err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, into)
			if hasUnknown(want.ProtoReflect()) {
				// Unknown fields keep the input's bytes, which the runtime
				// may re-encode (a tag's varint shortened); compare the rest.
				if err != nil {
					continue
				}
				eachMessage(got.ProtoReflect(), func(m protoreflect.Message) { m.SetUnknown(nil) })
				eachMessage(want.ProtoReflect(), func(m protoreflect.Message) { m.SetUnknown(nil) })
			}
			if err != nil || !proto.Equal(got, want) {
				t.Fatalf("codec into %T: %v (%v), proto: %v", into, got, err, want)
			}
		}
	})
}

// TestExchangeInDecodesInPlace: an answer received into an ExchangeIn
// again and again costs no allocation once its head has been seen, and
// each decode is the message sent, whatever the one before left (more
// headers, several values, a file answer, unknown fields).
func TestExchangeInDecodesInPlace(t *testing.T) {
	c := codec{}
	in := new(ExchangeIn)
	unknown := protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte("?"))
	big := &ExchangeFrame{Id: 9, Response: &HTTPResponseFrame{Body: []byte("x"), Head: &HTTPResponse{
		Status: 206, Headers: manyHeaders(8, 3), File: &FileAnswer{Path: "/x"},
	}}}
	big.Response.Head.Headers[0].ProtoReflect().SetUnknown(unknown)
	big.ProtoReflect().SetUnknown(unknown)
	bigBytes, err := proto.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []*ExchangeFrame{
		{Id: 1, Response: &HTTPResponseFrame{End: true, Body: []byte("now\n"), Head: &HTTPResponse{Status: 200, Headers: manyHeaders(4, 1)}}},
		{Id: 2, Response: &HTTPResponseFrame{End: true, Body: []byte("y")}},
		{Id: 3, Response: &HTTPResponseFrame{Head: &HTTPResponse{Status: 204}}},
		{Id: 4, Credit: 1},
	} {
		b, err := proto.Marshal(tc)
		if err != nil {
			t.Fatal(err)
		}
		decode := func(data mem.BufferSlice) {
			if err := c.Unmarshal(data, in); err != nil {
				t.Fatal(err)
			}
		}
		data := mem.BufferSlice{mem.SliceBuffer(b)}
		decode(mem.BufferSlice{mem.SliceBuffer(bigBytes)})
		decode(data)
		if !proto.Equal(&in.Frame, tc) {
			t.Errorf("after a larger frame, decoded %v, want %v", &in.Frame, tc)
		}
		if allocs := testing.AllocsPerRun(100, func() { decode(data) }); allocs != 0 {
			t.Errorf("%v: %v allocations", tc, allocs)
		}
	}
}

// manyHeaders is n headers; with values > 1, every other one has that
// many values.
func manyHeaders(n, values int) []*Header {
	hs := make([]*Header, n)
	for i := range hs {
		hs[i] = &Header{Name: fmt.Sprint("X-", i), Values: []string{"a"}}
		if i%2 == 1 {
			for len(hs[i].Values) < values {
				hs[i].Values = append(hs[i].Values, "b")
			}
		}
	}
	return hs
}

// TestHeadsDecodeIntoOneAllocation: a frame with a head of a few headers
// of one value each costs the codec one allocation (arena.go), where
// decoding message by message cost one per message and per header.
func TestHeadsDecodeIntoOneAllocation(t *testing.T) {
	c := codec{}
	for _, tc := range []struct {
		msg      proto.Message
		newFrame func() any
	}{
		{&ExchangeFrame{Id: 1, Response: &HTTPResponseFrame{End: true, Body: []byte("x"), Head: &HTTPResponse{Status: 200, Headers: manyHeaders(4, 1)}}},
			func() any { return new(ExchangeFrame) }},
		{&ExchangeFrame{Id: 2, Request: &HTTPRequestFrame{End: true, Head: &HTTPRequest{Method: "GET", Path: "/", Headers: manyHeaders(8, 1)}}},
			func() any { return new(ExchangeFrame) }},
		{&HTTPResponseFrame{Head: &HTTPResponse{Status: 200, Headers: manyHeaders(5, 1)}}, func() any { return new(HTTPResponseFrame) }},
		// wrk's and curl's requests: no header but Host, which travels apart.
		{&ExchangeFrame{Id: 3, Request: &HTTPRequestFrame{End: true, Head: &HTTPRequest{Method: "GET", Path: "/", Host: "x"}}},
			func() any { return new(ExchangeFrame) }},
	} {
		b, err := proto.Marshal(tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		frame, data := tc.newFrame(), mem.BufferSlice{mem.SliceBuffer(b)}
		allocs := testing.AllocsPerRun(100, func() {
			if err := c.Unmarshal(data, frame); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 1 || !proto.Equal(frame.(proto.Message), tc.msg) {
			t.Errorf("%T: %v allocations, decoded %v", tc.msg, allocs, frame)
		}
	}
}

func hasUnknown(m protoreflect.Message) bool {
	found := false
	eachMessage(m, func(m protoreflect.Message) { found = found || len(m.GetUnknown()) > 0 })
	return found
}

// eachMessage calls f with m and every message in it.
func eachMessage(m protoreflect.Message, f func(protoreflect.Message)) {
	f(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					eachMessage(v.Message(), f)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					eachMessage(v.List().Get(i).Message(), f)
				}
			}
		case fd.Message() != nil:
			eachMessage(v.Message(), f)
		}
		return true
	})
}
