package plugins

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// Header values a filter sets follow RFC 9110: no control byte but HTAB.
func TestHeaderValueRules(t *testing.T) {
	e := load(t, plug("b", "boundary"))
	c := e.chain(t)
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"plain", true},
		{"tab\tinside", true},
		{"obs-text \x80\xff", true},
		{"", true},
		{"soh\x01", false},
		{"del\x7f", false},
		{"cr\rlf", false},
		{"nul\x00", false},
		{"esc\x1b[0m", false},
	} {
		t.Run(strings.NewReplacer("\x00", `\0`, "\x01", `\1`, "\x7f", `\177`, "\r", `\r`, "\x1b", `\e`).Replace(tc.value), func(t *testing.T) {
			x := exchange("/")
			x.Request.URL.RawQuery = tc.value
			r := c.OnRequestHeaders(x)
			if tc.ok && (r != nil || x.Request.Header.Get("X-V") != tc.value) {
				t.Errorf("reply %+v, X-V %q; want the value set", r, x.Request.Header.Get("X-V"))
			}
			if !tc.ok && (r == nil || r.Status != 503) {
				t.Errorf("reply %+v, want 503 (misuse)", r)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "contains a control byte") {
		t.Errorf("the log does not explain the refusal:\n%s", e.logs)
	}
}

// A filter sets statuses 200-599 only, and 204 or 304 only on a response
// without a body.
func TestSetStatusRules(t *testing.T) {
	// Five refusals in a row would trip the circuit breaker.
	e := load(t, plug("b", "boundary", func(p *config.Plugin) { p.BreakerFailures = 100 }))
	c := e.chain(t)
	for _, tc := range []struct {
		name          string
		upstream      int
		contentLength string
		set           string
		ok            bool
	}{
		{"299", 200, "5", "299", true},
		{"200 to 503", 200, "5", "503", true},
		{"101", 200, "5", "101", false},
		{"199", 200, "5", "199", false},
		{"600", 200, "5", "600", false},
		{"204 over a body", 200, "5", "204", false},
		{"304 over a body", 200, "", "304", false},
		{"204 over an empty body", 200, "0", "204", true},
		{"304 from a 304", 304, "", "304", true},
		{"204 from a 204", 204, "", "204", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := exchange("/")
			x.Status = tc.upstream
			x.ResponseHeader = http.Header{"X-Status": {tc.set}}
			if tc.contentLength != "" {
				x.ResponseHeader.Set("Content-Length", tc.contentLength)
			}
			r := c.OnResponseHeaders(x)
			if tc.ok && (r != nil || x.Status != atoi3(tc.set)) {
				t.Errorf("reply %+v, status %d; want status %s", r, x.Status, tc.set)
			}
			if !tc.ok && (r == nil || r.Status != 503) {
				t.Errorf("reply %+v, want 503 (misuse)", r)
			}
		})
	}
}

func atoi3(s string) int { return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0') }

// Guest log lines over log_rate are dropped and counted, and the next line
// that passes is preceded by a record of how many were lost.
func TestLogRate(t *testing.T) {
	e := load(t, plug("c", "chatty", func(p *config.Plugin) { p.LogRate = 10 }))
	c := e.chain(t)
	if r := c.OnRequestHeaders(exchange("/")); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if n := strings.Count(e.logs.String(), "chatty line"); n != 10 {
		t.Errorf("%d lines logged, want the burst of 10", n)
	}
	if s := e.stats("c"); s.LogDropped != 40 {
		t.Errorf("LogDropped = %d, want 40", s.LogDropped)
	}
	time.Sleep(200 * time.Millisecond) // two more tokens
	c.OnRequestHeaders(exchange("/"))
	if !strings.Contains(e.logs.String(), `msg="plugins: guest log lines dropped over log_rate" plugin=c dropped=40 log_rate=10`) {
		t.Errorf("no record of the dropped lines:\n%s", e.logs)
	}
}

// Header changes are held to server.max_header_bytes as the headers stand
// after each change: replacing and removing give room back.
func TestHeaderChangesFitMaxHeaderBytes(t *testing.T) {
	e := load(t, plug("b", "bigheader"))
	c := e.chain(t)
	x := exchange("/")
	if r := c.OnRequestHeaders(x); r != nil || len(x.Request.Header.Get("X-Big")) != 40000 {
		t.Fatalf("reply %+v, X-Big of %d bytes; want a 40,000-byte X-Big set; log:\n%s", r, len(x.Request.Header.Get("X-Big")), e.logs)
	}
	x = exchange("/?twice")
	if r := c.OnRequestHeaders(x); r == nil || r.Status != 503 {
		t.Fatalf("two 40,000-byte values: reply %+v, want 503", r)
	}
	if !strings.Contains(e.logs.String(), "add_header: over the plugin's server.max_header_bytes quota of 65536") {
		t.Errorf("the log does not name the limit:\n%s", e.logs)
	}
}
