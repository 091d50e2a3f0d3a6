package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
)

// Instants used throughout: a northern summer and a northern winter day.
const (
	summer = "2026-07-01T12:00:00.123456789Z"
	winter = "2026-01-15T12:00:00Z"
)

// fixedClock returns a clock stopped at the RFC 3339 instant s.
func fixedClock(t *testing.T, s string) func() time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return func() time.Time { return at }
}

// newTestPlugin returns a timeserver stopped at instant, configured with
// cfg (nil: not configured, the defaults).
func newTestPlugin(t *testing.T, instant string, cfg *sdk.Config) *timeserver {
	t.Helper()
	p := newTimeserver()
	p.now = fixedClock(t, instant)
	if cfg != nil {
		if d := p.Configure(context.Background(), cfg); d.HasErrors() {
			t.Fatalf("Configure: %+v", d)
		}
	}
	return p
}

// serve runs one request through p's handler as the route "GET /time"
// and checks what every answer must carry.
func serve(t *testing.T, p *timeserver, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	return serveRoute(t, p, "GET /time", method, target, header)
}

func serveRoute(t *testing.T, p *timeserver, route, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.7:51234"
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, sdk.WithRouteID(r, route))
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control = %q, want no-store", method, target, got)
	}
	return w
}

func tzTarget(tz string, extra ...string) string {
	v := url.Values{}
	if tz != "" {
		v.Set("tz", tz)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	if len(v) == 0 {
		return "/time"
	}
	return "/time?" + v.Encode()
}

func TestServeHTTPText(t *testing.T) {
	tests := []struct {
		instant, tz, want string
	}{
		{summer, "", "Wed, 01 Jul 2026 12:00:00 +0000 (UTC)"},
		{summer, "UTC", "Wed, 01 Jul 2026 12:00:00 +0000 (UTC)"},
		{summer, "Asia/Shanghai", "Wed, 01 Jul 2026 20:00:00 +0800 (CST)"},
		{summer, "Europe/Berlin", "Wed, 01 Jul 2026 14:00:00 +0200 (CEST)"},
		{winter, "Europe/Berlin", "Thu, 15 Jan 2026 13:00:00 +0100 (CET)"},
		{summer, "America/New_York", "Wed, 01 Jul 2026 08:00:00 -0400 (EDT)"},
		{winter, "America/New_York", "Thu, 15 Jan 2026 07:00:00 -0500 (EST)"},
		{summer, "America/Sao_Paulo", "Wed, 01 Jul 2026 09:00:00 -0300 (-03)"},
	}
	for _, tt := range tests {
		t.Run(tt.instant+"/"+tt.tz, func(t *testing.T) {
			p := newTestPlugin(t, tt.instant, nil)
			w := serve(t, p, http.MethodGet, tzTarget(tt.tz), nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %q", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := w.Body.String(); got != tt.want+"\n" {
				t.Errorf("body = %q, want %q", got, tt.want+"\n")
			}
			// The format is the e-mail Date one, so standard parsers read it.
			parsed, err := mail.ParseDate(strings.TrimSpace(w.Body.String()))
			if err != nil {
				t.Fatalf("mail.ParseDate: %v", err)
			}
			if want := p.now().Truncate(time.Second); !parsed.Equal(want) {
				t.Errorf("parsed back %v, want %v", parsed, want)
			}
		})
	}
}

func strp(s string) *string { return &s }

func TestServeHTTPJSON(t *testing.T) {
	tests := []struct {
		instant, tz string
		want        worldTime
	}{
		{summer, "", worldTime{
			Abbreviation: "UTC", Datetime: "2026-07-01T12:00:00.123456+00:00",
			DayOfWeek: 3, DayOfYear: 182, Timezone: "UTC", Unixtime: 1782907200,
			UTCDatetime: "2026-07-01T12:00:00.123456+00:00", UTCOffset: "+00:00", WeekNumber: 27,
		}},
		{summer, "Asia/Shanghai", worldTime{
			Abbreviation: "CST", Datetime: "2026-07-01T20:00:00.123456+08:00",
			DayOfWeek: 3, DayOfYear: 182, RawOffset: 28800, Timezone: "Asia/Shanghai", Unixtime: 1782907200,
			UTCDatetime: "2026-07-01T12:00:00.123456+00:00", UTCOffset: "+08:00", WeekNumber: 27,
		}},
		{summer, "Europe/Berlin", worldTime{
			Abbreviation: "CEST", Datetime: "2026-07-01T14:00:00.123456+02:00",
			DayOfWeek: 3, DayOfYear: 182, DST: true,
			DSTFrom: strp("2026-03-29T01:00:00.000000+00:00"), DSTOffset: 3600,
			DSTUntil: strp("2026-10-25T01:00:00.000000+00:00"), RawOffset: 3600,
			Timezone: "Europe/Berlin", Unixtime: 1782907200,
			UTCDatetime: "2026-07-01T12:00:00.123456+00:00", UTCOffset: "+02:00", WeekNumber: 27,
		}},
		{winter, "Europe/Berlin", worldTime{
			Abbreviation: "CET", Datetime: "2026-01-15T13:00:00.000000+01:00",
			DayOfWeek: 4, DayOfYear: 15, RawOffset: 3600, Timezone: "Europe/Berlin", Unixtime: 1768478400,
			UTCDatetime: "2026-01-15T12:00:00.000000+00:00", UTCOffset: "+01:00", WeekNumber: 3,
		}},
		{summer, "America/New_York", worldTime{
			Abbreviation: "EDT", Datetime: "2026-07-01T08:00:00.123456-04:00",
			DayOfWeek: 3, DayOfYear: 182, DST: true,
			DSTFrom: strp("2026-03-08T07:00:00.000000+00:00"), DSTOffset: 3600,
			DSTUntil: strp("2026-11-01T06:00:00.000000+00:00"), RawOffset: -18000,
			Timezone: "America/New_York", Unixtime: 1782907200,
			UTCDatetime: "2026-07-01T12:00:00.123456+00:00", UTCOffset: "-04:00", WeekNumber: 27,
		}},
		{winter, "America/New_York", worldTime{
			Abbreviation: "EST", Datetime: "2026-01-15T07:00:00.000000-05:00",
			DayOfWeek: 4, DayOfYear: 15, RawOffset: -18000, Timezone: "America/New_York", Unixtime: 1768478400,
			UTCDatetime: "2026-01-15T12:00:00.000000+00:00", UTCOffset: "-05:00", WeekNumber: 3,
		}},
		// Southern hemisphere: DST in January.
		{winter, "Australia/Sydney", worldTime{
			Abbreviation: "AEDT", Datetime: "2026-01-15T23:00:00.000000+11:00",
			DayOfWeek: 4, DayOfYear: 15, DST: true,
			DSTFrom: strp("2025-10-04T16:00:00.000000+00:00"), DSTOffset: 3600,
			DSTUntil: strp("2026-04-04T16:00:00.000000+00:00"), RawOffset: 36000,
			Timezone: "Australia/Sydney", Unixtime: 1768478400,
			UTCDatetime: "2026-01-15T12:00:00.000000+00:00", UTCOffset: "+11:00", WeekNumber: 3,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.instant+"/"+tt.tz, func(t *testing.T) {
			p := newTestPlugin(t, tt.instant, nil)
			w := serve(t, p, http.MethodGet, tzTarget(tt.tz, "format", "json"), nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %q", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			var got worldTime
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", w.Body, err)
			}
			tt.want.ClientIP = "192.0.2.7"
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %s\nwant %s", w.Body, mustJSON(t, tt.want))
			}
			// worldtimeapi clients expect these JSON types exactly.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			if u := string(raw["unixtime"]); strings.ContainsAny(u, ".eE\"") {
				t.Errorf("unixtime = %s, want an integer", u)
			}
			if !tt.want.DST && (string(raw["dst_from"]) != "null" || string(raw["dst_until"]) != "null") {
				t.Errorf("dst_from, dst_until = %s, %s; want null outside DST", raw["dst_from"], raw["dst_until"])
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeHTTPClientIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:51234":       "192.0.2.7",
		"[2001:db8::1]:443":     "2001:db8::1",
		"@unix":                 "@unix",
		"":                      "",
		"[fe80::1%eth0]:12345":  "fe80::1%eth0",
		"198.51.100.2:0":        "198.51.100.2",
		"not an address at all": "not an address at all",
	} {
		if got := clientIP(remote); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestServeHTTPZoneErrors(t *testing.T) {
	tests := []struct {
		tz, want string
	}{
		{"Mars/Base", `unknown time zone "Mars/Base": use an IANA name such as Europe/Paris`},
		{"Europe/Atlantis", `unknown time zone "Europe/Atlantis": use an IANA name such as Europe/Paris`},
		{"utc", `unknown time zone "utc": use an IANA name such as Europe/Paris`},
		{"../../../etc/passwd", `invalid time zone "../../../etc/passwd": use an IANA name such as Europe/Paris`},
		{"/etc/localtime", `invalid time zone "/etc/localtime": use an IANA name such as Europe/Paris`},
		{"/usr/share/zoneinfo/Europe/Paris", `invalid time zone "/usr/share/zoneinfo/Europe/Paris": use an IANA name such as Europe/Paris`},
		{"Europe/../Europe/Paris", `invalid time zone "Europe/../Europe/Paris": use an IANA name such as Europe/Paris`},
		{"Europe//Paris", `invalid time zone "Europe//Paris": use an IANA name such as Europe/Paris`},
		{"Europe/Paris/", `invalid time zone "Europe/Paris/": use an IANA name such as Europe/Paris`},
		{"Local", `invalid time zone "Local": use an IANA name such as Europe/Paris`},
		{"zone.tab", `invalid time zone "zone.tab": use an IANA name such as Europe/Paris`},
		{"Europe/Paris\x00", `invalid time zone "Europe/Paris\x00": use an IANA name such as Europe/Paris`},
		{"Europe\\Paris", `invalid time zone "Europe\\Paris": use an IANA name such as Europe/Paris`},
		{"Europe/Paris ", `invalid time zone "Europe/Paris ": use an IANA name such as Europe/Paris`},
		{"Europe/Pärís", `invalid time zone "Europe/Pärís": use an IANA name such as Europe/Paris`},
		{strings.Repeat("A", 65), `invalid time zone: the name is longer than 64 bytes: use an IANA name such as Europe/Paris`},
	}
	for _, tt := range tests {
		t.Run(tt.tz, func(t *testing.T) {
			p := newTestPlugin(t, summer, nil)

			w := serve(t, p, http.MethodGet, tzTarget(tt.tz), nil)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("text: status %d, want 400", w.Code)
			}
			if got := w.Body.String(); got != tt.want+"\n" {
				t.Errorf("text body = %q, want %q", got, tt.want+"\n")
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("text: Content-Type = %q", got)
			}

			w = serve(t, p, http.MethodGet, tzTarget(tt.tz), http.Header{"Accept": {"application/json"}})
			if w.Code != http.StatusBadRequest {
				t.Fatalf("json: status %d, want 400", w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("json: Content-Type = %q", got)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("json: decode %q: %v", w.Body, err)
			}
			if body.Error != tt.want {
				t.Errorf("json error = %q, want %q", body.Error, tt.want)
			}
		})
	}
}

func TestLoadZoneValidNames(t *testing.T) {
	for _, name := range []string{
		"UTC", "Etc/UTC", "Asia/Shanghai", "America/Argentina/Buenos_Aires",
		"America/Port-au-Prince", "Etc/GMT+5", "Etc/GMT-14", "EST5EDT", "Asia/Kolkata",
	} {
		loc, err := loadZone(name)
		if err != nil {
			t.Errorf("loadZone(%q): %v", name, err)
			continue
		}
		if loc.String() != name {
			t.Errorf("loadZone(%q) named %q", name, loc.String())
		}
	}
}

func TestServeHTTPNegotiation(t *testing.T) {
	const (
		text = "text/plain; charset=utf-8"
		js   = "application/json"
	)
	tests := []struct {
		name      string
		routeJSON bool
		format    string
		accept    []string
		status    int
		want      string // Content-Type
	}{
		{"default", false, "", nil, 200, text},
		{"curl", false, "", []string{"*/*"}, 200, text},
		{"accept json", false, "", []string{"application/json"}, 200, js},
		{"accept json case", false, "", []string{"Application/JSON"}, 200, js},
		{"accept application/*", false, "", []string{"application/*"}, 200, js},
		{"accept text", true, "", []string{"text/plain"}, 200, text},
		{"accept text/*", true, "", []string{"text/*"}, 200, text},
		{"browser", false, "", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200, text},
		{"browser json route", true, "", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200, js},
		{"json preferred by q", false, "", []string{"text/plain;q=0.5, application/json"}, 200, js},
		{"text preferred by q", true, "", []string{"text/plain, application/json;q=0.4"}, 200, text},
		{"json refused", true, "", []string{"application/json;q=0, */*"}, 200, text},
		{"two headers", false, "", []string{"text/plain;q=0.1", "application/json"}, 200, js},
		{"route json", true, "", nil, 200, js},
		{"route json curl", true, "", []string{"*/*"}, 200, js},
		{"format json", false, "json", nil, 200, js},
		{"format JSON", false, "JSON", nil, 200, js},
		{"format json beats accept", false, "json", []string{"text/plain"}, 200, js},
		{"format text", true, "text", nil, 200, text},
		{"format text beats accept", false, "text", []string{"application/json"}, 200, text},
		{"format unknown", false, "xml", nil, 400, text},
		{"format unknown json accept", false, "xml", []string{"application/json"}, 400, js},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPlugin(t, summer, nil)
			route := "GET /time"
			if tt.routeJSON {
				p = newTestPlugin(t, summer, &sdk.Config{Routes: []sdk.RouteConfig{
					{ID: route, Config: sdk.MustJSON(map[string]any{"format": "json"})},
				}})
			}
			target := "/time"
			if tt.format != "" {
				target += "?format=" + tt.format
			}
			w := serveRoute(t, p, route, http.MethodGet, target, http.Header{"Accept": tt.accept})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != tt.want {
				t.Errorf("Content-Type = %q, want %q", got, tt.want)
			}
			if got := w.Header().Get("Vary"); got != "Accept" {
				t.Errorf("Vary = %q, want Accept", got)
			}
			if tt.status == 400 && !strings.Contains(w.Body.String(), `unknown format \"xml\"`) &&
				!strings.Contains(w.Body.String(), `unknown format "xml"`) {
				t.Errorf("body %q does not name the format", w.Body)
			}
		})
	}
}

func TestServeHTTPMethods(t *testing.T) {
	p := newTestPlugin(t, summer, nil)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"} {
		w := serve(t, p, method, "/time", nil)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", method, got)
		}
	}
	w := serve(t, p, "POST", "/time?format=json", nil)
	if w.Code != http.StatusMethodNotAllowed || !strings.HasPrefix(w.Body.String(), `{"error":"method POST is not allowed`) {
		t.Errorf("POST json: %d %q", w.Code, w.Body)
	}

	get := serve(t, p, http.MethodGet, "/time", nil)
	head := serve(t, p, http.MethodHead, "/time", nil)
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %q; want 200 and no body", head.Code, head.Body)
	}
	if got, want := head.Header().Get("Content-Length"), get.Header().Get("Content-Length"); got != want || got == "" {
		t.Errorf("HEAD Content-Length = %q, GET's = %q", got, want)
	}
}

