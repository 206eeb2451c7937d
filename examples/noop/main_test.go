package main

import (
	"testing"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
	"github.com/sluiceproxy/sluice/sdk/go/sluicetest"
)

func TestPassesEverything(t *testing.T) {
	h := sluicetest.New()
	if !h.Handles(sluicetest.HookMessage) || h.Handles(sluicetest.HookRequestHeaders) {
		t.Fatal("noop must handle messages and nothing else")
	}
	for _, k := range []sluice.MessageKind{sluice.Text, sluice.Binary} {
		v := h.Message(sluice.UpstreamToClient, k, []byte("payload"))
		if v.Outcome != sluicetest.Passed || string(v.Payload) != "payload" {
			t.Fatalf("%v: %v %q", k, v.Outcome, v.Payload)
		}
	}
}
