package pluginhost

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter lets go-plugin log through the daemon's slog logger, so the
// plugin's own stderr lines (which go-plugin parses and re-logs at their
// level) land in the same log as everything else, tagged by plugin name.
type slogAdapter struct {
	l    *slog.Logger
	name string
	args []any
}

func newSlogAdapter(l *slog.Logger) hclog.Logger { return &slogAdapter{l: l} }

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level == hclog.NoLevel && !a.l.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	l := a.l
	if len(a.args) > 0 {
		l = l.With(a.args...)
	}
	l.Log(context.Background(), toSlogLevel(level), msg, renamePluginKey(args)...)
}

// renamePluginKey keeps go-plugin's "plugin" (the binary's path) from
// colliding with the daemon's own "plugin" tag (the plugin's name), and
// drops the plugin-side "timestamp" go-plugin appends: the daemon's log
// stamps every line itself.
func renamePluginKey(args []any) []any {
	out := args[:0]
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "timestamp":
			continue
		case "plugin":
			out = append(out, "binary", args[i+1])
		default:
			out = append(out, args[i], args[i+1])
		}
	}
	return out
}

func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) enabled(l slog.Level) bool { return a.l.Enabled(context.Background(), l) }
func (a *slogAdapter) IsTrace() bool             { return a.enabled(slog.LevelDebug - 4) }
func (a *slogAdapter) IsDebug() bool             { return a.enabled(slog.LevelDebug) }
func (a *slogAdapter) IsInfo() bool              { return a.enabled(slog.LevelInfo) }
func (a *slogAdapter) IsWarn() bool              { return a.enabled(slog.LevelWarn) }
func (a *slogAdapter) IsError() bool             { return a.enabled(slog.LevelError) }

func (a *slogAdapter) ImpliedArgs() []any { return a.args }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	return &slogAdapter{l: a.l, name: a.name, args: append(append([]any(nil), a.args...), args...)}
}

func (a *slogAdapter) Name() string { return a.name }

// Named keeps the daemon's own plugin tag; go-plugin's sub-names (the
// binary's file name, "stdio") add nothing a reader needs.
func (a *slogAdapter) Named(name string) hclog.Logger      { return a }
func (a *slogAdapter) ResetNamed(name string) hclog.Logger { return a }

func (a *slogAdapter) SetLevel(hclog.Level) {}

func (a *slogAdapter) GetLevel() hclog.Level {
	switch {
	case a.IsTrace():
		return hclog.Trace
	case a.IsDebug():
		return hclog.Debug
	case a.IsInfo():
		return hclog.Info
	case a.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (a *slogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo).Writer()
}
