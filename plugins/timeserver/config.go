package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// Zone data is embedded so ?tz= and timezone work on a machine without
	// /usr/share/zoneinfo (a scratch container, a minimal VM). The system
	// copy is still preferred when present, as it is usually newer.
	_ "time/tzdata"

	"github.com/socketd/socketd/sdk"
)

// version is reported by Describe; bump it when behaviour visible to users
// changes.
const version = "1.0.0"

// The services a tcp or udp listener can run.
const (
	serviceDaytime = "daytime"
	serviceTime    = "time"
	serviceSNTP    = "sntp"
)

// servicesByProtocol lists what each listener protocol can carry: SNTP is
// defined over UDP only.
var servicesByProtocol = map[string][]string{
	"tcp": {serviceDaytime, serviceTime},
	"udp": {serviceDaytime, serviceTime, serviceSNTP},
}

// defaultStratum is the SNTP stratum advertised unless a listener sets
// one: RFC 4330 pairs stratum 1 with the reference id "LOCL" for an
// uncalibrated local clock, which every stock client accepts.
const defaultStratum = 1

// timeserver is the plugin. now is the clock, a field so tests can fix the
// instant; cfg is swapped whole by Configure so requests never see half a
// configuration.
type timeserver struct {
	now func() time.Time
	cfg atomic.Pointer[settings]
	// lastText is the last plain-text answer: under load most requests
	// in a second ask for the same one.
	lastText atomic.Pointer[textAnswer]
}

func newTimeserver() *timeserver { return &timeserver{now: time.Now} }

// settings is one validated configuration.
type settings struct {
	zone      *time.Location // the plugin block's timezone
	routes    map[string]routeSettings
	listeners map[string]listenerSettings
}

type routeSettings struct {
	zone *time.Location
	json bool
}

type listenerSettings struct {
	service string
	zone    *time.Location // daytime only
	stratum uint8          // sntp only
}

// current returns the configuration in force; before Configure (a handler
// under test) it is UTC and text.
func (p *timeserver) current() *settings {
	if s := p.cfg.Load(); s != nil {
		return s
	}
	return &settings{zone: time.UTC}
}

// route returns the settings of route id, falling back to the plugin
// block's for a route Configure did not mention.
func (s *settings) route(id string) routeSettings {
	if r, ok := s.routes[id]; ok {
		return r
	}
	return routeSettings{zone: s.zone}
}

// Describe declares the three config blocks; the core checks names and
// types against them, so Configure only checks values.
func (p *timeserver) Describe() sdk.Description {
	zone := sdk.Attribute{Name: "timezone", Type: "string",
		Description: `IANA time zone such as "Europe/Paris"; default "UTC".`}
	return sdk.Description{
		Name:    "timeserver",
		Version: version,
		PluginSchema: sdk.Schema{
			{Name: "timezone", Type: "string",
				Description: `Default IANA time zone for every route and daytime listener; default "UTC".`},
		},
		RouteSchema: sdk.Schema{
			zone,
			{Name: "format", Type: "string",
				Description: `Answer when the client states no preference: "text" (default) or "json".`},
		},
		ListenerSchema: sdk.Schema{
			{Name: "service", Type: "string", Required: true,
				Description: `"daytime" (RFC 867) or "time" (RFC 868) on tcp and udp, "sntp" (RFC 4330) on udp.`},
			{Name: "timezone", Type: "string",
				Description: `IANA time zone of the daytime line; default the plugin block's timezone.`},
			{Name: "stratum", Type: "number",
				Description: "SNTP stratum to advertise, 1 to 15; default 1."},
		},
	}
}

type pluginConfig struct {
	Timezone string `json:"timezone"`
}

type routeConfig struct {
	Timezone string `json:"timezone"`
	Format   string `json:"format"`
}

type listenerConfig struct {
	Service  string   `json:"service"`
	Timezone string   `json:"timezone"`
	Stratum  *float64 `json:"stratum"`
}

// Configure validates every block and, when nothing is wrong, replaces the
// configuration in force.
func (p *timeserver) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	var diags sdk.Diagnostics
	s := &settings{
		zone:      time.UTC,
		routes:    make(map[string]routeSettings, len(cfg.Routes)),
		listeners: make(map[string]listenerSettings, len(cfg.Listeners)),
	}

	var pc pluginConfig
	if err := cfg.Plugin.Decode(&pc); err != nil {
		diags = append(diags, sdk.Diagnostic{Summary: "invalid timeserver config", Detail: err.Error()})
	} else if pc.Timezone != "" {
		if loc, err := loadZone(pc.Timezone); err != nil {
			diags = append(diags, zoneDiagnostic(err, sdk.Diagnostic{}))
		} else {
			s.zone = loc
		}
	}

	for _, rc := range cfg.Routes {
		var c routeConfig
		if err := rc.Config.Decode(&c); err != nil {
			diags = append(diags, sdk.Diagnostic{Route: rc.ID, Summary: "invalid timeserver route config", Detail: err.Error()})
			continue
		}
		r := routeSettings{zone: s.zone}
		if c.Timezone != "" {
			loc, err := loadZone(c.Timezone)
			if err != nil {
				diags = append(diags, zoneDiagnostic(err, sdk.Diagnostic{Route: rc.ID}))
			}
			r.zone = loc
		}
		switch c.Format {
		case "", "text":
		case "json":
			r.json = true
		default:
			diags = append(diags, sdk.Diagnostic{
				Route: rc.ID, Path: []string{"format"},
				Summary: fmt.Sprintf("unknown format %q", c.Format),
				Detail:  `format is "text" or "json".`,
			})
		}
		s.routes[rc.ID] = r
	}

	for _, lc := range cfg.Listeners {
		l, ds := configureListener(lc, s.zone)
		diags = append(diags, ds...)
		s.listeners[lc.Name] = l
	}

	if !diags.HasErrors() {
		p.cfg.Store(s)
	}
	return diags
}

