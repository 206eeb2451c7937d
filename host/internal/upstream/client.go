package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// upstreamIdleTimeout closes a keep-alive connection to a target that has
// not been used for this long, as http.Transport's IdleConnTimeout did.
const upstreamIdleTimeout = 90 * time.Second

// staleCheckAfter is how long a connection may sit idle before it is probed
// (a non-blocking peek, one syscall) on its way out of the pool. Targets
// close idle connections after seconds, not milliseconds, so a busy proxy
// never pays for the probe.
const staleCheckAfter = time.Second

// upstreamBufSize is the size of a connection's read and write buffers,
// borrowed from pools only while a request uses the connection.
const upstreamBufSize = 32 << 10

// upstreamClient is the http.RoundTripper of one upstream. For http://
// targets it is a purpose-built HTTP/1.1 client: each target has a pool of
// idle keep-alive connections, and the goroutine that calls RoundTrip writes
// the request and reads the response itself. http.Transport runs two
// goroutines per connection and hands every request and response between
// them through channels; on a proxy's hot path those handoffs cost more than
// the bytes. https:// targets go through an http.Transport (see
// RATIONALE.md, "HTTP path").
type upstreamClient struct {
	dialer      net.Dialer
	maxIdle     int           // idle connections kept per target; 0 disables keep-alive
	respTimeout time.Duration // bounds waiting for response headers; 0 means no bound
	idleTimeout time.Duration

	hosts map[string]*hostPool // by host:port; fixed at construction
	tls   *http.Transport      // for https:// targets; nil without them

	mu     sync.Mutex
	extra  map[string]*hostPool // hosts not among the targets (not used by the proxy)
	closed bool
}

var _ http.RoundTripper = (*upstreamClient)(nil)

