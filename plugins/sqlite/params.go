package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ncruces/go-sqlite3"
)

// Parameter types, as written in params = { NAME = { type = "..." } }.
// They are SQLite's storage classes plus boolean and json, which SQLite
// stores as integer and text.
const (
	typeText    = "text"
	typeInteger = "integer"
	typeReal    = "real"
	typeBoolean = "boolean"
	typeBlob    = "blob"
	typeJSON    = "json"
)

var paramTypes = []string{typeText, typeInteger, typeReal, typeBoolean, typeBlob, typeJSON}

// paramKeys are the attributes of one parameter's declaration.
var paramKeys = []string{"type", "required", "default", "min", "max", "max_length"}

// param is one declared :name of a route's SQL.
type param struct {
	name     string
	typ      string
	required bool
	def      *value // bound when the request does not give the parameter
	// Bounds: minI/maxI for integer, minF/maxF for real.
	minI, maxI *int64
	minF, maxF *float64
	maxLength  int // text: characters, blob: bytes; 0 is no limit
	// path: a {name} wildcard of the route pattern gives the value.
	path bool
}

// value is a parameter's value, ready to bind.
type value struct {
	kind sqlite3.Datatype // NULL, INTEGER, FLOAT, TEXT or BLOB
	i    int64
	f    float64
	s    string
	b    []byte
}

var null = value{kind: sqlite3.NULL}

// bind binds v to position i of stmt.
func (v value) bind(stmt *sqlite3.Stmt, i int) error {
	switch v.kind {
	case sqlite3.INTEGER:
		return stmt.BindInt64(i, v.i)
	case sqlite3.FLOAT:
		return stmt.BindFloat(i, v.f)
	case sqlite3.TEXT:
		return stmt.BindText(i, v.s)
	case sqlite3.BLOB:
		return stmt.BindBlob(i, v.b)
	}
	return stmt.BindNull(i)
}

// any returns v as a Go value for templates.
func (v value) any() any {
	switch v.kind {
	case sqlite3.INTEGER:
		return v.i
	case sqlite3.FLOAT:
		return v.f
	case sqlite3.TEXT:
		return v.s
	case sqlite3.BLOB:
		return Blob(v.b)
	}
	return nil
}

