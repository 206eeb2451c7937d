package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
	"github.com/sluiceproxy/sluice/host/metrics"
)

// maxBufferedBody bounds a request or response body that the proxy holds in
// memory because a filter declared HookRequestBody or HookResponseBody. A
// larger request gets 413, a larger response 502.
const maxBufferedBody = 16 << 20

// Options holds what the proxy needs besides its config.
type Options struct {
	// Logger receives access logs (level Info, message "access" and
	// "websocket") and the proxy's own events. Nil discards them.
	Logger *slog.Logger
	// Closer, when set, releases what the chains given to New hold. The
	// proxy closes it once that first generation is replaced and drained,
	// or on Close.
	Closer io.Closer
	// Metrics receives the proxy's metrics, served on the admin
	// listener's /metrics. Nil means a registry of the proxy's own.
	Metrics *metrics.Registry
}

// Proxy is the reverse proxy: it routes each request to an upstream or a
// redirect, runs the route's filter chain at the hook points, and relays
// WebSockets. It serves from the current generation, which Apply replaces
// while requests keep flowing.
type Proxy struct {
	log *slog.Logger

	gen     atomic.Pointer[generation]
	applyMu sync.Mutex // serialises Apply and Close
	genSeq  uint64     // the last generation number given; under applyMu
	closed  bool       // Close ran; under applyMu

	idPrefix string // random per process, so request IDs do not repeat across restarts
	idSeq    atomic.Uint64

	// WebSocket sessions, so shutdown and route removal can close them.
	wsMu       sync.Mutex
	wsSessions map[*wsEntry]struct{}
	wsWG       sync.WaitGroup
	wsClosing  bool

	srv srvState

	m       *metrics.Registry
	noRoute *metrics.Route // the metrics of requests no route matched
}

// wsEntry is one tracked WebSocket session.
type wsEntry struct {
	route    string
	upstream string
	target   string // the target URL it was dialled on
	cancel   context.CancelCauseFunc
	chain    *liveChain
	timer    *time.Timer // the close a reload scheduled; under wsMu
}

