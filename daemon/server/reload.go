package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/listen"
	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/daemon/router"
)

// Reload replaces the running config with cfg, which the caller has
// loaded without errors, while serving:
//
//  1. plugins whose binary (path or content), options or configuration
//     changed, and plugins marked failed, start and are configured; the
//     processes of the others are kept;
//  2. new listeners are bound; sockets whose address is unchanged are kept,
//     and so are the fronts serving them unless their limits or plugin
//     changed (their open connections never notice);
//  3. new fronts start accepting beside the old ones, and the route table
//     is swapped atomically;
//  4. in the background, replaced fronts and requests that started on the
//     old table drain, bounded by the old config's shutdown_timeout; then
//     removed sockets are closed and replaced plugins stopped.
//
// Any error before step 3 leaves the running config untouched and stops
// whatever was started for cfg; the diagnostics say why.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping.Load() {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot reload", Detail: errStopping.Error()}}
	}
	start := time.Now()
	prev := d.cur.Load()
	g, diags := d.prepare(ctx, cfg, prev)
	if diags.HasErrors() {
		d.metrics.Reloaded(false)
		return diags
	}
	socks, fresh, err := d.acquire(cfg)
	if err != nil {
		closeSockets(fresh)
		g.abandon()
		d.metrics.Reloaded(false)
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot listen", Detail: err.Error()})
	}

	// Commit: from here on nothing fails.
	oldSocks := d.sockets
	d.sockets = socks
	d.cur.Store(g)
	var replaced []*runningFront
	if d.started.Load() {
		replaced = d.startFronts(g)
	}
	oldTable := d.router.Swap(g.table)

	var stop []*pluginhost.Plugin
	for name, p := range prev.plugins {
		if g.plugins[name] != p {
			stop = append(stop, p.Plugin)
		}
	}
	var closing []*listen.Socket
	for key, s := range oldSocks {
		if socks[key] != s && s.Activated == "" {
			closing = append(closing, s)
		}
	}
	d.metrics.Reloaded(true)
	d.log.Info("reloaded",
		"plugins_started", len(g.started), "plugins_kept", len(g.plugins)-len(g.started), "plugins_stopping", len(stop),
		"listeners_opened", len(fresh), "listeners_closing", len(closing), "fronts_replaced", len(replaced),
		"took", time.Since(start).Round(time.Millisecond))
	d.drains.Add(1)
	go func() {
		defer d.drains.Done()
		d.retire(drainBound(prev.cfg), oldTable, replaced, closing, stop)
	}()
	return diags
}

// retire drains what a reload replaced, within bound, then frees it.
func (d *Daemon) retire(bound time.Duration, table *router.Table, fronts []*runningFront, socks []*listen.Socket, plugins []*pluginhost.Plugin) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.shutdownFronts(ctx, fronts) })
	if table != nil && len(plugins) > 0 {
		wg.Go(func() {
			if err := table.Drain(ctx); err != nil {
				d.log.Warn("requests on the previous config outlived the drain bound; their plugins stop now",
					"in_flight", table.InFlight(), "bound", bound)
			}
		})
	}
	wg.Wait()
	for _, s := range socks {
		s.Close()
	}
	stopAll(plugins)
	if len(fronts)+len(socks)+len(plugins) > 0 {
		names := make([]string, 0, len(plugins))
		for _, p := range plugins {
			names = append(names, p.Name())
		}
		slices.Sort(names)
		d.log.Info("previous config drained", "plugins_stopped", names, "took", time.Since(start).Round(time.Millisecond))
	}
}
