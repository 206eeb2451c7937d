package upstream

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
	"runtime"
	"sync"
	"time"
)

// hostPool is the idle connections to one target, most recently used last.
type hostPool struct {
	c    *Client
	addr string

	mu     sync.Mutex
	idle   []*poolConn
	closed bool
	sweep  *time.Timer // closes connections idle for too long; nil when idle is empty
}

// get returns an idle connection, or dials a new one when there is none or
// fresh is set.
func (hp *hostPool) get(ctx context.Context, fresh bool) (*poolConn, error) {
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
			if idle > hp.c.idleTimeout || (idle > StaleCheckAfter && !connAlive(pc.conn)) {
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
			return nil, fmt.Errorf("upstream: connect to target: %w", context.Cause(ctx))
		}
		return nil, err // a *DialError
	}
	pc := &poolConn{hp: hp, conn: conn}
	pc.hr = headerReader{pc}
	return pc, nil
}

// put returns pc to the pool, or closes it when the pool is full or closed.
func (hp *hostPool) put(pc *poolConn) {
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
	var stale []*poolConn
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

// poolConn is one connection to a target. Between requests it holds no
// buffers: the reader and writer are borrowed per request.
type poolConn struct {
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
func (pc *poolConn) clearReadDeadline() {
	if !pc.rdl.IsZero() {
		pc.rdl = time.Time{}
		_ = pc.conn.SetReadDeadline(time.Time{})
	}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// MaxResponseHeaderBytes bounds the status line and headers of a response
// (1xx responses included), so a broken target cannot make the proxy buffer
// without end. The read buffer may hold the start of the body too, so the
// bound counts bytes read from the socket while headers are awaited.
const MaxResponseHeaderBytes = 1 << 20

var errResponseHeaderTooLarge = errors.New("upstream: the target's response headers are too large")

// headerReader is the connection as its read buffer sees it: while response
// headers are read it stops after MaxResponseHeaderBytes.
type headerReader struct{ pc *poolConn }

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
//
// Its complexity (26) is the exchange read as one sequence: write, arm the
// response timeout, skip or relay 1xx responses, hand over an upgraded
// connection, decide reuse; each failure says whether a retry is safe,
// which only this sequence knows.
func (pc *poolConn) roundTrip(req *http.Request) (*http.Response, error) {
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

	bw := writers.Get().(*bufio.Writer)
	bw.Reset(writerOnly{pc.conn})
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		// Without a body, a failed write is the connection's fault. (With
		// one, it may be the client's body; that request is not retried.)
		return fail(fmt.Errorf("upstream: writing the request to the target: %w", err), true)
	}

	if t := pc.hp.c.respTimeout; t > 0 {
		// The deadline is armed t+t/8 ahead and re-armed only once less
		// than t is left, so a busy connection pays for it about once
		// every t/8 rather than twice per request; the wait for headers
		// is bounded by t to 1.125t. Reads of the body clear it before
		// they wait on the socket (respBody.Read).
		now := time.Now()
		if pc.rdl.IsZero() || pc.rdl.Sub(now) < t {
			pc.rdl = now.Add(t + t/8)
			_ = pc.conn.SetReadDeadline(pc.rdl)
		}
	}
	pc.br = readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.hr)
	pc.hleft = MaxResponseHeaderBytes
	// The target needs a moment to answer; reading at once would mostly
	// find nothing (a wasted read(2)) and park. Letting the other runnable
	// goroutines go first usually gives the response time to arrive.
	runtime.Gosched()
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		if _, err := pc.br.Peek(1); err != nil {
			// Nothing of the response arrived: on a reused connection the
			// target most likely closed it while it was idle.
			return fail(fmt.Errorf("upstream: reading the response from the target: %w", err), n1xx == 0)
		}
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(fmt.Errorf("upstream: reading the response from the target: %w", err), false)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n1xx >= 10 {
			return fail(errors.New("upstream: too many 1xx responses from the target"), false)
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
	resp.Body = &respBody{pc: pc, body: resp.Body, reuse: reuse, stop: stop, length: resp.ContentLength}
	return resp, nil
}

// done ends a request on pc: back to the pool when reuse holds, the response
// was consumed exactly, and no cancellation can still poison the deadline;
// closed otherwise. owner is false when the caller may not be the goroutine
// reading the body (Close): then the read buffer is left to the collector
// rather than pooled while a Read might still use it.
func (pc *poolConn) done(reuse bool, stop func() bool, owner bool) {
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

func (pc *poolConn) releaseReader() {
	if pc.br != nil {
		pc.br.Reset(nil)
		readers.Put(pc.br)
		pc.br = nil
	}
}
