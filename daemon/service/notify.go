// Package service is what running under a service manager takes: systemd's
// readiness protocol (sd_notify: READY, RELOADING, STOPPING, STATUS,
// WATCHDOG) and a pid file for `socketd reload`.
package service

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends state changes to systemd. Without NOTIFY_SOCKET (not
// started by systemd with Type=notify) every method does nothing. The
// zero value is such a silent Notifier.
type Notifier struct {
	addr     string
	watchdog time.Duration

	mu   sync.Mutex
	conn *net.UnixConn
}

// NewNotifier reads NOTIFY_SOCKET and WATCHDOG_USEC and removes them (and
// WATCHDOG_PID) from the environment, so plugin processes, which inherit
// it, cannot speak for socketd.
func NewNotifier() (*Notifier, error) {
	n := &Notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	os.Unsetenv("NOTIFY_SOCKET")
	wd, err := daemon.SdWatchdogEnabled(true)
	if err != nil {
		return n, fmt.Errorf("watchdog: %w", err)
	}
	n.watchdog = wd
	return n, nil
}

// Enabled reports whether there is a service manager to tell.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// WatchdogInterval returns how often to send WATCHDOG=1 (half of
// WatchdogSec, as sd_watchdog_enabled(3) advises), 0 when not asked to.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}

// Send sends one notification: lines of KEY=VALUE.
func (n *Notifier) Send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
		if err != nil {
			return fmt.Errorf("sd_notify: %w", err)
		}
		n.conn = c
	}
	if _, err := n.conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		n.conn.Close()
		n.conn = nil
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready says the daemon serves (after start, and after each reload).
func (n *Notifier) Ready(status string) error {
	return n.Send(daemon.SdNotifyReady, "STATUS="+oneLine(status))
}

// Reloading says a reload began. MONOTONIC_USEC (CLOCK_MONOTONIC, in µs)
// lets systemd match it with the reload it asked for (Type=notify-reload).
func (n *Notifier) Reloading(status string) error {
	return n.Send(daemon.SdNotifyReloading, fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec()), "STATUS="+oneLine(status))
}

// Stopping says the daemon is draining and will exit.
func (n *Notifier) Stopping(status string) error {
	return n.Send(daemon.SdNotifyStopping, "STATUS="+oneLine(status))
}

// Status updates the one-line status `systemctl status` shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + oneLine(status)) }

// Watchdog says the daemon is alive.
func (n *Notifier) Watchdog() error { return n.Send(daemon.SdNotifyWatchdog) }

// Close releases the connection to the notify socket.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1e3
}

// oneLine keeps a status on one line: a newline would start a new
// notification variable.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
