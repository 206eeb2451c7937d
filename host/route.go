package host

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

// route is one [[route]] as the proxy serves it.
type route struct {
	name   string
	host   string // "" for any host, "*.example.com", or an exact name
	prefix string

	pool  *pool        // nil for a redirect route
	chain filter.Chain // never nil: noChain when the route has no filters

	redirect string
	status   int
	keepPath bool
}

// router finds the route of a request. Exact hosts are tried first, then
// wildcards from the most specific suffix, then the routes for any host;
// within a host the longest path prefix wins. A host whose routes do not
// match the path falls through to the next, less specific, host.
type router struct {
	exact map[string][]*route
	wild  []wildHost // longest suffix first
	any   []*route
}

type wildHost struct {
	suffix string // ".example.com"
	routes []*route
}

func newRouter(routes []*route) *router {
	rt := &router{exact: make(map[string][]*route)}
	wild := map[string][]*route{}
	for _, r := range routes {
		switch {
		case r.host == "" || r.host == "*":
			rt.any = append(rt.any, r)
		case strings.HasPrefix(r.host, "*."):
			wild[r.host[1:]] = append(wild[r.host[1:]], r)
		default:
			rt.exact[r.host] = append(rt.exact[r.host], r)
		}
	}
	for s, rs := range wild {
		rt.wild = append(rt.wild, wildHost{s, byPrefix(rs)})
	}
	sort.Slice(rt.wild, func(i, j int) bool { return len(rt.wild[i].suffix) > len(rt.wild[j].suffix) })
	for h, rs := range rt.exact {
		rt.exact[h] = byPrefix(rs)
	}
	rt.any = byPrefix(rt.any)
	return rt
}

// byPrefix sorts routes longest prefix first, so the first match wins.
func byPrefix(rs []*route) []*route {
	sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	return rs
}

// match returns the route for a request's Host header and path, or nil.
// The host is compared without its port and case.
func (rt *router) match(host, path string) *route {
	host = normalizeHost(host)
	if r := matchPrefix(rt.exact[host], path); r != nil {
		return r
	}
	for _, w := range rt.wild {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			if r := matchPrefix(w.routes, path); r != nil {
				return r
			}
		}
	}
	return matchPrefix(rt.any, path)
}

func matchPrefix(rs []*route, path string) *route {
	for _, r := range rs {
		if strings.HasPrefix(path, r.prefix) {
			return r
		}
	}
	return nil
}

func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

func newRoute(rc config.Route, pools map[string]*pool, chain filter.Chain) *route {
	if chain == nil {
		chain = noChain{}
	}
	return &route{
		name:     rc.Name,
		host:     rc.Host,
		prefix:   rc.PathPrefix,
		pool:     pools[rc.Upstream],
		chain:    chain,
		redirect: rc.Redirect,
		status:   rc.Status,
		keepPath: rc.KeepPath,
	}
}

// redirectTo answers a redirect route: the configured URL, with the request's
// path and query appended when keep_path is set.
func (r *route) redirectTo(w http.ResponseWriter, req *http.Request) {
	loc := r.redirect
	if r.keepPath {
		u, _ := url.Parse(r.redirect) // validated by config
		u.Path = strings.TrimSuffix(u.Path, "/") + req.URL.Path
		u.RawPath = ""
		u.RawQuery = req.URL.RawQuery
		loc = u.String()
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(r.status)
}

// noChain is the chain of a route without filters: it declares no hooks, so
// the proxy never calls it.
type noChain struct{}

var _ filter.Chain = noChain{}

func (noChain) Hooks() filter.HookSet                            { return 0 }
func (noChain) OnRequestHeaders(*filter.Exchange) *filter.Reply  { return nil }
func (noChain) OnUpgrade(*filter.Exchange) *filter.Reply         { return nil }
func (noChain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }
func (noChain) OnMessage(*filter.Session, *filter.Message) filter.MessageVerdict {
	return filter.MessageVerdict{}
}
func (noChain) OnClose(*filter.Session) {}
