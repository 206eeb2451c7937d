package wsrelay

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Raw mode: when no filter of the route has a message hook, the relay copies
// bytes between the two sockets without decoding frames. It only follows the
// frame headers as they stream past (frameTracker, no payload is touched),
// which costs a few comparisons per frame and buys three things: counting
// messages, reading close codes for the stats, and knowing when a control
// frame of the relay's own (a keep-alive ping, a close on shutdown) can be
// slipped in between two frames without corrupting the stream.

// errWrite marks a copy that ended because the destination failed.
var errWrite = errors.New("wsrelay: websocket write failed")

// rawDir is one direction of a raw session: bytes from side src to the other.
type rawDir struct {
	src, dst *sock
	// mu guards writes to dst and the fields below: the copier, the
	// keep-alive timer and shutdown all write to dst.
	mu sync.Mutex
	fr frameTracker
	// stopped is set once the relay wrote its own close frame to dst (or dst
	// is gone): what src sends afterwards is discarded.
	stopped  bool
	sawClose atomic.Bool // src sent a close frame
}

type rawRelay struct {
	rs    *relayState
	conns [2]*sock // by side
	dirs  [2]*rawDir
	left  atomic.Int32 // directions still running
	done  func()       // run by the direction that ends last
}

// startRaw starts relaying a session in raw mode: one goroutine per
// direction while bytes flow, none while it is idle (parker). The
// direction that ends last closes the sockets and calls done.
func startRaw(ctx context.Context, rs *relayState, client, upstream *sock, leftover []byte, done func()) {
	x := &rawRelay{rs: rs, conns: [2]*sock{client, upstream}}
	x.dirs[sideClient] = &rawDir{src: client, dst: upstream}
	x.dirs[sideUpstream] = &rawDir{src: upstream, dst: client}
	for _, dir := range x.dirs {
		dir.fr.limit = rs.opt.MaxMessageSize
	}
	// Before anything (the timer, a cancelled ctx) can touch the sockets.
	for d, c := range x.conns {
		c.resume = func() { go x.run(d) }
		c.parkable = canPark && c.rc != nil
	}

	rs.startTimer(x)
	stop := afterFunc(ctx, func() {
		x.shutdown(websocket.CloseGoingAway, shutdownReason(ctx), "proxy", websocket.CloseGoingAway)
	})
	x.left.Store(2)
	x.done = func() {
		stop()
		rs.stopTimer()
		client.Close()
		upstream.Close()
		for _, c := range x.conns {
			idleParker.forget(c)
			c.release()
		}
		done()
	}

	go func() {
		// Frames the upstream sent right behind its 101 response.
		if len(leftover) > 0 {
			rs.bytes[sideUpstream].Add(int64(len(leftover)))
			if _, err := x.forward(sideUpstream, leftover); err != nil {
				x.sideGone(sideClient)
			}
		}
		x.run(sideUpstream)
	}()
	go x.run(sideClient)
}

// run copies from side d until the direction ends, or until it is parked:
// then the goroutine ends, and a new one runs again when the socket is
// readable (parker).
func (x *rawRelay) run(d int) {
	parked, err := x.copy(d)
	if parked {
		return
	}
	x.ended(d, err)
	if x.left.Add(-1) == 0 {
		x.done()
	}
}

// copy moves bytes from side d to the other side until an error, or until
// the close reply arrives after the relay closed the session itself, or
// until the direction has been idle for idlePark and could be parked.
// Each read is one system call into a buffer borrowed for that read and its
// write.
func (x *rawRelay) copy(d int) (parked bool, _ error) {
	dir := x.dirs[d]
	for {
		bp, b, err := dir.src.next()
		if err != nil && len(b) == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			park, again := dir.src.afterDeadline()
			if park && dir.src.park() {
				return true, nil
			}
			if park || again {
				continue
			}
		}
		var end bool
		var werr error
		if len(b) > 0 {
			x.rs.heard[d].Store(time.Now().UnixNano())
			x.rs.bytes[d].Add(int64(len(b)))
			end, werr = x.forward(d, b)
		}
		if bp != nil {
			putBuf(bp)
		}
		switch {
		case werr != nil:
			x.rs.noteWriteError(1-d, werr)
			return false, errWrite
		case err != nil:
			return false, err
		case end:
			return false, nil
		}
	}
}

