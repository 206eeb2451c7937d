package host

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// idleDeadline is a deadline that bounds the idle time between two
// operations by t, re-armed cheaply: it is set t+t/8 ahead and moved only
// when less than t is left, so a busy connection pays for a timer update
// about once every t/8 rather than once per read or write. A peer is cut
// off after between t and 1.125 t without progress.
type idleDeadline struct {
	t  time.Duration
	at time.Time // the deadline in force; zero for none
}

// arm makes sure at least t is left before the deadline, calling set with
// a new one when needed. It does nothing when t is zero (no bound).
func (d *idleDeadline) arm(set func(time.Time) error) error {
	if d.t <= 0 {
		return nil
	}
	now := time.Now()
	if !d.at.IsZero() && d.at.Sub(now) >= d.t {
		return nil
	}
	d.at = now.Add(d.t + d.t/8)
	return set(d.at)
}

// clear lifts the deadline, if one was set.
func (d *idleDeadline) clear(set func(time.Time) error) {
	if !d.at.IsZero() {
		d.at = time.Time{}
		_ = set(time.Time{})
	}
}

// clientBody is a request body read under [server] client_body_timeout:
// each read must make progress within it. It remembers the first error, so
// the proxy can answer a client whose body failed (400, or 408 on a stall)
// rather than blame the upstream.
type clientBody struct {
	rc   io.ReadCloser
	lw   *logWriter   // the response: to reach the connection's deadlines
	dl   idleDeadline // t is client_body_timeout
	err  error        // the first error other than io.EOF
	done bool         // EOF or Close: the deadline is lifted
}

func (b *clientBody) setReadDeadline(t time.Time) error {
	return http.NewResponseController(b.lw).SetReadDeadline(t)
}

func (b *clientBody) Read(p []byte) (int, error) {
	_ = b.dl.arm(b.setReadDeadline)
	n, err := b.rc.Read(p)
	if err != nil {
		if err != io.EOF && b.err == nil {
			b.err = err
		}
		b.finish()
	}
	return n, err
}

// Close lifts the read deadline: once the body is done, the server's own
// read of the connection (which watches for the client going away) must
// not time out while the response is still being produced.
func (b *clientBody) Close() error {
	b.finish()
	return b.rc.Close()
}

func (b *clientBody) finish() {
	if !b.done {
		b.done = true
		b.dl.clear(b.setReadDeadline)
	}
}

// clientBodyError answers a request whose body could not be read: 408 when
// the client stalled past client_body_timeout, 413 past a body limit, 400
// for anything else (malformed chunked encoding, a length that lies). The
// connection is closed: its framing is lost.
func clientBodyError(w http.ResponseWriter, id string, err error) {
	w.Header().Set("Connection", "close")
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		localError(w, id, http.StatusRequestEntityTooLarge, "host: request body too large")
	case upstream.IsTimeout(err):
		localError(w, id, http.StatusRequestTimeout, "host: the request body stalled past client_body_timeout")
	default:
		localError(w, id, http.StatusBadRequest, "host: malformed request body")
	}
}
