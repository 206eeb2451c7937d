// Command ratelimit is a Sluice filter that limits requests (WebSocket
// upgrades included) and WebSocket messages per client, API key or
// authenticated user, with a sliding window kept in the shared store: on the
// memory backend the limit is per proxy, on the Redis backend it holds
// across every proxy that shares the Redis.
//
// A refused request gets 429 with Retry-After and the RateLimit-Policy and
// RateLimit headers of the IETF draft; a refused message is dropped or
// closes the connection with 1008. See README.md for the algorithm and the
// config keys.
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/sluiceproxy/sluice/examples/internal/tinyjson"
	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// policy is one set of limits, the default or a route's.
type policy struct {
	name     string // in RateLimit-Policy and in the store's keys
	key      string // "client", "header:<name>" or "state:<key>"
	limit    int64  // requests per window; 0: requests are not limited
	messages int64  // client messages per window; 0: not limited
	window   int64  // milliseconds
	closeWS  bool   // message over the limit: close with 1008 (else drop)
}

var (
	defaults policy
	routes   map[string]*policy
)

func configure(raw []byte) error {
	c, err := tinyjson.NewConfig(raw, "ratelimit: config")
	if err != nil {
		return err
	}
	d := readPolicy(c, policy{name: "default", key: "client", window: 60_000})
	rc := c.Table("routes")
	rs := map[string]*policy{}
	for _, m := range rc.Names() {
		p := readPolicy(rc.Table(m), d)
		p.name = m
		rs[m] = &p
	}
	if err := c.Done(); err != nil {
		return err
	}
	for _, p := range append([]*policy{&d}, values(rs)...) {
		if err := p.check(); err != nil {
			return err
		}
	}
	defaults, routes = d, rs
	return nil
}

