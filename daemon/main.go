// Command socketd is a multi-service socket daemon whose content comes from
// out-of-process plugins. See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/listen"
	"github.com/socketd/socketd/daemon/logbuf"
	"github.com/socketd/socketd/daemon/logline"
	"github.com/socketd/socketd/daemon/server"
	"github.com/socketd/socketd/daemon/service"
	"github.com/socketd/socketd/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

const usage = `socketd is a socket daemon whose content comes from plugins.

Usage:
  socketd run      [-config FILE]   serve until SIGINT or SIGTERM; SIGHUP reloads
  socketd reload   [-config FILE]   make the running socketd reload (via its pid_file)
  socketd validate [-config FILE]   check a config (starting its plugins, changing nothing) and exit
  socketd plugins  [-config FILE]   list plugin_dir's plugins: version, protocols, schema
  socketd version                   print the version

Run "socketd COMMAND -help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "plugins":
		return cmdPlugins(rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			fmt.Fprint(stdout, "Usage: socketd version\n\nPrint socketd's version and the plugin protocol version it speaks.\n")
			if rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help" {
				return 0
			}
			return 2
		}
		fmt.Fprintf(stdout, "socketd %s (plugin protocol %d)\n", versionString(), sdk.ProtocolVersion)
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "socketd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// commonFlags are the flags of every command that reads a config.
type commonFlags struct {
	config    string
	logFormat string
	logLevel  string
}

func newFlagSet(name, summary, defaultLevel string, stderr io.Writer) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &commonFlags{}
	fs.StringVar(&c.config, "config", "./config.hcl", "config file")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", defaultLevel, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: socketd %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs, c
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text", "json":
		return slog.New(logline.New(w, c.logFormat == "json", opts)), nil
	}
	return nil, fmt.Errorf("-log-format: want text or json, not %q", c.logFormat)
}

// parse parses flags and sets up the logger; code >= 0 means exit now.
func parse(fs *flag.FlagSet, c *commonFlags, args []string, stderr io.Writer) (*slog.Logger, int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "socketd %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return nil, 2
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "socketd:", err)
		return nil, 2
	}
	return log, -1
}

// load reads the config and starts its plugins, printing diagnostics.
func load(ctx context.Context, path string, log *slog.Logger, stderr io.Writer) (*server.Daemon, bool) {
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		cfg.WriteDiagnostics(stderr, diags)
		return nil, false
	}
	d, pdiags := server.Prepare(ctx, cfg, log)
	diags = append(diags, pdiags...)
	if len(diags) > 0 {
		cfg.WriteDiagnostics(stderr, diags)
	}
	return d, d != nil
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs, c := newFlagSet("validate", "Check a config: syntax, references, and each block against its plugin's schema\n(the plugins are started, asked, and stopped). Nothing is bound or changed:\nplugins are told the config is only checked (the sqlite plugin creates and\nmigrates no database).", "warn", stderr)
	log, code := parse(fs, c, args, stderr)
	if code >= 0 {
		return code
	}
	cfg, diags := config.Load(c.config)
	if !diags.HasErrors() {
		diags = append(diags, server.Check(context.Background(), cfg, log)...)
	}
	if len(diags) > 0 {
		cfg.WriteDiagnostics(stderr, diags)
	}
	if diags.HasErrors() {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", c.config)
	return 0
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs, c := newFlagSet("reload", "Make the running socketd reload its config: send SIGHUP to the pid in the\nconfig's pid_file (or -pid-file). It returns at once; the daemon logs the\noutcome, and an invalid config leaves the running one serving. Check a config\nfirst with `socketd validate`. Under systemd: systemctl reload socketd.", "warn", stderr)
	pidFile := fs.String("pid-file", "", "the running daemon's pid file (default: the config's pid_file)")
	if _, code := parse(fs, c, args, stderr); code >= 0 {
		return code
	}
	path := *pidFile
	if path == "" {
		cfg, diags := config.Load(c.config)
		if cfg.PIDFile == "" {
			if diags.HasErrors() {
				cfg.WriteDiagnostics(stderr, diags)
			}
			fmt.Fprintf(stderr, "socketd reload: %s sets no pid_file, so there is no pid to signal. Set pid_file, pass -pid-file, or send SIGHUP yourself (systemctl reload socketd, kill -HUP PID).\n", c.config)
			return 1
		}
		path = cfg.PIDFile
	}
	pid, err := service.Signal(path, syscall.SIGHUP)
	if err != nil {
		fmt.Fprintln(stderr, "socketd reload:", err)
		return 1
	}
	fmt.Fprintf(stdout, "socketd (pid %d) is reloading; its log says how it went\n", pid)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	// Everything the daemon says goes through one buffered writer, so the
	// access log costs few system calls under load and lines stay in order.
	lw := logbuf.New(stderr)
	defer lw.Close()
	stderr = lw
	fs, c := newFlagSet("run", "Serve the config's listeners until SIGINT or SIGTERM, then drain in-flight\nrequests (bounded by shutdown_timeout) and stop the plugins. SIGHUP reloads\nthe config (see `socketd reload`).", "info", stderr)
	pidFile := fs.String("pid-file", "", "write the pid here (overrides the config's pid_file)")
	log, code := parse(fs, c, args, stderr)
	if code >= 0 {
		return code
	}
	// Before any plugin starts: the notify socket and the watchdog are
	// socketd's alone, so they leave the environment plugins inherit.
	notifier, err := service.NewNotifier()
	if err != nil {
		log.Warn("systemd", "error", err)
	}
	defer notifier.Close()
	activated, err := listen.Activated(log)
	if err != nil {
		log.Error("socket activation", "error", err)
		return 1
	}
	// SIGHUP is caught from the start: its default action would kill a
	// daemon still starting. One pending reload is enough; more coalesce.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	notifier.Status("starting plugins")
	d, ok := load(ctx, c.config, log, stderr)
	if !ok {
		for _, s := range activated {
			s.Close()
		}
		return 1
	}
	if err := d.Bind(activated); err != nil {
		log.Error("cannot listen", "error", err)
		d.Close()
		return 1
	}
	pid := pidPath(*pidFile, d.Config())
	if pid != "" {
		if err := service.WritePIDFile(pid); err != nil {
			log.Error("cannot write the pid file", "error", err)
			d.Close()
			return 1
		}
	}
	defer func() { // the path a reload may have changed
		if pid != "" {
			service.RemovePIDFile(pid)
		}
	}()
	d.Start()
	log.Info("socketd ready", "version", versionString(), "config", c.config, "pid", os.Getpid())
	notifier.Ready(status(d, "serving"))

	// WATCHDOG=1 from a goroutine of its own: a reload waiting for slow
	// plugins (start_timeout) must not look like a hang.
	if iv := notifier.WatchdogInterval(); iv > 0 {
		wctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			t := time.NewTicker(iv)
			defer t.Stop()
			for {
				notifier.Watchdog()
				select {
				case <-wctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	exit := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-d.Errors():
			log.Error("stopped", "error", err)
			exit = 1
			break loop
		case <-hup:
			if next := reload(ctx, d, c.config, *pidFile, log, notifier); next != pid {
				if pid != "" {
					service.RemovePIDFile(pid)
				}
				pid = next
				if pid != "" {
					if err := service.WritePIDFile(pid); err != nil {
						log.Error("cannot write the pid file", "error", err)
					}
				}
			}
		}
	}
	notifier.Stopping(fmt.Sprintf("draining (at most %s)", d.Config().ShutdownTimeout))
	d.Shutdown()
	log.Info("stopped")
	return exit
}

// pidPath is the -pid-file flag, else the config's pid_file.
func pidPath(flagValue string, cfg *config.Config) string {
	if flagValue != "" {
		return flagValue
	}
	return cfg.PIDFile
}

// reload loads the config again and hands it to the daemon. A config that
// does not load, or that the daemon cannot bring to life, changes
// nothing: the running one keeps serving, and the diagnostics go to the
// log. It returns the pid file path the daemon should now keep.
func reload(ctx context.Context, d *server.Daemon, path, pidFlag string, log *slog.Logger, n *service.Notifier) string {
	start := time.Now()
	n.Reloading("reloading " + path)
	log.Info("reloading", "config", path)
	cfg, diags := config.Load(path)
	if !diags.HasErrors() {
		diags = append(diags, d.Reload(ctx, cfg)...)
	} else {
		d.Metrics().Reloaded(false)
	}
	logDiagnostics(log, cfg, diags)
	if diags.HasErrors() {
		first := ""
		for _, dg := range diags {
			if dg.Severity == hcl.DiagError {
				first = diagLine(cfg, dg)
				break
			}
		}
		log.Error("reload failed; still serving the previous config", "config", path, "errors", countErrors(diags))
		n.Ready("reload failed (" + first + "); serving the previous config")
		return pidPath(pidFlag, d.Config())
	}
	log.Info("reload complete", "config", path, "took", time.Since(start).Round(time.Millisecond))
	n.Ready(status(d, "reloaded; serving"))
	return pidPath(pidFlag, cfg)
}

// logDiagnostics writes each diagnostic to the log as one record: its
// FILE:LINE:COL line as "diagnostic", and the rest of what
// Config.WriteDiagnostics prints (source snippet, explanation) as
// "detail".
func logDiagnostics(log *slog.Logger, cfg *config.Config, diags hcl.Diagnostics) {
	for _, dg := range diags {
		var buf bytes.Buffer
		cfg.WriteDiagnostics(&buf, hcl.Diagnostics{dg})
		first, rest, _ := strings.Cut(buf.String(), "\n")
		level, msg := slog.LevelError, "config error"
		if dg.Severity == hcl.DiagWarning {
			level, msg = slog.LevelWarn, "config warning"
		}
		log.LogAttrs(context.Background(), level, msg,
			slog.String("diagnostic", first), slog.String("detail", strings.TrimSpace(rest)))
	}
}

// diagLine is a diagnostic's FILE:LINE:COL: Error: Summary line.
func diagLine(cfg *config.Config, dg *hcl.Diagnostic) string {
	var buf bytes.Buffer
	cfg.WriteDiagnostics(&buf, hcl.Diagnostics{dg})
	first, _, _ := strings.Cut(buf.String(), "\n")
	return first
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, dg := range diags {
		if dg.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// status is the one line `systemctl status` shows.
func status(d *server.Daemon, what string) string {
	cfg := d.Config()
	return fmt.Sprintf("%s %d listeners, %d routes, %d plugins; config loaded %s",
		what, len(cfg.Listeners), len(cfg.Routes), len(cfg.Plugins), time.Now().Format(time.DateTime))
}
