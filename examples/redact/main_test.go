package main

import (
	"encoding/json"
	"strings"
	"testing"

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
	return h
}

const config = `{"fields": ["password", "ssn"], "words": ["secret", "hunter2"]}`

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"flat", `{"user":"ann","password":"pw1"}`, `{"user":"ann","password":"***"}`},
		{"any value type", `{"password": 1234, "ssn": {"a": [1, 2]}, "ok": true}`, `{"password": "***", "ssn": "***", "ok": true}`},
		{"nested", `{"a":{"b":[{"ssn":"123-45-6789"},{"c":{"password":null}}]}}`, `{"a":{"b":[{"ssn":"***"},{"c":{"password":"***"}}]}}`},
		{"case-insensitive keys", `{"Password":"x","SSN":"y"}`, `{"Password":"***","SSN":"***"}`},
		{"formatting kept", "{\n  \"password\" : \"pw\" ,\n  \"n\": -1.5e3\n}", "{\n  \"password\" : \"***\" ,\n  \"n\": -1.5e3\n}"},
		{"top-level array", `[{"password":"a"},{"password":"b"}]`, `[{"password":"***"},{"password":"***"}]`},
		{"words in JSON strings", `{"text":"my secret is hunter2","secret":"key stays"}`, `{"text":"my *** is ***","secret":"key stays"}`},
		{"escaped strings", `{"q":"say \"hi\"\\","password":"a\"b"}`, `{"q":"say \"hi\"\\","password":"***"}`},
		{"nothing to mask", `{"user":"ann"}`, `{"user":"ann"}`},
		{"plain text", "the secret is Hunter2, ok", "the *** is ***, ok"},
		{"whole words only", "secretary hunter22 _secret secret_ secret.", "secretary hunter22 _secret secret_ ***."},
		{"not quite JSON", `{"password":"pw"`, `{"password":"pw"`},
		{"not JSON with a word", `{"password": secret}`, `{"password": ***}`},
		{"empty", "", ""},
		{"unicode", `{"name":"Zoë","password":"ünï"} Zoë`, `{"name":"Zoë","password":"ünï"} Zoë`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, config)
			v := h.Text(sluice.ClientToUpstream, tc.in)
			if v.Outcome != sluicetest.Passed || string(v.Payload) != tc.want {
				t.Fatalf("got %v %s\nwant %s", v.Outcome, v.Payload, tc.want)
			}
			if json.Valid([]byte(tc.in)) && !json.Valid(v.Payload) {
				t.Fatal("valid JSON in, invalid JSON out")
			}
		})
	}
}

func TestPhrases(t *testing.T) {
	h := newHost(t, `{"words": ["top secret", "x-ray", "code"]}`)
	for in, want := range map[string]string{
		"a TOP SECRET plan":        "a *** plan",
		"top secrets, x-ray, code": "top secrets, ***, ***",
		`{"m":"Top Secret!"}`:      `{"m":"***!"}`,
		"topsecret codes":          "topsecret codes",
	} {
		if v := h.Text(sluice.ClientToUpstream, in); string(v.Payload) != want {
			t.Errorf("%q -> %q, want %q", in, v.Payload, want)
		}
	}
}

func TestBinaryPassesUntouched(t *testing.T) {
	h := newHost(t, config)
	in := []byte(`{"password":"pw"} secret`)
	v := h.Message(sluice.UpstreamToClient, sluice.Binary, in)
	if v.Outcome != sluicetest.Passed || string(v.Payload) != string(in) {
		t.Fatalf("binary changed: %s", v.Payload)
	}
}

func TestMaskAndDirection(t *testing.T) {
	h := newHost(t, `{"fields": ["token"], "words": ["x"], "mask": "<\"hidden\">", "direction": "upstream_to_client"}`)
	if v := h.Text(sluice.ClientToUpstream, `{"token":"t"}`); string(v.Payload) != `{"token":"t"}` {
		t.Errorf("client->upstream redacted: %s", v.Payload)
	}
	v := h.Text(sluice.UpstreamToClient, `{"token":"t","m":"x y"}`)
	if string(v.Payload) != `{"token":"<\"hidden\">","m":"<\"hidden\"> y"}` || !json.Valid(v.Payload) {
		t.Errorf("upstream->client: %s", v.Payload)
	}
	if v := h.Text(sluice.UpstreamToClient, `x marks`); string(v.Payload) != `<"hidden"> marks` {
		t.Errorf("text: %s", v.Payload)
	}
}

