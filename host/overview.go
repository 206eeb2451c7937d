package host

import (
	"time"

	"github.com/sluiceproxy/sluice/host/metrics"
)

// Overview is what the proxy serves now, for the status page: its
// generation, routes and upstreams with their live state and counters.
type Overview struct {
	Generation uint64         `json:"generation"`
	LoadedAt   time.Time      `json:"loaded_at"`
	Routes     []RouteView    `json:"routes"`
	Upstreams  []UpstreamView `json:"upstreams"`
}

// RouteView is one route: how it matches, where it goes, its filter chain
// in order, and its counters.
type RouteView struct {
	Name       string                `json:"name"`
	Host       string                `json:"host,omitempty"`
	PathPrefix string                `json:"path_prefix"`
	Upstream   string                `json:"upstream,omitempty"`
	Redirect   string                `json:"redirect,omitempty"`
	Plugins    []string              `json:"plugins"`
	Counters   metrics.RouteCounters `json:"counters"`
}

// UpstreamView is one upstream and the state of its targets.
type UpstreamView struct {
	Name    string       `json:"name"`
	Balance string       `json:"balance"`
	Health  string       `json:"health_check,omitempty"` // the probed path, when active checks run
	Targets []TargetView `json:"targets"`
}

// TargetView is one target: whether it takes traffic and why not, and its
// connections.
type TargetView struct {
	URL     string `json:"url"`
	Up      bool   `json:"up"`
	Healthy bool   `json:"healthy"`
	Ejected bool   `json:"ejected"`
	Active  int64  `json:"active"`
	Idle    int    `json:"idle"`
}

// Overview describes the serving generation.
func (p *Proxy) Overview() Overview {
	g := p.gen.Load()
	o := Overview{Generation: g.num, LoadedAt: g.loadedAt}
	for _, rc := range g.cfg.Routes {
		o.Routes = append(o.Routes, RouteView{
			Name: rc.Name, Host: rc.Host, PathPrefix: rc.PathPrefix,
			Upstream: rc.Upstream, Redirect: rc.Redirect,
			Plugins:  append([]string{}, rc.Plugins...),
			Counters: p.m.RouteCounters(rc.Name),
		})
	}
	now := nowNano()
	for _, uc := range g.cfg.Upstreams {
		pl := g.pools[uc.Name]
		if pl == nil {
			continue
		}
		u := UpstreamView{Name: pl.name, Balance: uc.Balance, Health: uc.Health.Path}
		for _, t := range pl.targets {
			u.Targets = append(u.Targets, TargetView{
				URL:     t.url.String(),
				Up:      t.available(now),
				Healthy: t.healthy.Load(),
				Ejected: t.ejectedUntil.Load() > now,
				Active:  t.active.Load(),
				Idle:    pl.client.IdleConnsTo(t.url),
			})
		}
		o.Upstreams = append(o.Upstreams, u)
	}
	return o
}
