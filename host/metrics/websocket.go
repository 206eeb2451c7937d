package metrics

import (
	"sync"
	"sync/atomic"
)

// Traffic is what the relay counts for one live WebSocket session: the
// messages and bytes that went in direction d (0 client to upstream, 1
// upstream to client). Its methods are called at scrape time, from another
// goroutine than the relay's, so they must be safe for that (atomics).
type Traffic interface {
	Load(d int) (messages, bytes int64)
}

// Session is one WebSocket session as the metrics see it while it runs.
type Session struct {
	rt       *Route
	mode     int
	traffic  Traffic
	ended    bool // under the registry's ws.mu
	upgraded atomic.Bool
}

// wsKey is the labels of the live WebSocket families but the direction.
type wsKey struct {
	route string
	mode  int
}

// wsSums are the messages and bytes, by direction, of a route's sessions
// that ended, and how many of them are running.
type wsSums struct {
	msgs, bytes [2]uint64
	open        int
}

// wsTraffic keeps the WebSocket counters. A message costs the relay one
// atomic add on its own per-session counter and nothing here: the totals
// are the ended sessions' sums plus the live sessions' counters, added up
// when Prometheus scrapes. One lock orders a session's end against a
// scrape, so a session is counted exactly once, live or ended.
type wsTraffic struct {
	mu   sync.Mutex
	live map[*Session]struct{}
	sums map[wsKey]*wsSums
}

var modes = [2]string{"raw", "message"}
var directions = [2]string{"client_to_upstream", "upstream_to_client"}

// OpenSession records a WebSocket session whose handshake starts, in raw
// mode (no message hooks) or message mode, and whose traffic t counts live.
// Call Upgraded once both handshakes succeeded, then End when it ends; or
// Abort when the handshake failed. The relay may end a session before the
// caller learns that it started, so End implies Upgraded.
func (rt *Route) OpenSession(raw bool, t Traffic) *Session {
	mode := 1
	if raw {
		mode = 0
	}
	s := &Session{rt: rt, mode: mode, traffic: t}
	w := &rt.reg.ws
	w.mu.Lock()
	if w.live == nil {
		w.live = make(map[*Session]struct{})
	}
	w.live[s] = struct{}{}
	w.sumsLocked(wsKey{rt.name, mode}).open++
	w.mu.Unlock()
	return s
}

// Upgraded counts the session as started (once).
func (s *Session) Upgraded() {
	if s.upgraded.CompareAndSwap(false, true) {
		s.rt.wsTotal[s.mode].Inc()
	}
}

// Abort forgets a session whose handshake failed.
func (s *Session) Abort() { s.end(0, "", false) }

// End records the end of the session: its final traffic moves into the
// route's totals, and its close code and closer ("client", "upstream" or
// "proxy") are counted. Later calls do nothing.
func (s *Session) End(code int, closer string) {
	s.Upgraded()
	s.end(code, closer, true)
}

func (s *Session) end(code int, closer string, count bool) {
	w := &s.rt.reg.ws
	w.mu.Lock()
	if s.ended {
		w.mu.Unlock()
		return
	}
	s.ended = true
	delete(w.live, s)
	sum := w.sumsLocked(wsKey{s.rt.name, s.mode})
	sum.open--
	for d := range 2 {
		m, b := s.traffic.Load(d)
		sum.msgs[d] += uint64(m)
		sum.bytes[d] += uint64(b)
	}
	w.mu.Unlock()
	if count {
		s.rt.wsClose(code, closer)
	}
}

func (w *wsTraffic) sumsLocked(k wsKey) *wsSums {
	s := w.sums[k]
	if s == nil {
		s = &wsSums{}
		w.sums[k] = s
	}
	return s
}

// snapshot returns the totals, live sessions included, by route and mode.
func (w *wsTraffic) snapshot() map[wsKey]wsSums {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[wsKey]wsSums, len(w.sums))
	for k, s := range w.sums {
		out[k] = *s
	}
	for s := range w.live {
		k := wsKey{s.rt.name, s.mode}
		sum := out[k]
		for d := range 2 {
			m, b := s.traffic.Load(d)
			sum.msgs[d] += uint64(m)
			sum.bytes[d] += uint64(b)
		}
		out[k] = sum
	}
	return out
}
