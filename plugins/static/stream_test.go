package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
)

// conn is a connection as answer sees it: what the client sent, and what
// the plugin wrote back.
type conn struct {
	io.Reader
	out strings.Builder
}

func (c *conn) Write(p []byte) (int, error) { return c.out.Write(p) }

// noRead fails the test if the reply waits for the client.
type noRead struct{ t *testing.T }

func (r noRead) Read([]byte) (int, error) {
	r.t.Error("read the request although read_request = false")
	return 0, io.EOF
}

// endless sends bytes without a newline forever and counts them.
type endless struct{ n int }

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += len(p)
	return len(p), nil
}

func configureListener(t *testing.T, cfg map[string]any) reply {
	t.Helper()
	p := configure(t, &sdk.Config{Listeners: []sdk.ListenerConfig{{Name: "hear", Protocol: "tcp", Config: sdk.MustJSON(cfg)}}})
	return p.replies["hear"]
}

func TestReply(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		in   io.Reader // nil: noRead
		want string
	}{
		{"tutorial", map[string]any{"reply": "Yes"}, strings.NewReader("can you hear me?\n"), "Yes\n"},
		{"no newline in request", map[string]any{"reply": "Yes"}, strings.NewReader("can you hear me?"), "Yes\n"},
		{"silent client", map[string]any{"reply": "Yes"}, strings.NewReader(""), "Yes\n"},
		{"without newline", map[string]any{"reply": "Yes", "newline": false}, strings.NewReader("?\n"), "Yes"},
		{"without reading", map[string]any{"reply": "Yes", "read_request": false}, nil, "Yes\n"},
		{"empty reply", map[string]any{"reply": "", "newline": false, "read_request": false}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{Reader: tt.in}
			if tt.in == nil {
				c.Reader = noRead{t}
			}
			if err := configureListener(t, tt.cfg).answer(t.Context(), c, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := c.out.String(); got != tt.want {
				t.Errorf("reply = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReplyLeavesRestUnread checks that reading stops at the first line.
func TestReplyLeavesRestUnread(t *testing.T) {
	in := strings.NewReader("can you hear me?\nsecond line\n")
	awaitRequest(t.Context(), &oneByte{in}, maxRequest, time.Minute)
	if rest, _ := io.ReadAll(in); string(rest) != "second line\n" {
		t.Errorf("left %q unread, want the second line", rest)
	}
}

// oneByte reads one byte at a time, as a slow client sends.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

func TestAwaitRequestBounds(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		r := &endless{}
		awaitRequest(t.Context(), r, maxRequest, time.Minute)
		if r.n > maxRequest {
			t.Errorf("read %d bytes, limit %d", r.n, maxRequest)
		}
	})
	t.Run("time", func(t *testing.T) {
		pr, pw := io.Pipe() // a client that connects and says nothing
		defer pw.Close()
		done := make(chan struct{})
		go func() {
			awaitRequest(t.Context(), pr, maxRequest, 10*time.Millisecond)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("still waiting for a silent client")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := &conn{Reader: pr}
		if err := (reply{text: "Yes\n", readRequest: true}).answer(ctx, c, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReplyWriteError(t *testing.T) {
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(""), failWriter{}}
	err := (reply{text: "Yes\n"}).answer(t.Context(), rw, time.Minute)
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("err = %v, want io.ErrClosedPipe", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestServeStreamUnknownListener(t *testing.T) {
	p := configure(t, &sdk.Config{})
	if err := p.ServeStream(t.Context(), &sdk.Conn{Listener: "nope"}); err == nil {
		t.Error("served a listener it has no config for")
	}
}
