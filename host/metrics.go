package host

import (
	"io"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/metrics"
)

// epoch is when the process started; monoNow reads the monotonic clock
// alone (time.Now reads the wall clock too).
var epoch = time.Now()

func monoNow() time.Duration { return time.Since(epoch) }

// elapsed is the request's duration as the metrics recorded it, so the
// access log does not read the clock again.
func (rec *accessRecord) elapsed(start time.Time) time.Duration {
	if rec.took > 0 {
		return rec.took
	}
	return time.Since(start)
}

// noRoute is the route label of requests that matched no route (404).
const noRoute = "(none)"

// Metrics returns the registry the proxy records into (Options.Metrics, or
// its own when none was given); its families are served on the admin
// listener's /metrics.
func (p *Proxy) Metrics() *metrics.Registry { return p.m }

// initMetrics sets up recording: the registry, and the source of the
// upstream gauges, read from the serving generation at scrape time.
func (p *Proxy) initMetrics(m *metrics.Registry) {
	if m == nil {
		m = metrics.New(metrics.ReadBuildInfo())
	}
	p.m = m
	p.noRoute = m.Route(noRoute)
	m.SetUpstreamSource(p.upstreamStates)
}

// upstreamStates reports every target of the serving generation.
func (p *Proxy) upstreamStates(emit func(metrics.TargetState)) {
	g := p.gen.Load()
	if g == nil {
		return
	}
	now := nowNano()
	for _, pl := range g.pools {
		for _, t := range pl.targets {
			emit(metrics.TargetState{
				Upstream: pl.name, Target: t.url.Host,
				Up:     t.available(now),
				Active: int(t.active.Load()),
				Idle:   pl.client.IdleConnsTo(t.url),
			})
		}
	}
}

// recordRequest records the answer to an HTTP request into its route's
// metrics when its handler returns. For a WebSocket upgrade that is the
// handshake's answer (101, or the refusal); the session that follows
// records itself (see serveUpgrade).
func (p *Proxy) recordRequest(lw *logWriter, rec *accessRecord, start time.Time) {
	rm := rec.rm
	if rm == nil {
		rm = p.noRoute
	}
	status, out := lw.status, lw.bytes
	if rec.websocket && rec.status != 0 {
		status, out = rec.status, rec.bytes
	}
	took := time.Since(start)
	if rec.wsLog == nil {
		rec.took = took // a running session's log line gives its whole length
	}
	rm.Request(status, took, rec.body.n, out)
	if rec.cause != 0 {
		rm.ProxyError(metrics.Cause(rec.cause - 1))
	}
}

// proxyError notes that the proxy answered the request itself, for cause.
func (rec *accessRecord) proxyError(c metrics.Cause) { rec.cause = int8(c) + 1 }

// filterReply notes a local response from the chain: a filter's decision,
// or the failure policy's answer when a filter failed.
func (rec *accessRecord) filterReply(r *filter.Reply) {
	if r.Failure != "" {
		rec.filterErr = r.Failure
		rec.proxyError(metrics.CauseFilterFailure)
		return
	}
	rec.replied = true
}

// failureBody is the body of the answer to a request a filter failed: short,
// and carrying the request id an operator looks up in the log.
func failureBody(id string) []byte {
	return []byte("host: a filter failed on this request (request id " + id + ")\n")
}

// countingBody counts the request body bytes the proxy read from the
// client.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// countBody puts the request's body behind rec's counter, unless it has
// none.
func (rec *accessRecord) countBody(r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		rec.body.ReadCloser = r.Body
		r.Body = &rec.body
	}
}

// dialCause is the cause of a WebSocket handshake that could not reach the
// upstream: the relay answered 504 for a timeout, 502 otherwise.
func dialCause(status int) metrics.Cause {
	if status == http.StatusGatewayTimeout {
		return metrics.CauseUpstreamTimeout
	}
	return metrics.CauseUnreachable
}
