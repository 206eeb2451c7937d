package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target records the traffic and health checks of one upstream target.
type Target struct {
	duration  prometheus.Observer
	ejections prometheus.Counter
	checkOK   prometheus.Counter
	checkFail prometheus.Counter
}

// Target returns the handle of target (its host:port) in upstream,
// creating it the first time.
func (r *Registry) Target(upstream, target string) *Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{upstream, target}
	if t := r.targets[k]; t != nil {
		return t
	}
	t := &Target{
		duration:  r.upDuration.WithLabelValues(upstream, target),
		ejections: r.upEjections.WithLabelValues(upstream, target),
		checkOK:   r.upChecks.WithLabelValues(upstream, target, "success"),
		checkFail: r.upChecks.WithLabelValues(upstream, target, "failure"),
	}
	r.targets[k] = t
	return t
}

// Exchange records how long a request to the target took to get its
// response headers, or to fail.
func (t *Target) Exchange(d time.Duration) { t.duration.Observe(d.Seconds()) }

// Ejected records a passive ejection.
func (t *Target) Ejected() { t.ejections.Inc() }

// HealthCheck records one active health check probe.
func (t *Target) HealthCheck(ok bool) {
	if ok {
		t.checkOK.Inc()
	} else {
		t.checkFail.Inc()
	}
}

// TargetState is a target's state as the serving generation sees it,
// read at scrape time.
type TargetState struct {
	Upstream, Target string
	// Up is true when the target takes traffic: healthy and not ejected.
	Up bool
	// Active counts requests and WebSockets in flight to it; Idle the
	// keep-alive connections pooled for it.
	Active, Idle int
}

// SetUpstreamSource sets the function that reports every target of the
// serving generation when Prometheus scrapes.
func (r *Registry) SetUpstreamSource(f func(emit func(TargetState))) {
	r.mu.Lock()
	r.upstreamSource = f
	r.mu.Unlock()
}