func TestDeepNesting(t *testing.T) {
	h := newHost(t, config)
	in := strings.Repeat(`{"a":`, 100) + `{"password":"pw"}` + strings.Repeat(`}`, 100)
	want := strings.Repeat(`{"a":`, 100) + `{"password":"***"}` + strings.Repeat(`}`, 100)
	if v := h.Text(sluice.ClientToUpstream, in); string(v.Payload) != want {
		t.Fatal("a field 100 levels deep was not masked")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]string{
		"nothing":    `{}`,
		"empty name": `{"fields": [""]}`,
		"empty word": `{"words": [""]}`,
		"direction":  `{"words": ["a"], "direction": "sideways"}`,
		"not json":   `{"words": `,
	} {
		t.Run(name, func(t *testing.T) {
			h := sluicetest.New()
			h.Config = cfg
			if err := h.Configure(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRedactDoesNotAllocate(t *testing.T) {
	newHost(t, config)
	in := []byte(`{"user":"ann","password":"pw1","note":"a secret","list":[1,2,{"ssn":"1"}]}`)
	red.redactJSON(in) // grow the output buffer once
	red.result()
	allocs := testing.AllocsPerRun(100, func() {
		if !red.redactJSON(in) {
			t.Fatal("not JSON")
		}
		if _, changed := red.result(); !changed {
			t.Fatal("nothing masked")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per message", allocs)
	}
}

func BenchmarkRedactJSON(b *testing.B) {
	sluicetest.New()
	if err := configure([]byte(config)); err != nil {
		b.Fatal(err)
	}
	in := []byte(`{"type":"chat","user":"ann","text":"hello there, this is a message of a typical size","meta":{"password":"pw1","ts":1700000000}}`)
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		red.redactJSON(in)
		red.result()
	}
}

// BenchmarkRedact runs the scanner natively on the messages of the proxy
// benchmark (examples/bench_test.go, BenchmarkFiltersRedact): sluice-bench's
// 64-byte and 16 KiB messages, with sluice-bench's config, and 16 KiB of
// prose with nothing to mask.
func BenchmarkRedact(b *testing.B) {
	sluicetest.New()
	if err := configure([]byte(`{"fields": ["password", "ssn"], "words": ["secret"]}`)); err != nil {
		b.Fatal(err)
	}
	message := func(size int) string {
		head := `{"user":"alice","password":"hunter2","text":"a secret `
		return head + strings.Repeat("x", max(size-len(head)-2, 0)) + `"}`
	}
	for _, tc := range []struct{ name, in string }{
		{"64B", message(64)},
		{"16KiB", message(16 << 10)},
		{"16KiB-clean", `{"user":"alice","text":"` + strings.Repeat("lorem ipsum dolor sit amet, ", 16<<10/28) + `"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in := []byte(tc.in)
			b.SetBytes(int64(len(in)))
			for range b.N {
				if !red.redactJSON(in) {
					b.Fatal("not JSON")
				}
				red.result()
			}
		})
	}
}

// TestStringScanning checks the eight-bytes-at-a-time string scanner
// against encoding/json on strings with quotes, backslashes, control
// characters and multi-byte characters at every offset.
func TestStringScanning(t *testing.T) {
	newHost(t, `{"fields": ["password"]}`)
	alphabet := []string{"a", "b", `"`, `\`, "\n", "\x01", "é", "中", "/", " "}
	seed := uint32(1)
	for i := 0; i < 2000; i++ {
		var sb strings.Builder
		n := int(seed % 40)
		for j := 0; j < n; j++ {
			seed = seed*1664525 + 1013904223
			sb.WriteString(alphabet[seed>>16%uint32(len(alphabet))])
		}
		seed = seed*1664525 + 1013904223
		enc, _ := json.Marshal(sb.String())
		in := `{"x":` + string(enc) + `,"password":` + string(enc) + `}`
		want := `{"x":` + string(enc) + `,"password":"***"}`
		if !red.redactJSON([]byte(in)) {
			t.Fatalf("valid JSON not recognised: %s", in)
		}
		if out, _ := red.result(); string(out) != want {
			t.Fatalf("%s\n-> %s", in, out)
		}
		// Cut the document short inside the string: not JSON any more.
		if cut := in[:5+len(enc)/2]; red.redactJSON([]byte(cut)) {
			t.Fatalf("truncated JSON accepted: %s", cut)
		}
	}
}
