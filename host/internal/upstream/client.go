package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// defaultIdleTimeout closes a keep-alive connection to a target that has
// not been used for this long, as http.Transport's IdleConnTimeout did.
const defaultIdleTimeout = 90 * time.Second

// StaleCheckAfter is how long a connection may sit idle before it is probed
// (a non-blocking peek, one syscall) on its way out of the pool. Targets
// close idle connections after seconds, not milliseconds, so a busy proxy
// never pays for the probe.
const StaleCheckAfter = time.Second

// bufSize is the size of a connection's read and write buffers,
// borrowed from pools only while a request uses the connection.
const bufSize = 32 << 10

// Client is the http.RoundTripper of one upstream. For http://
// targets it is a purpose-built HTTP/1.1 client: each target has a pool of
// idle keep-alive connections, and the goroutine that calls RoundTrip writes
// the request and reads the response itself. http.Transport runs two
// goroutines per connection and hands every request and response between
// them through channels; on a proxy's hot path those handoffs cost more than
// the bytes. https:// targets go through an http.Transport (see
// RATIONALE.md, "HTTP path").
type Client struct {
	dialer      *Dialer
	maxIdle     int           // idle connections kept per target; 0 disables keep-alive
	respTimeout time.Duration // bounds waiting for response headers; 0 means no bound
	idleTimeout time.Duration

	hosts map[string]*hostPool // by host:port; fixed at construction
	tls   *http.Transport      // for https:// targets; nil without them

	mu     sync.Mutex
	extra  map[string]*hostPool // hosts not among the targets (not used by the proxy)
	closed bool
}

var _ http.RoundTripper = (*Client)(nil)

// New builds the client of one upstream whose targets are
// targets.
func New(cfg config.Upstream, targets []*url.URL) *Client {
	c := &Client{
		dialer:      NewDialer(cfg),
		maxIdle:     cfg.MaxIdleConns,
		respTimeout: cfg.ResponseTimeout.Duration,
		idleTimeout: defaultIdleTimeout,
		hosts:       make(map[string]*hostPool),
	}
	for _, u := range targets {
		switch u.Scheme {
		case "https":
			if c.tls == nil {
				c.tls = NewTransport(cfg)
			}
		default:
			addr := canonicalAddr(u)
			hp := c.hosts[addr]
			if hp == nil {
				hp = &hostPool{c: c, addr: addr}
				c.hosts[addr] = hp
			}
			// Also under the host as the URL spells it, which is what
			// requests carry: no address to build per request.
			c.hosts[u.Host] = hp
		}
	}
	return c
}

// Dialer returns the dialer of the upstream's targets, which the WebSocket
// relay uses too.
func (c *Client) Dialer() *Dialer { return c.dialer }

// canonicalAddr is u's host:port, with the scheme's default port.
func canonicalAddr(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// hostPool returns the pool of connections to the host of u.
func (c *Client) hostPool(u *url.URL) *hostPool {
	if hp := c.hosts[u.Host]; hp != nil {
		return hp
	}
	addr := canonicalAddr(u)
	if hp := c.hosts[addr]; hp != nil {
		return hp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.extra == nil {
		c.extra = make(map[string]*hostPool)
	}
	hp := c.extra[addr]
	if hp == nil {
		hp = &hostPool{c: c, addr: addr, closed: c.closed}
		c.extra[addr] = hp
	}
	return hp
}

// CloseIdle closes every idle connection and makes connections that come
// back later close instead of waiting in the pool. It is called when the
// upstream is retired, so nothing will ask for a connection again.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	c.closed = true
	pools := make([]*hostPool, 0, len(c.hosts)+len(c.extra))
	for addr, hp := range c.hosts {
		if addr == hp.addr {
			pools = append(pools, hp)
		}
	}
	for _, hp := range c.extra {
		pools = append(pools, hp)
	}
	c.mu.Unlock()
	for _, hp := range pools {
		hp.close()
	}
	if c.tls != nil {
		c.tls.CloseIdleConnections()
	}
}

// IdleConns reports how many idle connections the client holds to http://
// targets; tests use it.
func (c *Client) IdleConns() int {
	n := 0
	for addr, hp := range c.hosts {
		if addr != hp.addr {
			continue // the same pool under the URL's spelling
		}
		hp.mu.Lock()
		n += len(hp.idle)
		hp.mu.Unlock()
	}
	return n
}

// RoundTrip sends req to the target its URL names and returns the
// response. The response body must be read to EOF (or closed): that is
// when the connection goes back to the pool.
//
// A request that fails on a reused connection before any byte of the
// response arrived is sent again once on a new connection when it is safe
// to repeat: an idempotent method and no body. The target probably closed
// the idle connection while the request was on its way.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "http":
	case "https":
		if c.tls == nil {
			// Not a target of this upstream; the proxy never does this.
			return nil, fmt.Errorf("upstream: no TLS transport for %s", req.URL.Host)
		}
		return c.tls.RoundTrip(req)
	default:
		return nil, fmt.Errorf("upstream: unsupported scheme %q", req.URL.Scheme)
	}
	hp := c.hostPool(req.URL)
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		pc, err := hp.get(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, err := pc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		var se *staleConnError
		if errors.As(err, &se) {
			if attempt == 0 && canRetry(req) && ctx.Err() == nil {
				continue
			}
			err = se.err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upstream: request to target: %w", context.Cause(ctx))
		}
		return nil, err
	}
}

// canRetry reports whether req may be sent twice: no body, and a method that
// is idempotent (or marked so by an idempotency key, as http.Transport
// does).
func canRetry(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

// staleConnError is a failure on a reused connection before anything of the
// response was read: the request may be retried.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }
