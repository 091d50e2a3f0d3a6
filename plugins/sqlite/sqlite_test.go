package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/sdk"
)

// do sends one request through route with header name/value pairs; a
// {name} of the route's pattern is set from the target's path.
func do(t *testing.T, p *sqlitePlugin, route, method, target string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	mux := http.NewServeMux()
	// Route by path only, so a wrong method meets the plugin's own check.
	m, _ := parsePattern(route)
	pattern := strings.TrimSpace(strings.TrimPrefix(route, m))
	var got *http.Response
	var text string
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, sdk.WithRouteID(r, route))
		got = rec.Result()
		text = rec.Body.String()
	})
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got == nil {
		t.Fatalf("%s %s did not match %q", method, target, route)
	}
	return got, text
}

func get(t *testing.T, p *sqlitePlugin, route, target string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, p, route, http.MethodGet, target, nil, header...)
}

func postJSON(t *testing.T, p *sqlitePlugin, route, target, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, p, route, http.MethodPost, target, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, header...)...)
}

func postForm(t *testing.T, p *sqlitePlugin, route, target, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, p, route, http.MethodPost, target, strings.NewReader(body), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)...)
}

// errorBody decodes the one error shape.
type errorBody struct {
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Error  string `json:"error"`
	Param  string `json:"param"`
}

func decodeError(t *testing.T, body string) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}

// guestbook is the default config's guestbook, with a template.
func guestbook(t *testing.T, plugin map[string]any) *sqlitePlugin {
	t.Helper()
	tmpl := filepath.Join(t.TempDir(), "page.html")
	os.WriteFile(tmpl, []byte(`<ul>{{range .Rows}}<li id="e{{.id}}">{{.name}}: {{.message}}</li>{{end}}</ul>{{if .Truncated}}more{{end}} limit={{.Params.limit}} added={{.Query.Get "added"}}`), 0o644)
	limit := map[string]any{"type": "integer", "default": 50, "min": 1, "max": 500}
	return mustConfigure(t, plugin, map[string]map[string]any{
		"GET /guestbook": {
			"query":    "SELECT id, name, message, created FROM entries ORDER BY id DESC LIMIT :limit",
			"params":   map[string]any{"limit": limit},
			"template": tmpl,
			"max_rows": 3,
		},
		"POST /guestbook": {
			"exec": "INSERT INTO entries (name, message, email) VALUES (:name, :message, :email) RETURNING id, created",
			"params": map[string]any{
				"name":    map[string]any{"type": "text", "required": true, "max_length": 10},
				"message": map[string]any{"type": "text", "required": true},
				"email":   map[string]any{"type": "text"},
			},
			"redirect": "/guestbook?added={id}",
		},
		"GET /api/entries": {
			"query":  "SELECT id, name, message, created FROM entries ORDER BY id DESC LIMIT :limit",
			"params": map[string]any{"limit": limit},
		},
		"GET /api/entries/{id}": {
			"query":  "SELECT id, name FROM entries WHERE id = :id",
			"params": map[string]any{"id": map[string]any{"type": "integer", "required": true}},
		},
		"DELETE /api/entries/{id}": {"exec": "DELETE FROM entries WHERE id = :id"},
	})
}

