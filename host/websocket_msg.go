package host

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
)

// Message mode: when a filter of the route has a message hook, the relay
// reads whole messages on each side with gorilla (fragments reassembled),
// runs the chain on each, and acts on its verdict. One reader goroutine per
// side; writes to a side come from both readers (forwarding, injection), so
// each side has a write lock. Control frames go through gorilla's
// WriteControl, which is safe alongside other writes.

type wsMsgSide struct {
	conn      *websocket.Conn
	wmu       sync.Mutex  // one data writer at a time (gorilla's rule)
	closeSent atomic.Bool // a close frame was written to this side
	gotClose  atomic.Bool // the side's reader ended on a close frame
}

type wsMsg struct {
	rs    *wsRelayState
	sides [2]*wsMsgSide
	chain func() Chain
	s     *Session
	log   *slog.Logger
}

// wsRelayMessages relays a session in message mode until both readers ended.
// The caller's goroutine reads the client; one more goroutine reads the
// upstream.
func wsRelayMessages(ctx context.Context, rs *wsRelayState, client, upstream *websocket.Conn, chain func() Chain, s *Session) {
	x := &wsMsg{rs: rs, chain: chain, s: s, log: rs.log}
	x.sides[wsClient] = &wsMsgSide{conn: client}
	x.sides[wsUpstream] = &wsMsgSide{conn: upstream}
	for d := range 2 {
		c, other := x.sides[d].conn, x.sides[1-d].conn
		c.SetReadLimit(rs.opt.MaxMessageSize)
		// Close frames are answered end to end: the relay passes a close on
		// and the reply comes from the other peer, so gorilla must not
		// answer by itself.
		c.SetCloseHandler(func(int, string) error { return nil })
		// Pings and pongs go through, so each peer sees the other's liveness.
		c.SetPingHandler(func(data string) error {
			rs.heard[d].Store(time.Now().UnixNano())
			other.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(wsWriteWait))
			return nil
		})
		c.SetPongHandler(func(data string) error {
			rs.heard[d].Store(time.Now().UnixNano())
			if data == wsPingPayload {
				return nil // the answer to the relay's own keep-alive
			}
			other.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wsWriteWait))
			return nil
		})
	}

	rs.startTimer(x)
	stop := context.AfterFunc(ctx, func() {
		x.shutdown(websocket.CloseGoingAway, "proxy shutting down", "proxy", websocket.CloseGoingAway)
	})
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		x.ended(wsUpstream, x.read(wsUpstream))
	}()
	x.ended(wsClient, x.read(wsClient))
	<-done

	rs.stopTimer()
	// A side whose reader did not end on a close frame (too big a message,
	// a failed filter's close still unanswered) may have bytes in flight
	// towards the relay: closing with unread bytes resets the connection,
	// and a reset can destroy the close frame the peer has not read yet.
	// Half-close and drain first, briefly.
	deadline := time.Now().Add(wsLingerWait)
	for d, sd := range x.sides {
		if sd.gotClose.Load() {
			sd.conn.Close()
			continue
		}
		wsLinger(x.sides[d].conn.NetConn(), deadline)
	}
}

// wsLingerWait bounds wsLinger.
const wsLingerWait = 500 * time.Millisecond

