package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
)

// listenersConfig configures one listener per service, as the README does.
func listenersConfig() *sdk.Config {
	l := func(name, proto string, cfg map[string]any) sdk.ListenerConfig {
		return sdk.ListenerConfig{Name: name, Protocol: proto, Config: sdk.MustJSON(cfg)}
	}
	return &sdk.Config{
		Plugin: sdk.MustJSON(map[string]any{"timezone": "Asia/Shanghai"}),
		Listeners: []sdk.ListenerConfig{
			l("daytime", "tcp", map[string]any{"service": "daytime"}),
			l("daytime-berlin", "tcp", map[string]any{"service": "daytime", "timezone": "Europe/Berlin"}),
			l("time", "tcp", map[string]any{"service": "time"}),
			l("daytime-udp", "udp", map[string]any{"service": "daytime"}),
			l("time-udp", "udp", map[string]any{"service": "time"}),
			l("sntp", "udp", map[string]any{"service": "sntp"}),
			l("sntp10", "udp", map[string]any{"service": "sntp", "stratum": 10}),
		},
	}
}

func TestDaytime(t *testing.T) {
	tests := []struct {
		instant, zone, want string
	}{
		{summer, "UTC", "Wednesday, July 01, 2026 12:00:00-UTC\r\n"},
		{summer, "Europe/Berlin", "Wednesday, July 01, 2026 14:00:00-CEST\r\n"},
		{winter, "Europe/Berlin", "Thursday, January 15, 2026 13:00:00-CET\r\n"},
		{winter, "America/New_York", "Thursday, January 15, 2026 07:00:00-EST\r\n"},
		{"2036-02-07T06:28:16Z", "UTC", "Thursday, February 07, 2036 06:28:16-UTC\r\n"},
	}
	for _, tt := range tests {
		loc, err := loadZone(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(daytime(fixedClock(t, tt.instant)(), loc)); got != tt.want {
			t.Errorf("daytime(%s, %s) = %q, want %q", tt.instant, tt.zone, got, tt.want)
		}
	}
}

func TestRFC868(t *testing.T) {
	tests := []struct {
		instant string
		want    uint32
	}{
		{"1900-01-01T00:00:00Z", 0},
		{"1970-01-01T00:00:00Z", 2208988800},
		{"1970-01-01T00:00:00.999999999Z", 2208988800}, // whole seconds, truncated
		{"1969-12-31T23:59:59.5Z", 2208988799},
		{summer, 3991896000},
		{"2036-02-07T06:28:15Z", 0xFFFFFFFF}, // last second of era 0
		{"2036-02-07T06:28:16Z", 0},          // era 1 begins
		{"2036-02-07T06:28:17Z", 1},
		{"2040-01-01T00:00:00Z", 2*2208988800 - 1<<32},
		{"2106-02-07T06:28:16Z", 2208988800}, // era 1 at the Unix epoch's count
	}
	for _, tt := range tests {
		got := rfc868(fixedClock(t, tt.instant)())
		want := binary.BigEndian.AppendUint32(nil, tt.want)
		if !bytes.Equal(got, want) {
			t.Errorf("rfc868(%s) = % x, want % x (%d)", tt.instant, got, want, tt.want)
		}
	}
}

func TestNTPTimestamp(t *testing.T) {
	tests := []struct {
		instant string
		want    uint64
	}{
		{"1900-01-01T00:00:00Z", 0},
		{"1970-01-01T00:00:00Z", 2208988800 << 32},
		{"1970-01-01T00:00:00.5Z", 2208988800<<32 | 1<<31},
		{"1970-01-01T00:00:00.25Z", 2208988800<<32 | 1<<30},
		{"2036-02-07T06:28:15.75Z", 0xFFFFFFFF<<32 | 3<<30},
		{"2036-02-07T06:28:16Z", 0},
		{"2036-02-07T06:28:16.5Z", 1 << 31},
		{"2036-02-07T06:28:17Z", 1 << 32},
	}
	for _, tt := range tests {
		at := fixedClock(t, tt.instant)()
		got := ntpTimestamp(at)
		if got != tt.want {
			t.Errorf("ntpTimestamp(%s) = %#016x, want %#016x", tt.instant, got, tt.want)
		}
		if back := fromNTP(got, at.Add(time.Hour)); !back.Equal(at) {
			t.Errorf("fromNTP(ntpTimestamp(%s)) = %s", tt.instant, back.Format(time.RFC3339Nano))
		}
	}
	// Every nanosecond value survives the 2^-32 s fraction and back.
	base := fixedClock(t, summer)()
	for ns := range 2000 {
		at := base.Add(time.Duration(ns*499_999) + time.Duration(ns))
		if back := fromNTP(ntpTimestamp(at), at); !back.Equal(at) {
			t.Fatalf("round trip of %s gave %s", at.Format(time.RFC3339Nano), back.Format(time.RFC3339Nano))
		}
	}
}

// fromNTP decodes an NTP timestamp into the instant of its era nearest to
// near, as a client does with its own clock.
func fromNTP(ts uint64, near time.Time) time.Time {
	secs := int64(ts >> 32)
	ns := (int64(ts&0xFFFFFFFF)*int64(time.Second) + 1<<31) >> 32 // rounded
	era0 := time.Unix(secs-ntpEpochOffset, ns).UTC()
	eraLen := time.Duration(1<<32) * time.Second
	eras := near.Sub(era0) / eraLen
	if rem := near.Sub(era0) - eras*eraLen; rem > eraLen/2 {
		eras++
	}
	return era0.Add(eras * eraLen)
}

// sntpPacket is a decoded SNTP packet, for tests.
type sntpPacket struct {
	leap, version, mode uint8
	stratum, poll       uint8
	precision           int8
	rootDelay, rootDisp uint32
	refID               string
	ref, orig, recv, tx uint64
}

func parseSNTP(t *testing.T, b []byte) sntpPacket {
	t.Helper()
	if len(b) != 48 {
		t.Fatalf("reply is %d bytes, want 48", len(b))
	}
	be := binary.BigEndian
	return sntpPacket{
		leap: b[0] >> 6, version: b[0] >> 3 & 7, mode: b[0] & 7,
		stratum: b[1], poll: b[2], precision: int8(b[3]),
		rootDelay: be.Uint32(b[4:]), rootDisp: be.Uint32(b[8:]), refID: string(b[12:16]),
		ref: be.Uint64(b[16:]), orig: be.Uint64(b[24:]), recv: be.Uint64(b[32:]), tx: be.Uint64(b[40:]),
	}
}

// clientRequest is an SNTP client request whose transmit timestamp is an
// arbitrary cookie, as rdate and chrony send.
func clientRequest(version, poll uint8) []byte {
	req := make([]byte, 48)
	req[0] = version<<3 | 3
	req[2] = poll
	copy(req[40:], []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67})
	return req
}