// forward writes p, read from side d, to the other side. It reports end when
// the relay had already closed that side and p completed src's close frame:
// nothing more is expected from src.
func (x *rawRelay) forward(d int, p []byte) (end bool, err error) {
	dir := x.dirs[d]
	dir.mu.Lock()
	ev := dir.fr.feed(p)
	stopped := dir.stopped
	if ev.closed {
		// Recorded before the close goes on, so that the reply cannot be
		// recorded as the first close.
		x.rs.record(sideName[d], ev.code)
	}
	if ev.tooBig {
		p = p[:ev.cut]
	}
	clean := false
	if !stopped {
		if len(p) > 0 {
			_, err = dir.dst.writeDirect(p)
		}
		if ev.tooBig {
			clean = ev.cutClean && err == nil
			dir.stopped = true
		}
	}
	dir.mu.Unlock()

	if ev.tooBig && x.rs.record("proxy", websocket.CloseMessageTooBig) {
		// The offender gets 1009, as in message mode; first,
		// so that the other side's answer to its own close cannot overtake
		// it. The other side did nothing wrong: it hears that its peer went
		// away, and why.
		x.closeTo(d, websocket.CloseMessageTooBig, "message too big")
		if clean {
			dir.mu.Lock()
			dir.dst.writeDirect(controlFrame(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, sideName[d]+" sent a message too big"), d == sideClient))
			dir.mu.Unlock()
		}
		deadline := time.Now().Add(closeGrace)
		x.conns[0].SetReadDeadline(deadline)
		x.conns[1].SetReadDeadline(deadline)
	}

	if ev.msgs > 0 {
		x.rs.msgs[d].Add(ev.msgs)
	}
	if ev.data {
		x.rs.lastData.Store(time.Now().UnixNano())
	}
	if ev.closed {
		dir.sawClose.Store(true)
		if x.dirs[1-d].sawClose.Load() {
			// Both close frames went through: the handshake is over. Half
			// close both sockets so the peers see the end, and give them the
			// grace period to close theirs.
			x.finish()
		}
	}
	return stopped && ev.closed, err
}

// ended handles the end of the copy from side d.
func (x *rawRelay) ended(d int, err error) {
	switch {
	case errors.Is(err, errWrite):
		// The other side stopped reading or hung up. It is not declared
		// gone here: what it sent before (often its close frame, written
		// just before it hung up) is still on its way through the other
		// direction, which decides how the session ends when it has read
		// to the end, within the grace period.
	case err != nil && !x.dirs[d].sawClose.Load():
		// Side d went away without a close frame (or the relay's grace
		// deadline ended the wait for it).
		x.sideGone(d)
	}
	dir := x.dirs[d]
	dir.mu.Lock()
	dir.stopped = true
	dir.mu.Unlock()
	closeWrite(dir.dst)
	// The other direction gets the grace period to finish.
	x.conns[1-d].SetReadDeadline(time.Now().Add(closeGrace))
}

// sideGone handles side g disappearing without a close frame: the other side
// gets 1001 if a frame boundary allows it, the stats say 1006.
func (x *rawRelay) sideGone(g int) {
	if !x.rs.record(sideName[g], websocket.CloseAbnormalClosure) {
		return
	}
	x.closeTo(1-g, websocket.CloseGoingAway, x.rs.goneReason(g))
	x.conns[g].Close()
	x.conns[1-g].SetReadDeadline(time.Now().Add(closeGrace))
}

// shutdown closes both sides with code and reason, when the relay itself ends
// the session (context cancelled, idle timeout, dead peer).
func (x *rawRelay) shutdown(code int, reason, by string, statCode int) {
	if !x.rs.record(by, statCode) {
		return
	}
	deadline := time.Now().Add(closeGrace)
	for side := range 2 {
		x.closeTo(side, code, reason)
		x.conns[side].SetReadDeadline(deadline)
	}
}

// closeTo writes a close frame to side, unless the stream into it is in the
// middle of a frame (then the side only sees the TCP connection end), and
// stops forwarding to it.
func (x *rawRelay) closeTo(side, code int, reason string) {
	dir := x.dirs[1-side]
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if !dir.stopped && dir.fr.atBoundary() {
		f := controlFrame(websocket.CloseMessage, websocket.FormatCloseMessage(code, closeReason(reason)), side == sideUpstream)
		dir.dst.writeDirect(f)
	}
	dir.stopped = true
}

// ping sends a keep-alive ping to side between two frames. The peer's pong
// travels on to the other side, which ignores an unsolicited pong (RFC 6455
// 5.5.3).
func (x *rawRelay) ping(side int) bool {
	dir := x.dirs[1-side]
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if dir.stopped || !dir.fr.atBoundary() {
		return false
	}
	_, err := dir.dst.writeDirect(controlFrame(websocket.PingMessage, []byte(pingPayload), side == sideUpstream))
	return err == nil
}

// finish ends the sockets after the close handshake went through. Towards
// the client the relay is the server, which closes the TCP connection first
// (RFC 6455 7.1.1); towards the upstream it is the client, which half-closes
// and lets the server close, within the grace period.
func (x *rawRelay) finish() {
	x.conns[sideClient].Close()
	closeWrite(x.conns[sideUpstream])
	x.conns[sideUpstream].SetReadDeadline(time.Now().Add(closeGrace))
}

// closeWrite sends FIN where the connection supports a half close, and
// closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// controlFrame builds one control frame; frames sent to the upstream are
// masked, as the client side of a connection must (RFC 6455 5.3).
func controlFrame(opcode int, payload []byte, mask bool) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	f := make([]byte, 0, 6+len(payload))
	f = append(f, 0x80|byte(opcode))
	if !mask {
		f = append(f, byte(len(payload)))
		return append(f, payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	f = append(f, 0x80|byte(len(payload)))
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i&3])
	}
	return f
}

