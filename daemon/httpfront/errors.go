package httpfront

import (
	"errors"
	"net/http"
	"strconv"
)

// Error is a failure that already knows its HTTP meaning, decided where
// the failure is understood; fail turns it into the one response shape.
type Error struct {
	Status int
	// Msg is what the client reads; Err (logged) never reaches the client.
	Msg string
	Err error
	// RetryAfter, in seconds, is sent when positive.
	RetryAfter int
	// Close asks net/http to close the connection (the request body may be
	// unread).
	Close bool
	// ClientGone: nobody is listening; log it, answer nothing.
	ClientGone bool
	// Retry: the plugin call may be made again once (idempotent requests).
	Retry bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// fail writes err as the response (when nobody has written yet) and notes
// it for the access log.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(w)
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusBadGateway, Msg: "bad gateway", Err: err}
	}
	if e.ClientGone {
		info.outcome = "client went away"
		return
	}
	if e.Err != nil {
		info.outcome = e.Err.Error()
	}
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Close {
		h.Set("Connection", "close")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	w.Write([]byte(strconv.Itoa(e.Status) + " " + e.Msg + "\n"))
}
