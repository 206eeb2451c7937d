package main

import (
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/sdk/go/sluicetest"
)

// reset registers the filter's handlers again: configure drops the hooks of
// a side without rules, and every test starts from the filter as loaded.
func reset() {
	requestOps, responseOps = nil, nil
	register()
}

func TestRequestAndResponseRules(t *testing.T) {
	reset()
	h := sluicetest.New()
	h.Config = `{
		"request": {"remove": ["X-Internal", "x-debug"], "set": {"X-Env": "prod", "X-Internal": "kept"}, "add": {"Via": "sluice", "X-Tag": ["a", "b"]}},
		"response": {"set": {"X-Powered-By": "sluice", "Cache-Control": ["no-store", "private"]}, "remove": ["Server"]}
	}`
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	h.RequestHeader.Set("X-Internal", "secret")
	h.RequestHeader.Set("X-Debug", "1")
	h.RequestHeader.Set("X-Env", "dev")
	h.RequestHeader.Set("Via", "1.1 edge")
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("reply %+v", r)
	}
	want := map[string]string{
		"X-Internal": "kept", // removed, then set
		"X-Debug":    "",
		"X-Env":      "prod",
		"Via":        "1.1 edge,sluice",
		"X-Tag":      "a,b",
	}
	for n, v := range want {
		if got := strings.Join(h.RequestHeader.Values(n), ","); got != v {
			t.Errorf("request %s = %q, want %q", n, got, v)
		}
	}

	h.ResponseHeader.Set("Server", "backend/1.0")
	h.ResponseHeader.Set("Cache-Control", "max-age=60")
	if r := h.ResponseHeaders(); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if h.ResponseHeader.Get("Server") != "" || h.ResponseHeader.Get("X-Powered-By") != "sluice" ||
		strings.Join(h.ResponseHeader.Values("Cache-Control"), ",") != "no-store,private" {
		t.Fatalf("response headers = %v", h.ResponseHeader)
	}
}

func TestSideWithoutRulesIsNotHooked(t *testing.T) {
	reset()
	h := sluicetest.New()
	h.Config = `{"response": {"set": {"X-Powered-By": "sluice"}}}`
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	if h.Handles(sluicetest.HookRequestHeaders) || !h.Handles(sluicetest.HookResponseHeaders) {
		t.Fatal("want only the response hook")
	}
	if h.Handles(sluicetest.HookMessage) {
		t.Fatal("a header filter must not make the proxy parse WebSocket frames")
	}
}

func TestBadConfig(t *testing.T) {
	for name, cfg := range map[string]string{
		"not json":      `{`,
		"bad name":      `{"request": {"set": {"Bad Name": "x"}}}`,
		"newline value": `{"response": {"add": {"X-A": "a\r\nInjected: 1"}}}`,
		"number value":  `{"request": {"set": {"X-A": 1}}}`,
		"empty remove":  `{"request": {"remove": [""]}}`,
		"unknown key":   `{"request": {"sett": {"X-A": "1"}}}`,
		"set not table": `{"response": {"set": ["X-A"]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			reset()
			h := sluicetest.New()
			h.Config = cfg
			if err := h.Configure(); err == nil {
				t.Fatal("config accepted")
			}
		})
	}
}
