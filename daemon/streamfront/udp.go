package streamfront

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/socketd/socketd/daemon/pluginhost"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// UDP serves one udp listener through a plugin: each datagram is one call,
// its answer (if any, and if small enough) goes back to the sender.
//
// UDP answers go to whatever source address a datagram claims, so an open
// UDP service can be abused to reflect traffic at a victim. socketd binds
// udp only where a listener block says so; keep them on loopback or behind
// allow lists, and keep answers small (max_reply_bytes).
type UDP struct {
	Name   string
	Plugin *pluginhost.Plugin
	Limits Limits
	Log    *slog.Logger

	mu      sync.Mutex
	pc      net.PacketConn
	closing bool
	wg      sync.WaitGroup
}

// Serve reads datagrams from pc until Shutdown.
func (s *UDP) Serve(pc net.PacketConn) error {
	s.mu.Lock()
	s.pc = pc
	s.mu.Unlock()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				return nil
			}
			return err
		}
		if !s.Limits.admitted(addr) {
			logRefused(s.Log, addr, "source not allowed")
			continue
		}
		release, err := s.Plugin.Acquire()
		if err != nil {
			logRefused(s.Log, addr, "plugin overloaded")
			continue
		}
		data := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer release()
			s.answer(pc, addr, data)
		}()
	}
}

func (s *UDP) answer(pc net.PacketConn, addr net.Addr, data []byte) {
	timeout := s.Limits.CallTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client, err := s.Plugin.Client(ctx)
	if err != nil {
		s.Log.Warn("datagram dropped", "remote", addr.String(), "error", err)
		return
	}
	reply, err := client.ServeDatagram(ctx, &pluginpb.Datagram{Listener: s.Name, RemoteAddr: addr.String(), Data: data})
	if err != nil {
		s.Log.Warn("datagram dropped", "remote", addr.String(), "error", err)
		return
	}
	out := reply.GetData()
	if len(out) == 0 {
		return
	}
	if m := s.Limits.MaxReplyBytes; m > 0 && len(out) > m {
		s.Log.Warn("datagram answer dropped: larger than max_reply_bytes", "remote", addr.String(), "bytes", len(out), "max", m)
		return
	}
	if _, err := pc.WriteTo(out, addr); err != nil {
		s.Log.Warn("datagram answer", "remote", addr.String(), "error", err)
	}
}

// Shutdown stops reading and waits for calls in flight until ctx ends.
func (s *UDP) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	pc := s.pc
	s.mu.Unlock()
	if pc == nil {
		return nil
	}
	// Stop reading but keep the socket so answers in flight still go out.
	pc.SetReadDeadline(time.Now())
	defer pc.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
