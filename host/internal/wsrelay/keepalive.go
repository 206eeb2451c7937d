package wsrelay

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// relayState is what both relay modes share: counters, the close event and
// the keep-alive timer.
type relayState struct {
	opt Options
	log *slog.Logger

	msgs, bytes [2]atomic.Int64
	// heard is when anything (any frame, any byte) last came from a side,
	// in Unix nanoseconds: the liveness that keep-alive pings probe.
	heard [2]atomic.Int64
	// lastData is when a data message last started, in either direction:
	// what IdleTimeout measures.
	lastData atomic.Int64

	mu        sync.Mutex
	closed    bool // a close event is recorded; later ones are replies
	closeCode int
	closeBy   string
	done      bool
	timer     *time.Timer
	pingSent  [2]int64 // guarded by mu; only the timer uses it
}

// record notes the event that ends the session, if it is the first one. It
// reports whether it was.
func (rs *relayState) record(by string, code int) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false
	}
	rs.closed, rs.closeBy, rs.closeCode = true, by, code
	return true
}

func (rs *relayState) isClosed() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.closed
}

func (rs *relayState) fill(st *Stats) {
	for d := range 2 {
		st.Messages[d] = rs.msgs[d].Load()
		st.Bytes[d] = rs.bytes[d].Load()
	}
	rs.mu.Lock()
	st.CloseCode, st.CloseBy = rs.closeCode, rs.closeBy
	rs.mu.Unlock()
}

// pinger is what the keep-alive timer asks of a relay mode.
type pinger interface {
	// ping sends a keep-alive ping to side, if it can now.
	ping(side int) bool
	// shutdown closes both sides with code and reason; by and statCode are
	// what the stats record when this is the first close event.
	shutdown(code int, reason, by string, statCode int)
}

// startTimer arms the one timer per session that sends keep-alive pings,
// detects peers that stopped answering them, and enforces IdleTimeout. It
// runs only when due, so an idle session costs no goroutine.
func (rs *relayState) startTimer(k pinger) {
	now := time.Now().UnixNano()
	rs.heard[0].Store(now)
	rs.heard[1].Store(now)
	rs.lastData.Store(now)
	if rs.opt.PingInterval <= 0 && rs.opt.IdleTimeout <= 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.timer = time.AfterFunc(rs.nextDue(now), func() { rs.tick(k) })
}

func (rs *relayState) stopTimer() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.done = true
	if rs.timer != nil {
		rs.timer.Stop()
	}
}

// nextDue is the delay until something may be due. Callers hold mu.
func (rs *relayState) nextDue(now int64) time.Duration {
	next := int64(1<<63 - 1)
	if idle := int64(rs.opt.IdleTimeout); idle > 0 {
		next = min(next, rs.lastData.Load()+idle)
	}
	if p := int64(rs.opt.PingInterval); p > 0 {
		for d := range 2 {
			if h := rs.heard[d].Load(); rs.pingSent[d] > h {
				// Awaiting an answer: look again after an interval (the
				// answer usually came, and the next ping is due), then when
				// the wait for it runs out.
				if now < rs.pingSent[d]+p {
					next = min(next, rs.pingSent[d]+p)
				} else {
					next = min(next, rs.pingSent[d]+rs.pongWait())
				}
			} else {
				next = min(next, h+p)
			}
		}
	}
	return max(time.Duration(next-now), time.Millisecond)
}

// pongWait is how long a peer has to answer a keep-alive ping.
func (rs *relayState) pongWait() int64 {
	return int64(max(rs.opt.PingInterval, minPongWait))
}

func (rs *relayState) tick(k pinger) {
	now := time.Now().UnixNano()
	var action func()
	var pings []int
	rs.mu.Lock()
	if rs.done || rs.closed {
		rs.mu.Unlock()
		return
	}
	if idle := int64(rs.opt.IdleTimeout); idle > 0 && now-rs.lastData.Load() >= idle {
		action = func() { k.shutdown(websocket.CloseGoingAway, "idle timeout", "proxy", websocket.CloseGoingAway) }
	}
	if p := int64(rs.opt.PingInterval); p > 0 && action == nil {
		for d := range 2 {
			h := rs.heard[d].Load()
			switch {
			case rs.pingSent[d] > h && now-rs.pingSent[d] >= rs.pongWait():
				// No answer to the last ping in time: the peer is gone
				// without a close, like a dropped TCP connection.
				side := d
				action = func() {
					k.shutdown(websocket.CloseGoingAway, sideName[side]+" stopped answering pings", sideName[side], websocket.CloseAbnormalClosure)
				}
			case rs.pingSent[d] <= h && now-h >= p:
				pings = append(pings, d)
			}
		}
	}
	rs.mu.Unlock()

	if action != nil {
		action()
		return
	}
	for _, d := range pings {
		// The time is taken before the ping goes out: an answer may arrive
		// before ping returns, and must count as heard after it.
		sent := time.Now().UnixNano()
		if k.ping(d) {
			rs.mu.Lock()
			rs.pingSent[d] = sent
			rs.mu.Unlock()
		}
	}
	rs.mu.Lock()
	if !rs.done && !rs.closed {
		rs.timer.Reset(rs.nextDue(time.Now().UnixNano()))
	}
	rs.mu.Unlock()
}
