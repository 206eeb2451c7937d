package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// validate reports every semantic error of c. bad names the sections that
// did not decode, which it skips (their errors are reported already).
func (p *parser) validate(c *Config, bad map[string]bool) {
	if !bad["server"] {
		p.validateServer(c.Server)
	}
	if !bad["admin"] && c.Admin.Listen != "" {
		if p.checkAddr("admin.listen", c.Admin.Listen) && c.Admin.Token == "" && !isLoopback(c.Admin.Listen) {
			p.errf("admin.listen", "%q is not a loopback address: set admin.token to expose the admin API", c.Admin.Listen)
		}
	}
	upstreams := p.validateUpstreams(c.Upstreams, bad)
	plugins := p.validatePlugins(c.Plugins, bad)
	p.validateRoutes(c.Routes, bad, upstreams, plugins)
	if !bad["shared"] {
		p.validateShared(c.Shared)
	}
}

func (p *parser) validateServer(s Server) {
	p.checkAddr("server.listen", s.Listen)
	if (s.TLSCert == "") != (s.TLSKey == "") {
		if s.TLSCert == "" {
			p.errf("server.tls_key", "tls_key is set without tls_cert")
		} else {
			p.errf("server.tls_cert", "tls_cert is set without tls_key")
		}
	}
	if s.MaxHeaderBytes < 8<<10 {
		p.errf("server.max_header_bytes", "must be at least 8KiB, got %s", s.MaxHeaderBytes)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"client_body_timeout", s.ClientBodyTimeout}, {"send_timeout", s.SendTimeout}} {
		if d.v.Duration < 0 {
			p.errf("server."+d.key, "must not be negative (\"0s\" turns it off)")
		}
	}
	switch s.EscapedSlashes {
	case "reject", "keep", "decode":
	default:
		p.errf("server.escaped_slashes", "unknown policy %q: want \"reject\", \"keep\" or \"decode\"", s.EscapedSlashes)
	}
	for j, tp := range s.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			p.errf(fmt.Sprintf("server.trusted_proxies[%d]", j), "want a CIDR (\"10.0.0.0/8\") or an IP address, got %q", tp)
		}
	}
	if s.WebSocket.MaxMessageSize < 125 {
		p.errf("server.websocket.max_message_size", "must be at least 125 bytes, got %s", s.WebSocket.MaxMessageSize)
	}
}

// validateUpstreams checks every [[upstream]] and returns the set of their
// names (those of sections that did not decode included, so routes naming
// them are not reported twice).
func (p *parser) validateUpstreams(ups []Upstream, bad map[string]bool) map[string]bool {
	names := map[string]bool{}
	for i, u := range ups {
		k := fmt.Sprintf("upstream[%d]", i)
		if bad[k] {
			names[u.Name] = true
			continue
		}
		switch {
		case u.Name == "":
			p.errf(k+".name", "missing: every upstream needs a name")
		case names[u.Name]:
			p.errf(k+".name", "duplicate upstream name %q", u.Name)
		}
		names[u.Name] = true
		p.validateUpstream(k, u)
	}
	return names
}

func (p *parser) validateUpstream(k string, u Upstream) {
	if len(u.Targets) == 0 {
		p.errf(k+".targets", "missing: at least one target URL is needed")
	}
	for j, t := range u.Targets {
		if err := checkTarget(t); err != "" {
			p.errf(fmt.Sprintf("%s.targets[%d]", k, j), "bad target %q: %s", t, err)
		}
	}
	if u.Balance != "round_robin" && u.Balance != "least_conn" {
		p.errf(k+".balance", "unknown balance %q: want \"round_robin\" or \"least_conn\"", u.Balance)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"connect_timeout", u.ConnectTimeout}, {"response_timeout", u.ResponseTimeout}, {"passive_eject_for", u.PassiveEjectFor},
		{"read_timeout", u.ReadTimeout}, {"send_timeout", u.SendTimeout}} {
		if d.v.Duration <= 0 {
			p.errf(k+"."+d.key, "must be positive")
		}
	}
	if u.MaxIdleConns < 0 {
		p.errf(k+".max_idle_conns", "must not be negative")
	}
	if u.PassiveFailures < 0 {
		p.errf(k+".passive_failures", "must not be negative (0 turns passive ejection off)")
	}
	p.validateHealth(k+".health", u.Health)
}

