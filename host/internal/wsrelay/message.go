package wsrelay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
)

// Message mode: when a filter of the route has a message hook, the relay
// reads whole messages on each side with gorilla (fragments reassembled),
// runs the chain on each, and acts on its verdict. One reader goroutine per
// side; writes to a side come from both readers (forwarding, injection), so
// each side has a write lock. Control frames go through gorilla's
// WriteControl, which is safe alongside other writes.
//
// Writes are batched by the sides' socks: a message forwarded by the
// reader of side d waits in the other side's buffer until that reader is
// about to read again (flushPeer), so the messages that one read brought in
// leave in one write. Everything else (control frames, injections towards
// the side the reader came from, writes from the keep-alive timer) is
// flushed at once.

type msgSide struct {
	conn      *websocket.Conn
	sock      *sock
	wmu       sync.Mutex  // one data writer at a time (gorilla's rule)
	closeSent atomic.Bool // a close frame was written to this side
	gotClose  atomic.Bool // the side's reader ended on a close frame
}

type msgRelay struct {
	rs    *relayState
	sides [2]*msgSide
	chain filter.Chain
	s     *filter.Session
	log   *slog.Logger
}

// payloadPool holds the buffers messages are read into. A buffer is lent
// to the chain for one OnMessage call and taken back once the message (or
// its replacement) has been written on, so an idle session holds none.
var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// payloadKeep is the largest payload buffer that goes back to the pool.
const payloadKeep = 1 << 20

// startMessages starts relaying a session in message mode: one fresh
// goroutine reads each side. The one that ends last closes the sockets and
// calls done.
func startMessages(ctx context.Context, rs *relayState, hs handshakes, chain filter.Chain, s *filter.Session, done func()) {
	x := &msgRelay{rs: rs, chain: chain, s: s, log: rs.log}
	x.sides[sideClient] = &msgSide{conn: hs.client, sock: hs.clientSock}
	x.sides[sideUpstream] = &msgSide{conn: hs.up, sock: hs.upSock}
	for d := range 2 {
		c, other := x.sides[d].conn, 1-d
		x.sides[d].sock.batch = true
		x.sides[d].sock.flushPeer = func() {
			if x.sides[other].sock.flush() != nil {
				x.sideGone(other)
			}
		}
		c.SetReadLimit(rs.opt.MaxMessageSize)
		// Close frames are answered end to end: the relay passes a close on
		// and the reply comes from the other peer, so gorilla must not
		// answer by itself.
		c.SetCloseHandler(func(int, string) error { return nil })
		// Pings and pongs go through, so each peer sees the other's liveness.
		c.SetPingHandler(func(data string) error {
			rs.heard[d].Store(time.Now().UnixNano())
			x.control(other, websocket.PingMessage, []byte(data))
			return nil
		})
		c.SetPongHandler(func(data string) error {
			rs.heard[d].Store(time.Now().UnixNano())
			if data == pingPayload {
				return nil // the answer to the relay's own keep-alive
			}
			x.control(other, websocket.PongMessage, []byte(data))
			return nil
		})
	}

	rs.startTimer(x)
	stop := afterFunc(ctx, func() {
		x.shutdown(websocket.CloseGoingAway, shutdownReason(ctx), "proxy", websocket.CloseGoingAway)
	})
	var left atomic.Int32
	left.Store(2)
	finish := func() {
		if left.Add(-1) != 0 {
			return
		}
		stop()
		rs.stopTimer()
		x.close()
		done()
	}
	for d := range 2 {
		// The first wait happens outside gorilla, on a short stack, unless
		// gorilla already holds bytes of the upstream's (see awaitBytes).
		shallow := d == sideClient || len(hs.leftover) == 0
		go func() {
			if shallow {
				x.sides[d].sock.awaitBytes()
			}
			x.ended(d, x.read(d))
			finish()
		}()
	}
}

// close ends both sockets once both readers ended. A side whose reader did
// not end on a close frame (too big a message, a failed filter's close still
// unanswered) may have bytes in flight towards the relay: closing with
// unread bytes resets the connection, and a reset can destroy the close
// frame the peer has not read yet. Half-close and drain first, briefly.
func (x *msgRelay) close() {
	deadline := time.Now().Add(lingerWait)
	for _, sd := range x.sides {
		sd.sock.flush()
		if sd.gotClose.Load() {
			sd.sock.Close()
		} else {
			linger(sd.sock, deadline)
		}
		sd.sock.release()
	}
}

// lingerWait bounds linger.
const lingerWait = 500 * time.Millisecond

