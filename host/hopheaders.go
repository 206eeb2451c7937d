package host

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// dropConnectionHeaders applies the client's Connection header to its own
// request, once, before filters run: every header it names is removed,
// then Connection itself. What the proxy and the filters add afterwards
// (X-Forwarded-*, X-Request-Id, a filter's X-User) can therefore never be
// removed by a name the client listed, on the HTTP path or the WebSocket
// path.
//
// Upgrade is kept only for tokens in allowed (the route's upgrades), and
// then Connection is set back to "Upgrade" alone, which is what the
// forwarding code needs to recognise the switch. Any other Upgrade token is
// dropped as a hop-by-hop header. It returns the upgrade kept, or "".
func dropConnectionHeaders(h http.Header, allowed []string) string {
	wantsUpgrade := false
	for _, v := range h["Connection"] {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			name = strings.TrimSpace(name)
			switch {
			case name == "":
			case strings.EqualFold(name, "upgrade"):
				wantsUpgrade = true
			default:
				h.Del(name)
			}
		}
	}
	delete(h, "Connection")
	up := ""
	if wantsUpgrade {
		up = allowedUpgrade(h["Upgrade"], allowed)
	}
	if up == "" {
		delete(h, "Upgrade")
		return ""
	}
	h["Upgrade"] = []string{up}
	h["Connection"] = []string{"Upgrade"}
	return up
}

// allowedUpgrade returns the first protocol of an Upgrade header that the
// route allows, lower-cased, or "". A protocol version ("websocket/13")
// is compared by its name.
func allowedUpgrade(values []string, allowed []string) string {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			name, _, _ := strings.Cut(tok, "/")
			for _, a := range allowed {
				if strings.EqualFold(name, a) {
					return a
				}
			}
		}
	}
	return ""
}

// trustedPeer reports whether the peer at remoteAddr ("ip:port") is one of
// the trusted proxies, whose forwarding headers are kept.
func trustedPeer(remoteAddr string, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// setForwarded writes the forwarding headers of a request to out, from
// the client's request in (r). From a trusted peer the client's
// X-Forwarded-For is extended with the peer's address and its
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded are kept; from any
// other peer they are replaced by what this proxy saw, and Forwarded is
// dropped, so a client cannot pose as someone else to the upstream.
func setForwarded(out http.Header, r *http.Request, trusted bool) {
	in := r.Header
	ip := ""
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	delete(out, "X-Forwarded-For")
	delete(out, "X-Forwarded-Proto")
	delete(out, "X-Forwarded-Host")
	delete(out, "Forwarded")
	if trusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		if v := in["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = append([]string(nil), v...)
		}
	}
	if ip != "" {
		out["X-Forwarded-For"] = []string{ip}
	}
	if v := in["X-Forwarded-Proto"]; trusted && len(v) > 0 {
		out["X-Forwarded-Proto"] = append([]string(nil), v...)
	} else {
		out["X-Forwarded-Proto"] = []string{scheme(r)}
	}
	if v := in["X-Forwarded-Host"]; trusted && len(v) > 0 {
		out["X-Forwarded-Host"] = append([]string(nil), v...)
	} else {
		out["X-Forwarded-Host"] = []string{r.Host}
	}
}