func (p *parser) validateHealth(k string, h Health) {
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		p.errf(k+".path", "must start with \"/\", got %q", h.Path)
	}
	if h.Interval.Duration <= 0 {
		p.errf(k+".interval", "must be positive")
	}
	if h.Timeout.Duration <= 0 {
		p.errf(k+".timeout", "must be positive")
	}
	if h.HealthyThreshold < 0 {
		p.errf(k+".healthy_threshold", "must be positive")
	}
	if h.UnhealthyThreshold < 0 {
		p.errf(k+".unhealthy_threshold", "must be positive")
	}
}

// validatePlugins checks every [[plugin]] and returns the set of their
// names.
func (p *parser) validatePlugins(pls []Plugin, bad map[string]bool) map[string]bool {
	names := map[string]bool{}
	for i, pl := range pls {
		k := fmt.Sprintf("plugin[%d]", i)
		if bad[k] {
			names[pl.Name] = true
			continue
		}
		switch {
		case pl.Name == "":
			p.errf(k+".name", "missing: every plugin needs a name")
		case names[pl.Name]:
			p.errf(k+".name", "duplicate plugin name %q", pl.Name)
		}
		names[pl.Name] = true
		p.validatePlugin(k, pl)
	}
	return names
}

func (p *parser) validatePlugin(k string, pl Plugin) {
	if pl.Module == "" {
		p.errf(k+".module", "missing: the path of the .wasm module")
	}
	if pl.SHA256 != "" {
		if b, err := hex.DecodeString(pl.SHA256); err != nil || len(b) != 32 {
			p.errf(k+".sha256", "want 64 hex digits, got %q", pl.SHA256)
		}
	}
	if pl.OnError != "deny" && pl.OnError != "allow" {
		p.errf(k+".on_error", "unknown on_error %q: want \"deny\" or \"allow\"", pl.OnError)
	}
	if pl.Timeout.Duration <= 0 {
		p.errf(k+".timeout", "must be positive")
	}
	switch {
	case pl.MemoryLimit < 64<<10:
		p.errf(k+".memory_limit", "must be at least 64KiB (one Wasm page), got %s", pl.MemoryLimit)
	case pl.MemoryLimit%(64<<10) != 0:
		// Memory grows in 64KiB pages: say so rather than round.
		down, up := pl.MemoryLimit/(64<<10)*(64<<10), (pl.MemoryLimit/(64<<10)+1)*(64<<10)
		p.errf(k+".memory_limit", "%s is not a whole number of 64KiB Wasm pages: use %s or %s", pl.MemoryLimit, down, up)
	}
	if pl.PoolSize < 0 {
		p.errf(k+".pool_size", "must not be negative")
	}
	p.validatePluginLoading(k, pl)
	p.validatePluginQuotas(k, pl)
}

// validatePluginLoading checks the limits on loading a plugin's module and
// its circuit breaker.
func (p *parser) validatePluginLoading(k string, pl Plugin) {
	if pl.MaxModuleSize < 8 {
		p.errf(k+".max_module_size", "must be at least 8B (a module header), got %s", pl.MaxModuleSize)
	}
	if pl.CompileTimeout.Duration <= 0 {
		p.errf(k+".compile_timeout", "must be positive")
	}
	if pl.BreakerFailures < 1 {
		p.errf(k+".breaker_failures", "must be at least 1, got %d", pl.BreakerFailures)
	}
	if pl.BreakerBackoff.Duration <= 0 {
		p.errf(k+".breaker_backoff", "must be positive")
	}
	if pl.BreakerMaxBackoff.Duration < pl.BreakerBackoff.Duration {
		p.errf(k+".breaker_max_backoff", "must be at least breaker_backoff (%s), got %s",
			pl.BreakerBackoff.Duration, pl.BreakerMaxBackoff.Duration)
	}
}

