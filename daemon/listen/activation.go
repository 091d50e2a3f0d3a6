package listen

import (
	"fmt"
	"log/slog"
	"net"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
)

// Activated takes the sockets systemd passed in (LISTEN_FDS, socket
// activation), keyed by their FileDescriptorName, which a listener block
// names. It removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the
// environment, so plugin processes never see them. Without socket
// activation it returns an empty map.
//
// A name systemd passes twice (two ListenStream= lines in one socket unit
// sharing a FileDescriptorName) keeps its first socket; the others are
// reported and closed: one listener block serves one socket.
func Activated(log *slog.Logger) (map[string]*Socket, error) {
	out := map[string]*Socket{}
	for _, f := range activation.Files(true) {
		name := f.Name()
		typ, err := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_TYPE)
		if err != nil {
			f.Close()
			closeAll(out)
			return nil, fmt.Errorf("inherited socket %q: %w", name, err)
		}
		var s *Socket
		switch typ {
		case syscall.SOCK_STREAM:
			ln, err := net.FileListener(f)
			if err != nil {
				f.Close()
				closeAll(out)
				return nil, fmt.Errorf("inherited socket %q: %w", name, err)
			}
			s = newStream(ln.Addr().Network(), ln.Addr().String(), ln, log)
		case syscall.SOCK_DGRAM:
			pc, err := net.FilePacketConn(f)
			if err != nil {
				f.Close()
				closeAll(out)
				return nil, fmt.Errorf("inherited socket %q: %w", name, err)
			}
			s = newDatagram(pc.LocalAddr().Network(), pc.LocalAddr().String(), pc, log)
		default:
			log.Warn("inherited socket ignored: neither stream nor datagram", "name", name)
		}
		f.Close() // FileListener and FilePacketConn hold their own copy
		if s == nil {
			continue
		}
		s.Activated = name
		if _, dup := out[name]; dup {
			log.Warn("inherited socket ignored: another socket has the same FileDescriptorName; give each its own",
				"name", name, "address", s.Address)
			s.Close()
			continue
		}
		out[name] = s
	}
	return out, nil
}

func closeAll(m map[string]*Socket) {
	for _, s := range m {
		s.Close()
	}
}

// Stream reports whether s is a stream socket (tcp, or unix stream when
// systemd passed one).
func (s *Socket) Stream() bool { return s.ln != nil }
