package conformance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// jwt signs claims with header and secret as HS256 (whatever header says).
func jwt(header, claims, secret string) string {
	enc := base64.RawURLEncoding.EncodeToString
	signed := enc([]byte(header)) + "." + enc([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + enc(mac.Sum(nil))
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

// denied is the 401 the auth example answers with.
func denied(description string) reply {
	return reply{
		status: 401,
		header: map[string]string{
			"WWW-Authenticate": `Bearer realm="sluice", error="invalid_token"`,
			"Content-Type":     "application/json",
			"Cache-Control":    "no-store",
		},
		body: ptr(`{"error":"invalid_token","error_description":"` + description + `"}`),
	}
}

func authScenarios() []*scenario {
	const cfg = `[plugin.config]
tokens = ["demo-token"]
static_user = "demo"
jwt_secret = "s3cret"
`
	bearer := func(token string) map[string][]string {
		return hdr("Authorization", "Bearer "+token, "X-User", "spoofed")
	}
	passed := func(user string) reply {
		return reply{up: &upstream{header: map[string]string{"X-User": user, "Authorization": absent}}}
	}
	valid := jwt(hs256, fmt.Sprintf(`{"sub":"alice","exp":%d}`, since(time.Hour)), "s3cret")
	return []*scenario{
		{name: "no-token", config: cfg, steps: []step{
			request{path: "x", want: denied("missing bearer token")},
		}},
		{name: "static-token", config: cfg, steps: []step{
			request{path: "x", header: bearer("demo-token"), want: passed("demo")},
		}},
		{name: "scheme-any-case", config: cfg, steps: []step{
			request{path: "x", header: hdr("Authorization", "bEaReR demo-token"), want: passed("demo")},
		}},
		{name: "wrong-token", config: cfg, steps: []step{
			request{path: "x", header: bearer("nope"), want: denied("invalid token")},
			request{path: "x", header: bearer("demo-token2"), want: denied("invalid token")},
		}},
		{name: "jwt-valid", config: cfg, steps: []step{
			request{path: "x", header: bearer(valid), want: passed("alice")},
			// The same token again: the Go build answers from its cache.
			request{path: "x", header: bearer(valid), want: passed("alice")},
		}},
		{name: "jwt-expired", config: cfg, steps: []step{
			request{path: "x", header: bearer(jwt(hs256, `{"sub":"alice","exp":1}`, "s3cret")), want: denied("token expired")},
		}},
		{name: "jwt-not-yet-valid", config: cfg, steps: []step{
			request{path: "x", header: bearer(jwt(hs256, fmt.Sprintf(`{"sub":"alice","nbf":%d}`, since(time.Hour)), "s3cret")),
				want: denied("token not valid yet")},
		}},
		{name: "jwt-leeway", config: cfg + "leeway = \"1m\"\n", steps: []step{
			request{path: "x", headerAt: func() http.Header {
				return bearer(jwt(hs256, fmt.Sprintf(`{"sub":"carol","exp":%d}`, since(-20*time.Second)), "s3cret"))
			}, want: passed("carol")},
			request{path: "x", header: bearer(jwt(hs256, fmt.Sprintf(`{"sub":"carol","exp":%d}`, since(-2*time.Minute)), "s3cret")),
				want: denied("token expired")},
		}},
		{name: "jwt-bad-signature", config: cfg, steps: []step{
			request{path: "x", header: bearer(jwt(hs256, `{"sub":"alice"}`, "other")), want: denied("bad JWT signature")},
		}},
		{name: "jwt-alg-none", config: cfg, steps: []step{
			// "none", even with a good HS256 signature.
			request{path: "x", header: bearer(jwt(`{"alg":"none","typ":"JWT"}`, `{"sub":"mallory"}`, "s3cret")),
				want: denied("unsupported JWT algorithm")},
			request{path: "x", header: bearer(unsigned(`{"alg":"none"}`, `{"sub":"mallory"}`)),
				want: denied("unsupported JWT algorithm")},
			request{path: "x", header: bearer(jwt(`{"alg":"HS512"}`, `{"sub":"mallory"}`, "s3cret")),
				want: denied("unsupported JWT algorithm")},
		}},
		{name: "jwt-no-subject", config: cfg, steps: []step{
			request{path: "x", header: bearer(jwt(hs256, `{"exp":4102444800}`, "s3cret")), want: denied("token has no subject")},
		}},
		{name: "jwt-malformed", config: cfg, steps: []step{
			request{path: "x", header: bearer("a.b.c"), want: denied("invalid token")},
			request{path: "x", header: bearer(jwt(hs256, `{"sub":"alice","exp":"soon"}`, "s3cret")), want: denied("invalid token")},
		}},
		{name: "upgrade-without-token", config: cfg, steps: []step{
			ws{path: "ws", refused: 401, respHdr: map[string]string{"WWW-Authenticate": `Bearer realm="sluice", error="invalid_token"`}},
		}},
		{name: "upgrade-header-token", config: cfg, steps: []step{
			ws{path: "ws", header: hdr("Authorization", "Bearer demo-token"),
				up:   &upstream{header: map[string]string{"X-User": "demo", "Authorization": absent}},
				msgs: []msg{sendText("hi"), recvText("hi")}},
		}},
		{name: "query-token-on-upgrade", config: cfg, steps: []step{
			ws{path: "ws?room=1&access_token=demo-token&x=%41", up: &upstream{query: "room=1&x=%41", header: map[string]string{"X-User": "demo"}},
				msgs: []msg{sendText("hi"), recvText("hi")}},
			// Not on plain HTTP: a token in a URL ends up in logs.
			request{path: "x?access_token=demo-token", want: denied("missing bearer token")},
		}},
		{name: "query-token-escaped", config: `[plugin.config]
tokens = ["demo-token", "a b+c"]
static_user = "demo"
`, steps: []step{
			ws{path: "ws?access_token=demo%2Dtoken", up: &upstream{header: map[string]string{"X-User": "demo"}}},
			ws{path: "ws?access_token=a+b%2Bc&keep=1", up: &upstream{query: "keep=1", header: map[string]string{"X-User": "demo"}}},
			ws{path: "ws?access_token=&x=1", refused: 401},
			ws{path: "ws?access_token=%zz", refused: 401},
			// Only the first occurrence counts; every one is removed.
			ws{path: "ws?access_token=demo-token&access_token=nope&b=2", up: &upstream{query: "b=2"}},
		}},
		{name: "token-whitespace", config: cfg, steps: []step{
			request{path: "x", header: hdr("Authorization", "Bearer \t demo-token \t"), want: passed("demo")},
			request{path: "x", header: hdr("Authorization", "Bearer"), want: denied("missing bearer token")},
			request{path: "x", header: hdr("Authorization", "Bearer "), want: denied("missing bearer token")},
			request{path: "x", header: hdr("Authorization", "Basic ZGVtbzpkZW1v"), want: denied("missing bearer token")},
		}},
		{name: "subprotocol-token", config: cfg, steps: []step{
			ws{path: "ws", protocols: []string{"bearer." + jwt(hs256, `{"sub":"bob"}`, "s3cret"), "chat.v2"}, protocol: "chat.v2",
				up:   &upstream{header: map[string]string{"X-User": "bob", "Sec-Websocket-Protocol": "chat.v2"}},
				msgs: []msg{sendText("hi"), recvText("hi")}},
		}},
		{name: "custom-header-and-realm", config: `[plugin.config]
tokens = ["t1"]
user_header = "X-Auth-User"
realm = "api"
query_param = ""
`, steps: []step{
			request{path: "x", header: hdr("Authorization", "Bearer t1"),
				want: reply{up: &upstream{header: map[string]string{"X-Auth-User": "static", "X-User": absent}}}},
			request{path: "x", want: reply{status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="api", error="invalid_token"`}}},
			ws{path: "ws?access_token=t1", refused: 401},
		}},
		{name: "config-without-credentials", config: "[plugin.config]\nstatic_user = \"x\"\n", loadErr: `plugin "{s}"`},
		{name: "config-unknown-key", config: "[plugin.config]\ntokenz = [\"x\"]\n", loadErr: `plugin "{s}"`},
	}
}

// unsigned is a JWT with an empty signature.
func unsigned(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "."
}

func headersScenarios() []*scenario {
	return []*scenario{
		{name: "request-rules", config: `[plugin.config.request]
remove = ["X-Internal"]
set = { "X-Env" = "prod" }
add = { "X-Tag" = ["a", "b"] }
`, steps: []step{
			request{path: "x", header: hdr("X-Internal", "secret", "X-Env", "dev", "X-Tag", "pre"),
				want: reply{up: &upstream{header: map[string]string{"X-Internal": absent, "X-Env": "prod", "X-Tag": "pre|a|b"}},
					header: map[string]string{"Server": "backend/1.0"}}},
		}},
		{name: "response-rules", config: `[plugin.config.response]
remove = ["Server", "X-Backend-Remove"]
set = { "X-Powered-By" = "sluice", "Cache-Control" = ["no-store", "private"] }
add = { "X-Backend-Add" = "2" }
`, steps: []step{
			request{path: "x", header: hdr("X-Internal", "kept"), want: reply{
				header: map[string]string{"Server": absent, "X-Backend-Remove": absent, "X-Powered-By": "sluice",
					"Cache-Control": "no-store|private", "X-Backend-Add": "1|2", "X-Backend": "yes"},
				up: &upstream{header: map[string]string{"X-Internal": "kept"}}}},
		}},
		{name: "names-any-case", config: `[plugin.config.request]
remove = ["x-internal"]
set = { "x-env" = "prod" }
[plugin.config.response]
set = { "x-powered-by" = "sluice" }
remove = ["SERVER"]
`, steps: []step{
			request{path: "x", header: hdr("X-Internal", "secret", "X-Env", "dev"),
				want: reply{header: map[string]string{"X-Powered-By": "sluice", "Server": absent},
					up: &upstream{header: map[string]string{"X-Internal": absent, "X-Env": "prod"}}}},
		}},
		{name: "remove-then-set-then-add", config: `[plugin.config.request]
add = { "X-A" = "added" }
set = { "X-A" = "set", "X-B" = ["b1", "b2"] }
remove = ["X-A", "X-B"]
`, steps: []step{
			request{path: "x", header: hdr("X-A", "client", "X-B", "client"),
				want: reply{up: &upstream{header: map[string]string{"X-A": "set|added", "X-B": "b1|b2"}}}},
		}},
		{name: "values-with-escapes", config: `[plugin.config.request]
set = { "X-Note" = "<a&b> \"quoted\" back\\slash tab\there \u00e9 \U0001F600" }
`, steps: []step{
			request{path: "x", want: reply{up: &upstream{header: map[string]string{"X-Note": "<a&b> \"quoted\" back\\slash tab\there é 😀"}}}},
		}},
		{name: "empty-config", steps: []step{
			request{path: "x", header: hdr("X-Internal", "kept"),
				want: reply{header: map[string]string{"Server": "backend/1.0"},
					up: &upstream{header: map[string]string{"X-Internal": "kept"}}}},
		}},
		{name: "websocket-handshake", config: `[plugin.config.request]
set = { "X-Env" = "prod" }
remove = ["X-Internal"]
`, steps: []step{
			ws{path: "ws", header: hdr("X-Internal", "secret"),
				up:   &upstream{header: map[string]string{"X-Env": "prod", "X-Internal": absent}},
				msgs: []msg{sendText("hi"), recvText("hi")}},
		}},
		{name: "config-bad-name", config: "[plugin.config.request]\nset = { \"Bad Name\" = \"x\" }\n", loadErr: `plugin "{s}"`},
		{name: "config-bad-value", config: "[plugin.config.response]\nadd = { \"X-A\" = \"a\\r\\nInjected: 1\" }\n", loadErr: `plugin "{s}"`},
		{name: "config-unknown-key", config: "[plugin.config.request]\nsett = { \"X-A\" = \"1\" }\n", loadErr: `plugin "{s}"`},
		{name: "config-not-a-table", config: "[plugin.config]\nrequest = [\"X-A\"]\n", loadErr: `plugin "{s}"`},
	}
}

func redactScenarios() []*scenario {
	const cfg = `[plugin.config]
fields = ["password", "ssn"]
words = ["secret", "top secret"]
`
	// A masked message is masked again on its way back from the echo, which
	// changes nothing: the client sees the message as the upstream got it.
	echo := func(in, want string) []msg { return []msg{sendText(in), recvText(want)} }
	var nested, arrays, words, json []msg
	nested = append(nested, echo(`{"user":"ann","profile":{"password":"pw","ssn":"123"}}`, `{"user":"ann","profile":{"password":"***","ssn":"***"}}`)...)
	nested = append(nested, echo(`{"a":{"b":{"c":{"PassWord":{"x":[1,2]}}}}}`, `{"a":{"b":{"c":{"PassWord":"***"}}}}`)...)
	nested = append(nested, echo(`{ "password" : 12.5e3 , "keep":"me" }`, `{ "password" : "***" , "keep":"me" }`)...)
	arrays = append(arrays, echo(`{"items":[{"password":"a"},{"password":"b"}],"ssn":[1,2]}`, `{"items":[{"password":"***"},{"password":"***"}],"ssn":"***"}`)...)
	arrays = append(arrays, echo(`[{"ssn":null},"secret",["a secret"]]`, `[{"ssn":"***"},"***",["a ***"]]`)...)
	words = append(words, echo("my secret plan", "my *** plan")...)
	words = append(words, echo("Secret! secretary, SECRET.", "***! secretary, ***.")...)
	words = append(words, echo("this is top secret.", "this is ***.")...)
	words = append(words, echo("{not json: secret", "{not json: ***")...)
	words = append(words, echo("nothing to see", "nothing to see")...)
	json = append(json, echo(`{"text":"a secret","secret":"key stays"}`, `{"text":"a ***","secret":"key stays"}`)...)
	json = append(json, echo(`{"user":"ann"}`, `{"user":"ann"}`)...)
	json = append(json, echo(`{"pass\u0077ord":"x","note":"caf\u00e9 secret"}`, `{"pass\u0077ord":"x","note":"caf\u00e9 ***"}`)...)
	words = append(words, echo("secreté ésecret é secret é", "secreté ésecret é *** é")...)
	words = append(words, echo("secret_x x-secret 1secret", "secret_x x-*** 1secret")...)
	return []*scenario{
		{name: "nested-fields", config: cfg, steps: []step{ws{path: "ws", msgs: nested}}},
		{name: "arrays", config: cfg, steps: []step{ws{path: "ws", msgs: arrays}}},
		{name: "words-in-text", config: cfg, steps: []step{ws{path: "ws", msgs: words}}},
		{name: "words-in-json-strings", config: cfg, steps: []step{ws{path: "ws", msgs: json}}},
		{name: "binary-untouched", config: cfg, steps: []step{ws{path: "ws", msgs: []msg{
			sendBinary(`{"password":"pw"}`), recvBinary(`{"password":"pw"}`),
			sendBinary("my secret"), recvBinary("my secret"),
		}}}},
		{name: "custom-mask", config: `[plugin.config]
fields = ["token"]
words = ["pw"]
mask = "[\"hidden\"]"
`, steps: []step{ws{path: "ws", msgs: []msg{
			sendText(`{"token":"abc","note":"my pw"}`), recvText(`{"token":"[\"hidden\"]","note":"my [\"hidden\"]"}`),
			sendText("my pw"), recvText(`my ["hidden"]`),
		}}}},
		{name: "http-untouched", config: cfg, steps: []step{
			request{path: "x", header: hdr("X-Note", "secret"), want: reply{up: &upstream{header: map[string]string{"X-Note": "secret"}}}},
		}},
		{name: "config-unknown-key", config: "[plugin.config]\nfield = [\"x\"]\n", loadErr: `plugin "{s}"`},
	}
}

func guardScenarios() []*scenario {
	burst := []msg{}
	for i := 0; i < 15; i++ {
		burst = append(burst, sendText(fmt.Sprint("m", i)))
	}
	for i := 0; i < 5; i++ {
		burst = append(burst, recvText(fmt.Sprint("m", i)))
	}
	// The bucket holds one second's worth (5) and refills one every 200 ms:
	// the rest of the burst is dropped, and a message 300 ms later passes.
	burst = append(burst, msg{send: true, payload: "after", wait: 300 * time.Millisecond}, recvText("after"))
	return []*scenario{
		{name: "size", config: "[plugin.config]\nmax_size = 16\n", steps: []step{ws{path: "ws", msgs: []msg{
			sendText("this one is far too long"), sendText("exactly sixteen!"), recvText("exactly sixteen!"),
			sendBinary(strings.Repeat("b", 17)), sendBinary("short"), recvBinary("short"),
		}}}},
		{name: "prefix", config: "[plugin.config]\ndeny_prefixes = [\"DROP\", \"/admin\"]\n", steps: []step{ws{path: "ws", msgs: []msg{
			sendText("DROP table"), sendText("/admin/x"), sendBinary("DROP"), sendText("drop is fine"), recvText("drop is fine"),
			sendText("a DROP inside"), recvText("a DROP inside"),
		}}}},
		{name: "violations-close-1008", config: "[plugin.config]\nmax_size = 16\ndeny_prefixes = [\"DROP\"]\nmax_violations = 3\n", steps: []step{ws{path: "ws", msgs: []msg{
			sendText("this one is far too long"), sendText("ok 1"), recvText("ok 1"),
			sendText("DROP table"), sendText("ok 2"), recvText("ok 2"),
			sendText("DROP again"), closeWith(1008, "too many policy violations"),
		}}}},
		{name: "rate", config: "[plugin.config]\nrate = 5\n", steps: []step{ws{path: "ws", msgs: burst}}},
		{name: "direction-upstream", config: "[plugin.config]\ndeny_prefixes = [\"DROP\"]\ndirection = \"upstream_to_client\"\n", steps: []step{ws{path: "ws", msgs: []msg{
			// The upstream gets it; its echo is dropped on the way back.
			sendText("DROP x"), sendText("ok"), recvText("ok"),
		}}}},
		{name: "config-negative", config: "[plugin.config]\nrate = -1\n", loadErr: `plugin "{s}"`},
		{name: "config-bad-direction", config: "[plugin.config]\ndirection = \"sideways\"\n", loadErr: `plugin "{s}"`},
	}
}

func noopScenarios() []*scenario {
	big := strings.Repeat("x", 100_000)
	return []*scenario{
		{name: "passthrough", steps: []step{
			ws{path: "ws", msgs: []msg{sendText("a"), recvText("a"), sendText(big), recvText(big), sendText(""), recvText(""),
				sendBinary("\x00\x01"), recvBinary("\x00\x01")}},
			request{path: "x", want: reply{header: map[string]string{"Server": "backend/1.0"}}},
		}},
	}
}
