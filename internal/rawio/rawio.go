// Package rawio reads and writes non-blocking sockets with raw system
// calls, inside their RawConn (which holds the descriptor against a
// concurrent close and leaves waiting to the network poller).
//
// Go's ordinary system calls tell the scheduler they are in the kernel.
// When the process was idle, that wakes the runtime's monitor thread
// (sysmon) and sets it polling every 20 µs for the next few milliseconds;
// and a processor whose goroutine is still in the call at the monitor's
// next look, with work queued behind it, is handed to another thread,
// which must be woken, and taken back after. A write to a loopback or
// unix socket runs the reader's side inside the call, several µs. The
// sockets are non-blocking, so a raw call never holds the processor
// longer than its copy.
//
// The fast lane reads and writes its clients this way, and the core and
// the SDK their plugin connections (Credentials). On /time under wrk
// -t1 -c64, raw plugin connections took the core from 0.33 thread
// switches a request to 0.21, the plugin from 0.16 to 0.07, and each
// spent 7-28% less CPU on a request (3 alternating pairs each).
package rawio
