// Package server assembles a running socketd from a config: it starts and
// configures the plugins, builds the route table, binds the listeners and
// serves until told to stop. Reload replaces one config with the next
// while serving: unchanged plugin processes and sockets are kept, the rest
// is started before anything is stopped, and the route table is swapped
// atomically, so no request fails because of a reload.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/listen"
	"github.com/socketd/socketd/daemon/metrics"
	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/daemon/router"
)

// Daemon is a config brought to life.
type Daemon struct {
	log     *slog.Logger
	pool    *pluginhost.Pool
	router  router.Router
	metrics *metrics.Metrics

	// mu serializes Bind, Start, Reload and Shutdown. Readers that must
	// not wait for a reload in progress (readiness, metrics) use the
	// atomics instead.
	mu       sync.Mutex
	cur      atomic.Pointer[generation]
	started  atomic.Bool
	stopping atomic.Bool
	// sockets are the bound sockets by key (see socketKey); activated are
	// the ones systemd passed in, by name, including those no listener
	// uses (a later reload may name them).
	sockets   map[string]*listen.Socket
	activated map[string]*listen.Socket
	fronts    map[string]*runningFront // by listener name
	errc      chan error
	// drains tracks replaced generations still finishing their requests.
	drains sync.WaitGroup
	// checkOnly: the config is only checked (Check), never served.
	checkOnly bool
}

// Prepare starts every plugin, checks each config block against the
// plugin's schema and hands the plugins their config. Nothing is bound yet.
// Diagnostics carry config positions; on errors the plugins are already
// stopped.
func Prepare(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Daemon, hcl.Diagnostics) {
	return prepare(ctx, cfg, log, false)
}

// Check is `socketd validate`: Prepare, with each plugin told the config is
// only checked (so it leaves nothing behind, a database included), then
// every plugin stopped.
func Check(ctx context.Context, cfg *config.Config, log *slog.Logger) hcl.Diagnostics {
	d, diags := prepare(ctx, cfg, log, true)
	if d != nil {
		d.Close()
	}
	return diags
}

func prepare(ctx context.Context, cfg *config.Config, log *slog.Logger, checkOnly bool) (*Daemon, hcl.Diagnostics) {
	pool, err := pluginhost.NewPool(log)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot start plugins", Detail: err.Error()}}
	}
	d := &Daemon{
		log: log, pool: pool, metrics: metrics.New(), checkOnly: checkOnly,
		sockets: map[string]*listen.Socket{}, fronts: map[string]*runningFront{},
		errc: make(chan error, 1),
	}
	g, diags := d.prepare(ctx, cfg, nil)
	if diags.HasErrors() {
		pool.Close()
		return nil, diags
	}
	d.cur.Store(g)
	d.router.Swap(g.table)
	d.metrics.SetPlugins(d.pluginStates)
	return d, diags
}

// Config returns the config being served.
func (d *Daemon) Config() *config.Config { return d.cur.Load().cfg }

// Metrics returns the daemon's Prometheus metrics.
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// Bind opens every listener. Sockets systemd passed in (socket
// activation; see listen.Activated, which must run before any plugin
// starts so they do not inherit LISTEN_FDS) serve the listener blocks of
// the same name; the daemon owns them from now on, used or not. If a
// listener fails, those already opened are closed: a daemon that cannot
// serve its whole config serves none of it.
func (d *Daemon) Bind(activated map[string]*listen.Socket) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if activated == nil {
		activated = map[string]*listen.Socket{}
	}
	d.activated = activated
	cfg := d.cur.Load().cfg
	socks, fresh, err := d.acquire(cfg)
	if err != nil {
		closeSockets(fresh)
		return err
	}
	d.sockets = socks
	d.warnUnusedActivated(cfg)
	return nil
}

// Start serves the bound listeners; it returns at once. Errors() reports a
// listener that stopped by itself.
func (d *Daemon) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started.Store(true)
	d.startFronts(d.cur.Load())
}

// Errors reports the first listener that failed by itself (not by
// Shutdown or a reload).
func (d *Daemon) Errors() <-chan error { return d.errc }

// Shutdown stops serving and drains: new connections are refused,
// in-flight requests get up to the config's shutdown_timeout, and the
// plugins are stopped last. It waits for replaced generations still
// draining after a reload, whose bound is their own.
func (d *Daemon) Shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping.Swap(true) {
		return
	}
	bound := d.cur.Load().cfg.ShutdownTimeout
	d.log.Info("shutting down", "drain_bound", bound)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var fronts []*runningFront
	for _, f := range d.fronts {
		fronts = append(fronts, f)
	}
	d.shutdownFronts(ctx, fronts)
	d.fronts = map[string]*runningFront{}
	d.drains.Wait()
	d.pool.Close()
	closeSockets(d.sockets)
	closeSockets(d.activated)
	d.sockets, d.activated = nil, nil
}

// Serve is Start, then Shutdown once ctx ends or a listener fails.
func (d *Daemon) Serve(ctx context.Context) error {
	d.Start()
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.errc:
		err = fmt.Errorf("serve: %w", err)
	}
	d.Shutdown()
	return err
}

// Close stops the plugins and frees their socket directory (for a Daemon
// that was prepared but never served).
func (d *Daemon) Close() {
	d.pool.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	closeSockets(d.sockets)
	closeSockets(d.activated)
	d.sockets, d.activated = nil, nil
}

// Plugins lists the running plugins by name.
func (d *Daemon) Plugins() map[string]*pluginhost.Plugin {
	out := map[string]*pluginhost.Plugin{}
	for name, p := range d.cur.Load().plugins {
		out[name] = p.Plugin
	}
	return out
}

// Ready reports whether the daemon serves: started, not stopping, and no
// plugin marked failed (the reason is returned when not).
func (d *Daemon) Ready() (bool, string) {
	switch {
	case !d.started.Load():
		return false, "starting"
	case d.stopping.Load():
		return false, "stopping"
	}
	for name, p := range d.cur.Load().plugins {
		if p.State() == pluginhost.Failed {
			return false, fmt.Sprintf("plugin %s failed", name)
		}
	}
	return true, "ok"
}

// drainBound bounds a replaced generation's drain: its own config's
// shutdown_timeout, at least a moment so the handoff itself never cuts.
func drainBound(cfg *config.Config) time.Duration {
	return max(cfg.ShutdownTimeout, 100*time.Millisecond)
}

var errStopping = errors.New("socketd is shutting down")

// pluginStates lists the current plugins for the metrics collector.
func (d *Daemon) pluginStates() []metrics.Plugin {
	var out []metrics.Plugin
	for name, p := range d.Plugins() {
		out = append(out, metrics.Plugin{Name: name, State: p.State().String(), InFlight: p.InFlight()})
	}
	return out
}
