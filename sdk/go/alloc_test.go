//go:build !wasip1

package sluice_test

import (
	"testing"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// The message path is the hot path: reading a payload and per-connection
// state must not allocate once the buffers have grown.
func TestMessagePathDoesNotAllocate(t *testing.T) {
	var st []byte
	sluice.OnMessage(func(m *sluice.Message) sluice.MessageAction {
		if len(m.Payload()) == 0 {
			return sluice.Drop
		}
		st, _ = sluice.State.Append(st[:0], "k")
		return sluice.Pass
	})
	defer sluice.OnMessage(nil)
	old := wire.SetHost(&messageHost{payload: []byte("a message of 22 bytes."), state: []byte("12345678")})
	defer wire.SetHost(old)
	allocs := testing.AllocsPerRun(100, func() {
		if wire.OnMessage(wire.DirectionClientToUpstream, wire.MessageText, 22) != wire.ActionPass {
			t.Fatal("not passed")
		}
	})
	if allocs != 0 {
		t.Fatalf("message hook allocates %.1f times per call", allocs)
	}
}

// messageHost answers the two host functions the message path calls, without
// allocating, so that any allocation measured is the SDK's.
type messageHost struct {
	wire.Host // nil: any other call panics
	payload   []byte
	state     []byte
}

func (h *messageHost) GetMessage(buf []byte) int32 {
	if len(h.payload) <= len(buf) {
		copy(buf, h.payload)
	}
	return int32(len(h.payload))
}

func (h *messageHost) StateGet(key string, buf []byte) int32 {
	if len(h.state) <= len(buf) {
		copy(buf, h.state)
	}
	return int32(len(h.state))
}