// newUpstreamClient builds the client of one upstream whose targets are
// targets.
func newUpstreamClient(cfg config.Upstream, targets []*url.URL) *upstreamClient {
	c := &upstreamClient{
		dialer:      net.Dialer{Timeout: cfg.ConnectTimeout.Duration, KeepAlive: 30 * time.Second},
		maxIdle:     cfg.MaxIdleConns,
		respTimeout: cfg.ResponseTimeout.Duration,
		idleTimeout: upstreamIdleTimeout,
		hosts:       make(map[string]*hostPool),
	}
	for _, u := range targets {
		switch u.Scheme {
		case "https":
			if c.tls == nil {
				c.tls = newTransport(cfg)
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
func (c *upstreamClient) hostPool(u *url.URL) *hostPool {
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

// closeIdle closes every idle connection and makes connections that come
// back later close instead of waiting in the pool. It is called when the
// upstream is retired, so nothing will ask for a connection again.
func (c *upstreamClient) closeIdle() {
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

// idleConns reports how many idle connections the client holds to http://
// targets; tests use it.
func (c *upstreamClient) idleConns() int {
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
func (c *upstreamClient) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "http":
	case "https":
		if c.tls == nil {
			// Not a target of this upstream; the proxy never does this.
			return nil, fmt.Errorf("host: no TLS transport for %s", req.URL.Host)
		}
		return c.tls.RoundTrip(req)
	default:
		return nil, fmt.Errorf("host: unsupported scheme %q", req.URL.Scheme)
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
			return nil, fmt.Errorf("host: request to target: %w", context.Cause(ctx))
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

// hostPool is the idle connections to one target, most recently used last.
type hostPool struct {
	c    *upstreamClient
	addr string

	mu     sync.Mutex
	idle   []*upConn
	closed bool
	sweep  *time.Timer // closes connections idle for too long; nil when idle is empty
}

// get returns an idle connection, or dials a new one when there is none or
// fresh is set.
func (hp *hostPool) get(ctx context.Context, fresh bool) (*upConn, error) {
	if !fresh {
		for {
			hp.mu.Lock()
			n := len(hp.idle)
			if n == 0 {
				hp.mu.Unlock()
				break
			}
			pc := hp.idle[n-1]
			hp.idle[n-1] = nil
			hp.idle = hp.idle[:n-1]
			hp.mu.Unlock()
			idle := time.Since(pc.idleAt)
			if idle > hp.c.idleTimeout || (idle > staleCheckAfter && !connAlive(pc.conn)) {
				pc.conn.Close()
				continue
			}
			pc.reused = true
			return pc, nil
		}
	}
	conn, err := hp.c.dialer.DialContext(ctx, "tcp", hp.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host: connect to target: %w", context.Cause(ctx))
		}
		// Marked so the proxy answers 502 and counts it for passive
		// ejection; a cancelled client is not the target's fault.
		return nil, &dialError{err}
	}
	pc := &upConn{hp: hp, conn: conn}
	pc.hr = headerReader{pc}
	return pc, nil
}

// put returns pc to the pool, or closes it when the pool is full or closed.
func (hp *hostPool) put(pc *upConn) {
	pc.idleAt = time.Now()
	hp.mu.Lock()
	if hp.closed || len(hp.idle) >= hp.c.maxIdle {
		hp.mu.Unlock()
		pc.conn.Close()
		return
	}
	hp.idle = append(hp.idle, pc)
	if hp.sweep == nil {
		hp.sweep = time.AfterFunc(hp.c.idleTimeout, hp.sweepIdle)
	}
	hp.mu.Unlock()
}

// sweepIdle closes the connections that have been idle longer than the idle
// timeout (they sit at the bottom of the stack) and re-arms itself for the
// oldest remaining one, so a pool that traffic left behind does not hold
// sockets forever. One timer per target, armed only while connections
// are idle.
func (hp *hostPool) sweepIdle() {
	now := time.Now()
	hp.mu.Lock()
	var stale []*upConn
	i := 0
	for i < len(hp.idle) && now.Sub(hp.idle[i].idleAt) >= hp.c.idleTimeout {
		stale = append(stale, hp.idle[i])
		i++
	}
	if i > 0 {
		n := copy(hp.idle, hp.idle[i:])
		clear(hp.idle[n:])
		hp.idle = hp.idle[:n]
	}
	if len(hp.idle) > 0 && !hp.closed {
		hp.sweep.Reset(hp.idle[0].idleAt.Add(hp.c.idleTimeout).Sub(now))
	} else {
		hp.sweep = nil
	}
	hp.mu.Unlock()
	for _, pc := range stale {
		pc.conn.Close()
	}
}

// close closes the idle connections; connections in use close when they
// are done.
func (hp *hostPool) close() {
	hp.mu.Lock()
	hp.closed = true
	idle := hp.idle
	hp.idle = nil
	if hp.sweep != nil {
		hp.sweep.Stop()
		hp.sweep = nil
	}
	hp.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

// upConn is one connection to a target. Between requests it holds no
// buffers: the reader and writer are borrowed per request.
type upConn struct {
	hp     *hostPool
	conn   net.Conn
	hr     headerReader  // what br reads from: conn, with a bound while headers arrive
	hleft  int           // bytes of response head still allowed; 0 when unbounded
	br     *bufio.Reader // while a response is read
	reused bool          // taken from the pool rather than dialled for this request
	idleAt time.Time
	rdl    time.Time // the read deadline in force; zero for none
}

// clearReadDeadline lifts the response timeout before a read that may wait
// on the socket for as long as the body takes.
func (pc *upConn) clearReadDeadline() {
	if !pc.rdl.IsZero() {
		pc.rdl = time.Time{}
		_ = pc.conn.SetReadDeadline(time.Time{})
	}
}

var (
	upReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upstreamBufSize) }}
	upWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upstreamBufSize) }}
)

// maxResponseHeaderBytes bounds the status line and headers of a response
// (1xx responses included), so a broken target cannot make the proxy buffer
// without end. The read buffer may hold the start of the body too, so the
// bound counts bytes read from the socket while headers are awaited.
const maxResponseHeaderBytes = 1 << 20

var errResponseHeaderTooLarge = errors.New("host: the target's response headers are too large")

// headerReader is the connection as its read buffer sees it: while response
// headers are read it stops after maxResponseHeaderBytes.
type headerReader struct{ pc *upConn }

func (r *headerReader) Read(p []byte) (int, error) {
	pc := r.pc
	if pc.hleft == 0 {
		return pc.conn.Read(p)
	}
	if pc.hleft < 0 {
		return 0, errResponseHeaderTooLarge
	}
	if len(p) > pc.hleft {
		p = p[:pc.hleft]
	}
	n, err := pc.conn.Read(p)
	if pc.hleft -= n; pc.hleft == 0 {
		pc.hleft = -1
	}
	return n, err
}

// writerOnly hides the connection's ReadFrom, so that a request body is
// copied through the pooled write buffer instead of a fresh buffer per
// request.
type writerOnly struct{ io.Writer }

// aLongTimeAgo is a deadline in the past: setting it wakes up any blocked
// read or write on the connection.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req on pc and reads the response headers. On success
// the response body owns pc; on failure pc is closed.
func (pc *upConn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var stop func() bool
	if ctx.Done() != nil {
		conn := pc.conn
		stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error, stale bool) (*http.Response, error) {
		if stop != nil {
			stop()
		}
		pc.releaseReader()
		pc.conn.Close()
		if stale && pc.reused {
			return nil, &staleConnError{err}
		}
		return nil, err
	}

	bw := upWriters.Get().(*bufio.Writer)
	bw.Reset(writerOnly{pc.conn})
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	upWriters.Put(bw)
	if err != nil {
		// Without a body, a failed write is the connection's fault. (With
		// one, it may be the client's body; that request is not retried.)
		return fail(fmt.Errorf("host: writing the request to the target: %w", err), true)
	}

	if t := pc.hp.c.respTimeout; t > 0 {
		// The deadline is armed t+t/8 ahead and re-armed only once less
		// than t is left, so a busy connection pays for it about once
		// every t/8 rather than twice per request; the wait for headers
		// is bounded by t to 1.125t. Reads of the body clear it before
		// they wait on the socket (upBody.Read).
		now := time.Now()
		if pc.rdl.IsZero() || pc.rdl.Sub(now) < t {
			pc.rdl = now.Add(t + t/8)
			_ = pc.conn.SetReadDeadline(pc.rdl)
		}
	}
	pc.br = upReaders.Get().(*bufio.Reader)
	pc.br.Reset(&pc.hr)
	pc.hleft = maxResponseHeaderBytes
	// The target needs a moment to answer; reading at once would mostly
	// find nothing (a wasted read(2)) and park. Letting the other runnable
	// goroutines go first usually gives the response time to arrive.
	runtime.Gosched()
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		if _, err := pc.br.Peek(1); err != nil {
			// Nothing of the response arrived: on a reused connection the
			// target most likely closed it while it was idle.
			return fail(fmt.Errorf("host: reading the response from the target: %w", err), n1xx == 0)
		}
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(fmt.Errorf("host: reading the response from the target: %w", err), false)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n1xx >= 10 {
			return fail(errors.New("host: too many 1xx responses from the target"), false)
		}
		// The request body was sent without waiting for 100 Continue (and
		// the client already got its own from the server when the body was
		// read), so a 100 from the target is not passed on. Other 1xx
		// responses (103 Early Hints) go to the client.
		if code != http.StatusContinue {
			if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
					return fail(err, false)
				}
			}
		}
	}
	pc.hleft = 0
	if resp.StatusCode == http.StatusSwitchingProtocols {
		pc.clearReadDeadline()
		// The connection now belongs to whatever protocol was agreed on;
		// ReverseProxy relays it through the body, which must be writable.
		if stop != nil {
			stop()
		}
		resp.Body = &upgradedBody{pc: pc}
		return resp, nil
	}

	reuse := !resp.Close && !req.Close && pc.hp.c.maxIdle > 0
	if resp.Body == http.NoBody {
		pc.done(reuse, stop, true)
		return resp, nil
	}
	resp.Body = &upBody{pc: pc, body: resp.Body, reuse: reuse, stop: stop, length: resp.ContentLength}
	return resp, nil
}

