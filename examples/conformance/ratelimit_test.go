package conformance

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/plugins/redisstore/redistest"
)

// limited is the 429 of the ratelimit example for policy name with limit
// q per w seconds.
func limited(name, q, w string) reply {
	return reply{
		status: 429,
		header: map[string]string{
			"Retry-After":      `re:^[1-9][0-9]*$`,
			"RateLimit-Policy": `"` + name + `";q=` + q + ";w=" + w,
			"RateLimit":        `re:^"` + name + `";r=0;t=[1-9][0-9]*$`,
			"Content-Type":     "text/plain",
		},
		bodyHas: []string{"rate limited: retry in "},
	}
}

// allowed is a response the ratelimit example let through with r left.
func allowed(name, q, w, r string) reply {
	return reply{header: map[string]string{
		"RateLimit-Policy": `"` + name + `";q=` + q + ";w=" + w,
		"RateLimit":        `re:^"` + name + `";r=` + r + `;t=[1-9][0-9]*$`,
	}}
}

func ratelimitScenarios() []*scenario {
	key := func(k string) http.Header { return hdr("X-API-Key", k) }
	return []*scenario{
		{name: "requests", config: "[plugin.config]\nlimit = 2\nwindow = \"1h\"\n", steps: []step{
			request{path: "x", want: allowed("default", "2", "3600", "1")},
			request{path: "x", want: allowed("default", "2", "3600", "0")},
			request{path: "x", want: limited("default", "2", "3600")},
			request{path: "x", want: limited("default", "2", "3600")},
		}},
		{name: "by-header", config: "[plugin.config]\nlimit = 1\nwindow = \"1h\"\nkey = \"header:X-API-Key\"\n", steps: []step{
			request{path: "x", header: key("a"), want: allowed("default", "1", "3600", "0")},
			request{path: "x", header: key("a"), want: limited("default", "1", "3600")},
			request{path: "x", header: key("b"), want: allowed("default", "1", "3600", "0")},
			// No key: counted by the client's address.
			request{path: "x", want: allowed("default", "1", "3600", "0")},
			request{path: "x", want: limited("default", "1", "3600")},
		}},
		{name: "route-policy", config: "[plugin.config]\nlimit = 0\n[plugin.config.routes.\"{s}\"]\nlimit = 1\nwindow = 60\n", steps: []step{
			request{path: "x", want: allowed("{s}", "1", "60", "0")},
			request{path: "x", want: limited("{s}", "1", "60")},
		}},
		{name: "upgrades", config: "[plugin.config]\nlimit = 1\nwindow = \"1h\"\n", steps: []step{
			ws{path: "ws", msgs: []msg{sendText("a"), recvText("a")}},
			ws{path: "ws", refused: 429},
		}},
		{name: "messages-drop", config: "[plugin.config]\nmessages = 2\nwindow = \"1s\"\n", steps: []step{
			// 3 is dropped: the next message echoed is 4, two windows later.
			ws{path: "ws", msgs: []msg{sendText("1"), recvText("1"), sendText("2"), recvText("2"),
				sendText("3"), msg{send: true, payload: "4", wait: 2100 * time.Millisecond}, recvText("4")}},
		}},
		{name: "messages-close", config: "[plugin.config]\nmessages = 1\nwindow = \"1h\"\nmessage_action = \"close\"\n", steps: []step{
			ws{path: "ws", msgs: []msg{sendText("1"), recvText("1"), sendText("2"), closeWith(1008, "rate limited")}},
		}},
		{name: "config-bad-window", config: "[plugin.config]\nwindow = \"1500ms\"\n", loadErr: `plugin "{s}"`},
		{name: "config-bad-key", config: "[plugin.config]\nkey = \"cookie:sid\"\n", loadErr: `plugin "{s}"`},
		{name: "config-unknown", config: "[plugin.config]\nlimits = 3\n", loadErr: `plugin "{s}"`},
	}
}

// TestConformanceRedis runs the examples whose scenarios use the shared
// store (abitest's shared_* scenarios, ratelimit) again with the store in a
// real Redis: a filter must behave the same on both backends. It runs this
// test binary again with the store's address in the environment.
func TestConformanceRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the conformance kit starts a proxy per example and language")
	}
	if os.Getenv(redisEnv) != "" {
		t.Skip("this run is the Redis run")
	}
	srv := redistest.Start(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestConformance$/^(ratelimit|abitest)$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), redisEnv+"="+srv.Addr())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the kit on Redis failed: %v\n%s", err, out)
	}
	for _, ex := range []string{"ratelimit", "abitest"} {
		if !strings.Contains(string(out), "--- PASS: TestConformance/"+ex+" ") {
			t.Fatalf("%s did not pass on Redis:\n%s", ex, out)
		}
	}
	if keys, err := srv.Do("DBSIZE"); err != nil || keys == "0" {
		t.Fatalf("the scenarios left no keys in Redis (%q, %v): the run did not use it", keys, err)
	}
}
