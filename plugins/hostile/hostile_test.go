package hostile

import (
	"testing"
)

// The classes of hostile guest. Each entry names its module; the module's
// comment says what it does and what the proxy answers.
var cases = []attackCase{
	{
		name:   "memory-growth",
		module: "memory_growth",
		// Growing and filling 16MiB takes longer than the default 10ms on
		// a loaded machine; the case is about memory, not the deadline.
		plugin: `timeout = "2s"`,
		attack: func(e *env) error { return wantStatus(e, "/hostile/grow", 503) },
		log:    "plugin=hostile hook=sluice_on_request_headers",
	},
}

func TestHostileGuests(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}
}
