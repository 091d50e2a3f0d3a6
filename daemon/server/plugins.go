package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/protobuf/proto"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/fileid"
	"github.com/socketd/socketd/daemon/httpfront"
	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/daemon/router"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// generation is one config brought to life: its plugins and route table.
// A reload builds the next generation beside the running one and swaps.
type generation struct {
	cfg     *config.Config
	plugins map[string]*plugin
	table   *router.Table
	// started are the plugins this generation started (the rest it took
	// over from the one before); stopped if the generation is abandoned.
	started []*pluginhost.Plugin
}

// plugin is a running plugin and the configuration it was handed.
type plugin struct {
	*pluginhost.Plugin
	req *pluginpb.ConfigureRequest
}

func (d *Daemon) options(cfg *config.Config, p *config.Plugin) pluginhost.Options {
	o := pluginhost.Options{
		Name: p.Name, Binary: p.Binary, Dir: cfg.Dir,
		StartTimeout: p.StartTimeout, MaxConcurrency: p.MaxConcurrency,
		OnRestart:  d.metrics.PluginRestarted(p.Name),
		Pprof:      cfg.Admin != nil && cfg.Admin.Pprof,
		Processors: p.Processors,
	}
	if p.SHA256 != "" {
		o.SHA256, _ = hex.DecodeString(p.SHA256) // validated by config
	}
	return o
}

// reusable reports whether the running plugin o can serve the new block
// as it is: same binary (path, and the file unchanged since it started or
// rewritten with the same bytes), same options, and not failed (a
// crash-looped plugin gets a fresh start on every reload).
func reusable(o *plugin, want pluginhost.Options) bool {
	if o == nil {
		return false
	}
	switch o.State() {
	case pluginhost.Failed, pluginhost.Stopped:
		return false
	}
	have := o.Options()
	if have.Binary != want.Binary || have.Dir != want.Dir || have.StartTimeout != want.StartTimeout ||
		have.MaxConcurrency != want.MaxConcurrency || !bytes.Equal(have.SHA256, want.SHA256) || have.Pprof != want.Pprof ||
		have.Processors != want.Processors {
		return false
	}
	now, err := fileid.Of(want.Binary)
	return err == nil && (now == o.Binary() || o.RunsContentOf(want.Binary))
}

// prepare builds the generation for cfg. Plugins of prev whose binary,
// options and configuration are unchanged are taken over, process and
// all; the others are started and configured now. Nothing serves through
// the new generation yet. On errors every plugin it started is stopped
// again and prev is untouched.
func (d *Daemon) prepare(ctx context.Context, cfg *config.Config, prev *generation) (*generation, hcl.Diagnostics) {
	g := &generation{cfg: cfg, plugins: map[string]*plugin{}}
	var old map[string]*plugin
	if prev != nil {
		old = prev.plugins
	}

	// Round one: plugins whose binary changed (or that are new) start now,
	// since decoding their blocks needs the schema they describe.
	kept := map[string]*plugin{}
	var toStart []*config.Plugin
	for _, p := range cfg.Plugins {
		if o := old[p.Name]; reusable(o, d.options(cfg, p)) {
			kept[p.Name] = o
		} else {
			toStart = append(toStart, p)
		}
	}
	diags := d.start(ctx, g, toStart)
	if diags.HasErrors() {
		g.abandon()
		return nil, diags
	}
	descs := map[string]*pluginpb.DescribeResponse{}
	for name, p := range g.plugins {
		descs[name] = p.Description()
	}
	for name, p := range kept {
		descs[name] = p.Description()
	}
	reqs, ds := decodeAll(cfg, descs)
	diags = append(diags, ds...)
	for _, req := range reqs {
		req.CheckOnly = d.checkOnly
	}
	if diags.HasErrors() {
		g.abandon()
		return nil, diags
	}

	// Round two: a kept binary whose configuration changed gets a new
	// process too. Reconfiguring the running one in place would change a
	// plugin under requests already in flight.
	toStart = nil
	for _, p := range cfg.Plugins {
		if o := kept[p.Name]; o != nil {
			if proto.Equal(o.req, reqs[p.Name]) {
				g.plugins[p.Name] = o
			} else {
				toStart = append(toStart, p)
			}
		}
	}
	diags = append(diags, d.start(ctx, g, toStart)...)
	if !diags.HasErrors() {
		diags = append(diags, g.configure(ctx, reqs)...)
	}
	if !diags.HasErrors() {
		var err error
		if g.table, err = d.buildTable(g); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid routes", Detail: err.Error()})
		}
	}
	if diags.HasErrors() {
		g.abandon()
		return nil, diags
	}
	return g, diags
}

// start launches plugins at once: start-up time is the slowest plugin's,
// not the sum.
func (d *Daemon) start(ctx context.Context, g *generation, plugins []*config.Plugin) hcl.Diagnostics {
	var (
		mu    sync.Mutex
		diags hcl.Diagnostics
		wg    sync.WaitGroup
	)
	for _, p := range plugins {
		wg.Go(func() {
			pl, err := d.pool.Start(ctx, d.options(g.cfg, p))
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
			g.plugins[p.Name] = &plugin{Plugin: pl}
			g.started = append(g.started, pl)
		})
	}
	wg.Wait()
	return diags
}

// abandon stops the plugins g started; those it took over keep running.
func (g *generation) abandon() {
	stopAll(g.started)
	g.started = nil
}