// frameTracker follows frame boundaries in a byte stream without touching
// payloads, except the close frame's (at most 125 bytes), whose code it reads.
type frameTracker struct {
	hdr    [14]byte
	hdrN   int
	inPay  bool
	remain uint64
	opcode byte
	masked bool
	ctl    []byte

	limit  int64 // MaxMessageSize, 0 for none
	msgLen int64 // bytes of the current message so far
	// cutOff is set at the cut: the rest of that chunk was never looked
	// at, so the tracker no longer knows where frames begin, and whatever
	// follows (the offender's further frames, its close reply) is not
	// forwarded and must not count.
	cutOff     bool
	hdrAt      int  // where the current header began in the chunk being fed
	hdrCarried bool // the current header began in an earlier chunk
}

// frameEvents is what one chunk of bytes contained, up to the cut when a
// message outgrew the limit: nothing after it is looked at, since nothing
// after it is forwarded.
type frameEvents struct {
	msgs   int64 // data messages completed (final frames)
	data   bool  // a data frame started
	closed bool  // a close frame completed
	code   int   // its code (1005 when it had none)

	// tooBig: a data message went past the limit. cut is how many bytes of
	// the chunk came before the offending frame; cutClean says the stream
	// is at a frame boundary after them (the header did not begin in an
	// earlier chunk that was already forwarded).
	tooBig   bool
	cut      int
	cutClean bool
}

// atBoundary reports whether the bytes so far end exactly between two frames.
func (t *frameTracker) atBoundary() bool { return !t.inPay && t.hdrN == 0 }

func frameHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

func (t *frameTracker) feed(p []byte) (ev frameEvents) {
	if t.cutOff {
		return ev
	}
	if t.hdrN > 0 {
		// A header carried over from the last chunk: if its frame is cut,
		// the cut is where this chunk begins.
		t.hdrAt = 0
	}
	off := 0
	for off < len(p) && !ev.tooBig {
		if !t.inPay {
			if t.hdrN == 0 {
				t.hdrAt, t.hdrCarried = off, false
			}
			need := 2
			if t.hdrN >= 2 {
				need = frameHeaderLen(t.hdr[1])
			}
			k := copy(t.hdr[t.hdrN:need], p[off:])
			t.hdrN += k
			off += k
			if t.hdrN < 2 || t.hdrN < frameHeaderLen(t.hdr[1]) {
				if off == len(p) {
					t.hdrCarried = true // the header goes on in the next chunk
				}
				continue
			}
			t.startFrame(&ev)
			if t.remain == 0 {
				t.endFrame(&ev)
			}
			continue
		}
		k := len(p) - off
		if uint64(k) > t.remain {
			k = int(t.remain)
		}
		if t.opcode == websocket.CloseMessage && len(t.ctl) < 125 {
			t.ctl = append(t.ctl, p[off:off+min(k, 125-len(t.ctl))]...)
		}
		t.remain -= uint64(k)
		off += k
		if t.remain == 0 {
			t.endFrame(&ev)
		}
	}
	return ev
}

func (t *frameTracker) startFrame(ev *frameEvents) {
	fin := t.hdr[0]&0x80 != 0
	t.opcode = t.hdr[0] & 0x0f
	t.masked = t.hdr[1]&0x80 != 0
	n := 2
	switch l := t.hdr[1] & 0x7f; l {
	case 126:
		t.remain = uint64(binary.BigEndian.Uint16(t.hdr[2:]))
		n += 2
	case 127:
		t.remain = binary.BigEndian.Uint64(t.hdr[2:])
		n += 8
	default:
		t.remain = uint64(l)
	}
	if t.masked {
		copy(t.hdr[:4], t.hdr[n:n+4]) // keep the key at the front for endFrame
	}
	if t.opcode <= websocket.BinaryMessage { // continuation, text, binary
		ev.data = true
		if t.opcode != 0 {
			t.msgLen = 0
		}
		t.msgLen += int64(min(t.remain, 1<<62))
		if t.limit > 0 && t.msgLen > t.limit && !ev.tooBig {
			// The message outgrows the limit: cut the stream where this
			// frame's header began, and stop following it.
			ev.tooBig, ev.cut, ev.cutClean = true, t.hdrAt, !t.hdrCarried
			t.cutOff = true
		}
		if fin {
			ev.msgs++
		}
	}
	t.inPay = true
	t.hdrN = 0
}

func (t *frameTracker) endFrame(ev *frameEvents) {
	t.inPay = false
	if t.opcode != websocket.CloseMessage {
		return
	}
	if t.masked {
		for i := range t.ctl {
			t.ctl[i] ^= t.hdr[i&3]
		}
	}
	ev.closed = true
	ev.code = websocket.CloseNoStatusReceived
	if len(t.ctl) >= 2 {
		ev.code = int(binary.BigEndian.Uint16(t.ctl))
	}
	t.ctl = nil
}
