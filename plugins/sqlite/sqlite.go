package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/sdk"
)

// maxBodyBytes bounds what a write reads from a request body; the core's
// max_body_bytes (10 MiB by default) usually cuts it off sooner.
const maxBodyBytes = 32 << 20

// bufPool holds answer buffers; a result fits in one, so it is built
// whole before the answer starts.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf keeps b for reuse unless a large result grew it.
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

// ServeHTTP runs the route's statement with the request's parameter values.
func (p *sqlitePlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := p.state.Load()
	rt := (*route)(nil)
	if st != nil {
		rt = st.routes[sdk.RouteID(r)]
	}
	if rt == nil {
		// Only the core's routes reach here; an unknown one means the core
		// and the plugin disagree about the config, which is not the
		// client's fault.
		writeError(w, r, false, &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error",
			err: fmt.Errorf("request for route %q, which has no config", sdk.RouteID(r))})
		return
	}
	query := r.URL.Query()
	format, explicit := negotiate(r.Header.Values("Accept"), rt.format)
	if f := query.Get("_format"); f != "" {
		format, explicit = f, true
	}
	html := format == formatHTML
	if !slices.Contains(formats, format) {
		writeError(w, r, false, badParam("_format", "must be one of json, ndjson, csv, html"))
		return
	}
	if rt.write {
		if !slices.Contains(writeMethods, r.Method) {
			w.Header().Set("Allow", strings.Join(writeMethods, ", "))
			writeError(w, r, html, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				msg: "this route writes: use " + strings.Join(writeMethods, ", ")})
			return
		}
		p.serveWrite(w, r, st, rt, query, format == formatJSON && explicit, html)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, html, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: "this route only reads: use GET or HEAD"})
		return
	}
	p.serveRead(w, r, st, rt, query, format)
}

