package config

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// check validates what no single block can: names unique across blocks,
// references between blocks, bindable addresses and a route table that
// net/http will accept.
func (c *Config) check() hcl.Diagnostics {
	var diags hcl.Diagnostics
	report := func(sev hcl.DiagnosticSeverity, subject hcl.Range, summary, format string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: sev, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: subject.Ptr(),
		})
	}

	listeners := map[string]*Listener{}
	var httpNames []string
	for _, l := range c.Listeners {
		if first := listeners[l.Name]; first != nil {
			report(hcl.DiagError, l.NameRange, "Duplicate listener",
				"Listener %q is also defined at %s. Give each listener its own name.", l.Name, pos(first.NameRange))
			continue
		}
		listeners[l.Name] = l
		if l.Protocol == "http" {
			httpNames = append(httpNames, l.Name)
		}
	}
	diags = append(diags, c.checkAddresses()...)

	plugins := map[string]*Plugin{}
	var pluginNames []string
	for _, p := range c.Plugins {
		if first := plugins[p.Name]; first != nil {
			report(hcl.DiagError, p.NameRange, "Duplicate plugin",
				"Plugin %q is also defined at %s. Merge the two blocks into one.", p.Name, pos(first.NameRange))
			continue
		}
		plugins[p.Name] = p
		pluginNames = append(pluginNames, p.Name)
	}
	used := map[string]bool{}
	usePlugin := func(name string, rng hcl.Range) {
		if rng == (hcl.Range{}) { // absent, or already reported
			return
		}
		used[name] = true
		if plugins[name] != nil {
			return
		}
		if name == "" {
			report(hcl.DiagError, rng, "Missing value", "plugin cannot be empty. Name a plugin block, like \"static\".")
			return
		}
		if s := didYouMean(name, pluginNames); s != "" {
			report(hcl.DiagError, rng, "Unknown plugin", "No plugin block is named %q.%s", name, s)
			return
		}
		report(hcl.DiagError, rng, "Unknown plugin",
			`No plugin block is named %q. Declare it with plugin %q {}, and put socketd-plugin-%s in plugin_dir.`, name, name, name)
	}
	for _, l := range c.Listeners {
		usePlugin(l.Plugin, l.PluginRange)
	}

	routes := map[string]*Route{}
	var valid []*Route
	for _, r := range c.Routes {
		usePlugin(r.Plugin, r.PluginRange)
		if first := routes[r.ID]; first != nil {
			report(hcl.DiagError, r.LabelRange, "Duplicate route",
				"Route %q is also defined at %s. Merge the two blocks into one, or change one pattern.", r.ID, pos(first.LabelRange))
			continue
		}
		routes[r.ID] = r
		if err := register(http.NewServeMux(), r.ID); err != nil {
			report(hcl.DiagError, r.LabelRange, "Invalid route pattern",
				`%s. A route label is a net/http ServeMux pattern, "[METHOD ][HOST]/PATH", like "GET /guestbook" or "POST /items/{id}".`,
				patternError(r.ID, err))
			continue
		}
		if method, _, ok := strings.Cut(r.ID, " "); ok && !strings.Contains(method, "/") && method != strings.ToUpper(method) {
			report(hcl.DiagWarning, r.LabelRange, "Lower-case method",
				"HTTP methods are case-sensitive, so this route only matches requests whose method is exactly %q. Write %q.",
				method, strings.ToUpper(method))
		}
		for i, name := range r.Listeners {
			switch l := listeners[name]; {
			case l == nil:
				report(hcl.DiagError, r.listenerRanges[i], "Unknown listener",
					"No listener block is named %q.%s", name,
					cmp.Or(didYouMean(name, httpNames), " Name an http listener, or leave listener out to serve on every http listener."))
			case l.Protocol != "http" && l.Protocol != "":
				report(hcl.DiagError, r.listenerRanges[i], "Listener is not http",
					"Listener %q speaks %s, and routes need an http listener. Name an http listener, or leave listener out to serve on every http listener.",
					name, l.Protocol)
			}
		}
		valid = append(valid, r)
	}
	if len(httpNames) == 0 && len(valid) > 0 {
		report(hcl.DiagWarning, valid[0].LabelRange, "No http listener",
			`No listener has protocol = "http", so no request can reach the routes. Add a listener block with protocol = "http".`)
	}
	diags = append(diags, checkConflicts(valid, httpNames)...)

	for _, p := range c.Plugins {
		if !used[p.Name] {
			report(hcl.DiagWarning, p.DeclRange, "Unused plugin",
				`No route or listener uses plugin %q. Add a route with plugin = %q, or remove this block.`, p.Name, p.Name)
		}
	}
	return diags
}

