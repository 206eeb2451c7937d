package hostile

import (
	"fmt"
	"strings"
	"testing"
)

// The classes of hostile guest. Each entry names its module; the module's
// comment says what it does and what the proxy answers.
var cases = []attackCase{
	{
		name:   "memory-growth",
		module: "memory_growth",
		// Growing and filling 16MiB takes longer than the default 10ms on
		// a loaded machine; the case is about memory, not the deadline,
		// and two attackers keep its CPU use to what the machine has.
		plugin:  `timeout = "100ms"`,
		workers: 2,
		attack:  func(e *env) error { return wantStatus(e, "/hostile/grow", 503) },
		// The log samples one failure a second per cause: a call that
		// waited out its deadline behind the others may be the one logged.
		log: `plugin=hostile request_id=\S+ route=\S+ hook=request_headers cause=(trap|timeout|no_instance) error=`,
	},
	{
		name:   "stack-recursion",
		module: "recurse",
		// Recursing down to 1MiB of stack takes a few milliseconds on a
		// loaded machine; the case is about the stack, not the deadline.
		plugin: `timeout = "250ms"`,
		attack: func(e *env) error { return wantStatus(e, "/hostile/recurse", 503) },
		log:    `stack overflow: the call stack passed the plugin's stack_limit of 1MiB`,
	},
	{
		name:   "state-quota-request",
		module: "state_flood",
		attack: func(e *env) error { return wantStatus(e, "/hostile/state", 503) },
		log:    "over the plugin's state_max_",
	},
	{
		name:   "state-quota-connection",
		module: "state_flood",
		// The module's request hook runs for the upgrade too; when the
		// attack keeps every instance busy or discarded, the upgrade itself
		// may fail under the policy (503) before a message is sent.
		attack: func(e *env) error {
			err := wantClose(e, "/hostile/w", []byte("hello"), 1011)
			if err != nil && strings.HasSuffix(err.Error(), "(status 503)") {
				return nil
			}
			return err
		},
		log: "over the plugin's state_max_",
	},
	{
		name:   "shared-quota",
		module: "shared_flood",
		attack: func(e *env) error { return wantStatus(e, "/hostile/shared", 503) },
		log:    "over the plugin's shared_max_",
	},
	{
		name:   "log-flood",
		module: "log_flood",
		// 1,000 lines take a few milliseconds; the case is about the log,
		// not the deadline.
		plugin: `timeout = "250ms"`,
		attack: func(e *env) error { return wantStatus(e, "/hostile/log", 200) },
		log:    "guest log lines dropped over log_rate",
		check: func(t *testing.T, r *result) {
			// 100 lines a second with a burst of 100, over about 2.5s of
			// attack, plus the proxy's own records (one per dropped report,
			// the failure log, start and stop).
			if r.log.lines > 2000 {
				t.Errorf("the proxy logged %d lines (%d bytes) for a plugin limited to 100 a second", r.log.lines, r.log.bytes)
			}
		},
	},
	{
		name:   "header-flood",
		module: "header_flood",
		attack: attackEach("/hostile/flood-a", "/hostile/flood-c")(func(e *env, path string) error {
			return wantStatus(e, path, 503)
		}),
		log: `over the plugin's server.max_header_bytes quota|contains a control byte`,
	},
	{
		name:   "local-response",
		module: "local_response",
		attack: attackEach("/hostile/b", "/hostile/h", "/hostile/n", "/hostile/s", "/hostile/t")(func(e *env, path string) error {
			return wantStatus(e, path, 503)
		}),
		log: `over the plugin's max_local_response quota|over the plugin's server.max_header_bytes quota|a 204 response cannot have a body|not a status a filter may set|204 cannot carry the response's body`,
	},
	{
		name:   "message-size",
		module: "message_size",
		// Filling and copying megabytes takes more than the default 10ms
		// on a busy machine under the race detector; the quotas, not the
		// deadline, must be what stops these calls.
		plugin: `timeout = "1s"`,
		attack: attackEach("a", "b", "c", "d")(func(e *env, msg string) error {
			return wantClose(e, "/hostile/ws", []byte(msg), 1011)
		}),
		log: `over the plugin's (server.websocket.max_message_size|max_injected_bytes|max_injected_messages) quota`,
	},
	{
		name:   "message-utf8",
		module: "message_utf8",
		attack: attackEach("a", "b")(func(e *env, msg string) error {
			return wantClose(e, "/hostile/ws", []byte(msg), 1011)
		}),
		log: "a text message must be UTF-8",
	},
	{
		// Without max_body_buffer the module cannot make the proxy hold a
		// body: a 20MiB download streams through.
		name:   "body-buffer-not-allowed",
		module: "body_buffer",
		attack: func(e *env) error { return wantBody(e, "/hostile/dl?bytes=20971520", 200, 20<<20) },
		log:    "bodies are not buffered for it",
	},
	{
		// With max_body_buffer = 1MiB, a larger download gets 502 and a
		// 2MiB set_body is misuse.
		name:   "body-buffer-capped",
		module: "body_buffer",
		plugin: `max_body_buffer = "1MiB"`,
		attack: attackEach("/hostile/dl?bytes=20971520", "/hostile/small?bytes=1000")(func(e *env, path string) error {
			if path == "/hostile/small?bytes=1000" {
				return wantStatus(e, path, 503)
			}
			return wantStatus(e, path, 502)
		}),
		log: `set_body: over the plugin's max_body_buffer quota`,
	},
	{
		// Every hook loops: each call ends at the 10ms deadline, then the
		// plugin trips and answers 503 without running.
		name:   "loop-in-every-hook",
		module: "loop_hooks",
		attack: func(e *env) error { return wantStatus(e, "/hostile/loop", 503) },
		log:    `plugin tripped: its on_error policy applies without running it`,
	},
	{
		name:   "loop-in-message-hook",
		module: "loop_message",
		attack: func(e *env) error { return wantClose(e, "/hostile/ws", []byte("spin"), 1011) },
		log:    `exceeded the hook deadline of 10ms|plugin tripped`,
	},
	{
		name:   "recursion-without-loops",
		module: "recurse_noloop",
		attack: func(e *env) error { return wantStatus(e, "/hostile/fib", 503) },
		log:    `exceeded the hook deadline of 10ms|plugin tripped`,
	},
	{
		// _initialize takes 300ms of CPU and every hook traps: the pool
		// re-creates instances at a fifth of its time at most and the
		// breaker trips after five traps in a row, so most calls fail
		// without an instance to run in.
		name:   "slow-init-trapping-hooks",
		module: "slow_init",
		attack: func(e *env) error { return wantStatus(e, "/hostile/slow", 503) },
		log:    `wasm error: unreachable`,
	},
}

// attackEach makes an attack that tries each variant in turn.
func attackEach(vs ...string) func(func(e *env, v string) error) func(e *env) error {
	next := variants(vs...)
	return func(f func(e *env, v string) error) func(e *env) error {
		return func(e *env) error {
			v := next()
			if err := f(e, v); err != nil {
				return fmt.Errorf("variant %q: %w", v, err)
			}
			return nil
		}
	}
}

func TestHostileGuests(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}
}
