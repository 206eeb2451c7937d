package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/sdk/go/sluicetest"
)

const secret = "s3cret"

// jwt signs claims with HS256 (or the given alg) and secret.
func jwt(t *testing.T, alg, key string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func newHost(t *testing.T, config string) *sluicetest.Host {
	t.Helper()
	h := sluicetest.New()
	h.Config = config
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	return h
}

const baseConfig = `{"tokens": ["demo-token"], "static_user": "demo", "jwt_secret": "s3cret", "leeway": "30s"}`

func TestHTTP(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	cases := []struct {
		name, auth string
		user       string // "" means refused
		why        string
	}{
		{"no header", "", "", "missing bearer token"},
		{"basic scheme", "Basic ZGVtbzpkZW1v", "", "missing bearer token"},
		{"static token", "Bearer demo-token", "demo", ""},
		{"scheme is case-insensitive", "bearer demo-token", "demo", ""},
		{"unknown token", "Bearer nope", "", "invalid token"},
		{"jwt", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "exp": exp(time.Hour)}), "alice", ""},
		{"jwt without exp", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "bob"}), "bob", ""},
		{"jwt expired", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "exp": exp(-time.Minute)}), "", "token expired"},
		{"jwt expired within leeway", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "exp": exp(-20 * time.Second)}), "alice", ""},
		{"jwt not yet valid", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "nbf": exp(time.Minute)}), "", "token not valid yet"},
		{"jwt nbf within leeway", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "nbf": exp(10 * time.Second)}), "alice", ""},
		{"jwt wrong key", "Bearer " + jwt(t, "HS256", "other", map[string]any{"sub": "alice"}), "", "bad JWT signature"},
		{"jwt alg none", "Bearer " + jwt(t, "none", secret, map[string]any{"sub": "alice"}), "", "unsupported JWT algorithm"},
		{"jwt no subject", "Bearer " + jwt(t, "HS256", secret, map[string]any{"exp": exp(time.Hour)}), "", "token has no subject"},
		{"jwt garbage", "Bearer a.b.c", "", "invalid token"},
		{"jwt exp not a number", "Bearer " + jwt(t, "HS256", secret, map[string]any{"sub": "alice", "exp": "soon"}), "", "invalid token"},
		{"jwt claims not an object", "Bearer " + jwt(t, "HS256", secret, nil), "", "invalid token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, baseConfig)
			h.Now = now
			h.RequestHeader.Set("X-User", "spoofed")
			if tc.auth != "" {
				h.RequestHeader.Set("Authorization", tc.auth)
			}
			r := h.RequestHeaders()
			if tc.user == "" {
				if r == nil {
					t.Fatal("request let through")
				}
				checkDenied(t, r, tc.why)
				return
			}
			if r != nil {
				t.Fatalf("refused: %d %s", r.Status, r.Body)
			}
			if got := h.RequestHeader.Get("X-User"); got != tc.user {
				t.Errorf("X-User = %q, want %q", got, tc.user)
			}
			if h.RequestHeader.Get("Authorization") != "" {
				t.Error("Authorization was forwarded upstream")
			}
		})
	}
}

func checkDenied(t *testing.T, r *sluicetest.Reply, why string) {
	t.Helper()
	if r.Status != 401 {
		t.Fatalf("status = %d", r.Status)
	}
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="sluice", error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
	}
	var body map[string]string
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	if body["error"] != "invalid_token" || body["error_description"] != why {
		t.Errorf("body = %s, want description %q", r.Body, why)
	}
}

func upgradeHost(t *testing.T, config string) *sluicetest.Host {
	h := newHost(t, config)
	h.Path = "/ws/chat"
	h.RequestHeader.Set("Connection", "Upgrade")
	h.RequestHeader.Set("Upgrade", "websocket")
	h.RequestHeader.Set("Sec-WebSocket-Version", "13")
	return h
}

func TestWebSocketQueryToken(t *testing.T) {
	h := upgradeHost(t, baseConfig)
	h.Query = "room=1&access_token=" + jwt(t, "HS256", secret, map[string]any{"sub": "carol"}) + "&x=%20y"
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("refused: %d %s", r.Status, r.Body)
	}
	if h.Query != "room=1&x=%20y" {
		t.Errorf("query = %q, want the token stripped and the rest kept", h.Query)
	}
	if h.RequestHeader.Get("X-User") != "carol" {
		t.Errorf("X-User = %q", h.RequestHeader.Get("X-User"))
	}
}

func TestQueryTokenIsForWebSocketsOnly(t *testing.T) {
	h := newHost(t, baseConfig)
	h.Query = "access_token=demo-token"
	r := h.RequestHeaders()
	if r == nil {
		t.Fatal("a plain HTTP request was let in with a query token")
	}
	checkDenied(t, r, "missing bearer token")
}