// configureListener validates one tcp or udp listener's block. Attributes
// that mean nothing for the chosen service are warnings, not errors: they
// are harmless, but the user probably expected them to do something.
func configureListener(lc sdk.ListenerConfig, zone *time.Location) (listenerSettings, sdk.Diagnostics) {
	at := func(sev sdk.Severity, attr, summary, detail string) sdk.Diagnostic {
		return sdk.Diagnostic{Severity: sev, Listener: lc.Name, Path: []string{attr}, Summary: summary, Detail: detail}
	}
	l := listenerSettings{zone: zone, stratum: defaultStratum}
	var c listenerConfig
	if err := lc.Config.Decode(&c); err != nil {
		return l, sdk.Diagnostics{{Listener: lc.Name, Summary: "invalid timeserver listener config", Detail: err.Error()}}
	}
	var diags sdk.Diagnostics
	services, ok := servicesByProtocol[lc.Protocol]
	switch {
	case !ok:
		diags = append(diags, at(sdk.Error, "service", fmt.Sprintf("timeserver cannot serve %s listeners", lc.Protocol),
			"timeserver serves tcp and udp listeners (and HTTP routes)."))
	case c.Service == "":
		diags = append(diags, at(sdk.Error, "service", "missing service",
			fmt.Sprintf("set service to one of %s for a %s listener.", strings.Join(services, ", "), lc.Protocol)))
	case !contains(services, c.Service):
		summary := fmt.Sprintf("unknown service %q", c.Service)
		if c.Service == serviceSNTP {
			summary = fmt.Sprintf("service %q runs over udp only", c.Service)
		}
		diags = append(diags, at(sdk.Error, "service", summary,
			fmt.Sprintf("a %s listener of timeserver serves %s.", lc.Protocol, strings.Join(services, " or "))))
	}
	l.service = c.Service

	if c.Timezone != "" {
		if c.Service != serviceDaytime {
			diags = append(diags, at(sdk.Warning, "timezone", "timezone is ignored unless service is \"daytime\"",
				"RFC 868 and SNTP carry UTC seconds; only the daytime line is in a zone."))
		}
		loc, err := loadZone(c.Timezone)
		if err != nil {
			diags = append(diags, zoneDiagnostic(err, sdk.Diagnostic{Listener: lc.Name}))
		}
		l.zone = loc
	}

	if c.Stratum != nil {
		if c.Service != serviceSNTP {
			diags = append(diags, at(sdk.Warning, "stratum", "stratum is ignored unless service is \"sntp\"", ""))
		}
		st := *c.Stratum
		if st != float64(int(st)) || st < 1 || st > 15 {
			diags = append(diags, at(sdk.Error, "stratum", fmt.Sprintf("stratum %v is out of range", st),
				"stratum is a whole number from 1 to 15: 0 means kiss-o'-death to clients and 16 unsynchronised."))
		} else {
			l.stratum = uint8(st)
		}
	}
	return l, diags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// zoneDiagnostic turns a loadZone error into a diagnostic on the timezone
// attribute of the block d names.
func zoneDiagnostic(err error, d sdk.Diagnostic) sdk.Diagnostic {
	d.Path = []string{"timezone"}
	d.Summary = err.Error()
	if ze, ok := err.(*zoneError); ok {
		d.Summary = ze.summary()
		d.Detail = "Use an IANA name such as Europe/Paris."
	}
	return d
}

// maxZoneName bounds a zone name; the longest IANA name is 32 bytes.
const maxZoneName = 64

const zoneHint = "use an IANA name such as Europe/Paris"

// zoneError is a time zone name that is malformed or not in the zone data.
// Its text is meant for the client, so it quotes the name (escaped) but
// never a file path.
type zoneError struct {
	name      string
	malformed bool
}

func (e *zoneError) summary() string {
	switch {
	case len(e.name) > maxZoneName:
		return fmt.Sprintf("invalid time zone: the name is longer than %d bytes", maxZoneName)
	case e.malformed:
		return fmt.Sprintf("invalid time zone %q", e.name)
	}
	return fmt.Sprintf("unknown time zone %q", e.name)
}

func (e *zoneError) Error() string { return e.summary() + ": " + zoneHint }

// zones caches loaded locations. Only names that loaded are stored, so it
// is bounded by the size of the zone database, whatever clients send.
var zones sync.Map // string → *time.Location

// loadZone returns the location of an IANA zone name. Names are checked
// for IANA shape first, because time.LoadLocation reads files: an absolute
// path, "..", or "Local" (the host's own zone) must never reach it.
func loadZone(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	if !validZoneName(name) {
		return nil, &zoneError{name: name, malformed: true}
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &zoneError{name: name}
	}
	zones.Store(name, loc)
	return loc, nil
}

// validZoneName reports whether name has the shape of an IANA zone name:
// slash-separated parts of ASCII letters, digits, '_', '-' and '+', each
// starting with a letter ("America/Argentina/Buenos_Aires", "Etc/GMT+5").
// No IANA name contains a dot, so no part can be "." or "..".
func validZoneName(name string) bool {
	if name == "" || len(name) > maxZoneName || name == "Local" {
		return false
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || !isLetter(part[0]) {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !isLetter(c) && !('0' <= c && c <= '9') && c != '_' && c != '-' && c != '+' {
				return false
			}
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
