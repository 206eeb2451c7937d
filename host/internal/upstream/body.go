package upstream

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// respBody is a response body that hands its connection back when it was
// read to EOF, and closes it when it is closed before.
type respBody struct {
	pc     *poolConn
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
func (b *respBody) pumpTo(w io.Writer, readFrom func(io.Reader) (int64, error)) {
	if b.length < spliceMin || b.pc.br.Buffered() > int(b.length) {
		return
	}
	b.sink, b.sinkRF = w, readFrom
}

// pump delivers the body to the sink; see pumpTo.
func (b *respBody) pump() error {
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

func (b *respBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		if b.err == nil {
			return 0, errors.New("upstream: read on a closed response body")
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

func (b *respBody) Close() error {
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
	pc *poolConn
}

func (b *upgradedBody) Read(p []byte) (int, error)  { return b.pc.br.Read(p) }
func (b *upgradedBody) Write(p []byte) (int, error) { return b.pc.conn.Write(p) }
func (b *upgradedBody) Close() error                { return b.pc.conn.Close() }

// Splice arranges for the body of resp, a response of this client, to go
// from the target's socket to the client's without passing through the
// caller's copy buffer (see pumpTo). It does nothing for another body, or
// when the Content-Length the client will be told differs from the length
// that would be pumped: a filter may have changed the header, and the
// server does not check what ReadFrom sends against it.
func Splice(resp *http.Response, w io.Writer, readFrom func(io.Reader) (int64, error)) {
	if b, ok := resp.Body.(*respBody); ok && b.length == declaredLength(resp.Header) {
		b.pumpTo(w, readFrom)
	}
}

// declaredLength is the value of h's Content-Length, or -1.
func declaredLength(h http.Header) int64 {
	v := h["Content-Length"]
	if len(v) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}