// checkAddresses finds listeners that could not both bind: the same port on
// the same network where the hosts are equal or one is a wildcard.
func (c *Config) checkAddresses() hcl.Diagnostics {
	var diags hcl.Diagnostics
	type bound struct {
		l                   *Listener
		network, host, port string
	}
	var seen []bound
	listeners := c.Listeners
	if c.Admin != nil && c.Admin.Address != "" {
		// The admin listener binds like an http listener; named for messages.
		listeners = append(slices.Clip(listeners), &Listener{
			Name: "admin block", Protocol: "http", Address: c.Admin.Address, addrRange: c.Admin.addrRange,
		})
	}
	for _, l := range listeners {
		if l.Address == "" || l.Protocol == "" {
			continue
		}
		host, port, _ := net.SplitHostPort(l.Address)
		if n, _ := strconv.Atoi(port); n == 0 {
			continue // an ephemeral port never collides
		}
		port = strings.TrimLeft(port, "0")
		network := "tcp"
		if l.Protocol == "udp" {
			network = "udp"
		}
		for _, b := range seen {
			if b.network == network && b.port == port && (b.host == host || wildcard(b.host) || wildcard(host)) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Address already used",
					Detail: fmt.Sprintf("Listener %q (%s) already listens on %s, so this one could not bind. Give each listener its own port or address.",
						b.l.Name, pos(b.l.addrRange), b.l.Address),
					Subject: l.addrRange.Ptr(),
				})
				break
			}
		}
		seen = append(seen, bound{l, network, host, port})
	}
	return diags
}

func wildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// checkConflicts builds each http listener's ServeMux as the router will,
// so a pair of routes that net/http refuses is reported here, at the second.
func checkConflicts(routes []*Route, httpNames []string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	type table struct {
		mux    *http.ServeMux
		routes []*Route
	}
	tables := map[string]*table{}
	for _, name := range httpNames {
		tables[name] = &table{mux: http.NewServeMux()}
	}
	reported := map[*Route]bool{} // one conflict per route is enough to fix it
	for _, r := range routes {
		names := r.Listeners
		if len(names) == 0 {
			names = httpNames
		}
		for _, name := range names {
			t := tables[name]
			if t == nil || slices.Contains(t.routes, r) {
				continue
			}
			if register(t.mux, r.ID) == nil {
				t.routes = append(t.routes, r)
				continue
			}
			for _, first := range t.routes {
				mux := http.NewServeMux()
				register(mux, first.ID)
				err := register(mux, r.ID)
				if err == nil || reported[r] {
					continue
				}
				reported[r] = true
				_, why, _ := strings.Cut(err.Error(), "):\n")
				why = strings.TrimSuffix(strings.ReplaceAll(why, "\n", " "), ".")
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Conflicting routes",
					Detail: fmt.Sprintf("This route conflicts with route %q at %s: %s. Change one pattern so that one is more specific than the other.",
						first.ID, pos(first.LabelRange), why),
					Subject: r.LabelRange.Ptr(),
				})
			}
		}
	}
	return diags
}

// register adds pattern to mux, turning ServeMux's panic into an error.
func register(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, http.NotFoundHandler())
	return nil
}

// patternError rewrites ServeMux's `parsing "P": at offset N: msg` for a user.
func patternError(pattern string, err error) string {
	msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("parsing %q: ", pattern))
	if rest, ok := strings.CutPrefix(msg, "at offset "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if off, err := strconv.Atoi(n); err == nil {
				return fmt.Sprintf("%s%s (at character %d)", strings.ToUpper(m[:1]), m[1:], off+1)
			}
		}
	}
	if msg == "http: invalid pattern" {
		return "The pattern is empty"
	}
	return msg
}

// didYouMean returns ` Did you mean "x"?` for the first close candidate, the
// way HCL suggests names, or "" when none is close.
func didYouMean(given string, candidates []string) string {
	for _, c := range candidates {
		if levenshtein.Distance(given, c, nil) < 3 {
			return fmt.Sprintf(" Did you mean %q?", c)
		}
	}
	return ""
}
