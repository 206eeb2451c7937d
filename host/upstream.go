package host

import (
	"log/slog"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// target is one backend of an upstream, with the state that decides whether
// it gets traffic.
type target struct {
	url *url.URL
	// active counts requests and WebSockets in flight, for least_conn.
	active atomic.Int64
	// healthy is the verdict of active health checks (true without them).
	healthy atomic.Bool
	// ejectedUntil (Unix nanoseconds) keeps a passively ejected target out.
	ejectedUntil atomic.Int64
	// failures counts consecutive connection errors, for passive ejection.
	failures atomic.Int32
}

func (t *target) available(now int64) bool {
	return t.healthy.Load() && t.ejectedUntil.Load() <= now
}

// pool is one [[upstream]]: its targets, how to choose between them, and
// how to reach them.
type pool struct {
	name     string
	cfg      config.Upstream
	targets  []*target
	balancer balancer
	client   *upstream.Client
	rp       *httputil.ReverseProxy
	health   *healthChecker // nil without active checks
	log      *slog.Logger
	// refs counts the generations that use the pool; the last one to be
	// retired closes it.
	refs atomic.Int32
}

func newPool(cfg config.Upstream, p *Proxy) (*pool, error) {
	pl := &pool{
		name:     cfg.Name,
		cfg:      cfg,
		balancer: newBalancer(cfg.Balance),
		log:      p.log.With("upstream", cfg.Name),
	}
	for _, raw := range cfg.Targets {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err // config validated it; keep the error anyway
		}
		t := &target{url: u}
		t.healthy.Store(true)
		pl.targets = append(pl.targets, t)
	}
	urls := make([]*url.URL, len(pl.targets))
	for i, t := range pl.targets {
		urls[i] = t.url
	}
	pl.client = upstream.New(cfg, urls)
	pl.rp = p.newReverseProxy(pl)
	if cfg.Health.Path != "" {
		pl.health = startHealthChecks(pl)
	}
	return pl, nil
}

// pick returns a target for the next request or WebSocket, or nil when every
// target is down.
func (pl *pool) pick() *target {
	return pl.balancer.pick(pl.targets, nowNano())
}

// availableCount returns how many targets take traffic now.
func (pl *pool) availableCount() int {
	now, n := nowNano(), 0
	for _, t := range pl.targets {
		if t.available(now) {
			n++
		}
	}
	return n
}

// connFailed records a connection error to t and ejects it after
// passive_failures in a row.
func (pl *pool) connFailed(t *target) {
	limit := pl.cfg.PassiveFailures
	if limit <= 0 {
		return
	}
	if int(t.failures.Add(1)) >= limit {
		t.failures.Store(0)
		until := time.Now().Add(pl.cfg.PassiveEjectFor.Duration)
		t.ejectedUntil.Store(until.UnixNano())
		pl.log.Warn("target ejected after connection errors",
			"target", t.url.String(), "failures", limit, "for", pl.cfg.PassiveEjectFor.Duration)
	}
}

// connOK records that t answered.
func (pl *pool) connOK(t *target) {
	if t.failures.Load() != 0 {
		t.failures.Store(0)
	}
}

// stopChecks stops the health checkers; the pool still serves requests in
// flight.
func (pl *pool) stopChecks() {
	if pl.health != nil {
		pl.health.stop()
	}
}

// hasTarget reports whether the pool lists the target with URL u.
func (pl *pool) hasTarget(u string) bool {
	for _, t := range pl.targets {
		if t.url.String() == u {
			return true
		}
	}
	return false
}

// unref drops one generation's hold and closes the pool after the last.
func (pl *pool) unref() {
	if pl.refs.Add(-1) == 0 {
		pl.close()
	}
}

// close releases the pool's idle connections once no request uses it.
func (pl *pool) close() {
	pl.stopChecks()
	pl.client.CloseIdle()
}