// parseParam reads one declaration: an object with the keys of paramKeys,
// or a bare value, which is the default and gives the type (limit = 50 is
// an integer defaulting to 50). It reports problems through errorf with
// the path below ["params", name].
func parseParam(name string, raw any, errorf func(path []string, summary, detail string)) *param {
	p := &param{name: name}
	decl, ok := raw.(map[string]any)
	if !ok {
		// Shorthand: the default alone.
		switch v := raw.(type) {
		case json.Number:
			p.typ = typeInteger
			if _, err := v.Int64(); err != nil {
				p.typ = typeReal
			}
		case string:
			p.typ = typeText
		case bool:
			p.typ = typeBoolean
		default:
			errorf(nil, fmt.Sprintf("parameter %q: a declaration is an object or a default value", name),
				`write NAME = { type = "integer", default = 50 }, or NAME = 50 for a default alone`)
			return nil
		}
		def, msg := fromJSON(p, raw)
		if msg != "" {
			errorf(nil, fmt.Sprintf("parameter %q: invalid default", name), "the default "+msg)
			return nil
		}
		p.def = &def
		return p
	}

	ok = true
	keys := make([]string, 0, len(decl))
	for k := range decl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(paramKeys, k) {
			errorf([]string{k}, fmt.Sprintf("parameter %q: unknown key %q", name, k),
				"a parameter declaration may hold "+strings.Join(paramKeys, ", "))
			ok = false
		}
	}
	p.typ = typeText
	if t, set := decl["type"]; set && t != nil {
		s, isStr := t.(string)
		if !isStr || !slices.Contains(paramTypes, s) {
			errorf([]string{"type"}, fmt.Sprintf("parameter %q: unknown type %v", name, jsonText(t)),
				"type is one of "+strings.Join(paramTypes, ", "))
			return nil
		}
		p.typ = s
	}
	if r, set := decl["required"]; set && r != nil {
		b, isBool := r.(bool)
		if !isBool {
			errorf([]string{"required"}, fmt.Sprintf("parameter %q: required must be true or false", name), "")
			ok = false
		}
		p.required = b
	}
	number := func(key string) (json.Number, bool) {
		v, set := decl[key]
		if !set || v == nil {
			return "", false
		}
		n, isNum := v.(json.Number)
		if !isNum {
			errorf([]string{key}, fmt.Sprintf("parameter %q: %s must be a number", name, key), "")
			ok = false
		}
		return n, isNum
	}
	for _, key := range []string{"min", "max"} {
		n, set := number(key)
		if !set {
			continue
		}
		switch p.typ {
		case typeInteger:
			i, err := n.Int64()
			if err != nil {
				errorf([]string{key}, fmt.Sprintf("parameter %q: %s must be a whole number", name, key), "the parameter is an integer")
				ok = false
				continue
			}
			if key == "min" {
				p.minI = &i
			} else {
				p.maxI = &i
			}
		case typeReal:
			f, _ := n.Float64()
			if key == "min" {
				p.minF = &f
			} else {
				p.maxF = &f
			}
		default:
			errorf([]string{key}, fmt.Sprintf("parameter %q: %s applies to integer and real parameters", name, key),
				"limit the length of text or blob with max_length")
			ok = false
		}
	}
	if (p.minI != nil && p.maxI != nil && *p.minI > *p.maxI) || (p.minF != nil && p.maxF != nil && *p.minF > *p.maxF) {
		errorf([]string{"min"}, fmt.Sprintf("parameter %q: min is above max", name), "")
		ok = false
	}
	if n, set := number("max_length"); set {
		i, err := n.Int64()
		switch {
		case p.typ != typeText && p.typ != typeBlob && p.typ != typeJSON:
			errorf([]string{"max_length"}, fmt.Sprintf("parameter %q: max_length applies to text, blob and json parameters", name), "bound numbers with min and max")
			ok = false
		case err != nil || i < 1 || i > math.MaxInt32:
			errorf([]string{"max_length"}, fmt.Sprintf("parameter %q: max_length must be a whole number from 1", name), "")
			ok = false
		default:
			p.maxLength = int(i)
		}
	}
	if d, set := decl["default"]; set && d != nil {
		if p.required {
			errorf([]string{"default"}, fmt.Sprintf("parameter %q: a required parameter has no use for a default", name),
				"remove required = true to make the default apply, or remove the default")
			ok = false
		} else if v, msg := fromJSON(p, d); msg != "" {
			errorf([]string{"default"}, fmt.Sprintf("parameter %q: invalid default", name), "the default "+msg)
			ok = false
		} else {
			p.def = &v
		}
	}
	if !ok {
		return nil
	}
	return p
}

// fromText converts a value given as text (path, query string, form field)
// to p's type. The message, if not empty, completes "parameter NAME ...".
func fromText(p *param, s string) (value, string) {
	var v value
	switch p.typ {
	case typeText:
		if !utf8.ValidString(s) {
			return v, "must be valid UTF-8 text"
		}
		v = value{kind: sqlite3.TEXT, s: s}
	case typeInteger:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return v, "is out of the 64-bit integer range"
			}
			return v, "must be an integer"
		}
		v = value{kind: sqlite3.INTEGER, i: i}
	case typeReal:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return v, "must be a finite number"
		}
		v = value{kind: sqlite3.FLOAT, f: f}
	case typeBoolean:
		switch strings.ToLower(s) {
		case "true", "1", "on", "yes":
			v = value{kind: sqlite3.INTEGER, i: 1}
		case "false", "0", "off", "no":
			v = value{kind: sqlite3.INTEGER, i: 0}
		default:
			return v, "must be true or false"
		}
	case typeBlob:
		b, err := decodeBase64(s)
		if err != nil {
			return v, "must be base64"
		}
		v = value{kind: sqlite3.BLOB, b: b}
	case typeJSON:
		if !json.Valid([]byte(s)) {
			return v, "must be JSON"
		}
		v = value{kind: sqlite3.TEXT, s: s}
	}
	return v, check(p, v)
}

