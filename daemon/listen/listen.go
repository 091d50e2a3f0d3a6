// Package listen owns socketd's listening sockets. It binds them, or takes
// them from systemd (socket activation), and hands each socket to the front
// that serves it through a view: closing a view stops that front from
// accepting without closing the socket. A reload can so move a socket from
// an old front to a new one (new limits, a new plugin process) while the
// kernel keeps queueing connections: no client is ever refused, and
// connections open on the old front are drained, not cut.
package listen

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Socket is one bound socket, stream (tcp) or datagram (udp). Exactly one
// accept or read loop runs on it; views take what it yields.
type Socket struct {
	// Network is "tcp" or "udp"; Address the configured address.
	Network, Address string
	// Activated names the systemd socket (FileDescriptorName) this came
	// from; empty when socketd bound it.
	Activated string

	ln net.Listener
	pc net.PacketConn
	// conns and packets hand accepted connections and read datagrams to
	// whichever view asks first. Unbuffered: while no view asks (between
	// two fronts), the kernel's backlog holds connections, not socketd.
	conns   chan net.Conn
	packets chan packet
	closed  chan struct{}
	once    sync.Once
	done    chan struct{} // the loop has returned
	log     *slog.Logger
}

type packet struct {
	data []byte
	addr net.Addr
}

// Bind binds address on network ("tcp" or "udp").
func Bind(network, address string, log *slog.Logger) (*Socket, error) {
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", address)
		if err != nil {
			return nil, err
		}
		return newStream(network, address, ln, log), nil
	case "udp":
		pc, err := net.ListenPacket("udp", address)
		if err != nil {
			return nil, err
		}
		return newDatagram(network, address, pc, log), nil
	}
	return nil, fmt.Errorf("listen: unknown network %q", network)
}

func newStream(network, address string, ln net.Listener, log *slog.Logger) *Socket {
	s := &Socket{
		Network: network, Address: address, ln: ln, log: log,
		conns: make(chan net.Conn), closed: make(chan struct{}), done: make(chan struct{}),
	}
	go s.acceptLoop()
	return s
}

func newDatagram(network, address string, pc net.PacketConn, log *slog.Logger) *Socket {
	s := &Socket{
		Network: network, Address: address, pc: pc, log: log,
		packets: make(chan packet), closed: make(chan struct{}), done: make(chan struct{}),
	}
	go s.readLoop()
	return s
}

// Addr returns the socket's bound address (the real port when the config
// asked for port 0).
func (s *Socket) Addr() net.Addr {
	if s.ln != nil {
		return s.ln.Addr()
	}
	return s.pc.LocalAddr()
}

// Close closes the socket; its views' Accept and ReadFrom then fail with
// net.ErrClosed, and a connection accepted but not yet taken is closed.
func (s *Socket) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		if s.ln != nil {
			err = s.ln.Close()
		} else {
			err = s.pc.Close()
		}
		<-s.done
	})
	return err
}

// acceptLoop accepts until the socket closes. Running out of file
// descriptors is waited out (as net/http does), not fatal.
func (s *Socket) acceptLoop() {
	defer close(s.done)
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", "address", s.Address, "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		select {
		case s.conns <- c:
		case <-s.closed:
			c.Close()
			return
		}
	}
}

// maxDatagram is the largest UDP payload there is.
const maxDatagram = 64 << 10

func (s *Socket) readLoop() {
	defer close(s.done)
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors surface here on some systems; the socket lives on.
			s.log.Debug("read", "address", s.Address, "error", err)
			continue
		}
		p := packet{data: append([]byte(nil), buf[:n]...), addr: addr}
		select {
		case s.packets <- p:
		case <-s.closed:
			return
		}
	}
}

// Listener returns a new view of a stream socket. Several views may accept
// at once; each connection goes to exactly one.
func (s *Socket) Listener() net.Listener {
	return &listenerView{s: s, closed: make(chan struct{})}
}

type listenerView struct {
	s      *Socket
	once   sync.Once
	closed chan struct{}
}

func (v *listenerView) Accept() (net.Conn, error) {
	select {
	case c := <-v.s.conns:
		return c, nil
	case <-v.closed:
	case <-v.s.closed:
	}
	return nil, &net.OpError{Op: "accept", Net: v.s.Network, Addr: v.s.Addr(), Err: net.ErrClosed}
}

// Close stops this view; the socket stays open for the other views.
func (v *listenerView) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *listenerView) Addr() net.Addr { return v.s.Addr() }

// PacketConn returns a new view of a datagram socket: it reads the
// socket's datagrams (each goes to one view) and writes through the
// socket. Closing the view leaves the socket open.
func (s *Socket) PacketConn() net.PacketConn {
	return &packetView{s: s, closed: make(chan struct{}), deadlineSet: make(chan struct{}, 1)}
}

type packetView struct {
	s      *Socket
	once   sync.Once
	closed chan struct{}

	mu          sync.Mutex
	deadline    time.Time
	deadlineSet chan struct{} // wakes a blocked ReadFrom to look again
}

func (v *packetView) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		select {
		case <-v.closed:
			return 0, nil, v.opError("read", net.ErrClosed)
		case <-v.s.closed:
			return 0, nil, v.opError("read", net.ErrClosed)
		default:
		}
		v.mu.Lock()
		dl := v.deadline
		v.mu.Unlock()
		var expire <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, v.opError("read", os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(d)
			expire = timer.C
		}
		var (
			p   packet
			got bool
			err error
		)
		select {
		case p = <-v.s.packets:
			got = true
		case <-v.closed:
			err = net.ErrClosed
		case <-v.s.closed:
			err = net.ErrClosed
		case <-expire:
		case <-v.deadlineSet:
		}
		if timer != nil {
			timer.Stop()
		}
		if got {
			return copy(b, p.data), p.addr, nil
		}
		if err != nil {
			return 0, nil, v.opError("read", err)
		}
	}
}

func (v *packetView) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-v.s.closed:
		return 0, v.opError("write", net.ErrClosed)
	default:
	}
	return v.s.pc.WriteTo(b, addr)
}

func (v *packetView) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: v.s.Network, Addr: v.s.Addr(), Err: err}
}

// Close stops this view; the socket stays open for the other views.
func (v *packetView) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *packetView) LocalAddr() net.Addr { return v.s.Addr() }

// SetDeadline sets the view's read deadline; write deadlines belong to the
// shared socket and are not changed through a view.
func (v *packetView) SetDeadline(t time.Time) error { return v.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom on this view fail once t has passed.
func (v *packetView) SetReadDeadline(t time.Time) error {
	v.mu.Lock()
	v.deadline = t
	v.mu.Unlock()
	select {
	case v.deadlineSet <- struct{}{}:
	default:
	}
	return nil
}

// SetWriteDeadline is a no-op: see SetDeadline.
func (v *packetView) SetWriteDeadline(time.Time) error { return nil }
