package upstream

import (
	"net"
	"net/http"
	"strings"
)

// This file is the one place that says what a request to a target carries
// besides what the client sent, and what of the client's headers stays
// behind. The HTTP path (httputil.ReverseProxy, which also removes the
// hop-by-hop headers it knows) and the WebSocket relay both use it.

// hopByHop are the connection-level headers a proxy must not forward
// (RFC 9110 section 7.6.1).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Via is what the proxy adds to the Via header of what it forwards, both
// ways.
const Via = "1.1 sluice"

// IsHopByHop reports whether the canonical header name k is hop-by-hop by
// definition (whether or not Connection names it).
func IsHopByHop(k string) bool {
	for _, h := range hopByHop {
		if k == h {
			return true
		}
	}
	return false
}

// ConnectionTokens returns the header names listed in h's Connection
// header, which are hop-by-hop for this message too. The "upgrade" token
// is left out: it names a protocol switch, not a header to drop.
func ConnectionTokens(h http.Header) []string {
	var out []string
	for _, v := range h["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "upgrade") {
				out = append(out, t)
			}
		}
	}
	return out
}

// RemoveHopByHop deletes from h the headers that Connection names and the
// hop-by-hop ones.
func RemoveHopByHop(h http.Header) {
	for _, name := range ConnectionTokens(h) {
		h.Del(name)
	}
	for _, name := range hopByHop {
		delete(h, name)
	}
}

// HasToken reports whether a comma-separated list in header name has token,
// case-insensitive. It does not allocate.
func HasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for v != "" {
			t, rest, _ := strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
			v = rest
		}
	}
	return false
}

// SetForwarded sets on out, the header of the request to a target, what
// the proxy says about in, the client's request: X-Forwarded-For (the
// chain the client sent in X-Forwarded-For plus the client's address),
// X-Forwarded-Host, X-Forwarded-Proto and Via. A Forwarded header from the
// client is dropped: the proxy does not vouch for it.
//
// It does what httputil.ProxyRequest.SetXForwarded does, with the client's
// chain carried over.
func SetForwarded(out http.Header, in *http.Request) {
	out.Del("Forwarded")
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Set("X-Forwarded-For", ip)
	} else {
		out.Del("X-Forwarded-For")
	}
	out.Set("X-Forwarded-Host", in.Host)
	if in.TLS == nil {
		out.Set("X-Forwarded-Proto", "http")
	} else {
		out.Set("X-Forwarded-Proto", "https")
	}
	out.Add("Via", Via)
}
