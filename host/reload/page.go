package reload

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/metrics"
)

// statusPage is the admin listener's front page: one self-contained HTML
// file (styles and script inline, nothing fetched from elsewhere) that
// polls GET /overview and redraws its tables in place.
//
//go:embed page.html
var statusPage []byte

// Overview is what GET /overview on the admin listener returns, and what
// the status page shows.
type Overview struct {
	host.Overview
	Plugins []PluginView `json:"plugins"`
	Reload  Status       `json:"reload"`
}

// PluginView is one plugin of the serving generation with its counters.
type PluginView struct {
	filter.PluginInfo
	Counters metrics.PluginCounters `json:"counters"`
}

func (r *Reloader) handlePage() {
	r.proxy.HandleAdmin("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// Nothing but this page's own inline code and same-origin fetches.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(statusPage)
	}))
	r.proxy.HandleAdmin("GET /overview", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r.Overview())
	}))
}

// Overview describes the serving generation: routes, upstreams, plugins
// with their counters, and the last reload.
func (r *Reloader) Overview() Overview {
	o := Overview{Overview: r.proxy.Overview(), Reload: r.Status()}
	r.stMu.Lock()
	d, _ := r.filters.(filter.Describer)
	r.stMu.Unlock()
	if d != nil {
		m := r.proxy.Metrics()
		for _, p := range d.DescribePlugins() {
			o.Plugins = append(o.Plugins, PluginView{PluginInfo: p, Counters: m.PluginCounters(p.Name)})
		}
	}
	return o
}
