package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

func TestDescribe(t *testing.T) {
	d := newTimeserver().Describe()
	if d.Name != "timeserver" || d.Version == "" {
		t.Errorf("Describe named %q version %q", d.Name, d.Version)
	}
	for block, tt := range map[string]struct {
		schema sdk.Schema
		want   []string
	}{
		"plugin":   {d.PluginSchema, []string{"timezone"}},
		"route":    {d.RouteSchema, []string{"timezone", "format"}},
		"listener": {d.ListenerSchema, []string{"service", "timezone", "stratum"}},
	} {
		if got := sdktest.AttributeNames(t, tt.schema); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s schema: %v, want %v", block, got, tt.want)
		}
	}
	for _, a := range d.ListenerSchema {
		if a.Required != (a.Name == "service") {
			t.Errorf("listener attribute %s: Required = %v", a.Name, a.Required)
		}
	}
}

// diag is the part of a diagnostic a test pins down.
type diag struct {
	sev      sdk.Severity
	route    string
	listener string
	path     string // Path joined with "."
	summary  string // a substring of Summary
}

func TestConfigureDiagnostics(t *testing.T) {
	route := func(id string, cfg map[string]any) sdk.RouteConfig {
		return sdk.RouteConfig{ID: id, Config: sdk.MustJSON(cfg)}
	}
	listener := func(name, proto string, cfg map[string]any) sdk.ListenerConfig {
		return sdk.ListenerConfig{Name: name, Protocol: proto, Config: sdk.MustJSON(cfg)}
	}
	tests := []struct {
		name string
		cfg  sdk.Config
		want []diag
	}{
		{"empty", sdk.Config{}, nil},
		{"readme", sdk.Config{
			Routes: []sdk.RouteConfig{{ID: "GET /time"}},
			Listeners: []sdk.ListenerConfig{
				listener("daytime", "tcp", map[string]any{"service": "daytime"}),
				listener("time", "tcp", map[string]any{"service": "time"}),
				listener("sntp", "udp", map[string]any{"service": "sntp"}),
				// hcldec sends absent optional attributes as null.
				{Name: "nulls", Protocol: "udp", Config: sdk.RawConfig(`{"service":"sntp","timezone":null,"stratum":null}`)},
			},
		}, nil},
		{"all valid", *listenersConfig(), nil},
		{"plugin timezone unknown", sdk.Config{
			Plugin: sdk.MustJSON(map[string]any{"timezone": "Mars/Base"}),
		}, []diag{{sdk.Error, "", "", "timezone", `unknown time zone "Mars/Base"`}}},
		{"plugin timezone path", sdk.Config{
			Plugin: sdk.MustJSON(map[string]any{"timezone": "/etc/localtime"}),
		}, []diag{{sdk.Error, "", "", "timezone", `invalid time zone "/etc/localtime"`}}},
		{"plugin config not an object", sdk.Config{
			Plugin: sdk.RawConfig(`[1]`),
		}, []diag{{sdk.Error, "", "", "", "invalid timeserver config"}}},
		{"route timezone", sdk.Config{Routes: []sdk.RouteConfig{
			route("GET /time", map[string]any{"timezone": "Europe/Atlantis"}),
		}}, []diag{{sdk.Error, "GET /time", "", "timezone", `unknown time zone "Europe/Atlantis"`}}},
		{"route format", sdk.Config{Routes: []sdk.RouteConfig{
			route("GET /ok", map[string]any{"format": "json"}),
			route("GET /time", map[string]any{"format": "xml"}),
		}}, []diag{{sdk.Error, "GET /time", "", "format", `unknown format "xml"`}}},
		{"route wrong type", sdk.Config{Routes: []sdk.RouteConfig{
			route("GET /time", map[string]any{"format": 3}),
		}}, []diag{{sdk.Error, "GET /time", "", "", "invalid timeserver route config"}}},
		{"service unknown", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("yes", "tcp", map[string]any{"service": "reply"}),
		}}, []diag{{sdk.Error, "", "yes", "service", `unknown service "reply"`}}},
		{"service missing", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("x", "udp", map[string]any{}),
		}}, []diag{{sdk.Error, "", "x", "service", "missing service"}}},
		{"sntp over tcp", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("ntp", "tcp", map[string]any{"service": "sntp"}),
		}}, []diag{{sdk.Error, "", "ntp", "service", `service "sntp" runs over udp only`}}},
		{"unknown protocol", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("u", "unix", map[string]any{"service": "daytime"}),
		}}, []diag{{sdk.Error, "", "u", "service", "cannot serve unix listeners"}}},
		{"listener timezone", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("daytime", "tcp", map[string]any{"service": "daytime", "timezone": "../etc/passwd"}),
		}}, []diag{{sdk.Error, "", "daytime", "timezone", `invalid time zone "../etc/passwd"`}}},
		{"timezone on time", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("time", "tcp", map[string]any{"service": "time", "timezone": "Europe/Paris"}),
		}}, []diag{{sdk.Warning, "", "time", "timezone", "ignored"}}},
		{"stratum on daytime", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("d", "udp", map[string]any{"service": "daytime", "stratum": 2}),
		}}, []diag{{sdk.Warning, "", "d", "stratum", "ignored"}}},
		{"stratum range", sdk.Config{Listeners: []sdk.ListenerConfig{
			listener("s0", "udp", map[string]any{"service": "sntp", "stratum": 0}),
			listener("s16", "udp", map[string]any{"service": "sntp", "stratum": 16}),
			listener("s1.5", "udp", map[string]any{"service": "sntp", "stratum": 1.5}),
			listener("s15", "udp", map[string]any{"service": "sntp", "stratum": 15}),
		}}, []diag{
			{sdk.Error, "", "s0", "stratum", "out of range"},
			{sdk.Error, "", "s16", "stratum", "out of range"},
			{sdk.Error, "", "s1.5", "stratum", "out of range"},
		}},
		{"several at once", sdk.Config{
			Plugin: sdk.MustJSON(map[string]any{"timezone": "Nowhere/Land"}),
			Routes: []sdk.RouteConfig{route("GET /time", map[string]any{"format": "yaml"})},
			Listeners: []sdk.ListenerConfig{
				listener("a", "tcp", map[string]any{"service": "chargen"}),
				listener("b", "udp", map[string]any{"service": "ntp"}),
			},
		}, []diag{
			{sdk.Error, "", "", "timezone", `unknown time zone "Nowhere/Land"`},
			{sdk.Error, "GET /time", "", "format", `unknown format "yaml"`},
			{sdk.Error, "", "a", "service", `unknown service "chargen"`},
			{sdk.Error, "", "b", "service", `unknown service "ntp"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTimeserver()
			got := p.Configure(context.Background(), &tt.cfg)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, d := range got {
				w := tt.want[i]
				if d.Severity != w.sev || d.Route != w.route || d.Listener != w.listener ||
					strings.Join(d.Path, ".") != w.path || !strings.Contains(d.Summary, w.summary) {
					t.Errorf("diagnostic %d = %+v, want %+v", i, d, w)
				}
				if d.Summary == "" || strings.HasSuffix(d.Summary, ".") {
					t.Errorf("diagnostic %d: summary %q should be a short phrase", i, d.Summary)
				}
			}
			if stored := p.cfg.Load() != nil; stored == got.HasErrors() {
				t.Errorf("config stored = %v with errors = %v", stored, got.HasErrors())
			}
		})
	}
}

// TestConfigureKeepsPrevious checks that an invalid config leaves the one
// in force serving, as a reload must.
func TestConfigureKeepsPrevious(t *testing.T) {
	p := newTestPlugin(t, summer, &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"timezone": "Asia/Shanghai"})})
	bad := &sdk.Config{Plugin: sdk.MustJSON(map[string]any{"timezone": "Mars/Base"})}
	if d := p.Configure(context.Background(), bad); !d.HasErrors() {
		t.Fatal("Mars/Base accepted")
	}
	if got := p.current().zone.String(); got != "Asia/Shanghai" {
		t.Errorf("zone after a rejected config = %s, want Asia/Shanghai", got)
	}
}

func TestConfigureDefaults(t *testing.T) {
	p := newTestPlugin(t, summer, listenersConfig())
	s := p.current()
	if s.zone.String() != "Asia/Shanghai" {
		t.Errorf("plugin zone %s", s.zone)
	}
	for name, want := range map[string]listenerSettings{
		"daytime":        {service: "daytime", zone: s.zone, stratum: defaultStratum},
		"daytime-berlin": {service: "daytime", zone: mustZone(t, "Europe/Berlin"), stratum: defaultStratum},
		"sntp":           {service: "sntp", zone: s.zone, stratum: 1},
		"sntp10":         {service: "sntp", zone: s.zone, stratum: 10},
	} {
		if got := s.listeners[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("listener %s: %+v, want %+v", name, got, want)
		}
	}
	if got := newTimeserver().current(); got.zone != time.UTC {
		t.Errorf("unconfigured zone %s, want UTC", got.zone)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := loadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
