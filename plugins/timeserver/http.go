package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/socketd/socketd/sdk"
)

// textLayout is the plain-text answer: RFC 1123 with a numeric offset, as
// `date -R` and e-mail Date headers print it, followed by the zone's
// abbreviation as a comment ("Wed, 01 Jul 2026 14:00:00 +0200 (CEST)").
// The offset makes it unambiguous (CST is both China and Chicago) and
// net/mail.ParseDate reads it back.
const textLayout = "Mon, 02 Jan 2006 15:04:05 -0700 (MST)"

// jsonLayout is worldtimeapi's datetime: microseconds and a numeric offset,
// "+00:00" rather than "Z" even in UTC.
const jsonLayout = "2006-01-02T15:04:05.000000-07:00"

// worldTime is the JSON answer, with worldtimeapi.org's field names and
// formats so existing clients of that API can point at socketd.
type worldTime struct {
	Abbreviation string  `json:"abbreviation"`
	ClientIP     string  `json:"client_ip"`
	Datetime     string  `json:"datetime"`
	DayOfWeek    int     `json:"day_of_week"` // 0 is Sunday
	DayOfYear    int     `json:"day_of_year"`
	DST          bool    `json:"dst"`
	DSTFrom      *string `json:"dst_from"`   // UTC; null outside DST
	DSTOffset    int     `json:"dst_offset"` // seconds
	DSTUntil     *string `json:"dst_until"`  // UTC; null outside DST
	RawOffset    int     `json:"raw_offset"` // seconds, standard time
	Timezone     string  `json:"timezone"`
	Unixtime     int64   `json:"unixtime"`
	UTCDatetime  string  `json:"utc_datetime"`
	UTCOffset    string  `json:"utc_offset"`  // "+08:00"
	WeekNumber   int     `json:"week_number"` // ISO 8601
}

// Header values every answer shares, set without a new slice each time
// (len == cap, so a handler or middleware that appends copies first).
var (
	noStore    = []string{"no-store"}
	varyAccept = []string{"Accept"}
	textPlain  = []string{"text/plain; charset=utf-8"}
)

// ServeHTTP answers the time of day in the route's zone, or the one asked
// for with ?tz=. Every answer is marked no-store: a cached clock is wrong.
func (p *timeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs := p.current().route(sdk.RouteID(r))
	h := w.Header()
	h["Cache-Control"] = noStore
	h["Vary"] = varyAccept

	var query url.Values // nil answers Get with ""; most requests have none
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	asJSON, formatErr := negotiate(query.Get("format"), r.Header.Values("Accept"), rs.json)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, r, asJSON, http.StatusMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed: use GET or HEAD", r.Method))
		return
	}
	if formatErr != nil {
		writeError(w, r, asJSON, http.StatusBadRequest, formatErr.Error())
		return
	}
	zone := rs.zone
	if tz := query.Get("tz"); tz != "" {
		var err error
		if zone, err = loadZone(tz); err != nil {
			writeError(w, r, asJSON, http.StatusBadRequest, err.Error())
			return
		}
	}

	t := p.now().In(zone)
	var body []byte
	if asJSON {
		body, _ = json.Marshal(newWorldTime(t, clientIP(r.RemoteAddr)))
		body = append(body, '\n')
		h.Set("Content-Type", "application/json")
	} else {
		a := p.text(t)
		body = a.body
		h["Content-Type"] = textPlain
		h["Content-Length"] = a.length
	}
	write(w, r, http.StatusOK, body)
}

// textAnswer is the plain-text answer for one second in one zone.
type textAnswer struct {
	zone *time.Location
	sec  int64
	body []byte // shared: written, never changed
	// length is body's Content-Length header value, shared the same way.
	length []string
}

// text is t's plain-text answer, formatted once a second per zone (the
// layout has whole seconds): the formatting was a sixth of the plugin's
// work for a request.
func (p *timeserver) text(t time.Time) *textAnswer {
	if a := p.lastText.Load(); a != nil && a.zone == t.Location() && a.sec == t.Unix() {
		return a
	}
	body := append(t.AppendFormat(make([]byte, 0, 48), textLayout), '\n')
	a := &textAnswer{zone: t.Location(), sec: t.Unix(), body: body, length: []string{strconv.Itoa(len(body))}}
	p.lastText.Store(a)
	return a
}

