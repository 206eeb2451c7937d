package main

import (
	"strconv"
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
	// Start at the beginning of a minute, so window arithmetic is plain.
	h.Now = time.Unix(1_700_000_040, 0)
	return h
}

func request(h *sluicetest.Host) *sluicetest.Reply {
	h.State = map[string][]byte{}
	return h.RequestHeaders()
}

func TestRequests(t *testing.T) {
	h := newHost(t, `{"limit": 3, "window": "1m"}`)
	for i := range 3 {
		if r := request(h); r != nil {
			t.Fatalf("request %d refused: %d", i+1, r.Status)
		}
		want := `"default";r=` + strconv.Itoa(2-i) + ";t=60"
		if got := string(h.State[stateHeader]); got != want {
			t.Fatalf("request %d: RateLimit %q, want %q", i+1, got, want)
		}
		h.ResponseHeaders()
		if got := h.ResponseHeader.Get("RateLimit-Policy"); got != `"default";q=3;w=60` {
			t.Fatalf("RateLimit-Policy %q", got)
		}
	}
	r := request(h)
	if r == nil || r.Status != 429 {
		t.Fatalf("4th request: %v, want 429", r)
	}
	// The window is full; at the next window's start the previous count
	// still weighs 3, and a millisecond later floor(3*59999/60000) = 2.
	if got := r.Header.Get("Retry-After"); got != "61" {
		t.Fatalf("Retry-After %q, want 61", got)
	}
	if got := r.Header.Get("RateLimit"); got != `"default";r=0;t=61` {
		t.Fatalf("RateLimit %q", got)
	}
	// Refused requests are taken back: the counter still says 3.
	if v, _ := h.SharedValue("r:default:" + strconv.FormatInt(h.Now.UnixMilli()/60000, 10) + ":c:192.0.2.1"); v != "3" {
		t.Fatalf("counter %q, want 3", v)
	}
	h.Advance(60 * time.Second)
	if r := request(h); r == nil {
		t.Fatal("allowed before Retry-After")
	}
	h.Advance(time.Second)
	if r := request(h); r != nil {
		t.Fatalf("refused at Retry-After: %d %v", r.Status, r.Header)
	}
}

func TestKeys(t *testing.T) {
	h := newHost(t, `{"limit": 1, "key": "header:X-API-Key",
		"routes": {"user": {"key": "state:auth.user"}}}`)
	h.RequestHeader.Set("X-API-Key", "a")
	if request(h) != nil || request(h) == nil {
		t.Fatal("key a: want one allowed, then refused")
	}
	h.RequestHeader.Set("X-API-Key", "b")
	if request(h) != nil {
		t.Fatal("key b shares key a's limit")
	}
	// No header: counted by client address, which has its own budget.
	h.RequestHeader.Del("X-API-Key")
	if request(h) != nil || request(h) == nil {
		t.Fatal("no key: want one allowed by address, then refused")
	}
	h.RequestHeader.Set("X-API-Key", strings.Repeat("k", 300))
	if r := request(h); r == nil || r.Status != 400 {
		t.Fatalf("a 300-byte key: %v, want 400", r)
	}
	// A route whose policy counts the user an earlier filter stored.
	h.Properties[sluice.PropertyRoute] = "user"
	for _, user := range []string{"alice", "bob"} {
		h.State = map[string][]byte{"auth.user": []byte(user)}
		if h.RequestHeaders() != nil {
			t.Fatalf("%s's first request refused", user)
		}
		h.State = map[string][]byte{"auth.user": []byte(user)}
		if h.RequestHeaders() == nil {
			t.Fatalf("%s's second request allowed", user)
		}
	}
}

func TestRoutes(t *testing.T) {
	h := newHost(t, `{"limit": 0, "routes": {"api": {"limit": 2, "window": 10}}}`)
	for range 5 {
		if request(h) != nil {
			t.Fatal("the default policy (limit 0) refused a request")
		}
	}
	h.Properties[sluice.PropertyRoute] = "api"
	request(h)
	request(h)
	r := request(h)
	if r == nil || r.Header.Get("RateLimit-Policy") != `"api";q=2;w=10` {
		t.Fatalf("route api: %v", r)
	}
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		action string
		want   sluicetest.Outcome
	}{{"drop", sluicetest.Dropped}, {"close", sluicetest.Closed}} {
		t.Run(tc.action, func(t *testing.T) {
			h := newHost(t, `{"messages": 2, "window": "1s", "message_action": "`+tc.action+`"}`)
			h.RequestHeader.Set("Upgrade", "websocket")
			if request(h) != nil {
				t.Fatal("upgrade refused")
			}
			for range 2 {
				if v := h.Text(sluice.ClientToUpstream, "m"); v.Outcome != sluicetest.Passed {
					t.Fatalf("message within the limit: %v", v.Outcome)
				}
			}
			if v := h.Text(sluice.UpstreamToClient, "m"); v.Outcome != sluicetest.Passed {
				t.Fatal("the upstream's messages are limited")
			}
			v := h.Text(sluice.ClientToUpstream, "m")
			if v.Outcome != tc.want || (tc.want == sluicetest.Closed && (v.CloseCode != 1008 || v.CloseReason != "rate limited")) {
				t.Fatalf("over the limit: %+v", v)
			}
			h.Advance(2 * time.Second)
			if v := h.Text(sluice.ClientToUpstream, "m"); v.Outcome != sluicetest.Passed {
				t.Fatalf("two windows later: %v", v.Outcome)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []string{
		`{"limit": -1}`,
		`{"window": "0s"}`,
		`{"window": "1500ms"}`,
		`{"window": "soon"}`,
		`{"key": "cookie:x"}`,
		`{"key": "header:"}`,
		`{"message_action": "ignore"}`,
		`{"routes": {"api": {"limt": 1}}}`,
		`{"routes": {"a\"b": {"limit": 1}}}`,
		`{"limits": 1}`,
	} {
		h := sluicetest.New()
		h.Config = cfg
		if err := h.Configure(); err == nil {
			t.Errorf("%s: accepted", cfg)
		}
	}
}
