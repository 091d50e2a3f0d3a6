// Package server assembles a running socketd from a config: it starts and
// configures the plugins, builds the route table, binds the listeners and
// serves until told to stop.
package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/httpfront"
	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/daemon/router"
	"github.com/socketd/socketd/daemon/streamfront"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// Daemon is a config brought to life.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	pool    *pluginhost.Pool
	plugins map[string]*pluginhost.Plugin
	router  router.Router

	listeners map[string]net.Listener
	packets   map[string]net.PacketConn
}

// front is what Serve runs on each bound socket.
type front interface {
	Shutdown(ctx context.Context) error
}

// Prepare starts every plugin, checks each config block against the
// plugin's schema and hands the plugins their config. Nothing is bound yet,
// so `socketd validate` uses it too. Diagnostics carry config positions; on
// errors the plugins are already stopped.
func Prepare(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Daemon, hcl.Diagnostics) {
	pool, err := pluginhost.NewPool(log)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot start plugins", Detail: err.Error()}}
	}
	d := &Daemon{cfg: cfg, log: log, pool: pool, plugins: map[string]*pluginhost.Plugin{}}
	diags := d.startPlugins(ctx)
	if !diags.HasErrors() {
		diags = append(diags, d.configurePlugins(ctx)...)
	}
	if !diags.HasErrors() {
		if err := d.buildRoutes(); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid routes", Detail: err.Error()})
		}
	}
	if diags.HasErrors() {
		pool.Close()
		return nil, diags
	}
	return d, diags
}

// startPlugins launches all plugins at once: start-up time is the slowest
// plugin's, not the sum.
func (d *Daemon) startPlugins(ctx context.Context) hcl.Diagnostics {
	var (
		mu    sync.Mutex
		diags hcl.Diagnostics
		wg    sync.WaitGroup
	)
	for _, p := range d.cfg.Plugins {
		wg.Go(func() {
			opts := pluginhost.Options{
				Name: p.Name, Binary: p.Binary, Dir: d.cfg.Dir,
				StartTimeout: p.StartTimeout, MaxConcurrency: p.MaxConcurrency,
			}
			if p.SHA256 != "" {
				opts.SHA256, _ = hex.DecodeString(p.SHA256) // validated by config
			}
			pl, err := d.pool.Start(ctx, opts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rng := p.NameRange
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Plugin failed to start",
					Detail:   err.Error(),
					Subject:  &rng,
				})
				return
			}
			d.plugins[p.Name] = pl
		})
	}
	wg.Wait()
	return diags
}

func schemaOf(s *pluginpb.Schema) []config.Attribute {
	var out []config.Attribute
	for _, a := range s.GetAttributes() {
		out = append(out, config.Attribute{Name: a.GetName(), Type: a.GetType(), Required: a.GetRequired(), Description: a.GetDescription()})
	}
	return out
}

var protocolNames = map[pluginpb.Protocol]string{
	pluginpb.Protocol_PROTOCOL_HTTP:     "HTTP routes",
	pluginpb.Protocol_PROTOCOL_STREAM:   "tcp listeners",
	pluginpb.Protocol_PROTOCOL_DATAGRAM: "udp listeners",
}

func notServed(name string, p pluginpb.Protocol, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Plugin cannot serve this",
		Detail:   fmt.Sprintf("Plugin %q does not serve %s; `socketd plugins` lists what each plugin serves.", name, protocolNames[p]),
		Subject:  &rng,
	}
}

