package sdk

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/socketd/socketd/internal/gcfloor"
	"github.com/socketd/socketd/internal/rawio"
)

// Serve runs p as a socketd plugin: it answers go-plugin's handshake on
// stdout and serves the core until the core goes away. Call it from main:
//
//	func main() { sdk.Serve(&myPlugin{}) }
//
// It sets log/slog's default logger to Logger, so plugin code logs with
// slog.Info and friends. It returns only when the core is gone, and exits
// the process when the core that started it dies. When the core stops the
// plugin (socketd stopping, or a reload replacing the process), Serve
// calls p's Close method first if p is an io.Closer: the place to close a
// database or flush a file, within a second or so (the core kills a
// plugin that is still there 2 s after asking it to stop). Run by hand
// (not by socketd), it prints a short explanation and exits 1.
func Serve(p Plugin) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		d := p.Describe()
		fmt.Fprintf(os.Stderr, "%s is a socketd plugin (%s %s). It is started by socketd, not by hand:\n"+
			"put it in socketd's plugin_dir and declare plugin %q {} in config.hcl.\n",
			os.Args[0], d.Name, d.Version, d.Name)
		os.Exit(1)
	}
	slog.SetDefault(Logger())
	gcfloor.Keep(heapFloor)
	go exitWithParent(os.Getppid())
	servePprof(os.Getenv(PprofEnv))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {PluginKey: &grpcPlugin{impl: p}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			if len(opts) == 0 {
				// go-plugin passes options only to serve TLS. Without, the
				// connection is the core's unix socket, read and written
				// with raw system calls (internal/rawio).
				opts = append(opts, grpc.Creds(rawio.Credentials(insecure.NewCredentials())))
			}
			return grpc.NewServer(append(opts, ServerOptions()...)...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Level: hclog.Info, Output: stderr, JSONFormat: true,
		}),
	})
	// The core stopped this process (a reload replaced it, or socketd is
	// stopping) and waits for it to exit: the plugin may release what it
	// holds. A crash or a SIGKILL skips this.
	if c, ok := p.(io.Closer); ok {
		if err := c.Close(); err != nil {
			slog.Error("closing the plugin", "error", err)
		}
	}
}

// exitWithParent ends the plugin when the core that started it is gone,
// even if the core was killed with SIGKILL and could not say goodbye (the
// core also asks the kernel for this with Pdeathsig; this covers systems
// and cases where that does not fire).
func exitWithParent(ppid int) {
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != ppid {
			os.Exit(0)
		}
	}
}

// stderr is the process's real standard error, kept before go-plugin's
// Serve swaps os.Stderr for a pipe; log lines written here are parsed by the
// core and re-logged at their level, tagged with the plugin's name.
var stderr = os.Stderr

// Logger returns a structured logger whose lines reach the core's log,
// tagged with the plugin's name and at their own level. Plugins should log
// through it (or slog's default, which Serve sets to it), never to stdout:
// stdout carries the handshake.
func Logger() *slog.Logger {
	return slog.New(newHCLogHandler(stderr))
}

// newHCLogHandler writes slog records as the JSON lines go-plugin parses on
// the core side (@level, @message, @timestamp, then the attributes).
func newHCLogHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				// go-plugin parses exactly this layout; any other makes the
				// whole line plain text at debug level.
				a = slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				a.Key = "@level"
				a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				a.Key = "@message"
			}
			return a
		},
	})
}

// ServerOptions are the gRPC server options a plugin serves with (Serve
// uses them; so do benchmarks that stand in for a plugin process).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// A call per large request: reuse worker goroutines instead of
		// starting one per stream, and share write buffers across the many
		// short streams.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.SharedWriteBuffer(true),
		// Fixed windows, large enough for 64 KiB chunks to stream at disk
		// speed; fixing them also turns off gRPC's bandwidth probing, a
		// ping per burst of small messages.
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(4 << 20),
	}
}

// heapFloor is how far a plugin's heap grows before its collector runs
// (internal/gcfloor says why): a few MB more memory under load for a
// sixth less CPU.
const heapFloor = 16 << 20

// PprofEnv names the environment variable with which socketd asks a plugin
// to serve Go's profiler (admin { pprof = true } in config.hcl): a loopback
// address, port 0 for any. The plugin logs where it listens.
const PprofEnv = "SOCKETD_PLUGIN_PPROF"

// servePprof serves /debug/pprof/ on addr if it is a loopback address.
func servePprof(addr string) {
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		slog.Warn("pprof: not a loopback address; profiler not served", "address", addr)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		slog.Warn("pprof: cannot listen", "error", err)
		return
	}
	// runtime/pprof, not net/http/pprof: importing that would register the
	// profiler on http.DefaultServeMux, which a plugin may serve as its
	// routes.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 30
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			http.NotFound(w, r)
			return
		}
		// ?debug=1 is text (the heap profile's ends with the runtime's
		// memory statistics), as net/http/pprof serves it.
		debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
		if debug > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		p.WriteTo(w, debug)
	})
	slog.Info("pprof listening", "address", ln.Addr().String())
	go http.Serve(ln, mux)
}
