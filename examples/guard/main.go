// Command guard is a Sluice filter that protects a WebSocket upstream from
// abusive clients: it drops messages larger than max_size or starting with
// a denied prefix, limits each connection to rate messages per second, and
// closes the connection with 1008 (policy violation) after max_violations
// dropped messages.
//
// The counters live in the host's per-connection state, not in the module:
// the proxy may run any message of a connection in any pooled instance.
//
// See README.md for the config keys.
package main

import (
	"encoding/binary"
	"errors"

	"github.com/sluiceproxy/sluice/examples/internal/tinyjson"
	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// settings is the checked config.
type settings struct {
	maxSize       int
	denyPrefixes  [][]byte
	rate          int64 // messages per second; 0: no limit
	maxViolations int64 // 0: never close
	directions    [2]bool
}

var cfg settings

func configure(raw []byte) error {
	c, err := tinyjson.NewConfig(raw, "guard: config")
	if err != nil {
		return err
	}
	maxSize, rate, maxViolations := c.Int("max_size", 0), c.Int("rate", 0), c.Int("max_violations", 0)
	prefixes := c.Strings("deny_prefixes")
	direction := c.String("direction", "client_to_upstream")
	if err := c.Done(); err != nil {
		return err
	}
	if maxSize < 0 || rate < 0 || maxViolations < 0 {
		return errors.New("guard: config: max_size, rate and max_violations must not be negative")
	}
	if maxSize > 1<<31-1 {
		return errors.New("guard: config: max_size is larger than any message")
	}
	if rate > 1_000_000 {
		return errors.New("guard: config: rate above 1000000 per second is no limit; leave it out")
	}
	s := settings{maxSize: int(maxSize), rate: rate, maxViolations: maxViolations}
	for _, p := range prefixes {
		if p == "" {
			return errors.New("guard: config: deny_prefixes: an empty prefix would deny everything")
		}
		s.denyPrefixes = append(s.denyPrefixes, []byte(p))
	}
	switch direction {
	case "client_to_upstream":
		s.directions = [2]bool{true, false}
	case "upstream_to_client":
		s.directions = [2]bool{false, true}
	case "both":
		s.directions = [2]bool{true, true}
	default:
		return errors.New(`guard: config: direction must be "client_to_upstream", "upstream_to_client" or "both"`)
	}
	cfg = s
	return nil
}

func init() {
	sluice.OnConfigure(configure)
	sluice.OnMessage(onMessage)
}

func main() {}

// connState is the per-connection record, stored as 24 bytes under stateKey:
// the token bucket (in billionths of a message, so refills need no floats),
// the time it was last refilled, and the violation count.
type connState struct {
	tokens     int64
	refilledAt int64 // host monotonic clock, ns
	violations int64
}

const stateKey = "guard"

var stateBuf [24]byte

func load() (connState, bool) {
	b, ok := sluice.State.Append(stateBuf[:0], stateKey)
	if !ok || len(b) != len(stateBuf) {
		return connState{}, false
	}
	return connState{
		tokens:     int64(binary.LittleEndian.Uint64(b[0:])),
		refilledAt: int64(binary.LittleEndian.Uint64(b[8:])),
		violations: int64(binary.LittleEndian.Uint64(b[16:])),
	}, true
}

func store(s connState) {
	binary.LittleEndian.PutUint64(stateBuf[0:], uint64(s.tokens))
	binary.LittleEndian.PutUint64(stateBuf[8:], uint64(s.refilledAt))
	binary.LittleEndian.PutUint64(stateBuf[16:], uint64(s.violations))
	sluice.State.Set(stateKey, stateBuf[:])
}

const second = int64(1e9)

func onMessage(m *sluice.Message) sluice.MessageAction {
	if !cfg.directions[m.Direction&1] {
		return sluice.Pass
	}
	violation := cfg.maxSize > 0 && m.Size > cfg.maxSize
	if !violation && len(cfg.denyPrefixes) > 0 {
		violation = hasPrefix(m.Payload(), cfg.denyPrefixes)
	}
	if !violation && cfg.rate == 0 {
		return sluice.Pass // nothing to count: skip the state round trip
	}

	st, ok := load()
	if cfg.rate > 0 && !violation {
		now := sluice.Nanotime()
		if !ok {
			st.tokens, st.refilledAt = cfg.rate*second, now // a full bucket
		}
		// Refill: rate messages per second, up to one second's worth (the
		// burst a connection may send at once).
		elapsed := now - st.refilledAt
		if elapsed > second {
			elapsed = second
		}
		if elapsed > 0 {
			st.tokens += elapsed * cfg.rate
			if st.tokens > cfg.rate*second {
				st.tokens = cfg.rate * second
			}
		}
		st.refilledAt = now
		if st.tokens >= second {
			st.tokens -= second
		} else {
			violation = true
		}
	}
	if violation {
		st.violations++
	}
	store(st)
	if !violation {
		return sluice.Pass
	}
	if cfg.maxViolations > 0 && st.violations >= cfg.maxViolations {
		sluice.LogInfo("guard: closing a connection after too many policy violations")
		return sluice.Close(1008, "too many policy violations")
	}
	return sluice.Drop
}

func hasPrefix(p []byte, prefixes [][]byte) bool {
	for _, pre := range prefixes {
		if len(p) >= len(pre) && string(p[:len(pre)]) == string(pre) {
			return true
		}
	}
	return false
}
