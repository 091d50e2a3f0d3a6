package pluginhost

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// lineLogger turns a plugin's raw output into log lines, one per line
// written, so stray prints are neither lost nor mixed into the daemon's
// own output.
type lineLogger struct {
	log    *slog.Logger
	stream string
	level  slog.Level

	mu  sync.Mutex
	buf []byte
}

// maxLine bounds a line held while waiting for its newline.
const maxLine = 64 << 10

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) > maxLine {
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	l.log.LogAttrs(context.Background(), l.level, string(line), slog.String("stream", l.stream))
}