// linger half-closes c, reads and discards until the peer closes or the
// deadline passes, and closes c.
func linger(c net.Conn, deadline time.Time) {
	defer c.Close()
	if cw, ok := c.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(deadline)
	var buf [512]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// read relays the messages of side d until its reader fails.
func (x *msgRelay) read(d int) error {
	src := x.sides[d].conn
	for {
		typ, rd, err := src.NextReader()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		x.rs.heard[d].Store(now)
		x.rs.lastData.Store(now)
		bp := payloadPool.Get().(*[]byte)
		payload, err := readPayload(rd, (*bp)[:0])
		if err != nil {
			putPayload(bp, payload)
			return err
		}
		x.rs.msgs[d].Add(1)
		x.rs.bytes[d].Add(int64(len(payload)))
		if !x.rs.isClosed() { // closing: only the close reply matters now
			x.handle(d, typ, payload)
		}
		putPayload(bp, payload)
	}
}

// readPayload reads a whole message into b, growing it as needed.
func readPayload(rd io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func putPayload(bp *[]byte, b []byte) {
	if cap(b) > payloadKeep {
		return
	}
	*bp = b[:0]
	payloadPool.Put(bp)
}

// handle runs the chain on one message from side d and acts on its verdict.
func (x *msgRelay) handle(d, typ int, payload []byte) {
	c := x.chain
	if c == nil || !c.Hooks().Has(filter.HookMessage) {
		x.write(d, 1-d, typ, payload)
		return
	}
	m := &filter.Message{Direction: filter.Direction(d), Binary: typ == websocket.BinaryMessage, Payload: payload}
	var v filter.MessageVerdict
	if !callHook(x.s, x.log, func() { v = c.OnMessage(x.s, m) }) {
		x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
		return
	}
	for _, in := range v.Inject {
		to := sideUpstream
		if in.Direction == filter.UpstreamToClient {
			to = sideClient
		}
		t := websocket.TextMessage
		if in.Binary {
			t = websocket.BinaryMessage
		}
		x.write(d, to, t, in.Payload)
	}
	switch v.Action {
	case filter.MessagePass:
		// The payload as the chain left it, with the message's own type.
		x.write(d, 1-d, typ, m.Payload)
	case filter.MessageDrop:
	case filter.MessageClose:
		code := sendableCode(v.CloseCode)
		x.shutdown(code, v.CloseReason, "proxy", code)
	default:
		x.log.Error("wsrelay: websocket filter returned an unknown action", "session", x.s.ID, "action", v.Action)
		x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
	}
}

// write sends one data message, read from side from, to side to. A failed
// write means that side is gone. A message for the side that from feeds
// waits in the batch (from's reader flushes it before it reads again);
// one for the side it came from (an injection) goes out at once.
func (x *msgRelay) write(from, to, typ int, payload []byte) {
	side := x.sides[to]
	side.wmu.Lock()
	err := side.conn.WriteMessage(typ, payload)
	side.wmu.Unlock()
	if err == nil && to == from {
		err = side.sock.flush()
	}
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		x.sideGone(to)
	}
}

// control writes a control frame to side and sends it at once, behind the
// messages batched before it.
func (x *msgRelay) control(side, typ int, data []byte) error {
	sd := x.sides[side]
	err := sd.conn.WriteControl(typ, data, time.Now().Add(writeWait))
	if ferr := sd.sock.flush(); err == nil {
		err = ferr
	}
	return err
}

// ended handles the end of side d's reader.
func (x *msgRelay) ended(d int, err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
		// Side d sent a close frame, either first or as the reply to one:
		// pass code and reason on.
		x.sides[d].gotClose.Store(true)
		x.rs.record(sideName[d], ce.Code)
		x.sendClose(1-d, ce.Code, ce.Text)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla already told side d 1009. The other side did nothing
		// wrong: it hears that its peer went away, and why.
		x.sides[d].closeSent.Store(true)
		x.rs.record("proxy", websocket.CloseMessageTooBig)
		x.sendClose(1-d, websocket.CloseGoingAway, sideName[d]+" sent a message too big")
	default:
		// Includes gorilla's 1006 for a connection that ended without a
		// close frame.
		x.sideGone(d)
	}
	x.sides[1-d].conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// sideGone handles side g disappearing without a close frame (or failing a
// write, or missing the close grace): the other side gets 1001, the stats
// say 1006 when this ends the session.
func (x *msgRelay) sideGone(g int) {
	x.rs.record(sideName[g], websocket.CloseAbnormalClosure)
	x.sendClose(1-g, websocket.CloseGoingAway, sideName[g]+" went away")
	x.sides[g].conn.Close()
	x.sides[1-g].conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// shutdown closes both sides with code and reason when the relay or a filter
// ends the session; the peers' replies end the readers.
func (x *msgRelay) shutdown(code int, reason, by string, statCode int) {
	if !x.rs.record(by, statCode) {
		return
	}
	deadline := time.Now().Add(closeGrace)
	for side := range 2 {
		x.sendClose(side, code, reason)
		x.sides[side].conn.SetReadDeadline(deadline)
	}
}

// sendClose writes a close frame to side, once.
func (x *msgRelay) sendClose(side, code int, reason string) {
	s := x.sides[side]
	if !s.closeSent.CompareAndSwap(false, true) {
		return
	}
	x.control(side, websocket.CloseMessage, websocket.FormatCloseMessage(code, closeReason(reason)))
}

func (x *msgRelay) ping(side int) bool {
	return x.control(side, websocket.PingMessage, []byte(pingPayload)) == nil
}
