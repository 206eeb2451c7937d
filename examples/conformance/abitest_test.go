package conformance

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// annotated is what the abitest filter makes of a text message p that the
// backend echoes: annotated on its way up (message n of the connection),
// and again on its way back (message n+1).
func annotated(p string, n int) string {
	up := fmt.Sprintf("%s [c2u text %d #%d]", p, len(p), n)
	return fmt.Sprintf("%s [u2c text %d #%d]", up, len(up), n+1)
}

// report is the X-Abi-* headers the abitest filter adds for a plain GET of
// /<scenario>/x?q=1 with the headers of reportRequest, as the first
// request of its plugin.
func report() map[string]string {
	return map[string]string{
		"X-Abi-Method":           "GET",
		"X-Abi-Path":             "/{s}/x",
		"X-Abi-Query":            "q=1",
		"X-Abi-Config":           `{"greeting":"hi"}`,
		"X-Abi-Prop-Client-Addr": `re:^127\.0\.0\.1:\d+$`,
		"X-Abi-Prop-Host":        `re:^127\.0\.0\.1:\d+$`,
		"X-Abi-Prop-Scheme":      "http",
		"X-Abi-Prop-Route":       "{s}",
		"X-Abi-Prop-Request-Id":  "kit-1",
		"X-Abi-Prop-Plugin":      "{s}",
		"X-Abi-Prop-Protocol":    "HTTP/1.1",
		"X-Abi-Clock-Wall":       "{now}",
		"X-Abi-Clock-Mono":       "ok",
		"X-Abi-Names":            "Accept-Encoding,Host,User-Agent,X-Abi-Big,X-Abi-In,X-Abi-Remove,X-Request-Id",
		"X-Abi-In":               "a|b",
		"X-Abi-Big-Len":          "3000",
		"X-Abi-Req-Body":         "",
		"X-Abi-Shared-Hits":      "1",
		"X-Abi-Shared-Hits-Text": "1",
		"X-Abi-Shared-Last":      "<absent>",
		"X-Abi-Shared-Ttl":       "<absent>",
		"X-Abi-Shared-Ttl-Ctr":   absent,
		"X-Abi-Shared-Deleted":   "<absent>",
		"X-Abi-Shared-Closed":    "<absent>",
		"X-Abi-State-Tmp":        "x",
		"X-Abi-State-Deleted":    "<absent>",
		"X-Abi-Resp-Status":      "200",
		"X-Abi-Resp-Names":       "Content-Type,Date,Server,Via,X-Backend,X-Backend-Add,X-Backend-Remove,X-Request-Id",
		"X-Abi-Resp-Body-Len":    "{len}",
		"X-Abi-Local-Names":      absent,
		"X-Abi-Set-Req-Body":     absent,
		"X-Abi-Set-Resp-Body":    absent,
		"X-Backend":              "yes",
		"X-Backend-Set":          "new",
		"X-Backend-Add":          "1|2",
		"X-Backend-Remove":       absent,
	}
}

func reportRequest() map[string][]string {
	return hdr("X-Abi-In", "a", "X-Abi-In", "b", "X-Abi-Remove", "r", "X-Request-Id", "kit-1",
		"X-Abi-Big", strings.Repeat("x", 3000))
}

