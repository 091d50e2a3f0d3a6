// Package streamfront serves raw TCP and UDP listeners, inetd style: the
// core accepts, enforces the listener's limits, and hands each connection
// (or datagram) to a plugin as a byte stream.
package streamfront

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Limits are a listener's protections, as xinetd and systemd.socket have
// them. Over a limit a connection is closed at once and logged.
type Limits struct {
	// MaxConnections bounds concurrent connections (tcp); 0 = unlimited.
	MaxConnections int
	// MaxPerSource bounds concurrent connections from one IP; 0 = unlimited.
	MaxPerSource int
	// IdleTimeout closes a connection with no bytes either way for this
	// long; 0 = none.
	IdleTimeout time.Duration
	// Allow, when not empty, admits only these sources; Deny refuses these
	// (Deny wins).
	Allow, Deny []netip.Prefix
	// MaxReplyBytes bounds a datagram answer (udp); larger answers are
	// dropped, not truncated.
	MaxReplyBytes int
	// CallTimeout bounds one datagram call.
	CallTimeout time.Duration
}

// admitted applies allow and deny to a source address.
func (l *Limits) admitted(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range l.Deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(l.Allow) == 0 {
		return true
	}
	for _, p := range l.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func sourceIP(addr net.Addr) string {
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return addr.String()
}

// logRefused logs a refused connection once per reason and source at most
// every few seconds would be nicer; for now every refusal is one line, as
// xinetd does, at Warn so it stands out.
func logRefused(log *slog.Logger, remote net.Addr, reason string) {
	log.LogAttrs(context.Background(), slog.LevelWarn, "connection refused",
		slog.String("remote", remote.String()), slog.String("reason", reason))
}