// steppingClock returns times starting at start, each call a millisecond
// later than the one before.
func steppingClock(start time.Time) func() time.Time {
	n := 0
	return func() time.Time {
		n++
		return start.Add(time.Duration(n-1) * time.Millisecond)
	}
}

func TestSNTPReply(t *testing.T) {
	tests := []struct {
		name          string
		instant       string
		version, poll uint8
		stratum       uint8
	}{
		{"v4 2026", summer, 4, 6, 1},
		{"v3 rdate", winter, 3, 0, 1},
		{"v1", winter, 1, 4, 1},
		{"stratum 10", summer, 4, 10, 10},
		{"era 1", "2036-02-07T06:28:16.25Z", 4, 6, 1},
		{"era 0 end", "2036-02-07T06:28:15.9999Z", 4, 6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := fixedClock(t, tt.instant)()
			req := clientRequest(tt.version, tt.poll)
			got := parseSNTP(t, sntpReply(req, steppingClock(start), tt.stratum))
			want := sntpPacket{
				leap: 0, version: tt.version, mode: 4, stratum: tt.stratum, poll: tt.poll,
				precision: -20, rootDelay: 0, rootDisp: 655, refID: "LOCL", // 655/65536 s ≈ 10 ms
				ref:  ntpTimestamp(start),
				orig: binary.BigEndian.Uint64(req[40:]),
				recv: ntpTimestamp(start),
				tx:   ntpTimestamp(start.Add(time.Millisecond)),
			}
			if got != want {
				t.Errorf("reply\n got  %+v\n want %+v", got, want)
			}
			for name, ts := range map[string]uint64{"receive": got.recv, "transmit": got.tx} {
				if back := fromNTP(ts, start); back.Sub(start) < 0 || back.Sub(start) > time.Millisecond {
					t.Errorf("%s decodes to %s, want within 1ms after %s", name, back.Format(time.RFC3339Nano), tt.instant)
				}
			}
		})
	}
}

func TestSNTPReplyClockStepsBack(t *testing.T) {
	start := fixedClock(t, summer)()
	calls := 0
	back := func() time.Time {
		calls++
		if calls > 1 {
			return start.Add(-time.Second)
		}
		return start
	}
	p := parseSNTP(t, sntpReply(clientRequest(4, 6), back, 1))
	if p.tx != p.recv {
		t.Errorf("transmit %#x before receive %#x after the clock stepped back", p.tx, p.recv)
	}
}

func TestSNTPIgnores(t *testing.T) {
	mode := func(m uint8) []byte { r := clientRequest(4, 6); r[0] = 4<<3 | m; return r }
	version := func(v uint8) []byte { return clientRequest(v, 6) }
	tests := map[string][]byte{
		"empty":            nil,
		"47 bytes":         clientRequest(4, 6)[:47],
		"mode 0 reserved":  mode(0),
		"mode 1 symmetric": mode(1),
		"mode 2 passive":   mode(2),
		"mode 4 server":    mode(4),
		"mode 5 broadcast": mode(5),
		"mode 6 control":   mode(6),
		"mode 7 private":   mode(7),
		"version 0":        version(0),
		"version 5":        version(5),
		"version 7":        version(7),
		"http request":     []byte(strings.Repeat("GET / HTTP/1.1\r\n", 4)),
	}
	for name, req := range tests {
		if got := sntpReply(req, time.Now, 1); got != nil {
			t.Errorf("%s: answered % x, want nothing", name, got)
		}
	}
	// Longer requests (extension fields, a MAC) still get a plain reply.
	long := append(clientRequest(4, 6), make([]byte, 20)...)
	if got := sntpReply(long, time.Now, 1); len(got) != 48 {
		t.Errorf("68-byte request: reply of %d bytes, want 48", len(got))
	}
}