// generation is everything built from one config: the routing table, the
// upstream pools with their transports and health checkers, and the chains.
// Requests hold the generation they started on until they end, so a
// replaced generation is closed only once drained.
type generation struct {
	cfg    *config.Config
	router *router
	routes map[string]*route
	pools  map[string]*pool

	// num counts generations from 1 (the one New builds); loadedAt is when
	// it was swapped in.
	num      uint64
	loadedAt time.Time
	// closer releases what the chains hold (a plugin set: instances and
	// runtimes). It is closed once the generation is retired and drained,
	// never by a finalizer. Nil when the chains hold nothing.
	closer io.Closer

	inflight  atomic.Int64
	retired   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

// New builds a proxy from a validated config. chains holds the filter chain
// of each route, keyed by route name; a route missing from the map has no
// filters. New starts the upstreams' health checks; Run serves, and Close
// stops a proxy that was never run.
func New(cfg *config.Config, chains map[string]filter.Chain, opts Options) (*Proxy, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := &Proxy{
		log:        log,
		idPrefix:   hex.EncodeToString(b[:]) + "-",
		wsSessions: make(map[*wsEntry]struct{}),
	}
	p.initMetrics(opts.Metrics)
	g, err := p.build(cfg, chains, nil)
	if err != nil {
		return nil, err
	}
	p.genSeq = 1
	g.num, g.loadedAt, g.closer = 1, time.Now(), opts.Closer
	p.gen.Store(g)
	p.m.Generation(g.num, g.loadedAt)
	return p, nil
}

// Apply builds a new generation from cfg and chains and swaps it in. It is
// ApplyWith without resources to release.
func (p *Proxy) Apply(cfg *config.Config, chains map[string]filter.Chain) error {
	_, err := p.ApplyWith(cfg, chains, nil)
	return err
}

// ApplyWith builds a new generation from cfg and chains and swaps it in,
// atomically for new requests. It returns the new generation's number.
//
// Everything that can fail happens before the swap: the upstream pools are
// built (an upstream whose definition is unchanged keeps its pool, so its
// connections and health state carry over), a changed server.listen or
// admin.listen address is bound, and the TLS certificate is read again. On
// any error nothing changes and closer is not touched: the caller still
// owns it.
//
// After the swap, requests already running finish on the old generation;
// once the last of them has, its chains' closer is closed and the pools no
// other generation uses close their idle connections. WebSockets keep
// running and take their route's chain from the current generation for
// each message; a session whose route or upstream target is gone, or which
// relays raw bytes on a route that now has message hooks, is closed with
// 1001 after server.reload_grace. A new listen address serves before the
// old one stops accepting; connections accepted on the old one live on.
// Server timeouts are fixed when Run starts: changes to them are logged and
// take effect at the next start.
//
// # Errors
//
// A build, bind or certificate error, or a closed proxy.
func (p *Proxy) ApplyWith(cfg *config.Config, chains map[string]filter.Chain, closer io.Closer) (uint64, error) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return 0, errors.New("host: proxy is closed")
	}
	old := p.gen.Load()
	g, err := p.build(cfg, chains, old)
	if err != nil {
		return 0, err
	}
	lc, err := p.prepareListeners(old.cfg, cfg)
	if err != nil {
		p.unrefPools(g)
		return 0, err
	}
	p.genSeq++
	g.num, g.loadedAt, g.closer = p.genSeq, time.Now(), closer
	p.gen.Store(g)
	p.m.Generation(g.num, g.loadedAt)
	p.commitListeners(lc)
	if s, o := cfg.Server, old.cfg.Server; s.ReadHeaderTimeout != o.ReadHeaderTimeout || s.ReadTimeout != o.ReadTimeout ||
		s.WriteTimeout != o.WriteTimeout || s.IdleTimeout != o.IdleTimeout || s.MaxHeaderBytes != o.MaxHeaderBytes {
		p.log.Warn("host: server timeouts and max_header_bytes take effect at the next start")
	}
	p.reconcileSessions(old, g)
	p.retire(old, g)
	return g.num, nil
}

// Generation returns the number of the generation serving now (1 for the
// one New built) and when it was swapped in.
func (p *Proxy) Generation() (uint64, time.Time) {
	g := p.gen.Load()
	return g.num, g.loadedAt
}

// Close stops the health checks, closes idle upstream connections and
// releases the current generation's chains (Options.Closer or the closer
// given to ApplyWith). Run calls it on its way out; call it yourself for a
// proxy that was never run. Later calls do nothing.
func (p *Proxy) Close() error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	g := p.gen.Load()
	if g == nil {
		return nil
	}
	for _, pl := range g.pools {
		pl.close()
	}
	if g.closer != nil {
		return g.closer.Close()
	}
	return nil
}

// build makes a generation from cfg. An upstream whose definition equals
// that of prev's pool of the same name reuses the pool: its transport keeps
// its idle connections and its health checker and target states carry on,
// so a reload does not cold-start upstreams. Every pool counts the
// generations that use it and closes when the last one is retired.
func (p *Proxy) build(cfg *config.Config, chains map[string]filter.Chain, prev *generation) (*generation, error) {
	g := &generation{
		cfg:     cfg,
		routes:  make(map[string]*route),
		pools:   make(map[string]*pool),
		drained: make(chan struct{}),
	}
	for _, uc := range cfg.Upstreams {
		if prev != nil {
			if pl := prev.pools[uc.Name]; pl != nil && reflect.DeepEqual(pl.cfg, uc) {
				pl.refs.Add(1)
				g.pools[uc.Name] = pl
				continue
			}
		}
		pl, err := newPool(uc, p)
		if err != nil {
			p.unrefPools(g)
			return nil, fmt.Errorf("host: upstream %q: %w", uc.Name, err)
		}
		pl.refs.Add(1)
		g.pools[uc.Name] = pl
	}
	var rs []*route
	for _, rc := range cfg.Routes {
		r := newRoute(rc, g.pools, chains[rc.Name])
		r.m = p.m.Route(rc.Name)
		if rc.Upstream != "" && r.pool == nil {
			p.unrefPools(g)
			return nil, fmt.Errorf("host: route %q: no upstream named %q", rc.Name, rc.Upstream)
		}
		g.routes[rc.Name] = r
		rs = append(rs, r)
	}
	g.router = newRouter(rs)
	return g, nil
}