// configurePlugins decodes every block against its plugin's schema and
// sends each plugin its share; plugin diagnostics come back positioned.
func (d *Daemon) configurePlugins(ctx context.Context) hcl.Diagnostics {
	var diags hcl.Diagnostics
	reqs := map[string]*pluginpb.ConfigureRequest{}
	for _, p := range d.cfg.Plugins {
		pl := d.plugins[p.Name]
		desc := pl.Description()
		js, ds := d.cfg.DecodeBlock(p.Config, p.DeclRange, schemaOf(desc.GetPluginSchema()), p.Name)
		diags = append(diags, ds...)
		reqs[p.Name] = &pluginpb.ConfigureRequest{PluginConfig: js}
	}
	for _, r := range d.cfg.Routes {
		pl, req := d.plugins[r.Plugin], reqs[r.Plugin]
		if pl == nil {
			continue
		}
		if !pl.Serves(pluginpb.Protocol_PROTOCOL_HTTP) {
			diags = append(diags, notServed(r.Plugin, pluginpb.Protocol_PROTOCOL_HTTP, r.PluginRange))
			continue
		}
		js, ds := d.cfg.DecodeBlock(r.Config, r.DeclRange, schemaOf(pl.Description().GetRouteSchema()), r.Plugin)
		diags = append(diags, ds...)
		req.Routes = append(req.Routes, &pluginpb.RouteConfig{Id: r.ID, Config: js})
	}
	for _, l := range d.cfg.Listeners {
		if l.Protocol == "http" {
			continue
		}
		pl, req := d.plugins[l.Plugin], reqs[l.Plugin]
		if pl == nil {
			continue
		}
		proto := pluginpb.Protocol_PROTOCOL_STREAM
		if l.Protocol == "udp" {
			proto = pluginpb.Protocol_PROTOCOL_DATAGRAM
		}
		if !pl.Serves(proto) {
			diags = append(diags, notServed(l.Plugin, proto, l.DeclRange))
			continue
		}
		js, ds := d.cfg.DecodeBlock(l.Config, l.DeclRange, schemaOf(pl.Description().GetListenerSchema()), l.Plugin)
		diags = append(diags, ds...)
		req.Listeners = append(req.Listeners, &pluginpb.ListenerConfig{Name: l.Name, Protocol: proto, Config: js})
	}
	if diags.HasErrors() {
		return diags
	}

	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, p := range d.cfg.Plugins {
		wg.Go(func() {
			pds, err := d.plugins[p.Name].Configure(ctx, reqs[p.Name])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rng := p.NameRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin configuration failed", Detail: err.Error(), Subject: &rng})
				return
			}
			for _, pd := range pds {
				diags = append(diags, d.positioned(p, pd))
			}
		})
	}
	wg.Wait()
	return diags
}

// positioned maps a plugin's diagnostic to the block and attribute it is
// about.
func (d *Daemon) positioned(p *config.Plugin, pd *pluginpb.Diagnostic) *hcl.Diagnostic {
	body, owner := p.Config, p.DeclRange
	if id := pd.GetRoute(); id != "" {
		for _, r := range d.cfg.Routes {
			if r.ID == id {
				body, owner = r.Config, r.DeclRange
			}
		}
	}
	if name := pd.GetListener(); name != "" {
		for _, l := range d.cfg.Listeners {
			if l.Name == name {
				body, owner = l.Config, l.DeclRange
			}
		}
	}
	rng := d.cfg.PathRange(body, owner, pd.GetPath())
	sev := hcl.DiagError
	if pd.GetSeverity() == pluginpb.Severity_SEVERITY_WARNING {
		sev = hcl.DiagWarning
	}
	return &hcl.Diagnostic{Severity: sev, Summary: pd.GetSummary(), Detail: pd.GetDetail(), Subject: &rng}
}

func (d *Daemon) httpListeners() []string {
	var names []string
	for _, l := range d.cfg.Listeners {
		if l.Protocol == "http" {
			names = append(names, l.Name)
		}
	}
	return names
}

