// Package e2e holds socketd's end-to-end tests: they build the real
// binaries, start the daemon with real plugin processes on ephemeral
// loopback ports, and talk to it with real clients (net/http, raw sockets,
// curl, headless Chromium). The package has no non-test code.
package e2e
