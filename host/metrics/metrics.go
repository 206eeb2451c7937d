// Package metrics holds Sluice's Prometheus metrics: every family the proxy
// exports on the admin listener's /metrics, and the handles through which
// the proxy core, the WebSocket relay, the filter host and the reloader
// record into them.
//
// Recording is built to cost nothing measurable on the request path. Label
// values are resolved once, when a generation is built: a Route, a Target or
// a Hook handle holds the Prometheus children for its labels, so recording
// is an atomic add or a histogram observation, never a map lookup or a label
// hash. Handles are kept by name for the life of the Registry, so counters
// carry on across reloads instead of starting again from zero. Values the
// proxy already keeps (target health, pooled connections, live WebSocket
// counters, instances) are read when Prometheus scrapes, not on every
// change.
//
// Label sets are bounded by the config: route, upstream, target, plugin and
// hook names, status classes, directions and a fixed set of close codes and
// causes. Paths, client addresses and request ids never become labels.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every family.
const namespace = "sluice"

// Buckets of the duration histograms, in seconds.
var (
	// httpBuckets spans a cached answer to a slow upstream.
	httpBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// hookBuckets spans a trivial guest call (~2µs) to the deadlines
	// operators set (10ms by default).
	hookBuckets = []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, .01, .025, .05, .1, 1}
	// reloadBuckets spans a no-op reload to compiling a large Go filter.
	reloadBuckets = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Registry owns every Sluice metric family and the handles that record
// into them. One Registry serves a process; its zero value is not usable:
// call New.
type Registry struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpBytesIn  *prometheus.CounterVec
	httpBytesOut *prometheus.CounterVec
	httpErrors   *prometheus.CounterVec

	upDuration  *prometheus.HistogramVec
	upEjections *prometheus.CounterVec
	upChecks    *prometheus.CounterVec

	wsTotal  *prometheus.CounterVec
	wsCloses *prometheus.CounterVec

	instCreated *prometheus.CounterVec
	guestMemory *prometheus.GaugeVec

	reloads        *prometheus.CounterVec
	reloadDuration prometheus.Histogram
	generation     prometheus.Gauge
	generationAt   prometheus.Gauge

	mu      sync.Mutex
	routes  map[string]*Route
	targets map[[2]string]*Target
	plugins map[string]*Plugin
	hooks   map[[2]string]*Hook
	// ws holds the WebSocket traffic of sessions that ended, and the
	// source of live sessions' counters (see websocket.go).
	ws wsTraffic
	// upstreamSource and pluginSources are read at scrape time.
	upstreamSource func(func(TargetState))
	pluginSources  map[*pluginSource]struct{}
}

// New returns a Registry with every Sluice family registered, plus the
// process and Go runtime collectors and sluice_build_info.
func New(build BuildInfo) *Registry {
	r := &Registry{
		reg:           prometheus.NewRegistry(),
		routes:        make(map[string]*Route),
		targets:       make(map[[2]string]*Target),
		plugins:       make(map[string]*Plugin),
		hooks:         make(map[[2]string]*Hook),
		pluginSources: make(map[*pluginSource]struct{}),
	}
	r.ws.sums = make(map[wsKey]*wsSums)
	f := factory{r.reg}

	r.httpRequests = f.counter("http_requests_total", "HTTP requests answered, by route and status class (1xx..5xx).", "route", "class")
	r.httpDuration = f.histogram("http_request_duration_seconds", "Time from a request's arrival to the end of its response, by route and status class.", httpBuckets, "route", "class")
	r.httpBytesIn = f.counter("http_request_body_bytes_total", "Request body bytes received from clients, by route.", "route")
	r.httpBytesOut = f.counter("http_response_body_bytes_total", "Response body bytes sent to clients, by route.", "route")
	r.httpErrors = f.counter("http_proxy_errors_total", "502, 503 and 504 answers the proxy made itself, by route, status code and cause.", "route", "code", "cause")

	r.upDuration = f.histogram("upstream_request_duration_seconds", "Time from sending a request to a target to its response headers (or the failure), by upstream and target.", httpBuckets, "upstream", "target")
	r.upEjections = f.counter("upstream_ejections_total", "Targets taken out of rotation after passive_failures connection errors in a row.", "upstream", "target")
	r.upChecks = f.counter("upstream_health_checks_total", "Active health check probes, by result (success or failure).", "upstream", "target", "result")

	r.wsTotal = f.counter("websocket_sessions_total", "WebSocket sessions upgraded, by route and mode (raw or message).", "route", "mode")
	r.wsCloses = f.counter("websocket_closes_total", "WebSocket sessions ended, by route, close code and the side that closed first (client, upstream or proxy).", "route", "code", "closer")

	r.instCreated = f.counter("filter_instances_created_total", "Filter instances instantiated and configured, by plugin.", "plugin")
	r.guestMemory = f.gauge("filter_memory_bytes", "Linear memory of a plugin's live instances, as of their last call, by plugin.", "plugin")

	r.reloads = f.counter("reloads_total", "Reload attempts, by result (loaded, unchanged, failed).", "result")
	r.reloadDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "reload_duration_seconds",
		Help: "Time a reload took, from its trigger to the swap or the failure.", Buckets: reloadBuckets,
	})
	r.generation = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "generation", Help: "Number of the config generation serving (1 for the one loaded at start).",
	})
	r.generationAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "generation_loaded_timestamp_seconds", Help: "When the serving generation was swapped in, in Unix seconds.",
	})
	r.reg.MustRegister(r.reloadDuration, r.generation, r.generationAt)
	for _, res := range []string{"loaded", "unchanged", "failed"} {
		r.reloads.WithLabelValues(res)
	}

	r.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		buildInfoCollector(build),
		&scrapeCollector{r},
	)
	return r
}

// Handler serves the exposition in the Prometheus text format (or what
// the scraper negotiates).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// Gatherer returns the registry, for code that reads the current values
// (the status page).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// factory creates and registers families under the namespace.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(v)
	return v
}
