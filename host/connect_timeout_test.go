package host

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// connect_timeout bounds the dial to a target that never answers the
// connect, for HTTP requests and WebSocket handshakes alike: the client gets
// 502 (the target is unreachable) after about connect_timeout, long before
// response_timeout or the WebSocket handshake_timeout would end the wait.
func TestConnectTimeout(t *testing.T) {
	const connect = 300 * time.Millisecond
	target := "http://" + testkit.HangingAddr(t)
	conf := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[server.websocket]
handshake_timeout = "60s"
[[upstream]]
name = "app"
targets = [%q]
connect_timeout = %q
response_timeout = "60s"
[[route]]
name = "r"
upstream = "app"
`, target, connect.String())
	px := pxStart(t, conf, map[string]filter.Chain{"r": &testkit.Chain{Set: filter.HookMessage}})
	for _, tc := range []struct {
		name string
		do   func() (int, error)
	}{
		{"http", func() (int, error) {
			resp, err := testkit.Client().Get(px.url + "/")
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}},
		{"websocket", func() (int, error) {
			d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
			c, resp, err := d.Dial("ws"+strings.TrimPrefix(px.url, "http")+"/", nil)
			if err == nil {
				c.Close()
				return http.StatusSwitchingProtocols, nil
			}
			if resp == nil {
				return 0, err
			}
			return resp.StatusCode, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			status, err := tc.do()
			took := time.Since(start)
			if err != nil {
				t.Fatalf("after %v: %v", took, err)
			}
			if status != http.StatusBadGateway {
				t.Errorf("status %d, want 502", status)
			}
			// The bound is generous for a loaded machine, and far below the
			// 60s of the other timeouts.
			if took < connect || took > connect+5*time.Second {
				t.Errorf("answered after %v, want about connect_timeout (%v)", took, connect)
			}
		})
	}
}
