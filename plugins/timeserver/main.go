// Command socketd-plugin-timeserver is the socketd plugin that tells the
// time: over HTTP (text or worldtimeapi-style JSON, any IANA zone), and as
// the classic inetd services daytime (RFC 867) and time (RFC 868) over tcp
// and udp, plus SNTP (RFC 4330) over udp. See README.md for its config.
package main

import "github.com/socketd/socketd/sdk"

func main() { sdk.Serve(newTimeserver()) }
