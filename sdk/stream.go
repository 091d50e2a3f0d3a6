package sdk

import (
	"context"
	"errors"
	"io"

	"github.com/socketd/socketd/sdk/internal/frames"
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

	pipe *frames.Pipe
}

// Read reads the client's bytes; it returns io.EOF once the client has
// half-closed or gone.
func (c *Conn) Read(p []byte) (int, error) { return c.pipe.Read(p) }

// Write sends p to the client, in 64 KiB frames; it fails once CloseWrite
// was called or the connection is gone.
func (c *Conn) Write(p []byte) (int, error) { return c.pipe.Write(p) }

// CloseWrite tells the client no more bytes follow; reading may go on. It
// is called for the handler when ServeStream returns.
func (c *Conn) CloseWrite() error { return c.pipe.CloseWrite() }

func serveStream(h StreamHandler, stream pluginpb.Plugin_ServeStreamServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	// The client going away, however it shows, is the end of its bytes.
	clientGone := func(err error) error {
		if errors.Is(err, io.EOF) || stream.Context().Err() != nil {
			return io.EOF
		}
		return err
	}
	c := &Conn{
		Listener: open.GetListener(), RemoteAddr: open.GetRemoteAddr(), LocalAddr: open.GetLocalAddr(),
		pipe: frames.New(stream, first, clientGone, io.ErrClosedPipe),
	}
	if err := h.ServeStream(stream.Context(), c); err != nil {
		return err
	}
	return c.CloseWrite()
}
