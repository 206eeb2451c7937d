package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cause is why the proxy answered 502, 503 or 504 itself.
type Cause uint8

// The causes of the proxy's own error answers.
const (
	// CauseUnreachable: the target refused or did not accept the
	// connection (502).
	CauseUnreachable Cause = iota
	// CauseUpstreamFailed: the exchange with the target broke, or its
	// response could not be used (502).
	CauseUpstreamFailed
	// CauseUpstreamTimeout: no response headers within response_timeout,
	// or a WebSocket handshake past handshake_timeout (504).
	CauseUpstreamTimeout
	// CauseNoHealthyTarget: every target of the upstream is out (503).
	CauseNoHealthyTarget
	// CauseFilterFailure: a filter failed under on_error = "deny" (503).
	CauseFilterFailure
	// CauseShuttingDown: a WebSocket upgrade arrived during shutdown (503).
	CauseShuttingDown
	numCauses
)

var causeLabels = [numCauses][2]string{
	CauseUnreachable:     {"502", "upstream_unreachable"},
	CauseUpstreamFailed:  {"502", "upstream_failed"},
	CauseUpstreamTimeout: {"504", "upstream_timeout"},
	CauseNoHealthyTarget: {"503", "no_healthy_target"},
	CauseFilterFailure:   {"503", "filter_failure"},
	CauseShuttingDown:    {"503", "shutting_down"},
}

// String returns the cause's label value.
func (c Cause) String() string { return causeLabels[c][1] }

// classes are the status class label values; index status/100 - 1.
var classes = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Route records one route's traffic. Get it from Registry.Route when a
// generation is built; every method is safe for concurrent use and does no
// label lookup.
type Route struct {
	name     string
	reg      *Registry
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	wsTotal  [2]prometheus.Counter // by mode: 0 raw, 1 message
	// The series of a status class, an error cause or a close code are
	// created the first time one happens: a route sees few of them, and
	// 85 histogram series per route for classes it never answers with
	// would weigh on every scrape. After that, a load and a nil check.
	byClass [5]atomic.Pointer[classSeries]
	errors  [numCauses]atomic.Pointer[prometheus.Counter]
	closes  [numCloseCodes][3]atomic.Pointer[prometheus.Counter]
}

// classSeries are a route's series for one status class.
type classSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// Route returns the handle of the route named name, creating it (and its
// series) the first time. The same name always gets the same handle, so a
// route that survives a reload keeps counting.
func (r *Registry) Route(name string) *Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.routes[name]; rt != nil {
		return rt
	}
	rt := &Route{name: name, reg: r}
	rt.bytesIn = r.httpBytesIn.WithLabelValues(name)
	rt.bytesOut = r.httpBytesOut.WithLabelValues(name)
	rt.wsTotal[0] = r.wsTotal.WithLabelValues(name, "raw")
	rt.wsTotal[1] = r.wsTotal.WithLabelValues(name, "message")
	r.routes[name] = rt
	return rt
}

// Name returns the route's name.
func (rt *Route) Name() string { return rt.name }

// classIndex maps a status to its class; a status outside 100..599 (none
// written: net/http sends 200) counts as 2xx or 5xx.
func classIndex(status int) int {
	c := status / 100
	switch {
	case status == 0:
		return 1
	case c < 1:
		return 0
	case c > 5:
		return 4
	}
	return c - 1
}

// Request records one answered HTTP request: its status, how long it took
// and its body bytes in each direction.
func (rt *Route) Request(status int, d time.Duration, in, out int64) {
	i := classIndex(status)
	cs := rt.byClass[i].Load()
	if cs == nil {
		cs = rt.class(i)
	}
	cs.requests.Inc()
	cs.duration.Observe(d.Seconds())
	if in > 0 {
		rt.bytesIn.Add(float64(in))
	}
	if out > 0 {
		rt.bytesOut.Add(float64(out))
	}
}

// class creates the series of status class i, once.
func (rt *Route) class(i int) *classSeries {
	r := rt.reg
	cs := &classSeries{
		requests: r.httpRequests.WithLabelValues(rt.name, classes[i]),
		duration: r.httpDuration.WithLabelValues(rt.name, classes[i]),
	}
	rt.byClass[i].CompareAndSwap(nil, cs)
	return rt.byClass[i].Load()
}

// ProxyError records an error answer the proxy made itself.
func (rt *Route) ProxyError(c Cause) {
	lazyInc(&rt.errors[c], func() prometheus.Counter {
		return rt.reg.httpErrors.WithLabelValues(rt.name, causeLabels[c][0], causeLabels[c][1])
	})
}

// lazyInc increments the counter in slot, creating it with mk the first
// time.
func lazyInc(slot *atomic.Pointer[prometheus.Counter], mk func() prometheus.Counter) {
	c := slot.Load()
	if c == nil {
		v := mk()
		slot.CompareAndSwap(nil, &v)
		c = slot.Load()
	}
	(*c).Inc()
}

// Close codes become one of a fixed set of label values: the codes RFC 6455
// and the IANA registry define, and one value per range that applications
// and libraries pick from.
const numCloseCodes = 16 + 3

// closeCodeIndex maps a close code to its label slot.
func closeCodeIndex(code int) int {
	switch {
	case code >= 1000 && code <= 1015:
		return code - 1000
	case code >= 3000 && code <= 3999:
		return 16
	case code >= 4000 && code <= 4999:
		return 17
	}
	return 18
}

func closeCodeLabel(i int) string {
	switch i {
	case 16:
		return "3xxx"
	case 17:
		return "4xxx"
	case 18:
		return "other"
	}
	return strconv.Itoa(1000 + i)
}

// closers are the label values of who ended a WebSocket session first.
var closers = [3]string{"client", "upstream", "proxy"}

func closerIndex(by string) int {
	switch by {
	case "client":
		return 0
	case "upstream":
		return 1
	}
	return 2
}

// wsClose records how a WebSocket session ended.
func (rt *Route) wsClose(code int, by string) {
	ci, bi := closeCodeIndex(code), closerIndex(by)
	lazyInc(&rt.closes[ci][bi], func() prometheus.Counter {
		return rt.reg.wsCloses.WithLabelValues(rt.name, closeCodeLabel(ci), closers[bi])
	})
}
