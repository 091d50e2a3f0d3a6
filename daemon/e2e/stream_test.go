package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const servicesConfig = `
plugin_dir = "{{BIN}}"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

listener "hello" {
  protocol = "tcp"
  address  = "127.0.0.1:0"
  plugin   = "static"
  config { reply = "Yes" }
}

listener "daytime" {
  protocol = "tcp"
  address  = "127.0.0.1:0"
  plugin   = "timeserver"
  config { service = "daytime" }
}

listener "time" {
  protocol = "tcp"
  address  = "127.0.0.1:0"
  plugin   = "timeserver"
  config { service = "time" }
}

listener "time-udp" {
  protocol = "udp"
  address  = "127.0.0.1:0"
  plugin   = "timeserver"
  config { service = "time" }
}

listener "sntp" {
  protocol = "udp"
  address  = "127.0.0.1:0"
  plugin   = "timeserver"
  config { service = "sntp" }
}

listener "echo" {
  protocol                   = "tcp"
  address                    = "127.0.0.1:0"
  plugin                     = "testkit"
  max_connections            = 2
  max_connections_per_source = 2
  config { mode = "echo" }
}

listener "persource" {
  protocol                   = "tcp"
  address                    = "127.0.0.1:0"
  plugin                     = "testkit"
  max_connections_per_source = 1
  config { mode = "echo" }
}

listener "idle" {
  protocol     = "tcp"
  address      = "127.0.0.1:0"
  plugin       = "testkit"
  idle_timeout = "300ms"
  config { mode = "echo" }
}

listener "guarded" {
  protocol = "tcp"
  address  = "127.0.0.1:0"
  plugin   = "testkit"
  allow    = ["127.0.0.2/32"]
  config { mode = "echo" }
}

plugin "static" {
  config { root = "{{WWW}}" }
}
plugin "timeserver" {}
plugin "testkit" {}

route "GET /time" { plugin = "timeserver" }
`

// readAll reads until the server closes the connection (bounded).
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestTutorialFirstServerAnswersYes(t *testing.T) {
	d := startDaemon(t, servicesConfig, nil)
	c := dial(t, d.Addr("hello"))
	io.WriteString(c, "can you hear me?\n")
	if got := readAll(t, c); got != "Yes\n" {
		t.Fatalf("got %q, want \"Yes\\n\" and close", got)
	}
}

func TestDaytimeAndTimeServices(t *testing.T) {
	d := startDaemon(t, servicesConfig, nil)

	t.Run("daytime-rfc867", func(t *testing.T) {
		line := readAll(t, dial(t, d.Addr("daytime")))
		if !strings.HasSuffix(line, "\r\n") || strings.Count(line, "\n") != 1 {
			t.Fatalf("daytime answer %q: want one line ending in CRLF, then close", line)
		}
		if !strings.Contains(line, fmt.Sprint(time.Now().UTC().Year())) {
			t.Fatalf("daytime answer %q lacks the year", line)
		}
	})

	// rdate prints the server's time as ctime; it must agree with ours.
	rdate := func(t *testing.T, args ...string) {
		t.Helper()
		if _, err := exec.LookPath("rdate"); err != nil {
			if ci() {
				t.Fatal("rdate is not installed; .ci/run installs it")
			}
			t.Skip("rdate not installed")
		}
		cmd := exec.Command("rdate", args...)
		cmd.Env = append(cmd.Environ(), "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rdate %v: %v\n%s", args, err, out)
		}
		got, err := time.Parse("Mon Jan _2 15:04:05 MST 2006", lastLine(string(out)))
		if err != nil {
			t.Fatalf("rdate %v printed %q: %v", args, out, err)
		}
		if diff := time.Since(got); diff < -time.Minute || diff > time.Minute {
			t.Fatalf("rdate %v: server time %v is %v away from now", args, got, diff)
		}
	}
	t.Run("rfc868-tcp-rdate", func(t *testing.T) { rdate(t, "-p", "-o", port(d.Addr("time")), "127.0.0.1") })
	t.Run("rfc868-udp-rdate", func(t *testing.T) { rdate(t, "-p", "-u", "-o", port(d.Addr("time-udp")), "127.0.0.1") })
	t.Run("sntp-rdate", func(t *testing.T) { rdate(t, "-p", "-n", "-o", port(d.Addr("sntp")), "127.0.0.1") })
	t.Run("rfc868-bytes", func(t *testing.T) {
		if b := readAll(t, dial(t, d.Addr("time"))); len(b) != 4 {
			t.Fatalf("got %d bytes, want 4", len(b))
		}
	})
}

// lastLine returns rdate's time line without its "rdate: [host]" prefix.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	line := lines[len(lines)-1]
	if i := strings.Index(line, "]"); i >= 0 && strings.HasPrefix(line, "rdate: [") {
		line = line[i+1:]
	}
	return strings.TrimSpace(line)
}