// wsLinger half-closes c, reads and discards until the peer closes or the
// deadline passes, and closes c.
func wsLinger(c net.Conn, deadline time.Time) {
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
func (x *wsMsg) read(d int) error {
	src := x.sides[d].conn
	for {
		typ, rd, err := src.NextReader()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		x.rs.heard[d].Store(now)
		x.rs.lastData.Store(now)
		payload, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		x.rs.msgs[d].Add(1)
		x.rs.bytes[d].Add(int64(len(payload)))
		if x.rs.isClosed() {
			continue // closing: only the close reply matters now
		}
		x.handle(d, typ, payload)
	}
}

// handle runs the chain on one message from side d and acts on its verdict.
func (x *wsMsg) handle(d, typ int, payload []byte) {
	c := x.chain()
	if c == nil || !c.Hooks().Has(HookMessage) {
		x.write(1-d, typ, payload)
		return
	}
	m := &Message{Direction: Direction(d), Binary: typ == websocket.BinaryMessage, Payload: payload}
	var v MessageVerdict
	if !wsCallHook(x.s, x.log, func() { v = c.OnMessage(x.s, m) }) {
		x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
		return
	}
	for _, in := range v.Inject {
		to := wsUpstream
		if in.Direction == UpstreamToClient {
			to = wsClient
		}
		t := websocket.TextMessage
		if in.Binary {
			t = websocket.BinaryMessage
		}
		x.write(to, t, in.Payload)
	}
	switch v.Action {
	case MessagePass:
		// The payload as the chain left it, with the message's own type.
		x.write(1-d, typ, m.Payload)
	case MessageDrop:
	case MessageClose:
		code := wsSendableCode(v.CloseCode)
		x.shutdown(code, v.CloseReason, "proxy", code)
	default:
		x.log.Error("host: websocket filter returned an unknown action", "session", x.s.ID, "action", v.Action)
		x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
	}
}

// write sends one data message to side to. A failed write means that side is
// gone.
func (x *wsMsg) write(to, typ int, payload []byte) {
	side := x.sides[to]
	side.wmu.Lock()
	side.conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
	err := side.conn.WriteMessage(typ, payload)
	side.wmu.Unlock()
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		x.sideGone(to)
	}
}

// ended handles the end of side d's reader.
func (x *wsMsg) ended(d int, err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
		// Side d sent a close frame, either first or as the reply to one:
		// pass code and reason on.
		x.sides[d].gotClose.Store(true)
		x.rs.record(wsSideName[d], ce.Code)
		x.sendClose(1-d, ce.Code, ce.Text)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla already told side d 1009. The other side did nothing
		// wrong: it hears that its peer went away, and why.
		x.sides[d].closeSent.Store(true)
		x.rs.record("proxy", websocket.CloseMessageTooBig)
		x.sendClose(1-d, websocket.CloseGoingAway, wsSideName[d]+" sent a message too big")
	default:
		// Includes gorilla's 1006 for a connection that ended without a
		// close frame.
		x.sideGone(d)
	}
	x.sides[1-d].conn.SetReadDeadline(time.Now().Add(wsCloseGrace))
}

// sideGone handles side g disappearing without a close frame (or failing a
// write, or missing the close grace): the other side gets 1001, the stats
// say 1006 when this ends the session.
func (x *wsMsg) sideGone(g int) {
	x.rs.record(wsSideName[g], websocket.CloseAbnormalClosure)
	x.sendClose(1-g, websocket.CloseGoingAway, wsSideName[g]+" went away")
	x.sides[g].conn.Close()
	x.sides[1-g].conn.SetReadDeadline(time.Now().Add(wsCloseGrace))
}

// shutdown closes both sides with code and reason when the relay or a filter
// ends the session; the peers' replies end the readers.
func (x *wsMsg) shutdown(code int, reason, by string, statCode int) {
	if !x.rs.record(by, statCode) {
		return
	}
	deadline := time.Now().Add(wsCloseGrace)
	for side := range 2 {
		x.sendClose(side, code, reason)
		x.sides[side].conn.SetReadDeadline(deadline)
	}
}

// sendClose writes a close frame to side, once.
func (x *wsMsg) sendClose(side, code int, reason string) {
	s := x.sides[side]
	if !s.closeSent.CompareAndSwap(false, true) {
		return
	}
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, wsCloseReason(reason)), time.Now().Add(wsWriteWait))
}

func (x *wsMsg) ping(side int) bool {
	return x.sides[side].conn.WriteControl(websocket.PingMessage, []byte(wsPingPayload), time.Now().Add(wsWriteWait)) == nil
}