func (d *Daemon) buildRoutes() error {
	var routes []router.Route
	for _, r := range d.cfg.Routes {
		listeners := r.Listeners
		if len(listeners) == 0 {
			listeners = d.httpListeners()
		}
		for _, l := range listeners {
			routes = append(routes, router.Route{
				Pattern:   r.ID,
				Listeners: []string{l},
				Handler: &httpfront.Forward{
					Route: r.ID, Listener: l, Plugin: d.plugins[r.Plugin],
					Timeout: r.Timeout, MaxBodyBytes: r.MaxBodyBytes, Log: d.log,
				},
			})
		}
	}
	t, err := router.NewTable(d.httpListeners(), routes)
	if err != nil {
		return err
	}
	d.router.Swap(t)
	return nil
}

// Bind opens every listener. If one fails, those already opened are closed:
// a daemon that cannot serve its whole config serves none of it.
func (d *Daemon) Bind() error {
	d.listeners = map[string]net.Listener{}
	d.packets = map[string]net.PacketConn{}
	for _, l := range d.cfg.Listeners {
		var addr net.Addr
		if l.Protocol == "udp" {
			pc, err := net.ListenPacket("udp", l.Address)
			if err != nil {
				d.unbind()
				return fmt.Errorf("listener %q: %w", l.Name, err)
			}
			d.packets[l.Name], addr = pc, pc.LocalAddr()
		} else {
			ln, err := net.Listen("tcp", l.Address)
			if err != nil {
				d.unbind()
				return fmt.Errorf("listener %q: %w", l.Name, err)
			}
			d.listeners[l.Name], addr = ln, ln.Addr()
		}
		d.log.Info("listening", "listener", l.Name, "protocol", l.Protocol, "address", addr.String())
	}
	return nil
}

func (d *Daemon) unbind() {
	for _, ln := range d.listeners {
		ln.Close()
	}
	for _, pc := range d.packets {
		pc.Close()
	}
	d.listeners, d.packets = nil, nil
}

// Serve serves on the bound listeners until ctx ends, then drains: new
// connections are refused, in-flight requests get up to the config's
// shutdown_timeout, and the plugins are stopped last.
func (d *Daemon) Serve(ctx context.Context) error {
	errc := make(chan error, len(d.cfg.Listeners))
	var fronts []front
	for _, l := range d.cfg.Listeners {
		log := d.log.With("listener", l.Name)
		limits := streamfront.Limits{
			MaxConnections: l.MaxConnections, MaxPerSource: l.MaxPerSource,
			IdleTimeout: l.StreamIdleTimeout, Allow: l.Allow, Deny: l.Deny,
			MaxReplyBytes: l.MaxDatagramReply,
		}
		switch l.Protocol {
		case "http":
			s := httpfront.NewServer(l.Name, httpfront.Limits{
				ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
				WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
				MaxHeaderBytes: l.MaxHeaderBytes, MaxURIBytes: l.MaxURIBytes,
			}, d.router.Handler(l.Name), d.log)
			fronts = append(fronts, s)
			ln := d.listeners[l.Name]
			go func() { errc <- s.Serve(ln) }()
		case "tcp":
			s := &streamfront.TCP{Name: l.Name, Plugin: d.plugins[l.Plugin], Limits: limits, Log: log}
			fronts = append(fronts, s)
			ln := d.listeners[l.Name]
			go func() { errc <- s.Serve(ln) }()
		case "udp":
			s := &streamfront.UDP{Name: l.Name, Plugin: d.plugins[l.Plugin], Limits: limits, Log: log}
			fronts = append(fronts, s)
			pc := d.packets[l.Name]
			go func() { errc <- s.Serve(pc) }()
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("serve: %w", err)
		}
	}
	d.log.Info("shutting down", "drain_bound", d.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range fronts {
		wg.Go(func() {
			if e := f.Shutdown(sctx); e != nil && !errors.Is(e, context.DeadlineExceeded) {
				d.log.Warn("shutdown", "error", e)
			}
		})
	}
	wg.Wait()
	d.Close()
	return err
}

// Close stops the plugins and frees their socket directory.
func (d *Daemon) Close() {
	d.pool.Close()
}
