//go:build !linux

package httpfront

import (
	"log/slog"
	"net"
	"net/http"
)

// parkIdle parks idle connections on Linux only (park_linux.go).
func parkIdle(ln net.Listener, _ *slog.Logger) net.Listener { return ln }

func parkConnState(net.Conn, http.ConnState) {}

// ParkedConnections is always 0 where connections are not parked.
func ParkedConnections() int64 { return 0 }
