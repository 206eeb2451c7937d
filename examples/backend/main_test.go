package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func start(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	s := httptest.NewServer(newMux("backend-test"))
	t.Cleanup(s.Close)
	return s, "ws" + strings.TrimPrefix(s.URL, "http")
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func read(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return typ, string(b)
}

func TestHTTP(t *testing.T) {
	s, _ := start(t)
	for path, want := range map[string]string{"/healthz": "ok\n", "/": "new WebSocket("} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %.80q", path, resp.StatusCode, b)
		}
	}

	req, _ := http.NewRequest("GET", s.URL+"/api/hello?x=1", nil)
	req.Header.Set("X-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Backend string              `json:"backend"`
		Path    string              `json:"path"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Backend != "backend-test" || got.Path != "/api/hello?x=1" || got.Headers["X-User"][0] != "alice" {
		t.Errorf("hello: %+v", got)
	}
}

func TestEcho(t *testing.T) {
	_, ws := start(t)
	c := dial(t, ws+"/echo")
	for _, m := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "hi"}, {websocket.BinaryMessage, "\x00\xff"}} {
		c.WriteMessage(m.typ, []byte(m.data))
		if typ, got := read(t, c); typ != m.typ || got != m.data {
			t.Errorf("echo: %d %q", typ, got)
		}
	}
}

func TestChat(t *testing.T) {
	_, ws := start(t)
	a := dial(t, ws+"/ws/chat")
	if _, got := read(t, a); !strings.Contains(got, "connected to backend-test; 1 here") {
		t.Fatalf("welcome %q", got)
	}
	b := dial(t, ws+"/ws/chat")
	read(t, b) // welcome
	if _, got := read(t, a); !strings.Contains(got, "joined") {
		t.Fatalf("join notice %q", got)
	}
	b.WriteMessage(websocket.TextMessage, []byte(`{"name":"b","text":"hello room"}`))
	for _, c := range []*websocket.Conn{a, b} {
		if _, got := read(t, c); got != `{"name":"b","text":"hello room"}` {
			t.Fatalf("broadcast %q", got)
		}
	}
	b.Close()
	if _, got := read(t, a); !strings.Contains(got, "left") {
		t.Fatalf("leave notice %q", got)
	}
}
