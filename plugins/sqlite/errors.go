package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ncruces/go-sqlite3"

	"github.com/socketd/socketd/sdk"
)

// apiError is a failed request, with its HTTP meaning decided where the
// failure is understood (the way Caddy's caddyhttp.Error does). msg is
// shown to the client and never holds SQL, file names or driver text; err
// is the internal cause, logged only.
type apiError struct {
	status int
	code   string // stable, machine-readable: "bad_parameter", "conflict", ...
	msg    string
	param  string // the parameter at fault, if any
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// codeCancelled marks the answer to a client that went away.
const codeCancelled = "cancelled"

// badParam is a 400 naming the parameter.
func badParam(name, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "bad_parameter", param: name,
		msg: fmt.Sprintf("parameter %q ", name) + fmt.Sprintf(format, args...)}
}

// dbError maps an error from running a statement to its answer, after
// PostgREST: a conflict with existing data is 409, a value the table's
// CHECK or NOT NULL constraints refuse is 400, a locked database is 503,
// a statement past its time limit is 504. ctx is the statement's context,
// which tells an interruption by the time limit from other failures.
func dbError(ctx context.Context, err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	// *sqlite3.Error, ErrorCode and ExtendedErrorCode all convert to both.
	var code sqlite3.ErrorCode
	var ext sqlite3.ExtendedErrorCode
	errors.As(err, &code)
	errors.As(err, &ext)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && (code == sqlite3.INTERRUPT || errors.Is(err, context.DeadlineExceeded)):
		return &apiError{status: http.StatusGatewayTimeout, code: "timeout", msg: "the query took longer than the route's time_limit", err: err}
	case code == sqlite3.BUSY || code == sqlite3.LOCKED || errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, code: "busy", msg: "the database is busy; try again", err: err}
	case ctx.Err() != nil:
		// The client went away: nobody reads this answer, and the core
		// logs the request as cancelled.
		return &apiError{status: http.StatusServiceUnavailable, code: codeCancelled, msg: "request cancelled", err: err}
	case ext == sqlite3.CONSTRAINT_CHECK:
		return &apiError{status: http.StatusBadRequest, code: "check_violation", msg: "a value breaks one of the table's CHECK constraints", err: err}
	case ext == sqlite3.CONSTRAINT_NOTNULL:
		return &apiError{status: http.StatusBadRequest, code: "not_null_violation", msg: "a required value is missing (NOT NULL)", err: err}
	case ext == sqlite3.CONSTRAINT_UNIQUE || ext == sqlite3.CONSTRAINT_PRIMARYKEY || ext == sqlite3.CONSTRAINT_ROWID:
		return &apiError{status: http.StatusConflict, code: "unique_violation", msg: "a row with the same key already exists", err: err}
	case ext == sqlite3.CONSTRAINT_FOREIGNKEY:
		return &apiError{status: http.StatusConflict, code: "foreign_key_violation", msg: "the change would break a reference between rows (FOREIGN KEY)", err: err}
	case code == sqlite3.CONSTRAINT:
		return &apiError{status: http.StatusConflict, code: "constraint_violation", msg: "the change conflicts with a constraint of the database", err: err}
	case code == sqlite3.TOOBIG:
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_big", msg: "a value is too large for the database", err: err}
	case code == sqlite3.FULL:
		return &apiError{status: http.StatusInsufficientStorage, code: "full", msg: "the database is full", err: err}
	case code == sqlite3.READONLY:
		return &apiError{status: http.StatusServiceUnavailable, code: "read_only", msg: "the database is read-only", err: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error", err: err}
}

// writeError answers e as JSON, or as a small HTML page when the client is
// a browser (html true), in one shape for every route:
//
//	{"ok":false,"status":400,"code":"bad_parameter","error":"...","param":"limit"}
func writeError(w http.ResponseWriter, r *http.Request, html bool, e *apiError) {
	level := slog.LevelDebug
	if e.status >= 500 {
		level = slog.LevelError
		if e.status == http.StatusServiceUnavailable || e.status == http.StatusGatewayTimeout {
			level = slog.LevelWarn
		}
	}
	if e.code != codeCancelled {
		slog.Log(r.Context(), level, "sqlite: request failed", "route", sdk.RouteID(r), "status", e.status, "code", e.code, "error", e.Error())
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if e.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	status := e.status
	if html {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		errorPage.Execute(w, struct {
			Status      int
			StatusText  string
			Message     string
			Param, Back string
		}{status, http.StatusText(status), e.msg, e.param, r.URL.Path})
		return
	}
	b := make([]byte, 0, 128)
	b = append(b, `{"ok":false,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"error":`...)
	b = appendJSONString(b, e.msg)
	if e.param != "" {
		b = append(b, `,"param":`...)
		b = appendJSONString(b, e.param)
	}
	b = append(b, "}\n"...)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Status}} {{.StatusText}}</title></head>
<body>
<h1>{{.Status}} {{.StatusText}}</h1>
<p>{{.Message}}</p>
<p><a href="{{.Back}}">Back</a></p>
</body>
</html>
`))