func abitestScenarios() []*scenario {
	const cfg = "[plugin.config]\ngreeting = \"hi\"\n"
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	closes := func(command string, code int, reason string) step {
		return ws{path: "ws", msgs: []msg{sendText(command), closeWith(code, reason)}}
	}
	// The operator lets abitest buffer bodies; without max_body_buffer its
	// feature bits are ignored (get_body reads -1).
	const buffersBodies = `max_body_buffer = "1MiB"`
	return []*scenario{
		{name: "http-report", config: cfg, plugin: buffersBodies, steps: []step{
			request{path: "x?q=1", header: reportRequest(), want: reply{
				header: report(),
				up: &upstream{method: "GET", path: "/{s}/x", query: "q=1", header: with(
					"X-Abi-Set", "set", "X-Abi-Add", "1|2", "X-Abi-Lower", "yes", "X-Abi-Remove", absent, "X-Abi-In", "a|b")},
				logged: [][]string{
					{"level=DEBUG", "plugin={s}", "abitest: debug"},
					{"level=INFO", "plugin={s}", "abitest: request GET /{s}/x"},
					{"level=WARN", "plugin={s}", "abitest: warn"},
					{"level=ERROR", "plugin={s}", "abitest: error"},
				},
			}},
		}},
		{name: "shared-across-requests", config: cfg, steps: []step{
			request{path: "first", want: reply{header: with("X-Abi-Shared-Hits", "1", "X-Abi-Shared-Last", "<absent>")}},
			request{path: "second", want: reply{header: with("X-Abi-Shared-Hits", "2", "X-Abi-Shared-Hits-Text", "2", "X-Abi-Shared-Last", "/{s}/first")}},
		}},
		{name: "shared-ttl", config: cfg, steps: []step{
			request{path: "a", header: hdr("X-Abi-Ttl-Ms", "300"), want: reply{header: with("X-Abi-Shared-Ttl", "<absent>", "X-Abi-Shared-Ttl-Ctr", "1")}},
			request{path: "b", header: hdr("X-Abi-Ttl-Ms", "300"), want: reply{header: with("X-Abi-Shared-Ttl", "alive", "X-Abi-Shared-Ttl-Ctr", "2")}},
			pause(700 * time.Millisecond),
			request{path: "c", want: reply{header: with("X-Abi-Shared-Ttl", "<absent>", "X-Abi-Shared-Ttl-Ctr", absent)}},
			request{path: "d", header: hdr("X-Abi-Ttl-Ms", "300"), want: reply{header: with("X-Abi-Shared-Ttl", "<absent>", "X-Abi-Shared-Ttl-Ctr", "1")}},
		}},
		{name: "rewrite-request", config: cfg, steps: []step{
			request{path: "x?q=1", header: hdr("X-Abi-Set-Method", "PUT", "X-Abi-Set-Path", "/elsewhere/p", "X-Abi-Set-Query", "a=1&b=%20"),
				want: reply{header: with("X-Abi-Method", "GET", "X-Abi-Path", "/{s}/x", "X-Abi-Query", "q=1"),
					up: &upstream{method: "PUT", path: "/elsewhere/p", query: "a=1&b=%20"}}},
			request{path: "x?q=1", header: hdr("X-Abi-Set-Query", ""), want: reply{up: &upstream{path: "/{s}/x", query: ""}}},
		}},
		{name: "request-body", config: cfg, plugin: buffersBodies, steps: []step{
			request{method: "POST", path: "x", body: "hello body", header: hdr("X-Abi-Set-Req-Body", "replaced body"),
				want: reply{header: with("X-Abi-Req-Body", "hello body", "X-Abi-Method", "POST"),
					up: &upstream{method: "POST", body: "replaced body"}}},
			request{method: "POST", path: "x", body: "kept", want: reply{up: &upstream{body: "kept"}}},
		}},
		{name: "response-status-and-body", config: cfg, plugin: buffersBodies, steps: []step{
			request{path: "x", header: hdr("X-Abi-Set-Status", "299", "X-Abi-Set-Resp-Body", "new body"),
				want: reply{status: 299, body: ptr("new body"), header: with("X-Abi-Resp-Status", "200", "X-Abi-Resp-Body-Len", `re:^[1-9][0-9]*$`)}},
		}},
		{name: "local-response", config: cfg, steps: []step{
			request{path: "respond", want: reply{status: 418,
				header:  with("Content-Type", "text/plain; charset=utf-8", "X-Abi-Early", "early", "X-Abi-Both", "early|late", "X-Backend", absent),
				bodyHas: []string{"Method: GET\n", "Path: /{s}/respond\n", "Config: {\"greeting\":\"hi\"}\n", "Local-Names: X-Abi-Both,X-Abi-Early\n"}}},
		}},
		{name: "replace-response", config: cfg, steps: []step{
			request{path: "replace", want: reply{status: 502, body: ptr("replaced\n"),
				header: with("X-Abi-Replaced", "yes", "X-Backend", absent, "X-Abi-Method", absent)}},
		}},
		{name: "misuse-fails-closed", config: cfg, steps: []step{
			request{path: "x", header: hdr("X-Abi-Set-Path", "no-slash"), want: reply{status: 503}},
			request{path: "x", header: hdr("X-Abi-Set-Query", "a b"), want: reply{status: 503}},
			request{path: "x", header: hdr("X-Abi-Set-Query", "a#b"), want: reply{status: 503}},
			request{path: "x", header: hdr("X-Abi-Set-Method", "GET /"), want: reply{status: 503}},
			request{path: "x", header: hdr("X-Abi-Set-Status", "1000"), want: reply{status: 503}},
			request{path: "x", want: reply{header: with("X-Abi-Method", "GET")}},
		}},
		{name: "misuse-fails-open", config: cfg, plugin: `on_error = "allow"`, steps: []step{
			request{path: "x", header: hdr("X-Abi-Set-Path", "no-slash", "X-Abi-Remove", "r"),
				want: reply{header: with("X-Abi-Method", absent, "X-Abi-Resp-Status", "200"),
					up: &upstream{path: "/{s}/x", header: with("X-Abi-Set", absent, "X-Abi-Remove", "r")}}},
		}},
		{name: "websocket", config: cfg, steps: []step{
			ws{path: "ws?room=1", header: hdr("X-Request-Id", "kit-ws"),
				up: &upstream{query: "room=1", header: with("X-Abi-Upgrade", "yes", "X-Abi-Set", "set", "X-Abi-Add", "1|2")},
				msgs: []msg{
					sendText("hello"), recvText(annotated("hello", 1)),
					sendBinary("\x01\x02"), recvBinary("\x01\x02\x00\x01"),
					sendText("state"), recvText("upgrade=/{s}/ws?room=1 report=true n=5"),
					sendText("props"), recvText(`re:^Client-Addr=127\.0\.0\.1:\d+ Host=127\.0\.0\.1:\d+ Scheme=http Route={s} Request-Id=kit-ws Plugin={s} Protocol=HTTP/1\.1$`),
					// Injected messages go out before the current one.
					sendText("inject"), recvText("injected to client"), recvBinary("\xff\x00"),
					recvText("injected to upstream [u2c text 20 #8]"), recvText("inject [c2u text 6 #7] [u2c text 22 #9]"),
					sendText("shared"), recvText("msgs=1"),
					sendText("drop"), sendText("after drop"), recvText(annotated("after drop", 12)),
					sendText("close 4001 bye"), closeWith(4001, "bye"),
				}},
			// on_close ran once the session ended.
			eventually{request{path: "x", want: reply{header: with("X-Abi-Shared-Closed", "1")}}},
		}},
		{name: "shared-across-connections", config: cfg, steps: []step{
			ws{path: "ws", msgs: []msg{sendText("shared"), recvText("msgs=1")}},
			ws{path: "ws", msgs: []msg{sendText("shared"), recvText("msgs=2")}},
		}},
		{name: "upgrade-refused", config: cfg, steps: []step{
			ws{path: "refuse", refused: 403, respHdr: with("Content-Type", "text/plain")},
		}},
		{name: "inject-limit", config: cfg, steps: []step{
			ws{path: "ws", msgs: append(append([]msg{sendText("inject-many 16")}, manyMessages(16)...),
				sendText("inject-many 17"), recvClose(1011))},
		}},
		{name: "inject-text-must-be-utf8", config: cfg, steps: []step{
			ws{path: "ws", msgs: []msg{sendText("inject-invalid-utf8"), recvClose(1011)}},
		}},
		{name: "close-codes", config: cfg, steps: []step{
			closes("close 1000 done", 1000, "done"),
			closes("close 1008 policy", 1008, "policy"),
			closes("close 3000 registered", 3000, "registered"),
			closes("close 4999", 4999, ""),
			closes("close 4000 "+strings.Repeat("r", 123), 4000, strings.Repeat("r", 123)),
			// Codes a filter may not send, and a reason over 123 bytes,
			// trap the filter: the proxy closes with 1011.
			closes("close 1005 reserved", 1011, ""),
			closes("close 1006 reserved", 1011, ""),
			closes("close 1015 reserved", 1011, ""),
			closes("close 999", 1011, ""),
			closes("close 5000", 1011, ""),
			closes("close 4000 "+strings.Repeat("r", 124), 1011, ""),
		}},
		{name: "configure-refused", config: "[plugin.config]\nrefuse = true\n", loadErr: `plugin "{s}"`},
	}
}

