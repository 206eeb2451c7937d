package host

import (
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
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
		mux.Handle("GET /metrics", p.m.Handler())
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
		} else if msg := browserGuard(r); msg != "" {
			http.Error(w, msg, http.StatusForbidden)
			return
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

// browserGuard protects an admin listener without a token, which trusts
// whoever can reach its loopback address, from the one client that reaches
// loopback on someone else's behalf: a browser. It returns why r is
// refused, or "".
//
//   - DNS rebinding: a page on evil.example whose name is made to resolve
//     to 127.0.0.1 sends Host: evil.example. Only a loopback name or
//     address is accepted as Host.
//   - Cross-site requests: a browser sends a form POST (or a fetch in
//     no-cors mode) to any address without asking first. A state-changing
//     request is refused when the browser says it is cross-site
//     (Sec-Fetch-Site), when its Origin is not the admin address itself,
//     or when it carries a body type a form can send, since old browsers
//     send neither header. curl and scripts send none of these.
func browserGuard(r *http.Request) string {
	if !loopbackHost(r.Host) {
		return "host: admin without a token answers only to a loopback Host"
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return "host: cross-site admin request refused"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "host: cross-origin admin request refused"
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
			return "host: admin requests with a form body type are refused (a browser can send them cross-site)"
		}
	}
	return ""
}

// loopbackHost reports whether a Host header names this machine's
// loopback: "localhost" (or a name under .localhost), or a loopback IP,
// with or without a port.
func loopbackHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