// unrefPools drops g's hold on its pools, closing those no other generation
// uses.
func (p *Proxy) unrefPools(g *generation) {
	for _, pl := range g.pools {
		pl.unref()
	}
}

// acquire returns the current generation, counted as in use.
func (p *Proxy) acquire() *generation {
	for {
		g := p.gen.Load()
		g.inflight.Add(1)
		if !g.retired.Load() {
			return g
		}
		// Swapped out between Load and Add: use the new one.
		p.release(g)
	}
}

func (p *Proxy) release(g *generation) {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.drainOnce.Do(func() { close(g.drained) })
	}
}

// retire stops the health checks of old's pools that cur does not reuse,
// and once the requests and sessions that hold old have finished, releases
// its chains and its hold on its pools. Nothing waits for a finalizer.
func (p *Proxy) retire(old, cur *generation) {
	old.retired.Store(true)
	for name, pl := range old.pools {
		if cur.pools[name] != pl {
			pl.stopChecks()
		}
	}
	if old.inflight.Load() == 0 {
		old.drainOnce.Do(func() { close(old.drained) })
	}
	go func() {
		<-old.drained
		p.unrefPools(old)
		if old.closer != nil {
			if err := old.closer.Close(); err != nil {
				p.log.Warn("host: releasing a retired generation", "generation", old.num, "err", err)
			}
		}
	}()
}

// ServeHTTP proxies one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g := p.acquire()
	held := true
	defer func() {
		if held {
			p.release(g)
		}
	}()

	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 200 {
		id = p.newRequestID()
		r.Header.Set("X-Request-Id", id)
	}
	// One allocation for the request's state rather than one per piece.
	st := &exchangeState{lw: logWriter{ResponseWriter: w}, rec: accessRecord{id: id}}
	lw, rec := &st.lw, &st.rec
	rec.countBody(r)
	defer p.logAccess(r, lw, rec, start)

	rt := g.router.match(r.Host, r.URL.Path)
	if rt == nil {
		localError(lw, id, http.StatusNotFound, "host: no route for this host and path")
		return
	}
	rec.route, rec.rm = rt.name, rt.m
	if rt.pool == nil {
		lw.Header().Set("X-Request-Id", id)
		rt.redirectTo(lw, r)
		return
	}

	x := &st.x
	*x = filter.Exchange{Request: r, Route: rt.name, ClientAddr: r.RemoteAddr, Scheme: scheme(r)}
	hooks := rt.chain.Hooks()
	upgrade := isWebSocketUpgrade(r)
	if hooks.Has(filter.HookRequestHeaders) {
		buffered := hooks.Has(filter.HookRequestBody) && !upgrade && r.Body != nil && r.Body != http.NoBody
		if buffered {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
			if err != nil {
				localError(lw, id, http.StatusBadRequest, "host: reading the request body failed")
				return
			}
			if len(body) > maxBufferedBody {
				localError(lw, id, http.StatusRequestEntityTooLarge, "host: request body too large for the route's filters")
				return
			}
			x.RequestBody = body
		}
		if reply := rt.chain.OnRequestHeaders(x); reply != nil {
			rec.filterReply(reply)
			writeReply(lw, id, reply)
			return
		}
		if buffered {
			r.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
			r.ContentLength = int64(len(x.RequestBody))
			r.TransferEncoding = nil
			r.Header.Del("Transfer-Encoding")
			r.Header.Set("Content-Length", strconv.Itoa(len(x.RequestBody)))
		}
	}

	if upgrade {
		held = false
		p.serveUpgrade(w, r, g, rt, x, rec) // releases g
		return
	}

	t := rt.pool.pick()
	if t == nil {
		rec.proxyError(metrics.CauseNoHealthyTarget)
		localError(lw, id, http.StatusServiceUnavailable, "host: no healthy target")
		return
	}
	rec.target = t.url.Host
	t.active.Add(1)
	defer t.active.Add(-1)

	call := &st.call
	*call = proxyCall{target: t, pool: rt.pool, chain: rt.chain, hooks: hooks, x: x, rec: rec, lw: lw, sent: monoNow()}
	rt.pool.rp.ServeHTTP(lw, r.WithContext(context.WithValue(r.Context(), callKey{}, call)))
}

