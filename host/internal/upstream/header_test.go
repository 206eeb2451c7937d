package upstream

import (
	"crypto/tls"
	"net/http"
	"reflect"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":        {"keep-alive, X-Secret, upgrade"},
		"X-Secret":          {"s"},
		"Keep-Alive":        {"timeout=5"},
		"Upgrade":           {"websocket"},
		"Transfer-Encoding": {"chunked"},
		"Te":                {"trailers"},
		"Cookie":            {"a=b"},
	}
	RemoveHopByHop(h)
	if want := (http.Header{"Cookie": {"a=b"}}); !reflect.DeepEqual(h, want) {
		t.Fatalf("left %v, want %v", h, want)
	}
}

func TestHasToken(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive", " Upgrade ,close"}}
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"upgrade", true}, {"CLOSE", true}, {"keep-alive", true}, {"up", false}, {"", false},
	} {
		t.Run(tc.token, func(t *testing.T) {
			if got := HasToken(h, "Connection", tc.token); got != tc.want {
				t.Fatalf("HasToken(%q) = %v", tc.token, got)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { HasToken(h, "Connection", "close") }); n != 0 {
		t.Fatalf("HasToken allocates %v times", n)
	}
}

func TestSetForwarded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    *http.Request
		want  http.Header
		start http.Header
	}{
		{
			name: "first hop",
			in:   &http.Request{RemoteAddr: "192.0.2.1:5000", Host: "example.com", Header: http.Header{}},
			want: http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Host": {"example.com"},
				"X-Forwarded-Proto": {"http"}, "Via": {Via}},
		},
		{
			name: "chain carried over, Forwarded dropped, TLS",
			in: &http.Request{RemoteAddr: "[2001:db8::1]:443", Host: "a.test", TLS: &tls.ConnectionState{},
				Header: http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2", "10.0.0.3"}}},
			start: http.Header{"Forwarded": {"for=evil"}, "Via": {"1.0 other"}},
			want: http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2, 10.0.0.3, 2001:db8::1"}, "X-Forwarded-Host": {"a.test"},
				"X-Forwarded-Proto": {"https"}, "Via": {"1.0 other", Via}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.start
			if out == nil {
				out = http.Header{}
			}
			SetForwarded(out, tc.in)
			if !reflect.DeepEqual(out, tc.want) {
				t.Fatalf("got %v, want %v", out, tc.want)
			}
		})
	}
}