// validateRoutes checks every [[route]] against the upstreams and plugins
// defined, and that no two routes match the same host and path prefix.
func (p *parser) validateRoutes(routes []Route, bad, upstreams, plugins map[string]bool) {
	names := map[string]bool{}
	matches := map[string]string{}
	for i, r := range routes {
		k := fmt.Sprintf("route[%d]", i)
		if bad[k] {
			continue
		}
		if names[r.Name] {
			p.errf(k+".name", "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		if err := checkHost(r.Host); err != "" {
			p.errf(k+".host", "bad host %q: %s", r.Host, err)
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			p.errf(k+".path_prefix", "must start with \"/\", got %q", r.PathPrefix)
		}
		m := r.Host + " " + r.PathPrefix
		if r.Host == "*" {
			m = " " + r.PathPrefix
		}
		if other, ok := matches[m]; ok {
			p.errf(k, "matches the same host and path_prefix as %s", other)
		}
		matches[m] = k
		p.validateRouteTarget(k, r, upstreams)
		p.validateRoutePlugins(k, r.Plugins, plugins)
		p.validateRouteEdge(k, r)
	}
}

// validateRouteEdge checks the route's upgrades and forward_raw_path.
func (p *parser) validateRouteEdge(k string, r Route) {
	for j, u := range r.Upgrades {
		if !isToken(u) {
			p.errf(fmt.Sprintf("%s.upgrades[%d]", k, j), "%q is not an Upgrade token (such as \"websocket\" or \"h2c\")", u)
		}
	}
	if r.Redirect != "" && r.ForwardRawPath {
		p.errf(k+".forward_raw_path", "forward_raw_path is only for upstream routes")
	}
}

// ParsePrefix reads one trusted_proxies entry: a CIDR, or an IP address
// taken as the prefix holding only itself.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// isToken reports whether s is a non-empty RFC 9110 token (an Upgrade
// protocol name may carry "/version", which is a token too once split).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validateRouteTarget checks that r goes to exactly one of an upstream and
// a redirect, and the settings of either.
func (p *parser) validateRouteTarget(k string, r Route, upstreams map[string]bool) {
	switch {
	case r.Upstream != "" && r.Redirect != "":
		p.errf(k, "has both upstream and redirect: set exactly one")
	case r.Upstream == "" && r.Redirect == "":
		p.errf(k, "has neither upstream nor redirect: set exactly one")
	case r.Upstream != "" && !upstreams[r.Upstream]:
		p.errf(k+".upstream", "no [[upstream]] is named %q", r.Upstream)
	}
	if r.Redirect == "" {
		if r.Status != 0 {
			p.errf(k+".status", "status is only for redirect routes")
		}
		if r.KeepPath {
			p.errf(k+".keep_path", "keep_path is only for redirect routes")
		}
		return
	}
	if u, err := url.Parse(r.Redirect); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errf(k+".redirect", "want an absolute http(s) URL, got %q", r.Redirect)
	}
	switch r.Status {
	case 301, 302, 303, 307, 308:
	default:
		p.errf(k+".status", "redirect status must be 301, 302, 303, 307 or 308, got %d", r.Status)
	}
}

func (p *parser) validateRoutePlugins(k string, names []string, plugins map[string]bool) {
	seen := map[string]bool{}
	for j, name := range names {
		pk := fmt.Sprintf("%s.plugins[%d]", k, j)
		switch {
		case !plugins[name]:
			p.errf(pk, "no [[plugin]] is named %q", name)
		case seen[name]:
			p.errf(pk, "plugin %q is listed twice", name)
		}
		seen[name] = true
	}
}