// exchangeState is everything one request needs on the heap, allocated
// together.
type exchangeState struct {
	lw   logWriter
	rec  accessRecord
	x    filter.Exchange
	call proxyCall
}

// proxyCall carries one request's state through the ReverseProxy callbacks.
type proxyCall struct {
	target *target
	pool   *pool
	chain  filter.Chain
	hooks  filter.HookSet
	x      *filter.Exchange
	rec    *accessRecord
	lw     *logWriter
	sent   time.Duration // when the request left for the target (monoNow)
}

type callKey struct{}

// newReverseProxy builds the pool's HTTP forwarder.
//
// It is the standard library's httputil.ReverseProxy in Rewrite mode rather
// than a hand-written loop: it already removes hop-by-hop headers (with those
// named in Connection), handles trailers, 1xx responses, request
// cancellation and flushing (at once for SSE and bodies of unknown length,
// i.e. FlushInterval -1 for streams), and its three callbacks are exactly
// our hook points: Rewrite picks the target and sets forwarding headers,
// ModifyResponse runs OnResponseHeaders, ErrorHandler maps transport errors
// to 502/504 and feeds passive ejection.
func (p *Proxy) newReverseProxy(pl *pool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport:  pl.client,
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		Rewrite: func(pr *httputil.ProxyRequest) {
			call := pr.In.Context().Value(callKey{}).(*proxyCall)
			pr.SetURL(call.target.url)
			// Rewrite mode drops the client's X-Forwarded-For; carry it over
			// so SetXForwarded appends the client's address to the chain.
			if prior := pr.In.Header["X-Forwarded-For"]; prior != nil {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
			// The upstream sees the Host the client asked for (virtual
			// hosts, absolute redirects), as Caddy and Traefik do by default.
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Add("Via", "1.1 sluice")
			// max_idle_conns = 0 turns keep-alive off: say so to the target.
			pr.Out.Close = call.pool.cfg.MaxIdleConns == 0
		},
		ModifyResponse: func(resp *http.Response) error {
			call := resp.Request.Context().Value(callKey{}).(*proxyCall)
			call.pool.connOK(call.target)
			call.target.m.Exchange(monoNow() - call.sent)
			resp.Header.Add("Via", "1.1 sluice")
			resp.Header.Set("X-Request-Id", call.rec.id)
			if call.hooks.Has(filter.HookResponseHeaders) {
				if err := runResponseHooks(call, resp); err != nil {
					return err
				}
			}
			// A large body goes from the target's socket to the client's
			// without passing through ReverseProxy's copy buffer.
			if rf, ok := call.lw.ResponseWriter.(io.ReaderFrom); ok {
				upstream.Splice(resp, call.lw, func(r io.Reader) (int64, error) {
					n, err := rf.ReadFrom(r)
					call.lw.bytes += n
					return n, err
				})
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			call := r.Context().Value(callKey{}).(*proxyCall)
			call.rec.err = err
			call.target.m.Exchange(monoNow() - call.sent)
			var de *upstream.DialError
			switch {
			case r.Context().Err() != nil:
				// The client went away; nobody reads the answer.
				call.rec.clientGone = true
				w.WriteHeader(499)
				return
			case errors.As(err, &de):
				call.pool.connFailed(call.target)
				call.rec.proxyError(metrics.CauseUnreachable)
				localError(w, call.rec.id, http.StatusBadGateway, "host: upstream unreachable")
			case upstream.IsTimeout(err):
				call.rec.proxyError(metrics.CauseUpstreamTimeout)
				localError(w, call.rec.id, http.StatusGatewayTimeout, "host: upstream timed out")
			default:
				call.rec.proxyError(metrics.CauseUpstreamFailed)
				localError(w, call.rec.id, http.StatusBadGateway, "host: upstream failed")
			}
		},
	}
}

// runResponseHooks runs OnResponseHeaders, with the whole body in memory when
// the chain asked for it, and applies what the filters decided.
func runResponseHooks(call *proxyCall, resp *http.Response) error {
	x := call.x
	x.Status = resp.StatusCode
	x.ResponseHeader = resp.Header
	buffered := call.hooks.Has(filter.HookResponseBody)
	if buffered {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBufferedBody+1))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("host: reading the response body: %w", err)
		}
		if len(body) > maxBufferedBody {
			return errors.New("host: response body too large for the route's filters")
		}
		x.ResponseBody = body
	}
	reply := call.chain.OnResponseHeaders(x)
	if reply != nil {
		call.rec.filterReply(reply)
		if !buffered {
			resp.Body.Close()
		}
		h := reply.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("X-Request-Id", call.rec.id)
		resp.StatusCode = replyStatus(reply)
		resp.Header = h
		body := reply.Body
		if reply.Failure != "" && len(body) == 0 {
			body = failureBody(call.rec.id)
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
		setBody(resp, body)
		return nil
	}
	if x.Status >= 100 && x.Status <= 999 {
		resp.StatusCode = x.Status
	}
	if x.ResponseHeader != nil {
		resp.Header = x.ResponseHeader
	}
	if buffered {
		setBody(resp, x.ResponseBody)
	}
	return nil
}

func setBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Header.Del("Transfer-Encoding")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

func replyStatus(r *filter.Reply) int {
	if r.Status < 100 || r.Status > 999 {
		return http.StatusOK
	}
	return r.Status
}

// writeReply sends a filter's local response.
func writeReply(w http.ResponseWriter, id string, r *filter.Reply) {
	h := w.Header()
	for k, v := range r.Header {
		h[k] = append([]string(nil), v...)
	}
	h.Set("X-Request-Id", id)
	body := r.Body
	if r.Failure != "" && len(body) == 0 {
		body = failureBody(id)
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(replyStatus(r))
	_, _ = w.Write(body)
}

// localError answers with a short plain-text error of the proxy's own.
func localError(w http.ResponseWriter, id string, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", id)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// newRequestID returns a process-unique ID: a random prefix chosen at start
// and a counter. It costs an atomic add, not a read of the random source.
func (p *Proxy) newRequestID() string {
	var b [32]byte
	s := append(b[:0], p.idPrefix...)
	s = strconv.AppendUint(s, p.idSeq.Add(1), 36)
	return string(s)
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// isWebSocketUpgrade reports whether r asks for a WebSocket: Connection has
// the token "upgrade" and Upgrade is "websocket", both case-insensitive.
// Upgrade is looked at first: most requests have none.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket") && headerHasToken(r.Header, "Connection", "upgrade")
}

// headerHasToken reports whether a comma-separated list in header name has
// token, case-insensitive. It does not allocate.
func headerHasToken(h http.Header, name, token string) bool {
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