// values resolves every declared parameter of rt.
func (rt *route) values(src *sources) ([]value, *apiError) {
	vals := make([]value, len(rt.params))
	for i, p := range rt.params {
		v, err := p.resolve(src)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// page is what a route's template gets.
type page struct {
	Columns   []string
	Rows      []map[string]any
	Truncated bool
	// Params holds the value bound to each parameter, by name.
	Params map[string]any
	// Query is the request's query string, e.g. {{.Query.Get "added"}}.
	Query url.Values
	Path  string
}

func (p *sqlitePlugin) serveRead(w http.ResponseWriter, r *http.Request, st *state, rt *route, query url.Values, format string) {
	html := format == formatHTML
	shape := query.Get("_shape")
	if shape != "" && shape != "objects" && shape != "array" {
		writeError(w, r, html, badParam("_shape", `must be "objects" or "array"`))
		return
	}
	vals, aerr := rt.values(&sources{path: r.PathValue, query: query})
	if aerr != nil {
		writeError(w, r, html, aerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeLimit)
	defer cancel()
	c, err := acquire(ctx, st.db.readers)
	if err != nil {
		writeError(w, r, html, busy(err))
		return
	}

	buf := getBuf()
	defer putBuf(buf)
	var enc encoder
	var tab *table
	var cw *csv.Writer
	switch format {
	case formatJSON:
		if shape != "array" {
			buf.WriteString(`{"ok":true,"rows":[`)
		} else {
			buf.WriteByte('[')
		}
		enc = &jsonRows{buf: buf}
	case formatNDJSON:
		enc = &jsonRows{buf: buf, lines: true}
	case formatCSV:
		cw = csv.NewWriter(buf)
		enc = &csvRows{w: cw}
	case formatHTML:
		tab = &table{}
		enc = &htmlRows{t: tab}
	}
	// The rows land in buf, so the connection is free again before a slow
	// client reads the answer.
	truncated, err := func() (bool, error) {
		defer func() { st.db.readers <- c }()
		return rt.run(ctx, c, vals, enc, nil)
	}()
	if err != nil {
		writeError(w, r, html, dbError(ctx, err))
		return
	}

	h := w.Header()
	h.Set("Vary", "Accept")
	h.Set("X-Content-Type-Options", "nosniff")
	if truncated {
		h.Set("X-Truncated", "true")
	}
	switch format {
	case formatJSON:
		if shape != "array" {
			buf.WriteString(`],"truncated":`)
			buf.WriteString(strconv.FormatBool(truncated))
			buf.WriteByte('}')
		} else {
			buf.WriteByte(']')
		}
		buf.WriteByte('\n')
	case formatCSV:
		cw.Flush()
	case formatHTML:
		pg := &page{Columns: tab.Columns, Rows: tab.Rows, Truncated: truncated, Query: query, Path: r.URL.Path, Params: map[string]any{}}
		for i, p := range rt.params {
			pg.Params[p.name] = vals[i].any()
		}
		tmpl := rt.tmpl
		if tmpl == nil {
			tmpl = defaultPage
		}
		if err := tmpl.Execute(buf, pg); err != nil {
			writeError(w, r, true, &apiError{status: http.StatusInternalServerError, code: "internal", msg: "the page's template failed",
				err: fmt.Errorf("template: %w", err)})
			return
		}
	}
	h.Set("Content-Type", contentTypes[format])
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(buf.Bytes())
}

// busy is the answer when no connection came free within the time limit.
func busy(err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: "busy", msg: "the database is busy; try again", err: err}
}

// result is what a write did.
type result struct {
	rowsAffected int64
	lastInsertID int64    // 0: none
	columns      []string // of the RETURNING rows
	firstRow     []string // the first RETURNING row, as text, for redirect
	truncated    bool
}

// run binds vals, steps the statement and hands each row, up to max_rows,
// to enc; res, for a write, collects the first row as text. The statement
// is interrupted when ctx ends.
func (rt *route) run(ctx context.Context, c *conn, vals []value, enc encoder, res *result) (truncated bool, err error) {
	stmt, err := c.stmt(rt.sql)
	if err != nil {
		return false, err
	}
	defer stmt.ClearBindings()
	defer stmt.Reset()
	for i, pi := range rt.binds {
		if err := vals[pi].bind(stmt, i+1); err != nil {
			return false, err
		}
	}
	old := c.db.SetInterrupt(ctx)
	defer c.db.SetInterrupt(old)
	enc.begin(stmt)
	n := 0
	for stmt.Step() {
		if res != nil && n == 0 {
			for i := range stmt.ColumnCount() {
				res.columns = append(res.columns, stmt.ColumnName(i))
				res.firstRow = append(res.firstRow, cellText(stmt, i))
			}
		}
		if n == rt.maxRows {
			truncated = true
			if res == nil {
				break // a read stops here; a write steps to the end
			}
			continue
		}
		enc.row(stmt)
		n++
	}
	if err := stmt.Err(); err != nil {
		return false, err
	}
	return truncated, stmt.Reset()
}

// exec runs a write in an IMMEDIATE transaction: the write lock is taken
// at BEGIN, so the statement never fails halfway for want of it. The
// answer is only given after COMMIT has returned, so a write acknowledged
// with a 2xx is in the database (and, with synchronous = "full", on disk).
func (rt *route) exec(ctx context.Context, c *conn, vals []value, enc encoder) (res result, err error) {
	old := c.db.SetInterrupt(ctx)
	defer c.db.SetInterrupt(old)
	c.db.SetLastInsertRowID(0)
	before := c.db.TotalChanges()
	tx, err := c.db.BeginImmediate()
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	res.truncated, err = rt.run(ctx, c, vals, enc, &res)
	if err != nil {
		return res, err
	}
	// changes() keeps the count of the connection's last INSERT, UPDATE or
	// DELETE; if this statement was none of them, nothing changed.
	if c.db.TotalChanges() != before {
		res.rowsAffected = c.db.Changes()
	}
	res.lastInsertID = c.db.LastInsertRowID()
	return res, tx.Commit()
}

func (p *sqlitePlugin) serveWrite(w http.ResponseWriter, r *http.Request, st *state, rt *route, query url.Values, wantJSON, html bool) {
	// Browsers say where a request comes from (Sec-Fetch-Site, Origin); a
	// form posted from another site must not write (CSRF).
	if err := st.cop.Check(r); err != nil {
		writeError(w, r, html, &apiError{status: http.StatusForbidden, code: "cross_origin",
			msg: "cross-origin request refused: a form on another site cannot write here", err: err})
		return
	}
	src := &sources{path: r.PathValue, query: query}
	form, aerr := readBody(r, src)
	if aerr != nil {
		writeError(w, r, html, aerr)
		return
	}
	vals, aerr := rt.values(src)
	if aerr != nil {
		writeError(w, r, html, aerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeLimit)
	defer cancel()
	c, err := acquire(ctx, st.db.writer)
	if err != nil {
		writeError(w, r, html, busy(err))
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	buf.WriteString(`{"ok":true,"rows":[`)
	res, err := func() (result, error) {
		defer func() { st.db.writer <- c }()
		return rt.exec(ctx, c, vals, &jsonRows{buf: buf})
	}()
	if err != nil {
		writeError(w, r, html, dbError(ctx, err))
		return
	}

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if form && !wantJSON {
		// Post/redirect/get: reloading the page that follows does not post
		// the form again.
		vals := map[string]string{
			"rows_affected":  strconv.FormatInt(res.rowsAffected, 10),
			"last_insert_id": strconv.FormatInt(res.lastInsertID, 10),
		}
		for i, col := range res.columns {
			vals[col] = res.firstRow[i]
		}
		target := r.URL.Path
		if rt.redirect != "" {
			target = expandRedirect(rt.redirect, vals)
		}
		h.Set("Location", target)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	buf.WriteString(`],"truncated":`)
	buf.WriteString(strconv.FormatBool(res.truncated))
	buf.WriteString(`,"rows_affected":`)
	buf.WriteString(strconv.FormatInt(res.rowsAffected, 10))
	buf.WriteString(`,"last_insert_id":`)
	if res.lastInsertID != 0 {
		buf.WriteString(strconv.FormatInt(res.lastInsertID, 10))
	} else {
		buf.WriteString("null")
	}
	buf.WriteString("}\n")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// readBody reads a write's body into src: a JSON object, or form fields
// (urlencoded or multipart). It reports whether the body was a form, which
// a browser sent and expects a redirect for.
func readBody(r *http.Request, src *sources) (form bool, _ *apiError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return false, nil
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1))
		if n == 0 {
			return false, nil
		}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, unsupported(ct)
	}
	body := http.MaxBytesReader(nil, r.Body, maxBodyBytes)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		dec := json.NewDecoder(body)
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return false, badBody("the body is not valid JSON", err)
		}
		if dec.More() {
			return false, badBody("the body holds more than one JSON value", nil)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return false, badBody("the body must be a JSON object of parameter values", nil)
		}
		src.json = obj
		return false, nil
	case mt == "application/x-www-form-urlencoded":
		b, err := io.ReadAll(body)
		if err != nil {
			return true, badBody("cannot read the body", err)
		}
		if src.form, err = url.ParseQuery(string(b)); err != nil {
			return true, badBody("the form is not valid", err)
		}
		return true, nil
	case mt == "multipart/form-data":
		mr := multipart.NewReader(body, params["boundary"])
		src.form = url.Values{}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			if err != nil {
				return true, badBody("the form is not valid", err)
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return true, badBody("the form is not valid", err)
			}
			if name := part.FormName(); name != "" {
				src.form.Add(name, string(b))
			}
		}
	}
	return false, unsupported(ct)
}

func unsupported(ct string) *apiError {
	return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		msg: fmt.Sprintf("cannot read a body of type %q: send application/json, application/x-www-form-urlencoded or multipart/form-data", ct)}
}

func badBody(msg string, err error) *apiError {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_big", msg: "the body is too large", err: err}
	}
	return &apiError{status: http.StatusBadRequest, code: "bad_body", msg: msg, err: err}
}

func init() {
	// SQLite's own log (corruption, recovered WAL, ...) goes to the core's.
	// Failed statements are answered and logged where they fail, so only
	// what no request sees is logged here.
	sqlite3.ConfigLog(func(code sqlite3.ExtendedErrorCode, msg string) {
		switch code.Code() {
		case sqlite3.NOTICE:
			slog.Info("sqlite: "+msg, "code", int(code))
		case sqlite3.WARNING, sqlite3.CORRUPT, sqlite3.IOERR, sqlite3.CANTOPEN, sqlite3.FULL, sqlite3.NOTADB:
			slog.Warn("sqlite: "+msg, "code", int(code))
		}
	})
}