func stopAll(plugins []*pluginhost.Plugin) {
	var wg sync.WaitGroup
	for _, pl := range plugins {
		wg.Go(pl.Stop)
	}
	wg.Wait()
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

func serves(desc *pluginpb.DescribeResponse, p pluginpb.Protocol) bool {
	for _, x := range desc.GetProtocols() {
		if x == p {
			return true
		}
	}
	return false
}

// decodeAll decodes every block against its plugin's schema and gathers
// each plugin's share into the request it will be configured with.
func decodeAll(cfg *config.Config, descs map[string]*pluginpb.DescribeResponse) (map[string]*pluginpb.ConfigureRequest, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	reqs := map[string]*pluginpb.ConfigureRequest{}
	for _, p := range cfg.Plugins {
		js, ds := cfg.DecodeBlock(p.Config, p.DeclRange, schemaOf(descs[p.Name].GetPluginSchema()), p.Name)
		diags = append(diags, ds...)
		reqs[p.Name] = &pluginpb.ConfigureRequest{PluginConfig: js}
	}
	for _, r := range cfg.Routes {
		desc, req := descs[r.Plugin], reqs[r.Plugin]
		if desc == nil {
			continue
		}
		if !serves(desc, pluginpb.Protocol_PROTOCOL_HTTP) {
			diags = append(diags, notServed(r.Plugin, pluginpb.Protocol_PROTOCOL_HTTP, r.PluginRange))
			continue
		}
		js, ds := cfg.DecodeBlock(r.Config, r.DeclRange, schemaOf(desc.GetRouteSchema()), r.Plugin)
		diags = append(diags, ds...)
		req.Routes = append(req.Routes, &pluginpb.RouteConfig{Id: r.ID, Config: js})
	}
	for _, l := range cfg.Listeners {
		if l.Protocol == "http" {
			continue
		}
		desc, req := descs[l.Plugin], reqs[l.Plugin]
		if desc == nil {
			continue
		}
		proto := pluginpb.Protocol_PROTOCOL_STREAM
		if l.Protocol == "udp" {
			proto = pluginpb.Protocol_PROTOCOL_DATAGRAM
		}
		if !serves(desc, proto) {
			diags = append(diags, notServed(l.Plugin, proto, l.DeclRange))
			continue
		}
		js, ds := cfg.DecodeBlock(l.Config, l.DeclRange, schemaOf(desc.GetListenerSchema()), l.Plugin)
		diags = append(diags, ds...)
		req.Listeners = append(req.Listeners, &pluginpb.ListenerConfig{Name: l.Name, Protocol: proto, Config: js})
	}
	return reqs, diags
}

// configure hands each plugin g started its configuration; plugin
// diagnostics come back positioned.
func (g *generation) configure(ctx context.Context, reqs map[string]*pluginpb.ConfigureRequest) hcl.Diagnostics {
	var (
		mu    sync.Mutex
		diags hcl.Diagnostics
		wg    sync.WaitGroup
	)
	for _, p := range g.cfg.Plugins {
		pl := g.plugins[p.Name]
		if pl.req != nil { // taken over, configured already
			continue
		}
		wg.Go(func() {
			pds, err := pl.Configure(ctx, reqs[p.Name])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rng := p.NameRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin configuration failed", Detail: err.Error(), Subject: &rng})
				return
			}
			for _, pd := range pds {
				diags = append(diags, positioned(g.cfg, p, pd))
			}
			pl.req = reqs[p.Name]
		})
	}
	wg.Wait()
	return diags
}

// positioned maps a plugin's diagnostic to the block and attribute it is
// about.
func positioned(cfg *config.Config, p *config.Plugin, pd *pluginpb.Diagnostic) *hcl.Diagnostic {
	body, owner := p.Config, p.DeclRange
	if id := pd.GetRoute(); id != "" {
		for _, r := range cfg.Routes {
			if r.ID == id {
				body, owner = r.Config, r.DeclRange
			}
		}
	}
	if name := pd.GetListener(); name != "" {
		for _, l := range cfg.Listeners {
			if l.Name == name {
				body, owner = l.Config, l.DeclRange
			}
		}
	}
	rng := cfg.PathRange(body, owner, pd.GetPath())
	sev := hcl.DiagError
	if pd.GetSeverity() == pluginpb.Severity_SEVERITY_WARNING {
		sev = hcl.DiagWarning
	}
	return &hcl.Diagnostic{Severity: sev, Summary: pd.GetSummary(), Detail: pd.GetDetail(), Subject: &rng}
}

func httpListeners(cfg *config.Config) []string {
	var names []string
	for _, l := range cfg.Listeners {
		if l.Protocol == "http" {
			names = append(names, l.Name)
		}
	}
	return names
}

func (d *Daemon) buildTable(g *generation) (*router.Table, error) {
	var routes []router.Route
	for _, r := range g.cfg.Routes {
		listeners := r.Listeners
		if len(listeners) == 0 {
			listeners = httpListeners(g.cfg)
		}
		for _, l := range listeners {
			var h = &httpfront.Forward{
				Route: r.ID, Listener: l, Plugin: g.plugins[r.Plugin].Plugin,
				Timeout: r.Timeout, MaxBodyBytes: r.MaxBodyBytes, Log: d.log,
			}
			routes = append(routes, router.Route{
				Pattern:   r.ID,
				Listeners: []string{l},
				Handler:   d.metrics.Route(l, r.ID, r.Plugin, h),
			})
		}
	}
	return router.NewTable(httpListeners(g.cfg), routes)
}
