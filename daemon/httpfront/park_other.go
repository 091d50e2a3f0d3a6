//go:build !linux

package httpfront

import (
	"context"
	"log/slog"
	"net"
	"net/http"
)

// parkIdle parks idle connections on Linux only (park_linux.go).
func parkIdle(ln net.Listener, _ *slog.Logger, _ *lane) net.Listener { return ln }

// lane is the fast lane, Linux-only as parking is (lane_linux.go).
type lane struct{}

func newLane(*http.Server, http.Handler, Limits, *slog.Logger) *lane { return nil }
func (*lane) beginShutdown()                                         {}
func (*lane) wait(context.Context) error                             { return nil }

func parkConnState(net.Conn, http.ConnState) {}

// ParkedConnections is always 0 where connections are not parked.
func ParkedConnections() int64 { return 0 }

// writeWhole writes body as the whole rest of the response; holding writes
// to send head and body together is Linux-only (coalesce_linux.go).
func writeWhole(w http.ResponseWriter, _ *http.Request, body []byte) (int, error) {
	return w.Write(body)
}

// withConn is the server's ConnContext; only Linux needs the connection.
func withConn(ctx context.Context, _ net.Conn) context.Context { return ctx }
