package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/socketd/socketd/daemon/admin"
	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/httpfront"
	"github.com/socketd/socketd/daemon/listen"
	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/daemon/streamfront"
)

// front is what serves one socket.
type front interface {
	Shutdown(ctx context.Context) error
}

// frontSpec is everything a running front was built from; a reload keeps
// a front whose spec and socket are unchanged, so its open connections
// (keep-alive, long downloads, tcp sessions) never notice the reload.
type frontSpec struct {
	protocol string // http, tcp, udp, admin
	http     httpfront.Limits
	stream   streamfront.Limits
	plugin   *pluginhost.Plugin
	pprof    bool // admin only: serve /debug/pprof/
}

type runningFront struct {
	name    string
	spec    frontSpec
	sock    *listen.Socket
	f       front
	retired atomic.Bool // Shutdown was called: Serve's return is expected
}

// adminFront names the admin listener among the fronts; listener names
// cannot contain "@".
const adminFront = "@admin"

func specOf(g *generation, l *config.Listener) frontSpec {
	s := frontSpec{protocol: l.Protocol}
	switch l.Protocol {
	case "http":
		s.http = httpfront.Limits{
			ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
			WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
			MaxHeaderBytes: l.MaxHeaderBytes, MaxURIBytes: l.MaxURIBytes, NoFastLane: !l.FastLane,
		}
	default:
		s.stream = streamfront.Limits{
			MaxConnections: l.MaxConnections, MaxPerSource: l.MaxPerSource,
			IdleTimeout: l.StreamIdleTimeout, Allow: l.Allow, Deny: l.Deny,
			MaxReplyBytes: l.MaxDatagramReply,
		}
		s.plugin = g.plugins[l.Plugin].Plugin
	}
	return s
}

// startFronts makes the running fronts match g: it keeps each front whose
// socket and spec are unchanged and starts the others, each on a new view
// of its socket, so the old front (if any) and the new one accept side by
// side until the old one is shut down. It returns the fronts g no longer
// needs; the caller shuts them down.
func (d *Daemon) startFronts(g *generation) (replaced []*runningFront) {
	next := map[string]*runningFront{}
	for _, l := range g.cfg.Listeners {
		sock := d.sockets[d.socketKey(l.Name, l.Protocol, l.Address)]
		spec := specOf(g, l)
		if rf := d.fronts[l.Name]; rf != nil && rf.sock == sock && reflect.DeepEqual(rf.spec, spec) {
			next[l.Name] = rf
			continue
		}
		next[l.Name] = d.serve(l.Name, spec, sock)
	}
	if a := g.cfg.Admin; a != nil {
		sock := d.sockets[d.socketKey(adminFront, "http", a.Address)]
		spec := frontSpec{protocol: "admin", pprof: a.Pprof}
		if rf := d.fronts[adminFront]; rf != nil && rf.sock == sock && reflect.DeepEqual(rf.spec, spec) {
			next[adminFront] = rf
		} else {
			next[adminFront] = d.serve(adminFront, spec, sock)
		}
	}
	for name, rf := range d.fronts {
		if next[name] != rf {
			replaced = append(replaced, rf)
		}
	}
	d.fronts = next
	return replaced
}

// serve starts a front on a new view of sock.
func (d *Daemon) serve(name string, spec frontSpec, sock *listen.Socket) *runningFront {
	rf := &runningFront{name: name, spec: spec, sock: sock}
	log := d.log.With("listener", name)
	var run func() error
	switch spec.protocol {
	case "http":
		s := httpfront.NewServer(name, spec.http, d.router.Handler(name), d.metrics, d.log)
		ln := sock.Listener()
		rf.f, run = s, func() error { return s.Serve(ln) }
	case "admin":
		s := admin.New(d.Ready, d.metrics.Registry(), spec.pprof)
		ln := sock.Listener()
		rf.f, run = s, func() error { return s.Serve(ln) }
	case "tcp":
		s := &streamfront.TCP{Name: name, Plugin: spec.plugin, Limits: spec.stream, Log: log}
		ln := sock.Listener()
		rf.f, run = s, func() error { return s.Serve(ln) }
	case "udp":
		s := &streamfront.UDP{Name: name, Plugin: spec.plugin, Limits: spec.stream, Log: log}
		pc := sock.PacketConn()
		rf.f, run = s, func() error { return s.Serve(pc) }
	}
	go func() {
		err := run()
		if err == nil || rf.retired.Load() {
			return
		}
		select {
		case d.errc <- fmt.Errorf("listener %s: %w", name, err):
		default:
		}
	}()
	return rf
}