// fromJSON converts a value from a JSON body (decoded with UseNumber) or
// from config. Numbers keep every digit: a 64-bit integer is exact.
func fromJSON(p *param, j any) (value, string) {
	if p.typ == typeJSON {
		b, err := json.Marshal(j)
		if err != nil {
			return value{}, "must be JSON"
		}
		v := value{kind: sqlite3.TEXT, s: string(b)}
		return v, check(p, v)
	}
	switch x := j.(type) {
	case string:
		if p.typ == typeText || p.typ == typeBlob || p.typ == typeInteger || p.typ == typeReal || p.typ == typeBoolean {
			return fromText(p, x)
		}
	case json.Number:
		switch p.typ {
		case typeInteger, typeReal:
			return fromText(p, x.String())
		case typeBoolean:
			if x == "0" || x == "1" {
				return fromText(p, x.String())
			}
		}
	case bool:
		if p.typ == typeBoolean {
			return fromText(p, strconv.FormatBool(x))
		}
	case map[string]any:
		// The shape BLOBs come out in: {"$base64": true, "encoded": "..."}.
		if enc, ok := x["encoded"].(string); ok && x["$base64"] == true && p.typ == typeBlob {
			return fromText(p, enc)
		}
	}
	what := map[string]string{
		typeText: "must be a string", typeInteger: "must be an integer", typeReal: "must be a number",
		typeBoolean: "must be true or false", typeBlob: "must be a base64 string",
	}[p.typ]
	return value{}, what
}

// check applies the declaration's bounds.
func check(p *param, v value) string {
	switch {
	case p.minI != nil && v.kind == sqlite3.INTEGER && v.i < *p.minI:
		return fmt.Sprintf("must be at least %d", *p.minI)
	case p.maxI != nil && v.kind == sqlite3.INTEGER && v.i > *p.maxI:
		return fmt.Sprintf("must be at most %d", *p.maxI)
	case p.minF != nil && v.kind == sqlite3.FLOAT && v.f < *p.minF:
		return fmt.Sprintf("must be at least %v", *p.minF)
	case p.maxF != nil && v.kind == sqlite3.FLOAT && v.f > *p.maxF:
		return fmt.Sprintf("must be at most %v", *p.maxF)
	case p.maxLength > 0 && v.kind == sqlite3.TEXT && utf8.RuneCountInString(v.s) > p.maxLength:
		return fmt.Sprintf("must be at most %d characters long", p.maxLength)
	case p.maxLength > 0 && v.kind == sqlite3.BLOB && len(v.b) > p.maxLength:
		return fmt.Sprintf("must be at most %d bytes long", p.maxLength)
	}
	return ""
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// sources are where a request's parameter values come from, in order of
// precedence: the path's wildcards, the body (form or JSON), the query
// string.
type sources struct {
	path  func(string) string
	form  url.Values
	json  map[string]any
	query url.Values
}

// resolve finds p's value in src: an empty form or query field, or a JSON
// null, counts as absent, since a form sends its empty fields. Absent, p
// takes its default, or NULL; a required p is a 400.
func (p *param) resolve(src *sources) (value, *apiError) {
	if p.path && src.path != nil {
		if s := src.path(p.name); s != "" {
			return p.fromText(s)
		}
	}
	if src.json != nil {
		if j, ok := src.json[p.name]; ok && j != nil {
			v, msg := fromJSON(p, j)
			if msg != "" {
				return v, badParam(p.name, "%s", msg)
			}
			return v, nil
		}
	}
	for _, vals := range []url.Values{src.form, src.query} {
		switch vs := vals[p.name]; {
		case len(vs) > 1:
			return value{}, badParam(p.name, "is given more than once")
		case len(vs) == 1 && vs[0] != "":
			return p.fromText(vs[0])
		}
	}
	switch {
	case p.required:
		return value{}, badParam(p.name, "is required")
	case p.def != nil:
		return *p.def, nil
	}
	return null, nil
}

func (p *param) fromText(s string) (value, *apiError) {
	v, msg := fromText(p, s)
	if msg != "" {
		return v, badParam(p.name, "%s", msg)
	}
	return v, nil
}
