package config

import "testing"

// The key scanner names keys the way errors do, with the index of every
// array of tables, and finds the line of each.
func TestScanKeys(t *testing.T) {
	doc := `# comment
[server]
listen = "127.0.0.1:8080"
[server.websocket]
max_message_size = "1MiB"

[[upstream]]
name = "a"
targets = [
  "http://127.0.0.1:1",
  "http://127.0.0.1:2",
]
health.path = "/healthz"

[[upstream]]
name = "b"
description = """
name = "not a key"
[[upstream]]
"""
"quoted.key" = 1
inline = { x = 1, y = [2, 3] }

[[route]]
upstream = "a"
[[route.match]]
header = "X"
[[route]]
[[route.match]]
header = "Y"
`
	ix := scanKeys(doc)
	for _, tc := range []struct {
		path string
		line int
	}{
		{"server", 2},
		{"server.listen", 3},
		{"server.websocket.max_message_size", 5},
		{"upstream[0]", 7},
		{"upstream[0].name", 8},
		{"upstream[0].targets", 9},
		{"upstream[0].health", 13},
		{"upstream[0].health.path", 13},
		{"upstream[1].name", 16},
		{"upstream[1].description", 17},
		{`upstream[1]."quoted.key"`, 21},
		{"upstream[1].inline", 22},
		{"upstream[1].inline.x", 22}, // inside an inline table: the key's line
		{"route[0].upstream", 25},
		{"route[0].match[0].header", 27},
		{"route[1]", 28},
		{"route[1].match[0].header", 30}, // nested arrays restart per element
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := ix.line(tc.path); got != tc.line {
				t.Fatalf("line(%q) = %d, want %d", tc.path, got, tc.line)
			}
		})
	}
	for _, path := range []string{"upstream[2]", "upstream[1].name.extra.x", "route[2]"} {
		t.Run("absent/"+path, func(t *testing.T) {
			if ix.defined(path) {
				t.Fatalf("defined(%q) = true", path)
			}
		})
	}
	if got := ix.line("nowhere"); got != 0 {
		t.Fatalf("line of an unknown key = %d, want 0", got)
	}
}
