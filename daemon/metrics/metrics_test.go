package metrics

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/socketd/socketd/daemon/httpfront"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestsByRouteAndCode(t *testing.T) {
	m := New()
	mux := http.NewServeMux()
	mux.Handle("GET /a", m.Route("web", "GET /a", "static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("the wrapped writer lost io.ReaderFrom (sendfile)")
		}
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the wrapped writer lost http.Flusher")
		}
		io.WriteString(w, "ok")
	})))
	mux.Handle("GET /b", m.Route("web", "GET /b", "static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusTeapot)
	})))
	// Requests go through the real HTTP front, which reports each finished
	// request to the metrics from the record of its access log.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpfront.NewServer("web", httpfront.Limits{ReadHeaderTimeout: 10 * time.Second}, mux, m,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	send := func(method, target string) {
		req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+target, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, target := range []string{"/a", "/a", "/b", "/nowhere"} {
		send("GET", target)
	}
	send("POST", "/a")

	want := `
# HELP socketd_http_requests_total HTTP requests answered, by listener, route, plugin and status code. Requests no route matched have route and plugin empty.
# TYPE socketd_http_requests_total counter
socketd_http_requests_total{code="200",listener="web",plugin="static",route="GET /a"} 2
socketd_http_requests_total{code="404",listener="web",plugin="",route=""} 1
socketd_http_requests_total{code="405",listener="web",plugin="",route=""} 1
socketd_http_requests_total{code="418",listener="web",plugin="static",route="GET /b"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "socketd_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 3 {
		t.Errorf("%d latency series, want 3 (two routes, unrouted)", n)
	}
}

func TestReloadAndPluginMetrics(t *testing.T) {
	m := New()
	m.SetPlugins(func() []Plugin { return []Plugin{{Name: "static", State: "failed", InFlight: 2}} })
	m.PluginRestarted("static")()
	m.PluginRestarted("static")()
	m.Reloaded(false)
	want := `
# HELP socketd_config_last_reload_successful Whether the last config load (start or reload) succeeded (1) or was rejected (0).
# TYPE socketd_config_last_reload_successful gauge
socketd_config_last_reload_successful 0
# HELP socketd_plugin_restarts_total Plugin processes replaced after a crash, by plugin.
# TYPE socketd_plugin_restarts_total counter
socketd_plugin_restarts_total{plugin="static"} 2
# HELP socketd_plugin_up Whether the plugin has a live process (1) or is restarting or failed (0).
# TYPE socketd_plugin_up gauge
socketd_plugin_up{plugin="static"} 0
# HELP socketd_plugin_calls_in_flight Calls (requests, datagrams) holding one of the plugin's max_concurrency slots.
# TYPE socketd_plugin_calls_in_flight gauge
socketd_plugin_calls_in_flight{plugin="static"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"socketd_config_last_reload_successful", "socketd_plugin_restarts_total", "socketd_plugin_up", "socketd_plugin_calls_in_flight"); err != nil {
		t.Error(err)
	}
}

// The scheduler's latency histogram is what tells a tail of waiting from
// a tail of work; the default Go collector leaves it out.
func TestSchedulingLatencyIsExported(t *testing.T) {
	families, err := New().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "go_sched_latencies_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h == nil || len(h.GetBucket()) != len(schedBuckets) {
			t.Fatalf("go_sched_latencies_seconds is not a histogram with %d buckets: %v", len(schedBuckets), f)
		}
		return
	}
	t.Fatal("go_sched_latencies_seconds missing from /metrics")
}

func TestRebucketNeverCountsALongerWait(t *testing.T) {
	h := &rtmetrics.Float64Histogram{
		Counts:  []uint64{1, 2, 3, 4},
		Buckets: []float64{math.Inf(-1), 10e-6, 20e-6, 5e-3, math.Inf(1)},
	}
	count, sum, cumulative := rebucket(h, []float64{16e-6, 4.096e-3, 8.192e-3})
	want := map[float64]uint64{16e-6: 1, 4.096e-3: 3, 8.192e-3: 6}
	if count != 10 || !maps.Equal(cumulative, want) {
		t.Errorf("count %d, buckets %v; want 10, %v", count, cumulative, want)
	}
	if wantSum := 2*10e-6 + 3*20e-6 + 4*5e-3; math.Abs(sum-wantSum) > 1e-12 {
		t.Errorf("sum %g, want %g (lower edges)", sum, wantSum)
	}
}