func TestTimeOverHTTPInZones(t *testing.T) {
	d := startDaemon(t, servicesConfig, nil)
	type answer struct {
		Timezone     string `json:"timezone"`
		UTCOffset    string `json:"utc_offset"`
		Abbreviation string `json:"abbreviation"`
		Datetime     string `json:"datetime"`
		DST          bool   `json:"dst"`
	}
	ask := func(tz string) answer {
		t.Helper()
		resp, body := get(t, d.URL("/time?tz="+tz), "Accept", "application/json")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("tz %s: %d Cache-Control %q: %s", tz, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
		var a answer
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("tz %s: %v: %s", tz, err, body)
		}
		return a
	}
	if a := ask("Asia/Shanghai"); a.UTCOffset != "+08:00" || !strings.HasSuffix(a.Datetime, "+08:00") {
		t.Fatalf("Asia/Shanghai: %+v", a)
	}
	// One of these two is in summer time whatever the date; each answer
	// must match the zone's rules for now.
	for _, tz := range []string{"Europe/Berlin", "Australia/Sydney"} {
		a := ask(tz)
		loc, err := time.LoadLocation(tz)
		if err != nil {
			t.Skipf("no zone data on this machine for the check: %v", err)
		}
		now := time.Now().In(loc)
		if want := now.Format("-07:00"); a.UTCOffset != want || a.DST != now.IsDST() {
			t.Errorf("%s: offset %s dst %v, want %s dst %v", tz, a.UTCOffset, a.DST, want, now.IsDST())
		}
	}
	resp, body := get(t, d.URL("/time?tz=Mars/Base"))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Mars/Base") {
		t.Fatalf("unknown zone: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, d.URL("/time"))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("plain /time: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// echoLine sends a line and expects it back.
func echoLine(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo %q: got %q, %v", line, got, err)
	}
}

// refused reports whether the server closed c without answering a byte.
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "hello\n")
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return len(b) == 0
}

// dialFrom connects from a chosen loopback source address (all of
// 127.0.0.0/8 is local on Linux), to test per-source rules.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStreamListenerLimits(t *testing.T) {
	d := startDaemon(t, servicesConfig, nil)

	t.Run("max-connections", func(t *testing.T) {
		a, b := dial(t, d.Addr("echo")), dial(t, d.Addr("echo"))
		ra, rb := bufio.NewReader(a), bufio.NewReader(b)
		echoLine(t, a, ra, "one")
		echoLine(t, b, rb, "two")
		if !refused(t, dial(t, d.Addr("echo"))) {
			t.Fatal("the third connection over max_connections = 2 was served")
		}
		// The first two are still served.
		echoLine(t, a, ra, "one again")
		echoLine(t, b, rb, "two again")
		waitFor(t, "the refusal in the log", func() bool {
			for _, l := range d.Lines("connection refused") {
				if l["reason"] == "max_connections reached" {
					return true
				}
			}
			return false
		})
	})

	t.Run("max-connections-per-source", func(t *testing.T) {
		a := dialFrom(t, "127.0.0.1", d.Addr("persource"))
		echoLine(t, a, bufio.NewReader(a), "first")
		if !refused(t, dialFrom(t, "127.0.0.1", d.Addr("persource"))) {
			t.Fatal("a second connection from the same source was served")
		}
		b := dialFrom(t, "127.0.0.2", d.Addr("persource"))
		echoLine(t, b, bufio.NewReader(b), "other source")
	})

	t.Run("idle-timeout", func(t *testing.T) {
		c := dial(t, d.Addr("idle"))
		r := bufio.NewReader(c)
		echoLine(t, c, r, "awake")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection: want EOF from the idle timeout, got %v", err)
		}
	})

	t.Run("allow-list", func(t *testing.T) {
		if !refused(t, dialFrom(t, "127.0.0.1", d.Addr("guarded"))) {
			t.Fatal("a source outside allow got an answer")
		}
		c := dialFrom(t, "127.0.0.2", d.Addr("guarded"))
		echoLine(t, c, bufio.NewReader(c), "allowed")
	})

	t.Run("plugin-crash-closes-only-that-connection", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.3", d.Addr("idle"))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "crash\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("crashed connection answered %q", b)
		}
		// The next connection is served by a new plugin process.
		waitFor(t, "an echo after the crash", func() bool {
			n := dialFrom(t, "127.0.0.3", d.Addr("idle"))
			n.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(n, "again\n")
			line, _ := bufio.NewReader(n).ReadString('\n')
			return line == "again\n"
		})
		// Other plugins were never affected.
		if resp, _ := get(t, d.URL("/time")); resp.StatusCode != 200 {
			t.Fatalf("/time after a testkit crash: %d", resp.StatusCode)
		}
	})
}