// shutdownFronts shuts fronts down in parallel, each draining its open
// connections until ctx ends.
func (d *Daemon) shutdownFronts(ctx context.Context, fronts []*runningFront) {
	var wg sync.WaitGroup
	for _, rf := range fronts {
		rf.retired.Store(true)
		wg.Go(func() {
			if err := rf.f.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				d.log.Warn("shutdown", "listener", rf.name, "error", err)
			}
		})
	}
	wg.Wait()
}

// socketKey identifies the socket a listener needs: one systemd passed
// under the listener's name, or else its network and address. Port 0
// means "any free port", so such a socket belongs to its listener alone.
func (d *Daemon) socketKey(name, protocol, address string) string {
	if _, ok := d.activated[name]; ok {
		return "fd|" + name
	}
	network := "tcp"
	if protocol == "udp" {
		network = "udp"
	}
	if _, port, _ := net.SplitHostPort(address); strings.TrimLeft(port, "0") == "" {
		return network + "|" + address + "|" + name
	}
	return network + "|" + address
}

// acquire finds or opens the socket of every listener of cfg: kept from
// the running config when the key is unchanged, passed by systemd, or
// bound now. fresh lists the sockets bound now; on error the caller
// closes them.
func (d *Daemon) acquire(cfg *config.Config) (socks, fresh map[string]*listen.Socket, err error) {
	socks, fresh = map[string]*listen.Socket{}, map[string]*listen.Socket{}
	get := func(name, protocol, address string) (*listen.Socket, error) {
		key := d.socketKey(name, protocol, address)
		if s := socks[key]; s != nil {
			return s, nil
		}
		if s := d.sockets[key]; s != nil {
			socks[key] = s
			return s, nil
		}
		if s := d.activated[name]; s != nil {
			if s.Stream() == (protocol == "udp") {
				kind := map[bool]string{true: "stream", false: "datagram"}[s.Stream()]
				return nil, fmt.Errorf("listener %q is %s, but the socket systemd passed as %q is a %s socket", name, protocol, name, kind)
			}
			socks[key] = s
			d.log.Info("listening", "listener", name, "protocol", protocol, "address", s.Addr().String(), "activated", true)
			return s, nil
		}
		network := "tcp"
		if protocol == "udp" {
			network = "udp"
		}
		s, err := listen.Bind(network, address, d.log)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", name, err)
		}
		socks[key], fresh[key] = s, s
		if name == adminFront {
			d.log.Info("admin listening", "address", s.Addr().String())
		} else {
			d.log.Info("listening", "listener", name, "protocol", protocol, "address", s.Addr().String())
		}
		return s, nil
	}
	for _, l := range cfg.Listeners {
		if _, err := get(l.Name, l.Protocol, l.Address); err != nil {
			return nil, fresh, err
		}
	}
	if a := cfg.Admin; a != nil {
		if _, err := get(adminFront, "http", a.Address); err != nil {
			return nil, fresh, err
		}
	}
	return socks, fresh, nil
}

// warnUnusedActivated names the sockets systemd passed that no listener
// block claims: most likely a FileDescriptorName that does not match.
func (d *Daemon) warnUnusedActivated(cfg *config.Config) {
	for name, s := range d.activated {
		used := false
		for _, l := range cfg.Listeners {
			used = used || l.Name == name
		}
		if !used {
			d.log.Warn("systemd passed a socket no listener block is named after; set FileDescriptorName= to a listener's name",
				"name", name, "address", s.Addr().String())
		}
	}
}

func closeSockets[M ~map[string]*listen.Socket](m M) {
	for _, s := range m {
		s.Close()
	}
}
