package streamfront

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// TCP serves one tcp listener through a plugin.
type TCP struct {
	Name   string
	Plugin *pluginhost.Plugin
	Limits Limits
	Log    *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	perIP    map[string]int
	closing  bool
	wg       sync.WaitGroup
	shutdown chan struct{}
}

// Serve accepts on ln until Shutdown.
func (s *TCP) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.conns = map[net.Conn]struct{}{}
	s.perIP = map[string]int{}
	s.shutdown = make(chan struct{})
	s.mu.Unlock()
	for {
		// ln is a view of a listen.Socket, whose accept loop waits out
		// transient errors (out of file descriptors); an error here means
		// the view or the socket closed.
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			return err
		}
		if reason := s.admit(c); reason != "" {
			logRefused(s.Log, c.RemoteAddr(), reason)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(c)
			s.serveConn(c)
		}()
	}
}

// admit applies the source lists and connection limits; "" admits.
func (s *TCP) admit(c net.Conn) string {
	if !s.Limits.admitted(c.RemoteAddr()) {
		return "source not allowed"
	}
	ip := sourceIP(c.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return "shutting down"
	}
	if m := s.Limits.MaxConnections; m > 0 && len(s.conns) >= m {
		return "max_connections reached"
	}
	if m := s.Limits.MaxPerSource; m > 0 && s.perIP[ip] >= m {
		return "max_connections_per_source reached"
	}
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	return ""
}

func (s *TCP) release(c net.Conn) {
	c.Close()
	ip := sourceIP(c.RemoteAddr())
	s.mu.Lock()
	delete(s.conns, c)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.mu.Unlock()
}

// Shutdown stops accepting and waits for open connections until ctx ends,
// then closes them.
func (s *TCP) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// serveConn pumps bytes between the client and the plugin until both
// directions are closed, either side fails, or the connection idles out.
func (s *TCP) serveConn(c net.Conn) {
	start := time.Now()
	log := s.Log.With("remote", c.RemoteAddr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	release, err := s.Plugin.Acquire()
	if err != nil {
		logRefused(s.Log, c.RemoteAddr(), "plugin overloaded")
		return
	}
	defer release()
	client, err := s.Plugin.Client(ctx)
	if err != nil {
		log.Warn("connection dropped", "error", err)
		return
	}
	stream, err := client.ServeStream(ctx)
	if err != nil {
		log.Warn("connection dropped", "error", err)
		return
	}
	if err := stream.Send(&pluginpb.StreamFrame{Open: &pluginpb.StreamOpen{
		Listener: s.Name, RemoteAddr: c.RemoteAddr().String(), LocalAddr: c.LocalAddr().String(),
	}}); err != nil {
		log.Warn("connection dropped", "error", err)
		return
	}

	var lastActive atomic.Int64
	touch := func() { lastActive.Store(time.Now().UnixNano()) }
	touch()
	var in, out atomic.Int64

	// client -> plugin
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		buf := make([]byte, sdk.ChunkSize)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				touch()
				in.Add(int64(n))
				if stream.Send(&pluginpb.StreamFrame{Data: buf[:n]}) != nil {
					return
				}
			}
			if err != nil {
				// The client half-closed (or went): tell the plugin.
				stream.Send(&pluginpb.StreamFrame{CloseWrite: true})
				stream.CloseSend()
				return
			}
		}
	}()

	// idle watchdog
	if idle := s.Limits.IdleTimeout; idle > 0 {
		go func() {
			t := time.NewTicker(min(idle/4+time.Millisecond, time.Second))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if time.Since(time.Unix(0, lastActive.Load())) > idle {
						log.Info("idle timeout", "after", idle)
						c.Close()
						cancel()
						return
					}
				}
			}
		}()
	}

	// plugin -> client
	var outcome string
	for {
		f, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				outcome = "plugin stream failed: " + err.Error()
			}
			break
		}
		if d := f.GetData(); len(d) > 0 {
			touch()
			if _, err := c.Write(d); err != nil {
				outcome = "client went away"
				break
			}
			out.Add(int64(len(d)))
		}
		if f.GetCloseWrite() {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}
	}
	// The plugin is done (or failed): the connection ends here. Closing it
	// also ends the upstream reader.
	c.Close()
	cancel()
	<-upDone
	attrs := []slog.Attr{
		slog.Int64("bytes_in", in.Load()), slog.Int64("bytes_out", out.Load()),
		slog.Duration("duration", time.Since(start)),
	}
	if outcome != "" {
		attrs = append(attrs, slog.String("outcome", outcome))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
}
