package sdk

import (
	"context"
	"errors"
	"io"
	"sync"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// StreamHandler is implemented by plugins that serve tcp listeners
// (listener "NAME" { protocol = "tcp" plugin = "..." }).
type StreamHandler interface {
	// ServeStream serves one accepted connection. Returning half-closes
	// the connection towards the client (after what was written) and ends
	// the call; a returned error is logged by the core. ctx ends when the
	// core closes the connection (the client went away, the listener's
	// idle timeout passed, socketd is shutting down). A panic is logged and
	// closes this connection only.
	ServeStream(ctx context.Context, conn *Conn) error
}

// DatagramHandler is implemented by plugins that serve udp listeners.
type DatagramHandler interface {
	// ServeDatagram answers one datagram. The returned bytes, if any, are
	// sent back to the sender (the core bounds their size); nil sends
	// nothing. A returned error or a panic is logged and sends nothing.
	ServeDatagram(ctx context.Context, d *Datagram) ([]byte, error)
}

// Datagram is one received datagram.
type Datagram struct {
	// Listener names the listener that received it.
	Listener string
	// RemoteAddr is the sender's address, "host:port".
	RemoteAddr string
	// Data is the datagram's payload.
	Data []byte
}

// Conn is one client connection of a tcp listener, as the plugin sees it:
// Read gets the client's bytes (io.EOF when the client half-closes or goes),
// Write sends bytes, CloseWrite half-closes towards the client. Writes may
// come from another goroutine than Reads. A Conn is made by the SDK for
// ServeStream; to test a StreamHandler, use sdktest's Dial.
type Conn struct {
	// Listener names the listener that accepted the connection.
	Listener string
	// RemoteAddr is the client's address, LocalAddr the listener's,
	// "host:port" each.
	RemoteAddr string
	LocalAddr  string

	stream pluginpb.Plugin_ServeStreamServer
	buf    []byte
	rerr   error

	mu     sync.Mutex // serialises Send
	closed bool
}

// Read reads the client's bytes; it returns io.EOF once the client has
// half-closed or gone.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		f, err := c.stream.Recv()
		if err != nil {
			c.rerr = err
			if errors.Is(err, io.EOF) || c.stream.Context().Err() != nil {
				c.rerr = io.EOF
			}
			return 0, c.rerr
		}
		c.buf = f.GetData()
		if f.GetCloseWrite() {
			c.rerr = io.EOF
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Write sends p to the client, in 64 KiB frames; it fails once CloseWrite
// was called or the connection is gone.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	n := 0
	for len(p) > 0 {
		take := min(len(p), ChunkSize)
		if err := c.stream.Send(&pluginpb.StreamFrame{Data: p[:take]}); err != nil {
			return n, err
		}
		n += take
		p = p[take:]
	}
	return n, nil
}

// CloseWrite tells the client no more bytes follow; reading may go on. It
// is called for the handler when ServeStream returns.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.stream.Send(&pluginpb.StreamFrame{CloseWrite: true})
}

func serveStream(h StreamHandler, stream pluginpb.Plugin_ServeStreamServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	c := &Conn{stream: stream, buf: first.GetData()}
	if open != nil {
		c.Listener, c.RemoteAddr, c.LocalAddr = open.GetListener(), open.GetRemoteAddr(), open.GetLocalAddr()
	}
	if first.GetCloseWrite() {
		c.rerr = io.EOF
	}
	if err := h.ServeStream(stream.Context(), c); err != nil {
		return err
	}
	return c.CloseWrite()
}
