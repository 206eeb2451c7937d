package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// RouteCounters are a route's totals so far, for the status page.
type RouteCounters struct {
	Requests   float64 `json:"requests"`
	Errors5xx  float64 `json:"errors_5xx"`
	WSOpen     int     `json:"websockets_open"`
	WSMessages uint64  `json:"websocket_messages"`
}

// RouteCounters reads the totals of the route named name.
func (r *Registry) RouteCounters(name string) RouteCounters {
	r.mu.Lock()
	rt := r.routes[name]
	r.mu.Unlock()
	var c RouteCounters
	if rt == nil {
		return c
	}
	for i := range rt.byClass {
		if cs := rt.byClass[i].Load(); cs != nil {
			c.Requests += read(cs.requests)
			if i == 4 {
				c.Errors5xx = read(cs.requests)
			}
		}
	}
	for k, s := range r.ws.snapshot() {
		if k.route == name {
			c.WSOpen += s.open
			c.WSMessages += s.msgs[0] + s.msgs[1]
		}
	}
	return c
}

// PluginCounters are a plugin's totals so far, for the status page.
type PluginCounters struct {
	Calls    uint64 `json:"calls"`
	Failures uint64 `json:"failures"`
}

// PluginCounters reads the totals of the plugin named name, over its hooks.
func (r *Registry) PluginCounters(name string) PluginCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c PluginCounters
	for k, h := range r.hooks {
		if k[0] != name {
			continue
		}
		for i := range h.buckets {
			c.Calls += h.buckets[i].Load()
		}
		c.Failures += h.outcomes[OutcomeFailure].Load()
	}
	return c
}

func read(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil || d.Counter == nil {
		return 0
	}
	return d.Counter.GetValue()
}