func TestServeStream(t *testing.T) {
	p := newTestPlugin(t, summer, listenersConfig())
	tests := []struct {
		listener string
		want     string
	}{
		{"daytime", "Wednesday, July 01, 2026 20:00:00-CST\r\n"}, // the plugin block's zone
		{"daytime-berlin", "Wednesday, July 01, 2026 14:00:00-CEST\r\n"},
		{"time", string(binary.BigEndian.AppendUint32(nil, 3991896000))},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := p.serveStream(tt.listener, &out); err != nil {
			t.Errorf("%s: %v", tt.listener, err)
		}
		if out.String() != tt.want {
			t.Errorf("%s wrote %q, want %q", tt.listener, out.String(), tt.want)
		}
	}
	var out bytes.Buffer
	if err := p.serveStream("nope", &out); err == nil || out.Len() != 0 {
		t.Errorf("unconfigured listener: err %v, wrote %q", err, out.String())
	}
	if err := p.serveStream("sntp", &out); err == nil || out.Len() != 0 {
		t.Errorf("sntp over a stream: err %v, wrote %q", err, out.String())
	}
}

func TestServeDatagram(t *testing.T) {
	p := newTestPlugin(t, summer, listenersConfig())
	serve := func(listener string, data []byte) []byte {
		t.Helper()
		out, err := p.ServeDatagram(context.Background(), &sdk.Datagram{Listener: listener, RemoteAddr: "192.0.2.7:123", Data: data})
		if err != nil {
			t.Fatalf("%s: %v", listener, err)
		}
		return out
	}
	if got, want := string(serve("daytime-udp", nil)), "Wednesday, July 01, 2026 20:00:00-CST\r\n"; got != want {
		t.Errorf("daytime over udp = %q, want %q", got, want)
	}
	if got, want := serve("time-udp", []byte("\n")), binary.BigEndian.AppendUint32(nil, 3991896000); !bytes.Equal(got, want) {
		t.Errorf("time over udp = % x, want % x", got, want)
	}
	req := clientRequest(4, 6)
	reply := parseSNTP(t, serve("sntp", req))
	if reply.mode != 4 || reply.stratum != 1 || reply.orig != binary.BigEndian.Uint64(req[40:]) || reply.tx != ntpTimestamp(p.now()) {
		t.Errorf("sntp reply %+v", reply)
	}
	if reply := parseSNTP(t, serve("sntp10", req)); reply.stratum != 10 {
		t.Errorf("sntp10 stratum %d, want 10", reply.stratum)
	}
	if got := serve("sntp", []byte("junk")); got != nil {
		t.Errorf("sntp answered junk with % x", got)
	}
	if _, err := p.ServeDatagram(context.Background(), &sdk.Datagram{Listener: "nope"}); err == nil {
		t.Error("unconfigured listener: no error")
	}
}

// TestRdate checks the answers with the client the end-to-end tests use
// (Debian's rdate), served from plain sockets instead of the daemon.
func TestRdate(t *testing.T) {
	rdate, err := exec.LookPath("rdate")
	if err != nil {
		t.Skip("rdate is not installed")
	}
	p := newTestPlugin(t, summer, listenersConfig())

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			_ = p.serveStream("time", c)
			c.Close()
		}
	}()

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			listener := "sntp"
			if n < 48 { // rdate -u sends an empty datagram
				listener = "time-udp"
			}
			out, _ := p.ServeDatagram(context.Background(), &sdk.Datagram{Listener: listener, Data: buf[:n]})
			if out != nil {
				_, _ = udp.WriteTo(out, addr)
			}
		}
	}()

	tests := []struct {
		name string
		args []string
	}{
		{"rfc868 tcp", []string{"-p", "-o", portOf(tcp.Addr()), "127.0.0.1"}},
		{"rfc868 udp", []string{"-p", "-u", "-o", portOf(udp.LocalAddr()), "127.0.0.1"}},
		{"sntp", []string{"-p", "-n", "-o", portOf(udp.LocalAddr()), "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, rdate, tt.args...)
			cmd.Env = []string{"TZ=UTC", "LC_ALL=C"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("rdate %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
			if !strings.Contains(string(out), "Wed Jul  1 12:00:00 UTC 2026") {
				t.Errorf("rdate %s printed %q, want the fixed instant", strings.Join(tt.args, " "), out)
			}
		})
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}