func manyMessages(n int) []msg {
	var out []msg
	for i := 1; i <= n; i++ {
		out = append(out, recvText(fmt.Sprint("many ", i)))
	}
	return out
}

// TestABITestImportsEveryHostFunction checks that each build of the abitest
// filter imports every host function of abi.Imports with its signature, so a
// host function added to the ABI without coverage in the kit (and in each
// SDK) fails here.
func TestABITestImportsEveryHostFunction(t *testing.T) {
	var langs []lang
	for _, ex := range examples {
		if ex.name == "abitest" {
			langs = ex.langs
		}
	}
	ctx := context.Background()
	// The interpreter only decodes and validates: the import section is all
	// this test reads.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	for _, m := range modulesOf("abitest", langs) {
		t.Run(m.lang, func(t *testing.T) {
			if m.path == "" {
				missing(t, "abitest", m)
			}
			bin, err := os.ReadFile(m.path)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := r.CompileModule(ctx, bin)
			if err != nil {
				t.Fatalf("abitest [%s]: compile: %v", m.lang, err)
			}
			defer cm.Close(ctx)
			imported := map[string]api.FunctionDefinition{}
			for _, f := range cm.ImportedFunctions() {
				if mod, name, _ := f.Import(); mod == abi.HostModule {
					imported[name] = f
				}
			}
			var missingFns []string
			for name, sig := range abi.Imports {
				f, ok := imported[name]
				if !ok {
					missingFns = append(missingFns, name)
					continue
				}
				if !sameTypes(f.ParamTypes(), sig.Params) || !sameTypes(f.ResultTypes(), sig.Results) {
					t.Errorf("abitest [%s]: %s imported as %v -> %v, abi.Imports says %v -> %v",
						m.lang, name, f.ParamTypes(), f.ResultTypes(), sig.Params, sig.Results)
				}
			}
			sort.Strings(missingFns)
			if len(missingFns) > 0 {
				t.Errorf("abitest [%s]: does not import %s: the kit does not cover them (add them to examples/abitest and its scenarios)",
					m.lang, strings.Join(missingFns, ", "))
			}
		})
	}
}

func sameTypes(got []api.ValueType, want []abi.ValueType) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != api.ValueType(want[i]) {
			return false
		}
	}
	return true
}
