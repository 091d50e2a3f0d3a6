package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"html/template"
	"math"
	"mime"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/internal/jsonstr"
)

// Output formats, as named by ?_format= and the format attribute.
const (
	formatJSON   = "json"
	formatNDJSON = "ndjson"
	formatCSV    = "csv"
	formatHTML   = "html"
)

// formats in the order that breaks ties after the route's default.
var formats = []string{formatJSON, formatHTML, formatCSV, formatNDJSON}

// mediaTypes maps the media types of Accept to formats.
var mediaTypes = map[string]string{
	"application/json":      formatJSON,
	"application/x-ndjson":  formatNDJSON,
	"application/ndjson":    formatNDJSON,
	"application/jsonl":     formatNDJSON,
	"application/jsonlines": formatNDJSON,
	"text/csv":              formatCSV,
	"text/html":             formatHTML,
	"application/xhtml+xml": formatHTML,
}

var contentTypes = map[string]string{
	formatJSON:   "application/json",
	formatNDJSON: "application/x-ndjson",
	formatCSV:    "text/csv; charset=utf-8; header=present",
	formatHTML:   "text/html; charset=utf-8",
}

// negotiate picks the format a client asked for with Accept: the one of
// highest quality, where a format's quality comes from the most specific
// media range matching it. On a tie a named media type beats a wildcard,
// then the route's default (def) wins, so "*/*" (curl, fetch) gets the
// default and a browser gets HTML. explicit reports that the winner was
// named, not reached through a wildcard.
func negotiate(accept []string, def string) (format string, explicit bool) {
	type match struct {
		q    float64
		spec int // 0: */*, 1: type/*, 2: the media type itself
	}
	got := map[string]match{}
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v <= 1 {
					q = v
				}
			}
			for _, f := range formats {
				spec := -1
				switch {
				case mediaTypes[mt] == f:
					spec = 2
				case mt == "*/*":
					spec = 0
				case strings.HasSuffix(mt, "/*") && strings.HasPrefix(contentTypes[f], strings.TrimSuffix(mt, "*")):
					spec = 1
				}
				if m, ok := got[f]; spec >= 0 && (!ok || spec > m.spec) {
					got[f] = match{q, spec}
				}
			}
		}
	}
	best, bm := def, match{q: 0}
	for _, f := range append([]string{def}, formats...) {
		m, ok := got[f]
		if ok && (m.q > bm.q || (m.q == bm.q && m.q > 0 && m.spec == 2 && bm.spec < 2)) {
			best, bm = f, m
		}
	}
	if bm.q == 0 {
		return def, false
	}
	return best, bm.spec == 2
}

// table is a query's result for the HTML template.
type table struct {
	Columns []string
	Rows    []map[string]any
}

// encoder writes rows as one format into a buffer while the statement
// steps, so a result is never held twice.
type encoder interface {
	// begin is called once with the statement before its first row.
	begin(stmt *sqlite3.Stmt)
	row(stmt *sqlite3.Stmt)
}

// jsonRows writes rows as JSON objects: in an array, or one per line.
type jsonRows struct {
	buf   *bytes.Buffer
	keys  [][]byte // `"name":` per column
	lines bool     // ndjson: one object per line, no separators
	n     int
}

func (e *jsonRows) begin(stmt *sqlite3.Stmt) {
	n := stmt.ColumnCount()
	e.keys = make([][]byte, n)
	for i := range n {
		k := appendJSONString(nil, stmt.ColumnName(i))
		e.keys[i] = append(k, ':')
	}
}

func (e *jsonRows) row(stmt *sqlite3.Stmt) {
	b := e.buf.AvailableBuffer()
	if e.n > 0 && !e.lines {
		b = append(b, ',')
	}
	e.n++
	b = append(b, '{')
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		b = appendJSONValue(b, stmt, i)
	}
	b = append(b, '}')
	if e.lines {
		b = append(b, '\n')
	}
	e.buf.Write(b)
}

