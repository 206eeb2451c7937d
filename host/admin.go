package host

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
)

// HandleAdmin adds an endpoint to the admin listener, behind the admin token
// like the built-in ones. Call it before Run.
func (p *Proxy) HandleAdmin(pattern string, h http.Handler) {
	p.adminMux().Handle(pattern, h)
}

func (p *Proxy) adminMux() *http.ServeMux {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if p.srv.admin == nil {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", p.healthz)
		mux.HandleFunc("GET /readyz", p.readyz)
		p.srv.admin = mux
	}
	return p.srv.admin
}

// adminHandler serves the admin API, checking "Authorization: Bearer
// <token>" on every endpoint when admin.token is set.
func (p *Proxy) adminHandler() http.Handler {
	mux := p.adminMux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := p.gen.Load().cfg.Admin.Token; token != "" {
			got := r.Header.Get("Authorization")
			want := "Bearer " + token
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sluice admin"`)
				http.Error(w, "host: admin token required", http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// healthz answers 200 while the process serves: liveness only.
func (p *Proxy) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

type upstreamStatus struct {
	Targets   int `json:"targets"`
	Available int `json:"available"`
}

// readyz answers 200 when the proxy should get traffic: its listeners serve,
// no shutdown has begun, and, when upstreams are configured, at least one
// of them has a target up. A partly degraded proxy still serves some routes
// and stays ready; one whose every target is down can serve nothing but
// errors and redirects, and a load balancer in front should prefer another.
// The body details each upstream.
func (p *Proxy) readyz(w http.ResponseWriter, r *http.Request) {
	g := p.gen.Load()
	ups := make(map[string]upstreamStatus, len(g.pools))
	anyUp := len(g.pools) == 0
	// A map encodes with its keys sorted: no need to sort the names here.
	for name, pl := range g.pools {
		n := pl.availableCount()
		ups[name] = upstreamStatus{Targets: len(pl.targets), Available: n}
		anyUp = anyUp || n > 0
	}
	serving := p.srv.ready.Load()
	ready := serving && anyUp
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(struct {
		Ready     bool                      `json:"ready"`
		Serving   bool                      `json:"serving"`
		Upstreams map[string]upstreamStatus `json:"upstreams"`
	}{ready, serving, ups})
}