func TestWriteAndReadBack(t *testing.T) {
	p := guestbook(t, nil)
	evil := `x'); DROP TABLE entries;--`
	script := `<script>alert(1)</script>`

	// JSON in, JSON out: rows affected, last insert id, RETURNING rows.
	resp, body := postJSON(t, p, "POST /guestbook", "/guestbook", fmt.Sprintf(`{"name":"Ada","message":%q}`, evil))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON post: %d %s", resp.StatusCode, body)
	}
	var w struct {
		OK           bool             `json:"ok"`
		Rows         []map[string]any `json:"rows"`
		RowsAffected int              `json:"rows_affected"`
		LastInsertID *int             `json:"last_insert_id"`
	}
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatal(err)
	}
	if !w.OK || w.RowsAffected != 1 || w.LastInsertID == nil || *w.LastInsertID != 1 || len(w.Rows) != 1 || w.Rows[0]["id"] != 1.0 || w.Rows[0]["created"] != "2026-01-02 03:04:05" {
		t.Errorf("JSON post answered %s", body)
	}

	// A form: 303 to the redirect, filled from RETURNING.
	resp, _ = postForm(t, p, "POST /guestbook", "/guestbook", "name=Bob&message="+strings.ReplaceAll(script, "(", "%28"), "Accept", "text/html")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/guestbook?added=2" {
		t.Errorf("form post: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A form from a client that asks for JSON gets JSON.
	resp, body = postForm(t, p, "POST /guestbook", "/guestbook", "name=Cy&message=hi", "Accept", "application/json")
	if resp.StatusCode != 200 || !strings.Contains(body, `"last_insert_id":3`) {
		t.Errorf("form post asking for JSON: %d %s", resp.StatusCode, body)
	}

	// Read back as JSON: stored literally, the table still there.
	resp, body = get(t, p, "GET /api/entries", "/api/entries")
	var r struct {
		OK        bool             `json:"ok"`
		Rows      []map[string]any `json:"rows"`
		Truncated bool             `json:"truncated"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("read: %d %s %v", resp.StatusCode, body, err)
	}
	if len(r.Rows) != 3 || r.Rows[2]["message"] != evil || r.Rows[1]["message"] != script || r.Truncated {
		t.Errorf("read back %s", body)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("JSON holds a raw <script>: %s", body)
	}

	// HTML through the template: escaped.
	resp, body = get(t, p, "GET /guestbook", "/guestbook?added=2", "Accept", "text/html")
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || strings.Contains(body, "<script>") ||
		!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, "x&#39;); DROP TABLE entries;--") ||
		!strings.Contains(body, "limit=50 added=2") {
		t.Errorf("HTML: %s", body)
	}
	// The template route's default is HTML, even for curl's */*.
	if resp, _ = get(t, p, "GET /guestbook", "/guestbook", "Accept", "*/*"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("template route with */*: %s", resp.Header.Get("Content-Type"))
	}

	// CSV and ndjson.
	resp, body = get(t, p, "GET /api/entries", "/api/entries?_format=csv")
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8; header=present" || len(recs) != 4 ||
		!slices.Equal(recs[0], []string{"id", "name", "message", "created"}) || recs[3][2] != evil {
		t.Errorf("CSV: %v %q", err, body)
	}
	resp, body = get(t, p, "GET /api/entries", "/api/entries?limit=2", "Accept", "application/x-ndjson")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 2 || !json.Valid([]byte(lines[0])) {
		t.Errorf("ndjson: %q", body)
	}
	// The array shape.
	_, body = get(t, p, "GET /api/entries", "/api/entries?limit=1&_shape=array")
	if !strings.HasPrefix(body, `[{"id":3,`) {
		t.Errorf("array shape: %s", body)
	}

	// A path value.
	if _, body = get(t, p, "GET /api/entries/{id}", "/api/entries/2"); body != `{"ok":true,"rows":[{"id":2,"name":"Bob"}],"truncated":false}`+"\n" {
		t.Errorf("by id: %s", body)
	}
	// DELETE by path value: rows affected, no insert id.
	resp, body = do(t, p, "DELETE /api/entries/{id}", http.MethodDelete, "/api/entries/3", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"rows_affected":1,"last_insert_id":null`) {
		t.Errorf("delete: %d %s", resp.StatusCode, body)
	}
	if _, body = do(t, p, "DELETE /api/entries/{id}", http.MethodDelete, "/api/entries/3", nil); !strings.Contains(body, `"rows_affected":0`) {
		t.Errorf("delete again: %s", body)
	}
}

func TestTruncated(t *testing.T) {
	p := guestbook(t, nil)
	for i := range 5 {
		postJSON(t, p, "POST /guestbook", "/guestbook", fmt.Sprintf(`{"name":"n%d","message":"m"}`, i))
	}
	resp, body := get(t, p, "GET /guestbook", "/guestbook?_format=json")
	if !strings.HasSuffix(body, `],"truncated":true}`+"\n") || strings.Count(body, `"id"`) != 3 || resp.Header.Get("X-Truncated") != "true" {
		t.Errorf("max_rows 3: %s", body)
	}
	if _, body = get(t, p, "GET /guestbook", "/guestbook"); !strings.Contains(body, "more") || strings.Count(body, "<li") != 3 {
		t.Errorf("template: %s", body)
	}
	if resp, body = get(t, p, "GET /guestbook", "/guestbook?limit=2&_format=json"); !strings.HasSuffix(body, `"truncated":false}`+"\n") || resp.Header.Get("X-Truncated") != "" {
		t.Errorf("limit 2: %s", body)
	}
}

func TestErrors(t *testing.T) {
	p := guestbook(t, nil)
	postJSON(t, p, "POST /guestbook", "/guestbook", `{"name":"Ada","message":"m","email":"a@example.com"}`)
	tests := []struct {
		name           string
		route, method  string
		target, body   string
		header         []string
		status         int
		code, param    string
		allow, message string
	}{
		{name: "not an integer", route: "GET /api/entries", target: "/api/entries?limit=ten", status: 400, code: "bad_parameter", param: "limit", message: "must be an integer"},
		{name: "above max", route: "GET /api/entries", target: "/api/entries?limit=501", status: 400, code: "bad_parameter", param: "limit", message: "at most 500"},
		{name: "given twice", route: "GET /api/entries", target: "/api/entries?limit=1&limit=2", status: 400, param: "limit", code: "bad_parameter"},
		{name: "bad format", route: "GET /api/entries", target: "/api/entries?_format=xml", status: 400, param: "_format", code: "bad_parameter"},
		{name: "bad shape", route: "GET /api/entries", target: "/api/entries?_shape=x", status: 400, param: "_shape", code: "bad_parameter"},
		{name: "path not an integer", route: "GET /api/entries/{id}", target: "/api/entries/x", status: 400, param: "id", code: "bad_parameter"},
		{name: "write on a read route", route: "GET /api/entries", method: "POST", target: "/api/entries", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "read on a write route", route: "POST /guestbook", method: "GET", target: "/guestbook", status: 405, code: "method_not_allowed", allow: "POST, PUT, PATCH, DELETE"},
		{name: "missing parameter", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"message":"m"}`, status: 400, code: "bad_parameter", param: "name", message: `"name" is required`},
		{name: "empty form field is missing", route: "POST /guestbook", method: "POST", target: "/guestbook", body: "name=&message=m", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 400, param: "name", code: "bad_parameter"},
		{name: "too long", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":"abcdefghijk","message":"m"}`, status: 400, param: "name", code: "bad_parameter", message: "at most 10 characters"},
		{name: "wrong JSON type", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":5,"message":"m"}`, status: 400, param: "name", code: "bad_parameter", message: "must be a string"},
		{name: "unique", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":"B","message":"m","email":"a@example.com"}`, status: 409, code: "unique_violation"},
		{name: "check", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":"","message":"m"}`, status: 400, code: "check_violation"},
		{name: "not JSON", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":`, status: 400, code: "bad_body"},
		{name: "JSON not an object", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `["a"]`, status: 400, code: "bad_body"},
		{name: "other media type", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `a`, header: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "cross-site form", route: "POST /guestbook", method: "POST", target: "/guestbook", body: "name=a&message=b", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"}, status: 403, code: "cross_origin"},
		{name: "other origin (older browser)", route: "POST /guestbook", method: "POST", target: "/guestbook", body: `{"name":"a","message":"b"}`, header: []string{"Origin", "https://evil.example"}, status: 403, code: "cross_origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			var body io.Reader
			header := tt.header
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if header == nil {
					header = []string{"Content-Type", "application/json"}
				}
			}
			resp, text := do(t, p, tt.route, method, tt.target, body, header...)
			e := decodeError(t, text)
			if resp.StatusCode != tt.status || e.Status != tt.status || e.OK || e.Code != tt.code || e.Param != tt.param || !strings.Contains(e.Error, tt.message) {
				t.Errorf("%d %s", resp.StatusCode, text)
			}
			if resp.Header.Get("Allow") != tt.allow {
				t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), tt.allow)
			}
			for _, leak := range []string{"sqlite", "entries", "INSERT", "SELECT", "constraint failed"} {
				if strings.Contains(text, leak) {
					t.Errorf("error body leaks %q: %s", leak, text)
				}
			}
		})
	}

	// A CHECK violation that the parameters let through.
	p2 := mustConfigure(t, nil, map[string]map[string]any{"POST /x": {"exec": "INSERT INTO entries (name, message) VALUES (:n, 'm')", "params": map[string]any{"n": map[string]any{"type": "text"}}}})
	resp, text := postJSON(t, p2, "POST /x", "/x", `{"n":"`+strings.Repeat("a", 101)+`"}`)
	if e := decodeError(t, text); resp.StatusCode != 400 || e.Code != "check_violation" {
		t.Errorf("check: %d %s", resp.StatusCode, text)
	}
	resp, text = postJSON(t, p2, "POST /x", "/x", `{}`)
	if e := decodeError(t, text); resp.StatusCode != 400 || e.Code != "not_null_violation" {
		t.Errorf("not null: %d %s", resp.StatusCode, text)
	}

	// A browser gets its errors as a page.
	resp, text = postForm(t, p, "POST /guestbook", "/guestbook", "message=m", "Accept", "text/html,*/*;q=0.8")
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(text, "&#34;name&#34; is required") {
		t.Errorf("HTML error: %d %s", resp.StatusCode, text)
	}

	// Same-origin form posts pass.
	resp, _ = postForm(t, p, "POST /guestbook", "http://example.com/guestbook", "name=a&message=b", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != 303 {
		t.Errorf("same-origin form: %d", resp.StatusCode)
	}
	resp, _ = postForm(t, p, "POST /guestbook", "http://example.com/guestbook", "name=a&message=b", "Origin", "http://example.com")
	if resp.StatusCode != 303 {
		t.Errorf("same-origin form (Origin): %d", resp.StatusCode)
	}
}

func TestTrustedOrigins(t *testing.T) {
	p := guestbook(t, map[string]any{"trusted_origins": []string{"https://app.example"}})
	resp, _ := postForm(t, p, "POST /guestbook", "/guestbook", "name=a&message=b", "Sec-Fetch-Site", "cross-site", "Origin", "https://app.example")
	if resp.StatusCode != 303 {
		t.Errorf("trusted origin: %d", resp.StatusCode)
	}
}

func TestFaithfulValues(t *testing.T) {
	p := mustConfigure(t, nil, map[string]map[string]any{
		"GET /v": {"query": `SELECT 9007199254740991 AS safe, 9223372036854775807 AS big, -9223372036854775808 AS small,
			1.0 AS one, 0.1 AS tenth, 1e300 AS huge, 1e999 AS inf, -1e999 AS ninf, NULL AS none,
			x'00ff10' AS blob, '2026-07-01 12:00:00' AS date, 'héllo ☃ <&>' AS text, char(0, 10, 8232) AS ctrl`},
		"POST /b": {"exec": "INSERT INTO entries (name, message) VALUES ('b', 'm') RETURNING :blob AS back, :n AS n, :r AS r, :ok AS ok, :j AS j",
			"params": map[string]any{
				"blob": map[string]any{"type": "blob"}, "n": map[string]any{"type": "integer"},
				"r": map[string]any{"type": "real"}, "ok": map[string]any{"type": "boolean"}, "j": map[string]any{"type": "json"},
			}},
	})
	_, body := get(t, p, "GET /v", "/v")
	want := `{"ok":true,"rows":[{"safe":9007199254740991,"big":"9223372036854775807","small":"-9223372036854775808",` +
		`"one":1.0,"tenth":0.1,"huge":1e+300,"inf":"Infinity","ninf":"-Infinity","none":null,` +
		`"blob":{"$base64":true,"encoded":"AP8Q"},"date":"2026-07-01 12:00:00","text":"héllo ☃ \u003c\u0026\u003e","ctrl":"\u0000\n\u2028"}],"truncated":false}` + "\n"
	if body != want {
		t.Errorf("JSON:\n got %s\nwant %s", body, want)
	}
	var anyv any
	if err := json.Unmarshal([]byte(body), &anyv); err != nil {
		t.Errorf("not JSON: %v", err)
	}
	_, body = get(t, p, "GET /v", "/v?_format=csv")
	if want := "9007199254740991,9223372036854775807,-9223372036854775808,1.0,0.1,1e+300,Infinity,-Infinity,,AP8Q,2026-07-01 12:00:00,héllo ☃ <&>,"; !strings.Contains(body, want) {
		t.Errorf("CSV:\n%s\nwant it to hold %s", body, want)
	}
	_, body = get(t, p, "GET /v", "/v?_format=html")
	if !strings.Contains(body, "<td>1.0</td>") || !strings.Contains(body, "<td>Infinity</td>") || !strings.Contains(body, "<td>AP8Q</td>") || !strings.Contains(body, "héllo ☃ &lt;&amp;&gt;") {
		t.Errorf("HTML: %s", body)
	}

	// Values in: exact 64-bit integers, base64 and Datasette's blob shape
	// (what comes out goes back in), booleans, JSON.
	_, body = postJSON(t, p, "POST /b", "/b", `{"blob":{"$base64":true,"encoded":"AP8Q"},"n":9223372036854775807,"r":0.5,"ok":true,"j":{"a":[1,2]}}`)
	if !strings.Contains(body, `"back":{"$base64":true,"encoded":"AP8Q"},"n":"9223372036854775807","r":0.5,"ok":1,"j":"{\"a\":[1,2]}"`) {
		t.Errorf("values in: %s", body)
	}
	_, body = postJSON(t, p, "POST /b", "/b?blob=AP8Q&ok=on", `{}`)
	if !strings.Contains(body, `"back":{"$base64":true,"encoded":"AP8Q"},"n":null,"r":null,"ok":1`) {
		t.Errorf("values from the query string: %s", body)
	}
	resp, body := postJSON(t, p, "POST /b", "/b", `{"n":9223372036854775808}`)
	if e := decodeError(t, body); resp.StatusCode != 400 || e.Param != "n" || !strings.Contains(e.Error, "range") {
		t.Errorf("too big: %d %s", resp.StatusCode, body)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tt := range []struct {
		accept   string
		def      string
		want     string
		explicit bool
	}{
		{"", "json", "json", false},
		{"*/*", "json", "json", false},
		{"*/*", "html", "html", false},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json", "html", true},
		{"application/json", "html", "json", true},
		{"application/json, text/html", "html", "html", true},
		{"application/json;q=0.5, text/csv", "json", "csv", true},
		{"text/*", "json", "html", false},
		{"application/x-ndjson", "json", "ndjson", true},
		{"image/png", "json", "json", false},
		{"application/json;q=0", "json", "json", false},
		{"text/html;q=0, */*", "html", "json", false},
	} {
		got, explicit := negotiate([]string{tt.accept}, tt.def)
		if got != tt.want || explicit != tt.explicit {
			t.Errorf("negotiate(%q, %s) = %s %v, want %s %v", tt.accept, tt.def, got, explicit, tt.want, tt.explicit)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<a href='x'>&</a>", "\x00\x1f\t\n\r", "日本語 ☃ 😀", "\u2028\u2029", "bad \xff\xfe utf8"} {
		got := appendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestTimeLimit(t *testing.T) {
	p := mustConfigure(t, nil, map[string]map[string]any{
		"GET /slow": {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "time_limit": "100ms"},
	})
	start := time.Now()
	resp, body := get(t, p, "GET /slow", "/slow")
	if e := decodeError(t, body); resp.StatusCode != http.StatusGatewayTimeout || e.Code != "timeout" {
		t.Errorf("slow query: %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the query was interrupted only after %v", d)
	}
	// The connection is usable again.
	if resp, _ := get(t, p, "GET /slow", "/slow"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("second slow query: %d", resp.StatusCode)
	}
}

func TestBusy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "busy.db")
	p := mustConfigure(t, map[string]any{"database": db, "busy_timeout": "50ms"}, map[string]map[string]any{
		"POST /w": {"exec": "INSERT INTO entries (name, message) VALUES ('a', 'b')", "time_limit": "2s"},
		"GET /r":  {"query": "SELECT count(*) AS n FROM entries"},
	})
	// Another process (here: another connection) holds the write lock.
	other, err := sqlite3.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	resp, body := postJSON(t, p, "POST /w", "/w", `{}`)
	if e := decodeError(t, body); resp.StatusCode != http.StatusServiceUnavailable || e.Code != "busy" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("locked: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	// Readers are not blocked by a writer (WAL).
	if resp, body := get(t, p, "GET /r", "/r"); resp.StatusCode != 200 || !strings.Contains(body, `"n":0`) {
		t.Errorf("read while locked: %d %s", resp.StatusCode, body)
	}
	other.Exec("ROLLBACK")
	if resp, body := postJSON(t, p, "POST /w", "/w", `{}`); resp.StatusCode != 200 {
		t.Errorf("after the lock: %d %s", resp.StatusCode, body)
	}
}

func TestPragmas(t *testing.T) {
	p := mustConfigure(t, nil, map[string]map[string]any{
		"GET /p": {"query": "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS j, (SELECT foreign_keys FROM pragma_foreign_keys) AS fk, (SELECT query_only FROM pragma_query_only) AS qo"},
	})
	if _, body := get(t, p, "GET /p", "/p"); !strings.Contains(body, `{"j":"wal","fk":1,"qo":1}`) {
		t.Errorf("reader pragmas: %s", body)
	}
	st := p.state.Load()
	w := <-st.db.writer
	defer func() { st.db.writer <- w }()
	s, _, err := w.db.Prepare("SELECT (SELECT foreign_keys FROM pragma_foreign_keys), (SELECT synchronous FROM pragma_synchronous)")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Step() || s.ColumnInt(0) != 1 || s.ColumnInt(1) != 2 {
		t.Errorf("writer: foreign_keys %d synchronous %d, want 1 and 2 (FULL)", s.ColumnInt(0), s.ColumnInt(1))
	}
}

// TestConcurrent runs reads and writes at once (with -race, the pool's and
// the writer's hand-offs are checked too); every acknowledged write is read
// back.
func TestConcurrent(t *testing.T) {
	p := guestbook(t, map[string]any{"read_connections": 2})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				resp, _ := postJSON(t, p, "POST /guestbook", "/guestbook", fmt.Sprintf(`{"name":"g%d","message":"m%d"}`, g, i))
				if resp.StatusCode == 200 {
					mu.Lock()
					acked++
					mu.Unlock()
				}
				if resp, _ := get(t, p, "GET /api/entries", "/api/entries?limit=5"); resp.StatusCode != 200 {
					t.Errorf("read: %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	_, body := get(t, p, "GET /api/entries", "/api/entries?limit=500")
	if n := strings.Count(body, `"id":`); n != acked || acked != 100 {
		t.Errorf("acked %d writes, read back %d", acked, n)
	}
}

func TestReconfigure(t *testing.T) {
	db := filepath.Join(t.TempDir(), "re.db")
	p := mustConfigure(t, map[string]any{"database": db}, map[string]map[string]any{"GET /a": {"query": "SELECT 1 AS one"}})
	old := p.state.Load()
	diags := p.Configure(context.Background(), &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"database": db, "schema": testSchema}),
		Routes: []sdk.RouteConfig{{ID: "GET /b", Config: sdk.MustJSON(map[string]any{"query": "SELECT 2 AS two"})}},
	})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.state.Load() == old {
		t.Fatal("state not replaced")
	}
	if _, body := get(t, p, "GET /b", "/b"); !strings.Contains(body, `"two":2`) {
		t.Errorf("new route: %s", body)
	}
	if resp, _ := get(t, p, "GET /a", "/a"); resp.StatusCode != 500 {
		t.Errorf("old route: %d", resp.StatusCode)
	}
	// A config with errors leaves the running one alone.
	cur := p.state.Load()
	diags = p.Configure(context.Background(), &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"database": db}),
		Routes: []sdk.RouteConfig{{ID: "GET /b", Config: sdk.MustJSON(map[string]any{"query": "SELECT * FROM nope"})}},
	})
	if !diags.HasErrors() || p.state.Load() != cur {
		t.Errorf("bad config: %v, state replaced %v", diags, p.state.Load() != cur)
	}
}
