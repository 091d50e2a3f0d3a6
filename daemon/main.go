// Command socketd is a multi-service socket daemon whose content comes from
// out-of-process plugins. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/server"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

const usage = `socketd is a socket daemon whose content comes from plugins.

Usage:
  socketd run      [-config FILE]   serve until SIGINT or SIGTERM
  socketd validate [-config FILE]   check a config (starting its plugins) and exit
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
	case "version":
		fmt.Fprintln(stdout, "socketd", versionString())
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
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
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
	fs, c := newFlagSet("validate", "Check a config: syntax, references, and each block against its plugin's schema\n(the plugins are started, asked, and stopped). Nothing is bound.", "warn", stderr)
	log, code := parse(fs, c, args, stderr)
	if code >= 0 {
		return code
	}
	d, ok := load(context.Background(), c.config, log, stderr)
	if !ok {
		return 1
	}
	d.Close()
	fmt.Fprintf(stdout, "%s: ok\n", c.config)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs, c := newFlagSet("run", "Serve the config's listeners until SIGINT or SIGTERM, then drain in-flight\nrequests (bounded by shutdown_timeout) and stop the plugins.", "info", stderr)
	log, code := parse(fs, c, args, stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, ok := load(ctx, c.config, log, stderr)
	if !ok {
		return 1
	}
	if err := d.Bind(); err != nil {
		log.Error("cannot listen", "error", err)
		d.Close()
		return 1
	}
	log.Info("socketd ready", "version", versionString(), "config", c.config)
	if err := d.Serve(ctx); err != nil {
		log.Error("stopped", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
