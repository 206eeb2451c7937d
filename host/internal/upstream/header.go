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
// the proxy says about in, the client's request, and Via.
//
// From a trusted peer (a proxy in front, [server] trusted_proxies) the
// client's X-Forwarded-For is extended with the peer's address and its
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded are kept. From any
// other peer they are replaced by what this proxy saw (X-Forwarded-For is
// the peer's address alone) and Forwarded is dropped, so a client cannot
// pose as someone else to the target.
func SetForwarded(out http.Header, in *http.Request, trusted bool) {
	delete(out, "Forwarded")
	ip := ""
	if host, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		ip = host
	}
	if trusted {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		if v := in.Header["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = append([]string(nil), v...)
		}
	}
	if ip != "" {
		out["X-Forwarded-For"] = []string{ip}
	} else {
		delete(out, "X-Forwarded-For")
	}
	if v := in.Header["X-Forwarded-Host"]; trusted && len(v) > 0 {
		out["X-Forwarded-Host"] = append([]string(nil), v...)
	} else {
		out["X-Forwarded-Host"] = []string{in.Host}
	}
	switch v := in.Header["X-Forwarded-Proto"]; {
	case trusted && len(v) > 0:
		out["X-Forwarded-Proto"] = append([]string(nil), v...)
	case in.TLS == nil:
		out["X-Forwarded-Proto"] = []string{"http"}
	default:
		out["X-Forwarded-Proto"] = []string{"https"}
	}
	out.Add("Via", Via)
}
