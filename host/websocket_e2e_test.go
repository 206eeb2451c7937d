package host

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// End-to-end tests of the relay through the real Proxy, with gorilla and with
// an independent client: the npm ws package driven through
// testdata/wsclient/client.js (installed by scripts/install-tools.sh).

// wsStartProxy runs a Proxy with one route "ws" to upstream, filtered by chain.
func wsStartProxy(t *testing.T, upstream string, chain filter.Chain, extra string) *pxProxy {
	t.Helper()
	conf := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
%s
[[upstream]]
name = "app"
targets = [%q]

[[route]]
name = "ws"
path_prefix = "/"
upstream = "app"
`, extra, upstream)
	return pxStart(t, conf, map[string]filter.Chain{"ws": chain})
}

// wsNode is one run of the ws-package client.
type wsNode struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
}

func startWSNode(t *testing.T, args ...string) *wsNode {
	t.Helper()
	node := testkit.Tool(t, "node")
	dir := filepath.Join("testdata", "wsclient")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		testkit.Missing(t, fmt.Errorf("the npm package ws in testdata/wsclient: %w", testkit.ErrMissingTool))
	}
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "client.js")}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &wsNode{t: t, cmd: cmd, stdin: stdin, events: make(chan map[string]any, 64)}
	go func() {
		defer close(n.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				n.events <- ev
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return n
}

func (n *wsNode) send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		n.t.Fatalf("wsclient stdin: %v", err)
	}
}

// next returns the next event, skipping none.
func (n *wsNode) next() map[string]any {
	n.t.Helper()
	select {
	case ev, ok := <-n.events:
		if !ok {
			n.t.Fatal("wsclient exited")
		}
		return ev
	case <-time.After(testkit.Wait):
		n.t.Fatal("no event from wsclient")
		return nil
	}
}

// expect returns the next event and checks its kind.
func (n *wsNode) expect(kind string) map[string]any {
	n.t.Helper()
	ev := n.next()
	if ev["event"] != kind {
		n.t.Fatalf("got event %v, want %q", ev, kind)
	}
	return ev
}

func TestWebSocketThroughProxyWithWSClient(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			chain := &testkit.Chain{Set: mode.Hooks}
			px := wsStartProxy(t, up.Server.URL, chain, "")
			n := startWSNode(t, "--url", "ws://"+px.Addr().String()+"/chat?room=1",
				"--protocol", "chat.v1", "--protocol", "chat.v2", "--header", "Origin:http://app.example")
			open := n.expect("open")
			if open["protocol"] != "chat.v2" {
				t.Fatalf("subprotocol %v", open["protocol"])
			}
			if h, _ := open["headers"].(map[string]any); h == nil || fmt.Sprint(h["set-cookie"]) != "[sid=abc; Path=/]" {
				t.Fatalf("handshake headers %v", open["headers"])
			}
			if r := <-up.Headers; r.Header.Get("Origin") != "http://app.example" || r.URL.RawQuery != "room=1" {
				t.Fatalf("upstream request %s %v", r.URL, r.Header)
			}

			n.send(map[string]any{"op": "send", "text": "héllo"})
			if ev := n.expect("message"); ev["text"] != "héllo" {
				t.Fatalf("text echo %v", ev)
			}
			bin := base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 254, 255})
			n.send(map[string]any{"op": "send", "binary": bin})
			if ev := n.expect("message"); ev["binary"] != bin {
				t.Fatalf("binary echo %v", ev)
			}
			// Five frames, split by bytes, so a frame ends inside "é".
			long := strings.Repeat("fragé", 301)
			n.send(map[string]any{"op": "sendFragmented", "text": long, "parts": 5})
			if ev := n.expect("message"); ev["text"] != long {
				t.Fatalf("fragmented echo of %d chars", len(fmt.Sprint(ev["text"])))
			}
			n.send(map[string]any{"op": "ping", "data": "p1"})
			if ev := n.expect("pong"); ev["data"] != "p1" {
				t.Fatalf("pong %v", ev)
			}
			n.send(map[string]any{"op": "close", "code": 4002, "reason": "node bye"})
			if got := up.WaitClose(t); got != (testkit.CloseSeen{Code: 4002, Text: "node bye"}) {
				t.Fatalf("upstream saw close %+v", got)
			}
			if ev := n.expect("close"); ev["code"] != float64(4002) || ev["reason"] != "node bye" {
				t.Fatalf("close %v", ev)
			}
			testkit.Eventually(t, testkit.Wait, "websocket log record", func() bool { return len(px.logs.records("websocket")) == 1 })
			rec := px.logs.records("websocket")[0]
			if rec["close_by"] != "client" || rec["close_code"] != float64(4002) || rec["messages_in"] != float64(3) {
				t.Fatalf("log record %v", rec)
			}
			if chain.Closes.Load() != 1 {
				t.Fatalf("OnClose ran %d times", chain.Closes.Load())
			}
		})
	}
}

func TestWebSocketThroughProxyUpstreamCloseWithWSClient(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			px := wsStartProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, "")
			n := startWSNode(t, "--url", "ws://"+px.Addr().String()+"/x")
			n.expect("open")
			n.send(map[string]any{"op": "send", "text": "close:4003:server bye"})
			if ev := n.expect("close"); ev["code"] != float64(4003) || ev["reason"] != "server bye" {
				t.Fatalf("close %v", ev)
			}
			if got := up.WaitClose(t); got.Code != 4003 {
				t.Fatalf("upstream saw reply %+v", got)
			}
		})
	}
}

func TestWebSocketThroughProxyRefusedWithWSClient(t *testing.T) {
	up := testkit.NewWSBackend(t)
	px := wsStartProxy(t, up.Server.URL, &testkit.Chain{}, "")
	n := startWSNode(t, "--url", "ws://"+px.Addr().String()+"/refuse")
	ev := n.expect("unexpected-response")
	h, _ := ev["headers"].(map[string]any)
	if ev["status"] != float64(403) || ev["body"] != strings.Repeat("denied ", 400) || h["x-reason"] != "nope" {
		t.Fatalf("refusal %v", ev)
	}
}

func TestWebSocketThroughProxyVerdictsWithWSClient(t *testing.T) {
	up := testkit.NewWSBackend(t)
	px := wsStartProxy(t, up.Server.URL, testkit.VerdictChain(), "")
	n := startWSNode(t, "--url", "ws://"+px.Addr().String()+"/x")
	n.expect("open")
	n.send(map[string]any{"op": "sendFragmented", "text": "upper:fragments", "parts": 3})
	if ev := n.expect("message"); ev["text"] != "FRAGMENTS" {
		t.Fatalf("replace %v", ev)
	}
	n.send(map[string]any{"op": "send", "text": "inject"})
	want := []map[string]string{{"text": "to-client"}, {"binary": base64.StdEncoding.EncodeToString([]byte("to-upstream"))}, {"text": "inject"}}
	for _, w := range want {
		ev := n.expect("message")
		for k, v := range w {
			if ev[k] != v {
				t.Fatalf("inject: got %v, want %v", ev, w)
			}
		}
	}
	n.send(map[string]any{"op": "send", "text": "close"})
	if ev := n.expect("close"); ev["code"] != float64(4000) || ev["reason"] != "filter said no" {
		t.Fatalf("close %v", ev)
	}
}

func TestWebSocketThroughProxyTooBigWithWSClient(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			px := wsStartProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, "[server.websocket]\nmax_message_size = \"1KiB\"\n")
			n := startWSNode(t, "--url", "ws://"+px.Addr().String()+"/x")
			n.expect("open")
			n.send(map[string]any{"op": "sendFragmented", "text": strings.Repeat("x", 3000), "parts": 6})
			if ev := n.expect("close"); ev["code"] != float64(1009) {
				t.Fatalf("close %v", ev)
			}
			if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw %+v", got)
			}
		})
	}
}

// TestWebSocketChainReload swaps the route's chain while a message-mode
// session is open: later messages go through the new chain.
func TestWebSocketChainReload(t *testing.T) {
	up := testkit.NewWSBackend(t)
	px := wsStartProxy(t, up.Server.URL, testkit.VerdictChain(), "")
	c, _ := testkit.DialWS(t, nil, "ws://"+px.Addr().String()+"/x", nil)
	c.WriteMessage(websocket.TextMessage, []byte("upper:one"))
	if _, got := testkit.ReadWS(t, c); got != "ONE" {
		t.Fatalf("got %q", got)
	}
	// The new chain prefixes what the client sends.
	next := &testkit.Chain{Set: filter.HookMessage, Message: func(_ *filter.Session, m *filter.Message) filter.MessageVerdict {
		if m.Direction == filter.ClientToUpstream {
			m.Payload = append([]byte("v2:"), m.Payload...)
		}
		return filter.MessageVerdict{}
	}}
	conf := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"app\"\ntargets = [%q]\n[[route]]\nname = \"ws\"\nupstream = \"app\"\n",
		up.Server.URL)
	if _, err := px.Apply(mustParse(t, conf), Chains{Routes: map[string]filter.Chain{"ws": next}}); err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("upper:two"))
	if _, got := testkit.ReadWS(t, c); got != "v2:upper:two" {
		t.Fatalf("after reload got %q", got)
	}
}
