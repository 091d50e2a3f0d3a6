// Package metrics holds socketd's Prometheus metrics: HTTP requests by
// listener, route and plugin (count, latency, in flight), plugin restarts
// and states, and the outcome of the last reload. The admin listener
// serves them on /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/socketd/socketd/daemon/httpfront"
)

// Metrics is one daemon's set of metrics. Its zero value is not usable;
// call New.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	reloads  *prometheus.CounterVec
	reloadOK prometheus.Gauge
	reloadAt prometheus.Gauge

	routes sync.Map // routeKey -> *routeMetrics, the route's current plugin

	mu      sync.Mutex
	plugins func() []Plugin
}

// Plugin is a plugin's state at scrape time.
type Plugin struct {
	Name     string
	State    string // running, restarting, failed
	InFlight int    // calls holding a concurrency slot
}

// pluginStates are the values of socketd_plugin_state's state label.
var pluginStates = []string{"running", "restarting", "failed"}

// New registers socketd's metrics and the Go runtime's and process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socketd_http_requests_total",
			Help: "HTTP requests answered, by listener, route, plugin and status code. Requests no route matched have route and plugin empty.",
		}, []string{"listener", "route", "plugin", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "socketd_http_request_duration_seconds",
			Help:    "Time from the request's headers to the end of the answer, by listener, route and plugin.",
			Buckets: prometheus.DefBuckets,
		}, []string{"listener", "route", "plugin"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socketd_http_requests_in_flight",
			Help: "HTTP requests being served now, by listener, route and plugin.",
		}, []string{"listener", "route", "plugin"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socketd_plugin_restarts_total",
			Help: "Plugin processes replaced after a crash, by plugin.",
		}, []string{"plugin"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socketd_config_reloads_total",
			Help: "Config reloads, by result (success or failure).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socketd_config_last_reload_successful",
			Help: "Whether the last config load (start or reload) succeeded (1) or was rejected (0).",
		}),
		reloadAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socketd_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load (start or reload).",
		}),
	}
	m.reloadOK.Set(1)
	m.reloadAt.SetToCurrentTime()
	m.reg.MustRegister(m.requests, m.duration, m.inflight, m.restarts, m.reloads, m.reloadOK, m.reloadAt,
		(*pluginCollector)(m),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "socketd_http_parked_connections",
			Help: "Idle keep-alive connections parked: watched by epoll, without a goroutine or buffers, until their next request.",
		}, func() float64 { return float64(httpfront.ParkedConnections()) }),
		collectors.NewGoCollector(), schedLatencies{}, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry the admin listener serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetPlugins tells the collector how to list the plugins at scrape time.
func (m *Metrics) SetPlugins(f func() []Plugin) {
	m.mu.Lock()
	m.plugins = f
	m.mu.Unlock()
}

// PluginRestarted returns the function a plugin calls each time its
// process is replaced after a crash.
func (m *Metrics) PluginRestarted(plugin string) func() {
	c := m.restarts.WithLabelValues(plugin)
	return c.Inc
}

// Reloaded records a reload's outcome.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
		m.reloadAt.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.reloadOK.Set(0)
}

// ObserveRequest counts one finished request and its latency, under the
// plugin its route was built with (Route). The HTTP front calls it from the
// record its access log line is made of; requests no route served (404,
// 405) have an empty route.
func (m *Metrics) ObserveRequest(listener, route string, status int, took time.Duration) {
	key := routeKey{listener, route}
	v, ok := m.routes.Load(key)
	if !ok {
		v, _ = m.routes.LoadOrStore(key, m.newRoute(listener, route, ""))
	}
	rm := v.(*routeMetrics)
	rm.count(status)
	rm.duration.Observe(took.Seconds())
}

// Route counts the requests of one route in flight, and binds the route to
// its plugin for ObserveRequest (a reload that moves a route to another
// plugin binds it anew), so no labels are built per request.
func (m *Metrics) Route(listener, route, plugin string, next http.Handler) http.Handler {
	rm := m.newRoute(listener, route, plugin)
	m.routes.Store(routeKey{listener, route}, rm)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rm.inflight.Inc()
		defer rm.inflight.Dec()
		next.ServeHTTP(w, r)
	})
}

// routeKey names one route of one listener.
type routeKey struct{ listener, route string }

// routeMetrics are one route's series, looked up once rather than per
// request.
type routeMetrics struct {
	requests *prometheus.CounterVec // curried: only code is left
	codes    sync.Map               // int -> prometheus.Counter
	duration prometheus.Observer
	inflight prometheus.Gauge
}

func (m *Metrics) newRoute(listener, route, plugin string) *routeMetrics {
	labels := prometheus.Labels{"listener": listener, "route": route, "plugin": plugin}
	return &routeMetrics{
		requests: m.requests.MustCurryWith(labels),
		duration: m.duration.With(labels),
		inflight: m.inflight.With(labels),
	}
}

func (rm *routeMetrics) count(code int) {
	c, ok := rm.codes.Load(code)
	if !ok {
		c, _ = rm.codes.LoadOrStore(code, rm.requests.WithLabelValues(strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

// pluginCollector reports the plugins' states at scrape time.
type pluginCollector Metrics

var (
	upDesc = prometheus.NewDesc("socketd_plugin_up",
		"Whether the plugin has a live process (1) or is restarting or failed (0).", []string{"plugin"}, nil)
	stateDesc = prometheus.NewDesc("socketd_plugin_state",
		"The plugin's state: 1 for the state it is in (running, restarting, failed), 0 for the others.", []string{"plugin", "state"}, nil)
	pluginInflightDesc = prometheus.NewDesc("socketd_plugin_calls_in_flight",
		"Calls (requests, datagrams) holding one of the plugin's max_concurrency slots.", []string{"plugin"}, nil)
)

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- stateDesc
	ch <- pluginInflightDesc
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.plugins
	c.mu.Unlock()
	if f == nil {
		return
	}
	for _, p := range f() {
		up := 0.0
		if p.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, p.Name)
		for _, s := range pluginStates {
			v := 0.0
			if s == p.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, p.Name, s)
		}
		ch <- prometheus.MustNewConstMetric(pluginInflightDesc, prometheus.GaugeValue, float64(p.InFlight), p.Name)
	}
}
