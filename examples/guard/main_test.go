package main

import (
	"strings"
	"testing"
	"time"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
	"github.com/sluiceproxy/sluice/sdk/go/sluicetest"
)

func newHost(t *testing.T, config string) *sluicetest.Host {
	t.Helper()
	h := sluicetest.New()
	h.Config = config
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSizeAndPrefix(t *testing.T) {
	h := newHost(t, `{"max_size": 10, "deny_prefixes": ["DROP ", "\u0000\u0001"]}`)
	for _, tc := range []struct {
		kind sluice.MessageKind
		in   string
		want sluicetest.Outcome
	}{
		{sluice.Text, "short", sluicetest.Passed},
		{sluice.Text, "exactly 10", sluicetest.Passed},
		{sluice.Text, "eleven long", sluicetest.Dropped},
		{sluice.Text, "DROP it", sluicetest.Dropped},
		{sluice.Text, "DROPPED", sluicetest.Passed},
		{sluice.Binary, "\x00\x01\x02", sluicetest.Dropped},
		{sluice.Binary, "\x00\x02", sluicetest.Passed},
	} {
		if v := h.Message(sluice.ClientToUpstream, tc.kind, []byte(tc.in)); v.Outcome != tc.want {
			t.Errorf("%q: %v, want %v", tc.in, v.Outcome, tc.want)
		}
	}
	// The upstream's messages are not guarded by default.
	if v := h.Text(sluice.UpstreamToClient, strings.Repeat("x", 100)); v.Outcome != sluicetest.Passed {
		t.Errorf("upstream->client: %v", v.Outcome)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHost(t, `{"rate": 5}`)
	send := func() sluicetest.Outcome { return h.Text(sluice.ClientToUpstream, "m").Outcome }
	for i := 0; i < 5; i++ {
		if o := send(); o != sluicetest.Passed {
			t.Fatalf("message %d of the first burst: %v", i, o)
		}
	}
	if o := send(); o != sluicetest.Dropped {
		t.Fatalf("6th message in the same instant: %v", o)
	}
	h.Advance(200 * time.Millisecond) // one message's worth
	if o := send(); o != sluicetest.Passed {
		t.Fatalf("after 200ms: %v", o)
	}
	if o := send(); o != sluicetest.Dropped {
		t.Fatalf("second after 200ms: %v", o)
	}
	h.Advance(time.Hour) // the bucket refills to one second's worth, no more
	for i := 0; i < 5; i++ {
		send()
	}
	if o := send(); o != sluicetest.Dropped {
		t.Fatalf("burst after a long pause exceeded rate: %v", o)
	}
}

func TestRateIsPerConnection(t *testing.T) {
	a := newHost(t, `{"rate": 1}`)
	b := newHost(t, `{"rate": 1}`) // another connection: its own state
	a.Use()
	if a.Text(sluice.ClientToUpstream, "1").Outcome != sluicetest.Passed ||
		a.Text(sluice.ClientToUpstream, "2").Outcome != sluicetest.Dropped {
		t.Fatal("connection a not limited")
	}
	b.Use()
	if o := b.Text(sluice.ClientToUpstream, "1").Outcome; o != sluicetest.Passed {
		t.Fatalf("connection b limited by a's messages: %v", o)
	}
}

func TestCloseAfterViolations(t *testing.T) {
	h := newHost(t, `{"max_size": 3, "rate": 100, "max_violations": 3, "direction": "both"}`)
	for i, dir := range []sluice.Direction{sluice.ClientToUpstream, sluice.UpstreamToClient} {
		if v := h.Text(dir, "long message"); v.Outcome != sluicetest.Dropped {
			t.Fatalf("violation %d: %v", i+1, v.Outcome)
		}
		if v := h.Text(dir, "ok"); v.Outcome != sluicetest.Passed {
			t.Fatalf("a good message after violation %d: %v", i+1, v.Outcome)
		}
	}
	v := h.Text(sluice.ClientToUpstream, "long message")
	if v.Outcome != sluicetest.Closed || v.CloseCode != 1008 || v.CloseReason != "too many policy violations" {
		t.Fatalf("third violation: %v %d %q", v.Outcome, v.CloseCode, v.CloseReason)
	}
}

func TestNoLimitsNoState(t *testing.T) {
	h := newHost(t, `{"deny_prefixes": ["x"]}`)
	h.Text(sluice.ClientToUpstream, "fine")
	if len(h.State) != 0 {
		t.Fatalf("a passing message without rate limit touched state: %v", h.State)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]string{
		"negative":     `{"rate": -1}`,
		"empty prefix": `{"deny_prefixes": [""]}`,
		"direction":    `{"direction": "up"}`,
		"string size":  `{"max_size": "4KiB"}`,
		"fraction":     `{"rate": 2.5}`,
		"unknown key":  `{"max_sise": 10}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := sluicetest.New()
			h.Config = cfg
			if err := h.Configure(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