func TestServeHTTPRouteConfig(t *testing.T) {
	p := newTestPlugin(t, summer, &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"timezone": "Europe/Berlin"}),
		Routes: []sdk.RouteConfig{
			{ID: "GET /time", Config: nil},
			{ID: "GET /tokyo", Config: sdk.MustJSON(map[string]any{"timezone": "Asia/Tokyo", "format": "json"})},
			// hcldec sends absent optional attributes as null.
			{ID: "GET /null", Config: sdk.RawConfig(`{"timezone":null,"format":null}`)},
		},
	})
	tests := []struct {
		route, target, want string
	}{
		{"GET /time", "/time", "Wed, 01 Jul 2026 14:00:00 +0200 (CEST)\n"},
		{"GET /null", "/time", "Wed, 01 Jul 2026 14:00:00 +0200 (CEST)\n"},
		{"GET /unknown", "/time", "Wed, 01 Jul 2026 14:00:00 +0200 (CEST)\n"},
		{"GET /time", "/time?tz=UTC", "Wed, 01 Jul 2026 12:00:00 +0000 (UTC)\n"},
		{"GET /tokyo", "/tokyo?format=text", "Wed, 01 Jul 2026 21:00:00 +0900 (JST)\n"},
		{"GET /tokyo", "/tokyo?format=text&tz=Asia/Shanghai", "Wed, 01 Jul 2026 20:00:00 +0800 (CST)\n"},
	}
	for _, tt := range tests {
		w := serveRoute(t, p, tt.route, http.MethodGet, tt.target, nil)
		if w.Code != 200 || w.Body.String() != tt.want {
			t.Errorf("%s %s: %d %q, want %q", tt.route, tt.target, w.Code, w.Body, tt.want)
		}
	}
	w := serveRoute(t, p, "GET /tokyo", http.MethodGet, "/tokyo", nil)
	var wt worldTime
	if err := json.Unmarshal(w.Body.Bytes(), &wt); err != nil || wt.Timezone != "Asia/Tokyo" || wt.UTCOffset != "+09:00" {
		t.Errorf("GET /tokyo: %q (%v), want JSON for Asia/Tokyo", w.Body, err)
	}
}

// The plain-text answer is made once a second per zone: another zone, or
// the next second, gets its own.
func TestTextAnswerFollowsZoneAndSecond(t *testing.T) {
	p := newTimeserver()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{base, "Wed, 01 Jul 2026 12:00:00 +0000 (UTC)\n"},
		{base.Add(300 * time.Millisecond), "Wed, 01 Jul 2026 12:00:00 +0000 (UTC)\n"},
		{base.In(shanghai), "Wed, 01 Jul 2026 20:00:00 +0800 (CST)\n"},
		{base.Add(time.Second), "Wed, 01 Jul 2026 12:00:01 +0000 (UTC)\n"},
		{base.Add(time.Second).In(time.FixedZone("UTC", 0)), "Wed, 01 Jul 2026 12:00:01 +0000 (UTC)\n"},
		{base.Add(time.Second).In(time.FixedZone("X", 3600)), "Wed, 01 Jul 2026 13:00:01 +0100 (X)\n"},
	} {
		if got := string(p.text(c.t).body); got != c.want {
			t.Errorf("%v: %q, want %q", c.t, got, c.want)
		}
	}
}
