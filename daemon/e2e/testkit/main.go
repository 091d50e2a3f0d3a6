// Command testkit is a plugin used only by the end-to-end tests: it echoes
// bodies, produces large downloads, sleeps, panics and crashes on request,
// so the core's hop and failure rules can be checked against a real
// process. It is not installed.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/socketd/socketd/sdk"
)

// testkit picks what to do from the route's mode (config), falling back to
// the request path, so several routes can share one behaviour.
type testkit struct {
	modes map[string]string // route id -> mode
}

func (testkit) Describe() sdk.Description {
	return sdk.Description{
		Name:    "testkit",
		Version: "0.0.0-test",
		RouteSchema: sdk.Schema{
			{Name: "mode", Type: "string", Description: "what the route does"},
		},
		ListenerSchema: sdk.Schema{
			{Name: "mode", Type: "string", Description: "echo: echo lines; a line \"crash\" kills the plugin"},
		},
	}
}

func (k *testkit) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	k.modes = map[string]string{}
	for _, rc := range cfg.Routes {
		var c struct {
			Mode string `json:"mode"`
		}
		if err := rc.Config.Decode(&c); err != nil {
			return sdk.Diagnostics{{Summary: "bad config", Detail: err.Error(), Route: rc.ID}}
		}
		if c.Mode != "" {
			k.modes[rc.ID] = "/" + c.Mode
		}
	}
	return nil
}

func (k *testkit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mode, ok := k.modes[sdk.RouteID(r)]
	if !ok {
		mode = r.URL.Path
	}
	switch mode {
	case "/echo":
		// Streams the body back as it arrives.
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	case "/sum":
		// Reads the whole body and answers its length and sha256.
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
	case "/download":
		// size bytes of a repeating pattern.
		size, _ := strconv.ParseInt(q.Get("size"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		buf := make([]byte, 32<<10)
		for i := range buf {
			buf[i] = byte(i % 251)
		}
		for size > 0 {
			n := min(int64(len(buf)), size)
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			size -= n
		}
	case "/sleep":
		d, _ := time.ParseDuration(q.Get("d"))
		sdk.Logger().Info("sleeping", "for", d.String())
		select {
		case <-time.After(d):
			fmt.Fprintln(w, "slept", d)
		case <-r.Context().Done():
			sdk.Logger().Info("sleep cancelled", "reason", r.Context().Err().Error())
		}
	case "/headers":
		for k, v := range r.Header {
			fmt.Fprintf(w, "%s: %v\n", k, v)
		}
		fmt.Fprintf(w, "remote: %s\nroute: %s\nid: %s\n", r.RemoteAddr, sdk.RouteID(r), r.PathValue("id"))
	case "/panic":
		panic("testkit: asked to panic")
	case "/crash":
		os.Exit(3)
	case "/procs":
		// The processors Go's runtime runs this process on, and the pid.
		fmt.Fprintf(w, "%d pid=%d\n", runtime.GOMAXPROCS(0), os.Getpid())
	case "/log":
		sdk.Logger().Warn("testkit says hello", "answer", 42)
		fmt.Fprintln(w, "logged")
	default:
		http.NotFound(w, r)
	}
}

// ServeStream echoes each line back until the client half-closes; the line
// "crash" kills the whole plugin process mid-connection.
func (k *testkit) ServeStream(ctx context.Context, c *sdk.Conn) error {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if sc.Text() == "crash" {
			os.Exit(4)
		}
		if _, err := fmt.Fprintf(c, "%s\n", sc.Text()); err != nil {
			return err
		}
	}
	return nil
}

func main() { sdk.Serve(&testkit{}) }