// done ends a request on pc: back to the pool when reuse holds, the response
// was consumed exactly, and no cancellation can still poison the deadline;
// closed otherwise. owner is false when the caller may not be the goroutine
// reading the body (Close): then the read buffer is left to the collector
// rather than pooled while a Read might still use it.
func (pc *upConn) done(reuse bool, stop func() bool, owner bool) {
	if stop != nil && !stop() {
		// The context's AfterFunc ran (or is running): the deadline is set
		// in the past.
		reuse = false
	}
	if !owner {
		pc.conn.Close()
		return
	}
	if reuse && pc.br.Buffered() != 0 {
		reuse = false // bytes beyond the response: the stream is out of step
	}
	pc.releaseReader()
	if reuse {
		pc.hp.put(pc)
		return
	}
	pc.conn.Close()
}

func (pc *upConn) releaseReader() {
	if pc.br != nil {
		pc.br.Reset(nil)
		upReaders.Put(pc.br)
		pc.br = nil
	}
}

// upBody is a response body that hands its connection back when it was
// read to EOF, and closes it when it is closed before.
type upBody struct {
	pc     *upConn
	body   io.ReadCloser
	reuse  bool
	stop   func() bool
	length int64 // Content-Length, or -1
	ended  atomic.Bool
	err    error // what Read returns once ended

	// sink and sinkRF, when set, receive the whole body on the first Read
	// (see pumpTo).
	sink   io.Writer
	sinkRF func(io.Reader) (int64, error)
}