// appendJSONValue writes column i faithfully: integers beyond ±(2^53-1),
// which a JavaScript number would round, as strings of their digits; reals
// with a decimal point or exponent so they stay reals, and the infinities
// SQLite can hold as the strings "Infinity" and "-Infinity"; text as is;
// BLOBs as {"$base64":true,"encoded":"..."}, as Datasette writes them.
func appendJSONValue(b []byte, stmt *sqlite3.Stmt, i int) []byte {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		v := stmt.ColumnInt64(i)
		if v > maxSafeInt || v < -maxSafeInt {
			b = append(b, '"')
			b = strconv.AppendInt(b, v, 10)
			return append(b, '"')
		}
		return strconv.AppendInt(b, v, 10)
	case sqlite3.FLOAT:
		return appendJSONFloat(b, stmt.ColumnFloat(i))
	case sqlite3.TEXT:
		return appendJSONBytes(b, stmt.ColumnRawText(i))
	case sqlite3.BLOB:
		b = append(b, `{"$base64":true,"encoded":"`...)
		b = base64.StdEncoding.AppendEncode(b, stmt.ColumnRawBlob(i))
		return append(b, `"}`...)
	}
	return append(b, "null"...)
}

// maxSafeInt is the largest integer a float64 (a JavaScript number) holds
// exactly, 2^53-1.
const maxSafeInt = 1<<53 - 1

func appendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

// appendJSONString and appendJSONBytes quote s as a JSON string, escaping
// <, > and & as encoding/json does so the text is safe inside HTML, and
// replacing invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	return append(jsonstr.AppendEscaped(append(b, '"'), s, true), '"')
}

func appendJSONBytes(b []byte, s []byte) []byte {
	return append(jsonstr.AppendEscaped(append(b, '"'), s, true), '"')
}

// csvRows writes RFC 4180 CSV with a header line: NULL is an empty field,
// a BLOB its base64, a real its shortest exact digits.
type csvRows struct {
	w      *csv.Writer
	fields []string
}

func (e *csvRows) begin(stmt *sqlite3.Stmt) {
	n := stmt.ColumnCount()
	e.fields = make([]string, n)
	for i := range n {
		e.fields[i] = stmt.ColumnName(i)
	}
	e.w.Write(e.fields)
}

func (e *csvRows) row(stmt *sqlite3.Stmt) {
	for i := range e.fields {
		e.fields[i] = cellText(stmt, i)
	}
	e.w.Write(e.fields)
}

// cellText is column i as text, read by its type: asking SQLite for the
// text of a number or BLOB would convert the value in place.
func cellText(stmt *sqlite3.Stmt, i int) string {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		return strconv.FormatInt(stmt.ColumnInt64(i), 10)
	case sqlite3.FLOAT:
		return formatFloat(stmt.ColumnFloat(i))
	case sqlite3.TEXT:
		return stmt.ColumnText(i)
	case sqlite3.BLOB:
		return base64.StdEncoding.EncodeToString(stmt.ColumnRawBlob(i))
	}
	return ""
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eN") {
		s += ".0"
	}
	return s
}

// htmlRows collects rows for the template.
type htmlRows struct {
	t *table
}

// Blob is a BLOB cell in a template; it prints as base64.
type Blob []byte

func (b Blob) String() string { return base64.StdEncoding.EncodeToString(b) }

// Real is a REAL cell in a template; it prints like the JSON and CSV
// answers do (1.0 stays 1.0, infinities are spelt out).
type Real float64

func (f Real) String() string { return formatFloat(float64(f)) }

func (e *htmlRows) begin(stmt *sqlite3.Stmt) {
	n := stmt.ColumnCount()
	e.t.Columns = make([]string, n)
	for i := range n {
		e.t.Columns[i] = stmt.ColumnName(i)
	}
}

func (e *htmlRows) row(stmt *sqlite3.Stmt) {
	m := make(map[string]any, len(e.t.Columns))
	for i, c := range e.t.Columns {
		m[c] = cellValue(stmt, i)
	}
	e.t.Rows = append(e.t.Rows, m)
}

func cellValue(stmt *sqlite3.Stmt, i int) any {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		return stmt.ColumnInt64(i)
	case sqlite3.FLOAT:
		return Real(stmt.ColumnFloat(i))
	case sqlite3.TEXT:
		return stmt.ColumnText(i)
	case sqlite3.BLOB:
		return Blob(bytes.Clone(stmt.ColumnRawBlob(i)))
	}
	return nil
}

// defaultPage renders a query's rows as a table when the route has no
// template of its own (?_format=html, or a browser's Accept).
var defaultPage = template.Must(template.New("rows").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Path}}</title></head>
<body>
<table>
<thead><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- $cols := .Columns}}
{{range .Rows}}{{$row := .}}<tr>{{range $cols}}<td>{{index $row .}}</td>{{end}}</tr>
{{end -}}
</tbody>
</table>
{{if .Truncated}}<p>More rows than shown: the answer was cut off.</p>{{end}}
</body>
</html>
`))
