package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Families whose values are read when Prometheus scrapes.
var (
	descTargetUp = prometheus.NewDesc(namespace+"_upstream_target_up",
		"1 when the target takes traffic (healthy and not ejected), 0 when it is out.", []string{"upstream", "target"}, nil)
	descConns = prometheus.NewDesc(namespace+"_upstream_connections",
		"Connections to a target: requests and WebSockets in flight (active) and pooled keep-alive connections (idle).",
		[]string{"upstream", "target", "state"}, nil)
	descWSOpen = prometheus.NewDesc(namespace+"_websocket_sessions_open",
		"WebSocket sessions being relayed now, by route and mode (raw or message).", []string{"route", "mode"}, nil)
	descWSMsgs = prometheus.NewDesc(namespace+"_websocket_messages_total",
		"WebSocket data messages relayed, by route, mode and direction (counted live).", []string{"route", "mode", "direction"}, nil)
	descWSBytes = prometheus.NewDesc(namespace+"_websocket_bytes_total",
		"WebSocket bytes relayed, by route, mode and direction: payloads in message mode, wire bytes in raw mode (counted live).",
		[]string{"route", "mode", "direction"}, nil)
	descInstances = prometheus.NewDesc(namespace+"_filter_instances",
		"Live filter instances, by plugin and state (idle, or in_use by a hook call).", []string{"plugin", "state"}, nil)
)

// scrapeCollector reports the values the proxy keeps anyway, read at
// scrape time rather than recorded on every change.
type scrapeCollector struct{ r *Registry }

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTargetUp, descConns, descWSOpen, descWSMsgs, descWSBytes, descInstances,
		descHookCalls, descHookDuration, descHookOutcomes, descHookFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	r.mu.Lock()
	src := r.upstreamSource
	plugins := make([]*pluginSource, 0, len(r.pluginSources))
	for s := range r.pluginSources {
		plugins = append(plugins, s)
	}
	hooks := make([]*Hook, 0, len(r.hooks))
	for _, h := range r.hooks {
		hooks = append(hooks, h)
	}
	r.mu.Unlock()
	for _, h := range hooks {
		h.collect(ch)
	}

	if src != nil {
		seen := make(map[[2]string]bool)
		src(func(t TargetState) {
			k := [2]string{t.Upstream, t.Target}
			if seen[k] {
				return // the same target listed twice: report it once
			}
			seen[k] = true
			up := 0.0
			if t.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descTargetUp, prometheus.GaugeValue, up, t.Upstream, t.Target)
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(t.Active), t.Upstream, t.Target, "active")
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(t.Idle), t.Upstream, t.Target, "idle")
		})
	}

	for k, s := range r.ws.snapshot() {
		mode := modes[k.mode]
		ch <- prometheus.MustNewConstMetric(descWSOpen, prometheus.GaugeValue, float64(s.open), k.route, mode)
		for d := range 2 {
			ch <- prometheus.MustNewConstMetric(descWSMsgs, prometheus.CounterValue, float64(s.msgs[d]), k.route, mode, directions[d])
			ch <- prometheus.MustNewConstMetric(descWSBytes, prometheus.CounterValue, float64(s.bytes[d]), k.route, mode, directions[d])
		}
	}

	// A plugin may have pools in several Sets while a reload drains.
	type counts struct{ live, idle int }
	byPlugin := make(map[string]counts)
	for _, s := range plugins {
		live, idle := s.read()
		c := byPlugin[s.plugin]
		c.live += live
		c.idle += idle
		byPlugin[s.plugin] = c
	}
	for name, n := range byPlugin {
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(n.idle), name, "idle")
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(max(n.live-n.idle, 0)), name, "in_use")
	}
}
