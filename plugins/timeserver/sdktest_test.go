package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

// These tests run the plugin through the real plugin protocol (sdktest),
// as the core does: the schema is checked, requests are matched to routes,
// and answers cross gRPC.

func newHarness(t *testing.T, instant string) *sdktest.Harness {
	t.Helper()
	p := newTimeserver()
	p.now = fixedClock(t, instant)
	return sdktest.New(t, p)
}

func TestProtocolDescribe(t *testing.T) {
	d := newHarness(t, summer).Describe()
	if d.Name != "timeserver" || !slices.Equal(d.Protocols, []string{"http", "tcp", "udp"}) {
		t.Errorf("described as %q serving %v", d.Name, d.Protocols)
	}
}

func TestProtocolHTTP(t *testing.T) {
	h := newHarness(t, summer)
	h.MustConfigure(&sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"timezone": "Europe/Berlin"}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /time"},
			{ID: "GET /time.json", Config: sdk.MustJSON(map[string]any{"format": "json", "timezone": "Asia/Tokyo"})},
		},
	})
	tests := []struct {
		target, want string
		status       int
	}{
		{"/time", "Wed, 01 Jul 2026 14:00:00 +0200 (CEST)\n", 200},
		{"/time?tz=America/New_York", "Wed, 01 Jul 2026 08:00:00 -0400 (EDT)\n", 200},
		{"/time?tz=Mars/Olympus", `unknown time zone "Mars/Olympus"`, 400},
		{"/nowhere", "404 page not found\n", 404}, // the route table's answer
	}
	for _, tt := range tests {
		resp, err := h.Do(httptest.NewRequest("GET", tt.target, nil))
		if err != nil {
			t.Fatalf("%s: %v", tt.target, err)
		}
		if resp.Status != tt.status || !strings.Contains(string(resp.Body), tt.want) {
			t.Errorf("%s: %d %q, want %d %q", tt.target, resp.Status, resp.Body, tt.status, tt.want)
		}
	}

	resp, err := h.Do(httptest.NewRequest("GET", "/time.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	var wt worldTime
	if err := json.Unmarshal(resp.Body, &wt); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	if wt.Timezone != "Asia/Tokyo" || wt.Datetime != "2026-07-01T21:00:00.123456+09:00" ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("json answer %+v, headers %v", wt, resp.Header)
	}
}

func TestProtocolConfigErrors(t *testing.T) {
	h := newHarness(t, summer)
	diags := h.Configure(&sdk.Config{
		Routes:    []sdk.RouteConfig{{ID: "GET /time", Config: sdk.MustJSON(map[string]any{"format": "xml"})}},
		Listeners: []sdk.ListenerConfig{{Name: "ntp", Protocol: "tcp", Config: sdk.MustJSON(map[string]any{"service": "sntp"})}},
	})
	got := sdktest.Format(diags)
	for _, want := range []string{
		`error: route "GET /time" at format: unknown format "xml"`,
		`error: listener "ntp" at service: service "sntp" runs over udp only`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics:%s\nwant %q", got, want)
		}
	}
	// The core's own check: an attribute timeserver does not declare.
	diags = h.Configure(&sdk.Config{Plugin: sdk.MustJSON(map[string]any{"time_zone": "UTC"})})
	if got := sdktest.Format(diags); !strings.Contains(got, "at time_zone: Unsupported argument") {
		t.Errorf("misspelt attribute:%s", got)
	}
}

func TestProtocolStreamAndDatagram(t *testing.T) {
	h := newHarness(t, summer)
	h.MustConfigure(listenersConfig())

	c := h.Dial("daytime-berlin")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Wednesday, July 01, 2026 14:00:00-CEST\r\n"; string(got) != want {
		t.Errorf("daytime over tcp: %q, want %q", got, want)
	}
	c = h.Dial("time")
	if got, err = io.ReadAll(c); err != nil || binary.BigEndian.Uint32(got) != 3991896000 {
		t.Errorf("time over tcp: % x, %v", got, err)
	}

	reply, err := h.Send("sntp", clientRequest(4, 6))
	if err != nil {
		t.Fatal(err)
	}
	if r := parseSNTP(t, reply); r.mode != 4 || r.stratum != 1 {
		t.Errorf("sntp reply %+v", r)
	}
	if reply, err := h.Send("sntp", []byte("junk")); err != nil || reply != nil {
		t.Errorf("sntp answered junk: % x, %v", reply, err)
	}
}
