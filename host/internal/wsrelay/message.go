package wsrelay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/wsproto"
)

// Message mode: when a filter of the route has a message hook, the relay is
// a WebSocket endpoint towards each side (package wsproto): it reads whole
// messages (fragments reassembled, inflated when compressed), refuses
// every protocol violation with the code RFC 6455 names, runs the chain on
// each message, and writes the verdict on as one frame. One reader
// goroutine per side; writes to a side come from both readers (forwarding,
// injection, control frames) and the keep-alive timer, under the side's
// write lock.
//
// Writes are batched by the sides' socks: a message forwarded by the
// reader of side d waits in the other side's buffer until that reader is
// about to read again (flushPeer), so the messages that one read brought in
// leave in one write. Everything else (control frames, injections towards
// the side the reader came from, writes from the keep-alive timer) is
// flushed at once.
//
// Endings: a close frame from a side goes on to the other, and messages
// still coming the other way are delivered until that side's reply, which
// goes back as the answer. A side that breaks the protocol is read no
// more; the other side gets 1001 saying so, whatever it still sends before
// its reply is delivered, and then the offender gets its code (1002, 1007,
// 1009): everything accepted before the violation arrives before the close.

type msgSide struct {
	sock *sock
	rd   wsproto.Reader
	// masked: frames to this side are masked (it is the upstream, and the
	// relay its client). deflate: this side accepted permessage-deflate, so
	// messages to it are compressed.
	masked, deflate bool

	wmu       sync.Mutex // one frame writer at a time
	closeSent bool       // a close frame was written to this side; guarded by wmu
	// owed is the close this side gets once the other side's close reply
	// arrives (it broke the protocol); guarded by wmu.
	owed      []byte
	gotClose  atomic.Bool // the side's reader ended on a close frame
	writeDead atomic.Bool // a write to this side failed
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

func getPayload() *[]byte { return payloadPool.Get().(*[]byte) }

func putPayloadBuf(bp *[]byte) {
	if cap(*bp) > payloadKeep {
		return
	}
	*bp = (*bp)[:0]
	payloadPool.Put(bp)
}

// msgConfig is what message mode needs of the handshakes of each side.
type msgConfig struct {
	inflate  [2]*wsproto.Inflater // what each side compresses, nil when off
	leftover []byte               // bytes the upstream sent right behind its 101
}

// startMessages starts relaying a session in message mode: one fresh
// goroutine reads each side. The one that ends last closes the sockets and
// calls done.
func startMessages(ctx context.Context, rs *relayState, socks [2]*sock, mc msgConfig, chain filter.Chain, s *filter.Session, done func()) {
	x := &msgRelay{rs: rs, chain: chain, s: s, log: rs.log}
	for d := range 2 {
		sd := &msgSide{sock: socks[d], masked: d == sideUpstream, deflate: mc.inflate[d] != nil}
		sd.rd = wsproto.Reader{R: socks[d], FromClient: d == sideClient, MaxMessage: rs.opt.MaxMessageSize,
			Inflate: mc.inflate[d], Get: getPayload, Put: putPayloadBuf}
		x.sides[d] = sd
	}
	if len(mc.leftover) > 0 {
		x.sides[sideUpstream].rd.R = io.MultiReader(bytes.NewReader(mc.leftover), socks[sideUpstream])
	}
	for d := range 2 {
		other := 1 - d
		x.sides[d].sock.batch = true
		x.sides[d].sock.flushPeer = func() {
			if err := x.sides[other].sock.flush(); err != nil {
				x.writeFailed(other, err)
			}
		}
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
		// The first wait happens on a short stack (see awaitBytes), unless
		// bytes of the upstream's are already there.
		shallow := d == sideClient || len(mc.leftover) == 0
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
// not end on a close frame (a violation, a failed filter's close still
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

// closeFrame ends a reader on the side's close frame.
type closeFrame struct {
	code   int
	reason string
}

func (c *closeFrame) Error() string { return "wsrelay: websocket close frame" }

// read relays what side d sends until its close frame, a violation or an
// error, which it returns.
func (x *msgRelay) read(d int) error {
	sd := x.sides[d]
	other := 1 - d
	for {
		m, err := sd.rd.Next()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		x.rs.heard[d].Store(now)
		switch m.Op {
		case wsproto.OpPing:
			x.control(other, websocket.PingMessage, m.Payload)
		case wsproto.OpPong:
			if string(m.Payload) != pingPayload { // not the answer to the relay's own keep-alive
				x.control(other, websocket.PongMessage, m.Payload)
			}
		case wsproto.OpClose:
			return &closeFrame{code: m.Code, reason: m.Reason}
		default:
			x.rs.lastData.Store(now)
			x.rs.msgs[d].Add(1)
			x.rs.bytes[d].Add(int64(len(m.Payload)))
			x.handle(d, int(m.Op), m.Payload)
			putPayloadBuf(m.Buf)
		}
	}
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
		if !x.fits(to, t, in.Payload, "an injected") {
			return
		}
		x.write(d, to, t, in.Payload)
	}
	switch v.Action {
	case filter.MessagePass:
		// The payload as the chain left it, with the message's own type.
		if x.fits(1-d, typ, m.Payload, "a replaced") {
			x.write(d, 1-d, typ, m.Payload)
		}
	case filter.MessageDrop:
	case filter.MessageClose:
		code := sendableCode(v.CloseCode)
		x.shutdown(code, v.CloseReason, "proxy", code)
	default:
		x.log.Error("wsrelay: websocket filter returned an unknown action", "session", x.s.ID, "action", v.Action)
		x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
	}
}

// fits checks a message a filter wrote before it goes to side to: no larger
// than max_message_size, and valid UTF-8 when it is text, as the receiving
// side is owed. A filter that breaks this fails: the session closes with
// 1011.
func (x *msgRelay) fits(to, typ int, p []byte, what string) bool {
	bad := ""
	switch {
	case x.rs.opt.MaxMessageSize > 0 && int64(len(p)) > x.rs.opt.MaxMessageSize:
		bad = "larger than max_message_size"
	case typ == websocket.TextMessage && !utf8.Valid(p):
		bad = "text that is not valid UTF-8"
	}
	if bad == "" {
		return true
	}
	x.log.Warn("wsrelay: websocket filter produced "+what+" message "+bad, "session", x.s.ID, "to", sideName[to], "bytes", len(p))
	x.shutdown(websocket.CloseInternalServerErr, "filter failed", "proxy", websocket.CloseInternalServerErr)
	return false
}

// write sends one data message, read from side from, to side to, unless a
// close frame went to that side already. A failed write means that side is
// gone. A message for the side that from feeds waits in the batch (from's
// reader flushes it before it reads again); one for the side it came from
// (an injection) goes out at once.
func (x *msgRelay) write(from, to, typ int, payload []byte) {
	side := x.sides[to]
	side.wmu.Lock()
	if side.closeSent {
		side.wmu.Unlock()
		return
	}
	err := side.writeFrame(byte(typ), payload)
	side.wmu.Unlock()
	if err == nil && to == from {
		err = side.sock.flush()
	}
	if err != nil {
		x.writeFailed(to, err)
	}
}

// writeFailed handles a write to side g that failed: g stopped reading or
// is gone. Nothing more is written to it, but what it sent before is still
// read and delivered (often its close frame, which it wrote just before it
// hung up): its reader decides how the session ends, within the grace
// period.
func (x *msgRelay) writeFailed(g int, err error) {
	sd := x.sides[g]
	if !sd.writeDead.CompareAndSwap(false, true) {
		return // the failure is sticky: every later flush reports it again
	}
	x.rs.noteWriteError(g, err)
	sd.wmu.Lock()
	sd.closeSent = true
	sd.wmu.Unlock()
	sd.sock.SetReadDeadline(time.Now().Add(closeGrace))
}

// framePool holds the buffers frames are built in when they must be
// copied (masked, compressed).
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// writeFrame writes one whole message as one frame: compressed when the
// side accepted permessage-deflate and it is worth it, masked towards the
// upstream. Callers hold wmu.
func (sd *msgSide) writeFrame(op byte, p []byte) error {
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= payloadKeep {
			*bp = (*bp)[:0]
			framePool.Put(bp)
		}
	}()
	if sd.deflate && len(p) >= wsproto.MinDeflate {
		z := wsproto.Deflate((*bp)[:0], p)
		*bp = z
		// The header goes in front of the compressed bytes: build the frame
		// after them in the same buffer.
		hdrAt := len(z)
		f := wsproto.AppendFrame(z, true, true, op, z, sd.masked)
		*bp = f
		_, err := sd.sock.Write(f[hdrAt:])
		return err
	}
	if !sd.masked && len(p) >= relayBufSize {
		// Large, unmasked: no copy.
		h, _ := wsproto.AppendHeader((*bp)[:0], true, false, op, len(p), false)
		if _, err := sd.sock.Write(h); err != nil {
			return err
		}
		_, err := sd.sock.Write(p)
		return err
	}
	*bp = wsproto.AppendFrame((*bp)[:0], true, false, op, p, sd.masked)
	_, err := sd.sock.Write(*bp)
	return err
}

// control writes a control frame to side and sends it at once, behind the
// messages batched before it. Nothing follows a close frame.
func (x *msgRelay) control(side, typ int, data []byte) error {
	sd := x.sides[side]
	sd.wmu.Lock()
	if sd.closeSent {
		sd.wmu.Unlock()
		return errors.New("wsrelay: websocket close sent")
	}
	if typ == websocket.CloseMessage {
		sd.closeSent = true
		if sd.owed != nil {
			data = sd.owed
		}
	}
	bp := framePool.Get().(*[]byte)
	*bp = wsproto.AppendFrame((*bp)[:0], true, false, byte(typ), data, sd.masked)
	_, err := sd.sock.Write(*bp)
	framePool.Put(bp)
	sd.wmu.Unlock()
	if ferr := sd.sock.flush(); err == nil {
		err = ferr
	}
	return err
}

// ended handles the end of side d's reader.
func (x *msgRelay) ended(d int, err error) {
	var cf *closeFrame
	var pe *wsproto.ProtocolError
	switch {
	case errors.As(err, &cf):
		// Side d sent a close frame, either first or as the reply to one:
		// pass code and reason on.
		x.sides[d].gotClose.Store(true)
		x.rs.record(sideName[d], cf.code)
		x.sendClose(1-d, cf.code, cf.reason)
	case errors.As(err, &pe):
		// Side d broke the protocol. The other side hears that its peer is
		// going away, and why; side d gets its code once the other side
		// answered (or the grace period ran out), so that what the other
		// side still sends reaches it first.
		x.rs.record("proxy", pe.Code)
		x.log.Debug("wsrelay: websocket peer broke the protocol", "session", x.s.ID, "side", sideName[d], "code", pe.Code, "reason", pe.Reason)
		x.owe(d, pe.Code, pe.Reason)
		x.sendClose(1-d, websocket.CloseGoingAway, sideName[d]+" broke the protocol: "+pe.Reason)
		if x.sides[1-d].gotClose.Load() {
			x.sendClose(d, pe.Code, pe.Reason)
		}
	default:
		// The connection ended without a close frame.
		x.sideGone(d)
	}
	x.sides[1-d].sock.SetReadDeadline(time.Now().Add(closeGrace))
}

// owe sets the close side d gets when the other side's reply comes.
func (x *msgRelay) owe(d, code int, reason string) {
	sd := x.sides[d]
	sd.wmu.Lock()
	sd.owed = websocket.FormatCloseMessage(code, closeReason(reason))
	sd.wmu.Unlock()
}

// sideGone handles side g disappearing without a close frame (or failing a
// write, or missing the close grace): the other side gets 1001, the stats
// say 1006 when this ends the session.
func (x *msgRelay) sideGone(g int) {
	x.rs.record(sideName[g], websocket.CloseAbnormalClosure)
	x.sendClose(1-g, websocket.CloseGoingAway, x.rs.goneReason(g))
	x.sides[g].sock.Close()
	x.sides[1-g].sock.SetReadDeadline(time.Now().Add(closeGrace))
}

// shutdown closes both sides with code and reason when the relay or a filter
// ends the session; the peers' replies end the readers.
//
// It closes every side that has not had a close frame yet, also when the
// session was already closing: a filter that fails on a message still in
// flight then ends the session with 1011 instead of dropping the message
// silently. Only the first close event goes into the stats.
func (x *msgRelay) shutdown(code int, reason, by string, statCode int) {
	x.rs.record(by, statCode)
	deadline := time.Now().Add(closeGrace)
	for side := range 2 {
		x.sendClose(side, code, reason)
		x.sides[side].sock.SetReadDeadline(deadline)
	}
}

// sendClose writes a close frame to side, once: the one it is owed, if any.
// A code that may not go on the wire (1005: the close had no payload) gives
// an empty close frame.
func (x *msgRelay) sendClose(side, code int, reason string) {
	var p []byte
	if code != websocket.CloseNoStatusReceived {
		p = websocket.FormatCloseMessage(code, closeReason(reason))
	}
	x.control(side, websocket.CloseMessage, p)
}

func (x *msgRelay) ping(side int) bool {
	return x.control(side, websocket.PingMessage, []byte(pingPayload)) == nil
}