// negotiate decides between text and JSON: ?format= wins, then Accept,
// then the route's format.
func negotiate(format string, accept []string, routeJSON bool) (asJSON bool, err error) {
	switch strings.ToLower(format) {
	case "json":
		return true, nil
	case "text":
		return false, nil
	}
	asJSON = prefersJSON(strings.Join(accept, ","), routeJSON)
	if format != "" {
		return asJSON, fmt.Errorf("unknown format %q: use format=text or format=json", format)
	}
	return asJSON, nil
}

// prefersJSON ranks application/json against text/plain by the quality
// values of the most specific Accept range matching each (RFC 9110
// §12.5.1). A tie, including no Accept at all or "*/*", keeps the default,
// so curl gets the route's format and a browser gets text.
func prefersJSON(accept string, def bool) bool {
	if strings.TrimSpace(accept) == "" {
		return def
	}
	qJSON, qText := acceptQuality(accept, "application", "json"), acceptQuality(accept, "text", "plain")
	if qJSON != qText {
		return qJSON > qText
	}
	return def
}

// acceptQuality returns the q value Accept gives typ/sub: that of the most
// specific matching range, 0 when none matches.
func acceptQuality(accept, typ, sub string) float64 {
	q, best := 0.0, -1
	for rng := range strings.SplitSeq(accept, ",") {
		mediaType, params, _ := strings.Cut(rng, ";")
		t, s, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mediaType)), "/")
		var specificity int
		switch {
		case t == typ && s == sub:
			specificity = 2
		case t == typ && s == "*":
			specificity = 1
		case t == "*" && s == "*":
			specificity = 0
		default:
			continue
		}
		if specificity <= best {
			continue
		}
		best, q = specificity, 1
		for param := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
			if strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
	}
	return q
}

// newWorldTime fills the JSON answer for t, which is already in its zone.
func newWorldTime(t time.Time, clientIP string) worldTime {
	abbr, offset := t.Zone()
	raw := rawOffset(t)
	_, week := t.ISOWeek()
	wt := worldTime{
		Abbreviation: abbr,
		ClientIP:     clientIP,
		Datetime:     t.Format(jsonLayout),
		DayOfWeek:    int(t.Weekday()),
		DayOfYear:    t.YearDay(),
		DST:          t.IsDST(),
		DSTOffset:    offset - raw,
		RawOffset:    raw,
		Timezone:     t.Location().String(),
		Unixtime:     t.Unix(),
		UTCDatetime:  t.UTC().Format(jsonLayout),
		UTCOffset:    t.Format("-07:00"),
		WeekNumber:   week,
	}
	if wt.DST {
		start, end := t.ZoneBounds()
		if !start.IsZero() {
			s := start.UTC().Format(jsonLayout)
			wt.DSTFrom = &s
		}
		if !end.IsZero() {
			e := end.UTC().Format(jsonLayout)
			wt.DSTUntil = &e
		}
	}
	return wt
}

// rawOffset returns the zone's standard (non-DST) offset at t in seconds.
// Go exposes only the offset in force, so during DST it looks at the
// neighbouring periods of the zone for one that is standard time; failing
// that (a zone that never leaves DST) it assumes the usual hour.
func rawOffset(t time.Time) int {
	_, offset := t.Zone()
	if !t.IsDST() {
		return offset
	}
	start, end := t.ZoneBounds()
	if !end.IsZero() && !end.IsDST() {
		_, off := end.Zone()
		return off
	}
	if !start.IsZero() {
		if before := start.Add(-time.Second); !before.IsDST() {
			_, off := before.Zone()
			return off
		}
	}
	return offset - 3600
}

// clientIP is the host part of RemoteAddr, which the core sets to the
// client's address.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// writeError answers status with msg, as {"error": msg} when the client
// asked for JSON and as a line of text otherwise.
func writeError(w http.ResponseWriter, r *http.Request, asJSON bool, status int, msg string) {
	var body []byte
	if asJSON {
		body, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{msg})
		body = append(body, '\n')
		w.Header().Set("Content-Type", "application/json")
	} else {
		body = []byte(msg + "\n")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	write(w, r, status, body)
}

// write sends body with its length; a HEAD answer keeps the length and
// drops the bytes, so they do not cross the plugin connection.
func write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	if _, set := w.Header()["Content-Length"]; !set {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