func TestWebSocketSubprotocolToken(t *testing.T) {
	for name, tc := range map[string]struct{ offered, forwarded string }{
		"with a real subprotocol": {"bearer.demo-token, chat.v1", "chat.v1"},
		"token last":              {"chat.v2, chat.v1, bearer.demo-token", "chat.v2, chat.v1"},
		"token only":              {"bearer.demo-token", ""},
	} {
		t.Run(name, func(t *testing.T) {
			h := upgradeHost(t, baseConfig)
			h.RequestHeader.Set("Sec-WebSocket-Protocol", tc.offered)
			if r := h.RequestHeaders(); r != nil {
				t.Fatalf("refused: %d %s", r.Status, r.Body)
			}
			if got := h.RequestHeader.Get("Sec-WebSocket-Protocol"); got != tc.forwarded {
				t.Errorf("Sec-WebSocket-Protocol = %q, want %q", got, tc.forwarded)
			}
			if _, present := h.RequestHeader["Sec-Websocket-Protocol"]; tc.forwarded == "" && present {
				t.Error("empty Sec-WebSocket-Protocol forwarded")
			}
			if h.RequestHeader.Get("X-User") != "demo" {
				t.Errorf("X-User = %q", h.RequestHeader.Get("X-User"))
			}
		})
	}
}

func TestWebSocketWithoutToken(t *testing.T) {
	h := upgradeHost(t, baseConfig)
	h.RequestHeader.Set("Sec-WebSocket-Protocol", "chat.v1, bearer.wrong")
	r := h.RequestHeaders()
	if r == nil {
		t.Fatal("let through")
	}
	checkDenied(t, r, "invalid token")
}

func TestCarriersCanBeTurnedOff(t *testing.T) {
	h := upgradeHost(t, `{"tokens": ["demo-token"], "query_param": "", "subprotocol_prefix": ""}`)
	h.Query = "access_token=demo-token"
	h.RequestHeader.Set("Sec-WebSocket-Protocol", "bearer.demo-token")
	if r := h.RequestHeaders(); r == nil {
		t.Fatal("token accepted from a carrier that is off")
	}
	h = upgradeHost(t, `{"tokens": ["demo-token"], "query_param": "token", "subprotocol_prefix": "auth-"}`)
	h.RequestHeader.Set("Sec-WebSocket-Protocol", "auth-demo-token, chat")
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("custom prefix refused: %s", r.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]string{
		"nothing to check": `{}`,
		"empty token":      `{"tokens": [""]}`,
		"bad leeway":       `{"jwt_secret": "x", "leeway": "soon"}`,
		"negative leeway":  `{"jwt_secret": "x", "leeway": -1}`,
		"quote in realm":   `{"jwt_secret": "x", "realm": "a\"b"}`,
		"not json":         `[`,
		"unknown key":      `{"token": ["a"]}`,
		"bad user header":  `{"tokens": ["a"], "user_header": "X User"}`,
		"tokens not list":  `{"tokens": "a"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := sluicetest.New()
			h.Config = cfg
			if err := h.Configure(); err == nil || !strings.Contains(err.Error(), "auth: config") {
				t.Fatalf("Configure() = %v", err)
			}
		})
	}
}

func TestCachedJWTStillExpires(t *testing.T) {
	h := newHost(t, baseConfig)
	token := jwt(t, "HS256", secret, map[string]any{"sub": "erin", "exp": float64(h.Now.Add(time.Minute).Unix())})
	for i, want := range []bool{true, true, false} {
		if i == 2 {
			h.Advance(2 * time.Minute) // past exp and the 30 s leeway
		}
		h.RequestHeader.Set("Authorization", "Bearer "+token)
		if r := h.RequestHeaders(); (r == nil) != want {
			t.Fatalf("request %d: let through %v, want %v", i, r == nil, want)
		}
	}
	// Another secret: the token verified before must be checked again.
	h = newHost(t, `{"jwt_secret": "other"}`)
	h.RequestHeader.Set("Authorization", "Bearer "+token)
	if r := h.RequestHeaders(); r == nil {
		t.Fatal("a token cached under the old secret passed")
	}
}

func TestHash64AndEqual64(t *testing.T) {
	seen := map[uint64]string{}
	for n := 0; n < 300; n++ {
		s := []byte(strings.Repeat("x", n))
		if old, dup := seen[hash64(s)]; dup {
			t.Fatalf("%d and %d x's collide", len(old), n)
		}
		seen[hash64(s)] = string(s)
		if !equal64(s, []byte(strings.Repeat("x", n))) {
			t.Fatalf("%d: equal strings differ", n)
		}
		for i := 0; i < n; i++ {
			d := bytes.Clone(s)
			d[i] = 'y'
			if equal64(s, d) || hash64(s) == hash64(d) {
				t.Fatalf("%d: a change at %d went unnoticed", n, i)
			}
		}
	}
}

func TestLeewayInSeconds(t *testing.T) {
	h := newHost(t, `{"jwt_secret": "s3cret", "leeway": 90}`)
	h.RequestHeader.Set("Authorization", "Bearer "+jwt(t, "HS256", secret, map[string]any{
		"sub": "dave", "exp": float64(h.Now.Add(-time.Minute).Unix()),
	}))
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("refused within a 90 s leeway: %s", r.Body)
	}
}
