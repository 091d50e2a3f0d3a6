package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/socketd/socketd/sdk"
)

// daytimeLayout is the RFC 867 line, in the form the RFC suggests
// ("Weekday, Month Day, Year Time-Zone"): "Wednesday, July 01, 2026
// 14:00:00-CEST". RFC 867 fixes no syntax; this is the one inetd users
// have seen for decades.
const daytimeLayout = "Monday, January 02, 2006 15:04:05-MST"

// ntpEpochOffset is the number of seconds from 1900-01-01T00:00:00Z, the
// epoch of RFC 868 and NTP, to the Unix epoch.
const ntpEpochOffset = 2208988800

// SNTP reply constants (RFC 4330 §4).
const (
	ntpPacketLen   = 48
	ntpModeClient  = 3
	ntpModeServer  = 4
	ntpPrecision   = -20 // log2 seconds: about a microsecond
	ntpRootDelay   = 0   // we are the root
	ntpRootDisp    = 10 * time.Millisecond
	ntpReferenceID = "LOCL" // RFC 4330: uncalibrated local clock
)

// ServeStream serves one connection of a tcp listener: the answer is
// written at once, without waiting for the client to say anything, and
// returning lets the SDK half-close so the client sees EOF.
func (p *timeserver) ServeStream(_ context.Context, conn *sdk.Conn) error {
	return p.serveStream(conn.Listener, conn)
}

// serveStream is ServeStream over any writer, so tests and tools need no
// plugin connection.
func (p *timeserver) serveStream(listener string, w io.Writer) error {
	l, ok := p.current().listeners[listener]
	if !ok {
		return fmt.Errorf("listener %q is not configured for timeserver", listener)
	}
	var answer []byte
	switch l.service {
	case serviceDaytime:
		answer = daytime(p.now(), l.zone)
	case serviceTime:
		answer = rfc868(p.now())
	default:
		return fmt.Errorf("listener %q: service %q is not served over tcp", listener, l.service)
	}
	if _, err := w.Write(answer); err != nil {
		return fmt.Errorf("write %s answer: %w", l.service, err)
	}
	return nil
}

// ServeDatagram answers one datagram of a udp listener. daytime and time
// answer any datagram, even an empty one (RFC 867, RFC 868); sntp answers
// only well-formed client requests and drops the rest silently, so junk
// cannot make it talk.
func (p *timeserver) ServeDatagram(_ context.Context, d *sdk.Datagram) ([]byte, error) {
	l, ok := p.current().listeners[d.Listener]
	if !ok {
		return nil, fmt.Errorf("listener %q is not configured for timeserver", d.Listener)
	}
	switch l.service {
	case serviceDaytime:
		return daytime(p.now(), l.zone), nil
	case serviceTime:
		return rfc868(p.now()), nil
	case serviceSNTP:
		return sntpReply(d.Data, p.now, l.stratum), nil
	}
	return nil, fmt.Errorf("listener %q: service %q is not served over udp", d.Listener, l.service)
}

// daytime returns the RFC 867 answer: one line in zone, ending in CRLF.
func daytime(t time.Time, zone *time.Location) []byte {
	if zone == nil {
		zone = time.UTC
	}
	return []byte(t.In(zone).Format(daytimeLayout) + "\r\n")
}

// rfc868 returns the RFC 868 answer: seconds since 1900 as 32 bits, big
// endian.
func rfc868(t time.Time) []byte {
	return binary.BigEndian.AppendUint32(nil, ntpSeconds(t))
}

// ntpSeconds returns t's whole seconds since 1900 modulo 2^32, the era
// arithmetic RFC 868 and NTP share: the count wraps to 0 at
// 2036-02-07T06:28:16Z and clients resolve the era from their own clock.
// The conversions wrap rather than overflow, so any instant maps right.
func ntpSeconds(t time.Time) uint32 {
	return uint32(uint64(t.Unix()) + ntpEpochOffset)
}

// ntpTimestamp returns t in NTP's 64-bit format: era seconds, then the
// fraction of a second in units of 2^-32 s.
func ntpTimestamp(t time.Time) uint64 {
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint64(ntpSeconds(t))<<32 | frac
}

// ntpShort returns d in NTP's 32-bit short format (16.16 seconds), used for
// root delay and dispersion.
func ntpShort(d time.Duration) uint32 {
	return uint32(uint64(d) << 16 / uint64(time.Second))
}

// sntpReply answers an SNTP client request per RFC 4330 §5, or returns nil
// for anything that is not one: shorter than 48 bytes, not mode 3 (client),
// or a version outside 1–4. The version and poll interval are copied back,
// and the client's transmit timestamp becomes the originate timestamp,
// byte for byte, so the client can match the answer to its question.
//
// The reply claims stratum 1 (by default) with reference id "LOCL", which
// RFC 4330 defines as an uncalibrated local clock: stock clients (rdate
// -n, sntp, ntpdate -q, systemd-timesyncd) accept strata 1–15 and reject
// stratum 0 (kiss-o'-death) and 16 (unsynchronised). The reference
// timestamp is the receive time, never later, since rdate rejects a reply
// whose receive timestamp precedes its reference timestamp.
func sntpReply(req []byte, now func() time.Time, stratum uint8) []byte {
	received := now()
	if len(req) < ntpPacketLen {
		return nil
	}
	version, mode := req[0]>>3&7, req[0]&7
	if mode != ntpModeClient || version < 1 || version > 4 {
		return nil
	}
	out := make([]byte, ntpPacketLen)
	out[0] = 0<<6 | version<<3 | ntpModeServer // LI 0: no leap second warning
	out[1] = stratum
	out[2] = req[2]              // poll
	out[3] = ntpPrecision & 0xff // a signed byte
	binary.BigEndian.PutUint32(out[4:], ntpShort(ntpRootDelay))
	binary.BigEndian.PutUint32(out[8:], ntpShort(ntpRootDisp))
	copy(out[12:16], ntpReferenceID)
	binary.BigEndian.PutUint64(out[16:], ntpTimestamp(received)) // reference
	copy(out[24:32], req[40:48])                                 // originate
	binary.BigEndian.PutUint64(out[32:], ntpTimestamp(received)) // receive
	sent := now()
	if sent.Before(received) { // the wall clock stepped back meanwhile
		sent = received
	}
	binary.BigEndian.PutUint64(out[40:], ntpTimestamp(sent)) // transmit
	return out
}
