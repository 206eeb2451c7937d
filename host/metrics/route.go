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
	requests [5]prometheus.Counter
	duration [5]prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	errors   [numCauses]prometheus.Counter
	wsTotal  [2]prometheus.Counter // by mode: 0 raw, 1 message
	// closes are created on first use: most routes see few distinct codes.
	closes [numCloseCodes][3]atomic.Pointer[prometheus.Counter]
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
	for i, c := range classes {
		rt.requests[i] = r.httpRequests.WithLabelValues(name, c)
		rt.duration[i] = r.httpDuration.WithLabelValues(name, c)
	}
	rt.bytesIn = r.httpBytesIn.WithLabelValues(name)
	rt.bytesOut = r.httpBytesOut.WithLabelValues(name)
	for i, l := range causeLabels {
		rt.errors[i] = r.httpErrors.WithLabelValues(name, l[0], l[1])
	}
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
	rt.requests[i].Inc()
	rt.duration[i].Observe(d.Seconds())
	if in > 0 {
		rt.bytesIn.Add(float64(in))
	}
	if out > 0 {
		rt.bytesOut.Add(float64(out))
	}
}

// ProxyError records an error answer the proxy made itself.
func (rt *Route) ProxyError(c Cause) { rt.errors[c].Inc() }

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
	slot := &rt.closes[ci][bi]
	c := slot.Load()
	if c == nil {
		v := rt.reg.wsCloses.WithLabelValues(rt.name, closeCodeLabel(ci), closers[bi])
		slot.CompareAndSwap(nil, &v)
		c = slot.Load()
	}
	(*c).Inc()
}
