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
