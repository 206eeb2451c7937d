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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// maxBufferedBody bounds a request or response body that the proxy holds in
// memory because a filter declared HookRequestBody or HookResponseBody, for
// a chain that does not set its own bound (filter.BodyLimiter). A larger request
// gets 413, a larger response 502.
const maxBufferedBody = 16 << 20

// bodyLimit is the most of a body the proxy buffers for chain.
func bodyLimit(chain filter.Chain) int64 {
	if bl, ok := chain.(filter.BodyLimiter); ok {
		return bl.MaxBufferedBody()
	}
	return maxBufferedBody
}

// Options holds what the proxy needs besides its config.
type Options struct {
	// Logger receives access logs (level Info, message "access" and
	// "websocket") and the proxy's own events. Nil discards them.
	Logger *slog.Logger
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
}

// New builds a proxy from a validated config and the chains of its routes
// (the zero Chains: no filters). On error chains.Closer is not touched: the
// caller still owns it. New starts the upstreams' health checks; Run serves, and Close
// stops a proxy that was never run.
func New(cfg *config.Config, chains Chains, opts Options) (*Proxy, error) {
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
	g, err := p.build(cfg, chains.Routes, nil)
	if err != nil {
		return nil, err
	}
	p.genSeq = 1
	g.num, g.loadedAt, g.closer = 1, time.Now(), chains.Closer
	p.gen.Store(g)
	return p, nil
}

// Close stops the health checks, closes idle upstream connections and
// releases the current generation's chains (their Chains.Closer). Run calls it on its way out; call it yourself for a
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
	defer p.logAccess(r, lw, rec, start)

	rt := g.router.match(r.Host, r.URL.Path)
	if rt == nil {
		localError(lw, id, http.StatusNotFound, "host: no route for this host and path")
		return
	}
	rec.route = rt.name
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
			limit := bodyLimit(rt.chain)
			body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
			if err != nil {
				localError(lw, id, http.StatusBadRequest, "host: reading the request body failed")
				return
			}
			if int64(len(body)) > limit {
				localError(lw, id, http.StatusRequestEntityTooLarge, "host: request body too large for the route's filters")
				return
			}
			x.RequestBody = body
		}
		if reply := rt.chain.OnRequestHeaders(x); reply != nil {
			rec.replied = true
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
		localError(lw, id, http.StatusServiceUnavailable, "host: no healthy target")
		return
	}
	rec.target = t.url.Host
	t.active.Add(1)
	defer t.active.Add(-1)

	call := &st.call
	*call = proxyCall{target: t, pool: rt.pool, chain: rt.chain, hooks: hooks, x: x, rec: rec, lw: lw}
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
			// ReverseProxy removed the hop-by-hop headers; the forwarding
			// headers are the same as for a WebSocket handshake.
			upstream.SetForwarded(pr.Out.Header, pr.In)
			// The upstream sees the Host the client asked for (virtual
			// hosts, absolute redirects), as Caddy and Traefik do by default.
			pr.Out.Host = pr.In.Host
			// max_idle_conns = 0 turns keep-alive off: say so to the target.
			pr.Out.Close = call.pool.cfg.MaxIdleConns == 0
		},
		ModifyResponse: func(resp *http.Response) error {
			call := resp.Request.Context().Value(callKey{}).(*proxyCall)
			call.pool.connOK(call.target)
			resp.Header.Add("Via", upstream.Via)
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
			var de *upstream.DialError
			switch {
			case r.Context().Err() != nil:
				// The client went away; nobody reads the answer.
				call.rec.clientGone = true
				w.WriteHeader(499)
				return
			case errors.As(err, &de):
				call.pool.connFailed(call.target)
				localError(w, call.rec.id, http.StatusBadGateway, "host: upstream unreachable")
			case upstream.IsTimeout(err):
				localError(w, call.rec.id, http.StatusGatewayTimeout, "host: upstream timed out")
			default:
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
		limit := bodyLimit(call.chain)
		body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("host: reading the response body: %w", err)
		}
		if int64(len(body)) > limit {
			return errors.New("host: response body too large for the route's filters")
		}
		x.ResponseBody = body
	}
	reply := call.chain.OnResponseHeaders(x)
	if reply != nil {
		call.rec.replied = true
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
		setBody(resp, reply.Body)
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
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(replyStatus(r))
	_, _ = w.Write(r.Body)
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

// copyBufSize is the size of a copy buffer.
const copyBufSize = 32 << 10

// copyBuffers holds array pointers: converting the slice back to one costs
// nothing, where boxing a slice (or a pointer to a new slice header) in
// Put would allocate every time.
var copyBuffers = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// Get returns a buffer of copyBufSize bytes.
func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufSize]byte)[:] }

// Put takes a buffer back; one of another size is left to the collector.
func (bufferPool) Put(b []byte) {
	if cap(b) >= copyBufSize {
		copyBuffers.Put((*[copyBufSize]byte)(b[:copyBufSize]))
	}
}

// isWebSocketUpgrade reports whether r asks for a WebSocket: Connection has
// the token "upgrade" and Upgrade is "websocket", both case-insensitive.
// Upgrade is looked at first: most requests have none.
func isWebSocketUpgrade(r *http.Request) bool {
	return upstream.HasToken(r.Header, "Upgrade", "websocket") && upstream.HasToken(r.Header, "Connection", "upgrade")
}
