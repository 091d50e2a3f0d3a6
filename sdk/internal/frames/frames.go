// Package frames carries a byte stream over a gRPC stream of StreamFrames,
// in ChunkSize pieces, with half-close: the one implementation behind the
// plugin's end of a tcp connection (sdk.Conn) and the core's end that tests
// drive (sdktest.Conn).
package frames

import (
	"io"
	"sync"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// ChunkSize is the largest data piece in one frame (sdk.ChunkSize).
const ChunkSize = 64 << 10

// Stream is either end of the ServeStream call.
type Stream interface {
	Send(*pluginpb.StreamFrame) error
	Recv() (*pluginpb.StreamFrame, error)
}

// Pipe reads and writes a Stream as bytes. Reads come from one goroutine;
// writes may come from another.
type Pipe struct {
	stream Stream
	// recvErr turns a failed Recv into what Read returns from then on.
	recvErr func(error) error
	// closedErr is what Write returns after CloseWrite or Close.
	closedErr error

	buf  []byte
	rerr error

	mu     sync.Mutex // serialises Send
	closed bool
}

// New returns a Pipe on s. first, if not nil, is a frame already received
// (the one that opened the call); recvErr may be nil to return Recv's
// errors as they are.
func New(s Stream, first *pluginpb.StreamFrame, recvErr func(error) error, closedErr error) *Pipe {
	p := &Pipe{stream: s, recvErr: recvErr, closedErr: closedErr}
	if first != nil {
		p.take(first)
	}
	return p
}

func (p *Pipe) take(f *pluginpb.StreamFrame) {
	p.buf = f.GetData()
	if f.GetCloseWrite() {
		p.rerr = io.EOF
	}
}

// Read returns the other end's bytes, then io.EOF once it half-closed.
func (p *Pipe) Read(b []byte) (int, error) {
	for len(p.buf) == 0 {
		if p.rerr != nil {
			return 0, p.rerr
		}
		f, err := p.stream.Recv()
		if err != nil {
			if p.recvErr != nil {
				err = p.recvErr(err)
			}
			p.rerr = err
			return 0, err
		}
		p.take(f)
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

// Write sends b in ChunkSize frames.
func (p *Pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, p.closedErr
	}
	n := 0
	for len(b) > 0 {
		take := min(len(b), ChunkSize)
		if err := p.stream.Send(&pluginpb.StreamFrame{Data: b[:take]}); err != nil {
			return n, err
		}
		n += take
		b = b[take:]
	}
	return n, nil
}

// CloseWrite tells the other end no more bytes follow, once; reading may
// go on.
func (p *Pipe) CloseWrite() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.stream.Send(&pluginpb.StreamFrame{CloseWrite: true})
}

// Close stops writing without telling the other end (the call itself is
// being ended).
func (p *Pipe) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}