func values(m map[string]*policy) []*policy {
	out := make([]*policy, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// readPolicy reads the keys of one policy table, inheriting from base.
func readPolicy(c *tinyjson.Config, base policy) policy {
	p := base
	p.key = c.String("key", base.key)
	p.limit = c.Int("limit", base.limit)
	p.messages = c.Int("messages", base.messages)
	if w := c.Value("window"); w.Kind == tinyjson.String {
		d, err := time.ParseDuration(w.Str)
		if err != nil {
			c.Fail("window", "want a duration such as \"1m\", got "+strconv.Quote(w.Str))
		}
		p.window = d.Milliseconds()
	} else if w.Kind == tinyjson.Number {
		p.window = int64(w.Num * 1000)
	} else if w.Kind != tinyjson.Missing {
		c.Fail("window", "want a duration such as \"1m\" or seconds")
	}
	switch a := c.String("message_action", actionName(base.closeWS)); a {
	case "drop", "close":
		p.closeWS = a == "close"
	default:
		c.Fail("message_action", `want "drop" or "close", got `+strconv.Quote(a))
	}
	return p
}

func actionName(closeWS bool) string {
	if closeWS {
		return "close"
	}
	return "drop"
}

func (p *policy) check() error {
	prefix := "ratelimit: config: policy " + strconv.Quote(p.name) + ": "
	switch {
	case p.limit < 0 || p.messages < 0:
		return errors.New(prefix + "limit and messages must not be negative")
	case p.limit > 1e9 || p.messages > 1e9:
		return errors.New(prefix + "limit and messages must be at most 1000000000")
	case p.window < 1000 || p.window > 86_400_000:
		return errors.New(prefix + "window must be from 1s to 24h")
	case p.window%1000 != 0:
		return errors.New(prefix + "window must be whole seconds (RateLimit-Policy counts in seconds)")
	case strings.ContainsAny(p.name, "\"\\"):
		return errors.New(prefix + "a policy name may not hold \" or \\")
	}
	switch {
	case p.key == "client":
	case strings.HasPrefix(p.key, "header:") && len(p.key) > len("header:"):
	case strings.HasPrefix(p.key, "state:") && len(p.key) > len("state:"):
	default:
		return errors.New(prefix + `key must be "client", "header:<name>" or "state:<key>", got ` + strconv.Quote(p.key))
	}
	return nil
}

func init() {
	sluice.OnConfigure(configure)
	sluice.OnRequestHeaders(onRequest)
	sluice.OnResponseHeaders(onResponse)
	sluice.OnMessage(onMessage)
}

func main() {}

// policyOf returns the policy of a route.
func policyOf(route string) *policy {
	if p := routes[route]; p != nil {
		return p
	}
	return &defaults
}

// maxKey bounds the identity a limit is counted under: longer header or
// state values are refused (400), so a client cannot make the store hold
// arbitrarily long keys.
const maxKey = 256

// identity returns whom a request counts for, and false when it is too
// long to be a key. A missing header or state value falls back to the
// client's address: a request never escapes the limit by leaving it out.
func identity(p *policy, req sluice.Request) (string, bool) {
	var id string
	switch {
	case strings.HasPrefix(p.key, "header:"):
		id = req.Header().Get(p.key[len("header:"):])
		if id != "" {
			id = "h:" + id
		}
	case strings.HasPrefix(p.key, "state:"):
		if v, ok := sluice.State.Get(p.key[len("state:"):]); ok && len(v) > 0 {
			id = "s:" + string(v)
		}
	}
	if id == "" {
		id = "c:" + host(req.ClientAddr())
	}
	return id, len(id) <= maxKey
}

// host strips the port from a client address ("10.0.0.1:5000",
// "[::1]:5000").
func host(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 && !strings.HasSuffix(addr, "]") {
		addr = addr[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}

// State keys: the identity of a WebSocket session (for its messages) and
// the RateLimit header of an allowed request (for its response).
const (
	stateID     = "ratelimit.id"
	stateHeader = "ratelimit.header"
)

func onRequest(req sluice.Request) sluice.Action {
	p := policyOf(req.Route())
	id, ok := identity(p, req)
	if !ok {
		return sluice.Respond(400, []string{"Content-Type", "text/plain"}, []byte("rate limit key too long\n"))
	}
	if p.messages > 0 && strings.EqualFold(req.Header().Get("Upgrade"), "websocket") {
		sluice.State.Set(stateID, []byte(id))
	}
	if p.limit == 0 {
		return sluice.Continue
	}
	d := take(p, "r", id, p.limit)
	if !d.allowed {
		retry := strconv.FormatInt(d.retry, 10)
		return sluice.Respond(429, []string{
			"Retry-After", retry,
			"RateLimit-Policy", policyHeader(p, p.limit),
			"RateLimit", rateLimitHeader(p, 0, retry),
			"Content-Type", "text/plain",
		}, []byte("rate limited: retry in "+retry+"s\n"))
	}
	sluice.State.Set(stateHeader, []byte(rateLimitHeader(p, d.remaining, strconv.FormatInt(d.reset, 10))))
	return sluice.Continue
}

// onResponse tells the client where it stands on every allowed response.
func onResponse(resp sluice.Response) sluice.Action {
	h, ok := sluice.State.Get(stateHeader)
	if !ok {
		return sluice.Continue
	}
	p := policyOf(resp.Request().Route())
	resp.Header().Set("RateLimit-Policy", policyHeader(p, p.limit))
	resp.Header().Set("RateLimit", string(h))
	return sluice.Continue
}

func onMessage(m *sluice.Message) sluice.MessageAction {
	if m.Direction != sluice.ClientToUpstream {
		return sluice.Pass
	}
	id, ok := sluice.State.Get(stateID)
	if !ok {
		return sluice.Pass // the route limits no messages
	}
	p := policyOf(sluice.Request{}.Route())
	if p.messages == 0 {
		return sluice.Pass
	}
	if take(p, "m", string(id), p.messages).allowed {
		return sluice.Pass
	}
	if p.closeWS {
		return sluice.Close(1008, "rate limited")
	}
	return sluice.Drop
}

// policyHeader is the RateLimit-Policy field: `"name";q=limit;w=seconds`.
func policyHeader(p *policy, limit int64) string {
	return `"` + p.name + `";q=` + strconv.FormatInt(limit, 10) + ";w=" + strconv.FormatInt(p.window/1000, 10)
}

// rateLimitHeader is the RateLimit field: `"name";r=remaining;t=seconds`.
func rateLimitHeader(p *policy, remaining int64, t string) string {
	return `"` + p.name + `";r=` + strconv.FormatInt(remaining, 10) + ";t=" + t
}
