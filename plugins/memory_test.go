package plugins

import (
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

// An instance's linear memory is released when the instance is discarded,
// whatever ended its call: a trap, the deadline (noticed by the guest in a
// loop), or the deadline followed by a trap before the guest noticed it.
func TestDiscardedInstancesReleaseTheirMemory(t *testing.T) {
	for _, tc := range []struct {
		name, fixture string
		timeout       time.Duration
	}{
		{"trap", "oob", time.Second},
		{"deadline in a loop", "loop", 5 * time.Millisecond},
		{"deadline, then a trap", "fill", 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := load(t, plug("p", tc.fixture, func(p *config.Plugin) { p.Timeout.Duration = tc.timeout }))
			p := e.set.plugins[0]
			in, ce := p.acquire()
			if ce != nil {
				t.Fatal(ce)
			}
			in.memory.mu.Lock()
			mems := append([]any(nil), anySlice(in.memory.mems)...)
			in.memory.mu.Unlock()
			if len(mems) != 1 {
				t.Fatalf("the instance owns %d memories, want 1", len(mems))
			}
			in.st = callState{phase: phaseRequest, x: &filter.Exchange{Request: exchange("/").Request}}
			_, ce = p.invoke(in, hookRequestHeaders)
			p.release(in, ce) // before any skip: the set's Close waits for it
			if ce == nil {
				t.Skip("the call ended before its deadline")
			}
			// "fill" runs past its deadline with no check in its way (no
			// loop, no call) and traps; the deadline is compiled into the
			// guest, so nothing closes the module under it meanwhile.
			if !released(mems[0]) {
				t.Errorf("the discarded instance still holds its memory (call error: %v)", ce)
			}
		})
	}
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// released reports whether a linear memory was freed.
func released(m any) bool {
	switch m := m.(type) {
	case *sliceMemory:
		return m.b == nil
	case interface{ freed() bool }:
		return m.freed()
	}
	return false
}
