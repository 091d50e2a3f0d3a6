package e2e

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStatic compares socketd (core + static plugin) with Go's own
// http.FileServer on the same files, in the same run. The client shares the
// machine's cores with the server, so compare ratios, not absolutes; for
// the nginx/Caddy comparison with wrk see bench/.
//
//	go test -run '^$' -bench Static -benchtime 5s ./daemon/e2e/
func BenchmarkStatic(b *testing.B) {
	www := filepath.Join(repoRoot, "www")
	d := startDaemon(b, `
plugin_dir = "{{BIN}}"
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
plugin "static" {
  config { root = "{{WWW}}" }
}
route "GET /" { plugin = "static" }
`, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fs := &http.Server{Handler: http.FileServer(http.Dir(www))}
	go fs.Serve(ln)
	b.Cleanup(func() { fs.Close() })

	servers := []struct{ name, base string }{
		{"socketd", "http://" + d.Addr("web")},
		{"fileserver", "http://" + ln.Addr().String()},
	}
	for _, path := range []string{"/", "/test.jpg"} {
		for _, s := range servers {
			b.Run(s.name+path, func(b *testing.B) { benchGet(b, s.base+path) })
		}
	}
}

func benchGet(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(32) // 32 × GOMAXPROCS connections
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("%s: %d", url, resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkDaytime measures connections per second on the RFC 867 daytime
// service through socketd (accept in the core, one ServeStream call to the
// timeserver plugin per connection) next to the same service written
// directly on a Go net.Listener, in the same run.
//
//	go test -run '^$' -bench Daytime -benchtime 5s ./daemon/e2e/
func BenchmarkDaytime(b *testing.B) {
	d := startDaemon(b, `
plugin_dir = "{{BIN}}"
listener "daytime" {
  protocol        = "tcp"
  address         = "127.0.0.1:0"
  plugin          = "timeserver"
  max_connections = 4096
  config { service = "daytime" }
}
plugin "timeserver" {}
`, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.WriteString(c, time.Now().UTC().Format("Monday, January 02, 2006 15:04:05-MST")+"\r\n")
				c.Close()
			}()
		}
	}()
	for _, s := range []struct{ name, addr string }{
		{"socketd", d.Addr("daytime")},
		{"direct", ln.Addr().String()},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := net.Dial("tcp", s.addr)
					if err != nil {
						b.Error(err)
						return
					}
					line, err := io.ReadAll(c)
					c.Close()
					if err != nil || len(line) == 0 {
						b.Errorf("daytime: %q %v", line, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conn/s")
		})
	}
}