// spliceMin is the smallest body worth moving socket to socket: below it,
// the pipe and the extra calls cost more than copying through user space.
const spliceMin = 64 << 10

// pumpTo arranges for the body to be delivered to the client directly
// rather than through the caller's copy loop: the first Read writes what
// the read buffer already holds to w, then hands the rest of the body, as
// an io.LimitedReader over the target's TCP connection, to readFrom (the
// client connection's ReadFrom, which on Linux splices socket to socket
// without copying through user space), and reports io.EOF. It does nothing
// unless the body has a known length of at least spliceMin and the read
// buffer holds no more than the body. The caller must be the one that
// copies the body to w next (httputil.ReverseProxy does, right after
// ModifyResponse).
func (b *upBody) pumpTo(w io.Writer, readFrom func(io.Reader) (int64, error)) {
	if b.length < spliceMin || b.pc.br.Buffered() > int(b.length) {
		return
	}
	b.sink, b.sinkRF = w, readFrom
}

// pump delivers the body to the sink; see pumpTo.
func (b *upBody) pump() error {
	pc := b.pc
	n := pc.br.Buffered()
	if n > 0 {
		head, _ := pc.br.Peek(n)
		if _, err := b.sink.Write(head); err != nil {
			return err
		}
		_, _ = pc.br.Discard(n)
	}
	rest := b.length - int64(n)
	pc.clearReadDeadline()
	lr := &io.LimitedReader{R: pc.conn, N: rest}
	if _, err := b.sinkRF(lr); err != nil {
		return err
	}
	if lr.N != 0 {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		if b.err == nil {
			return 0, errors.New("host: read on a closed response body")
		}
		return 0, b.err
	}
	if b.sink != nil {
		err := b.pump()
		if err == nil {
			err = io.EOF
		}
		if b.ended.CompareAndSwap(false, true) {
			b.err = err
			b.pc.done(b.reuse && err == io.EOF, b.stop, true)
		}
		return 0, err
	}
	if b.pc.br.Buffered() == 0 {
		// This read goes to the socket: response_timeout bounds the wait
		// for headers only.
		b.pc.clearReadDeadline()
	}
	n, err := b.body.Read(p)
	if err != nil {
		if b.ended.CompareAndSwap(false, true) {
			b.err = err
			b.pc.done(b.reuse && err == io.EOF, b.stop, true)
		}
	}
	return n, err
}

func (b *upBody) Close() error {
	if b.ended.CompareAndSwap(false, true) {
		// Not read to the end: what is left of the body is still on the
		// wire, so the connection cannot carry another request.
		b.pc.done(false, b.stop, false)
	}
	return nil
}

// upgradedBody is the connection after a 101 response: reads come from the
// buffered reader (which may hold bytes sent right behind the response),
// writes go to the connection.
type upgradedBody struct {
	pc *upConn
}

func (b *upgradedBody) Read(p []byte) (int, error)  { return b.pc.br.Read(p) }
func (b *upgradedBody) Write(p []byte) (int, error) { return b.pc.conn.Write(p) }
func (b *upgradedBody) Close() error                { return b.pc.conn.Close() }
