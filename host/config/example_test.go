package config_test

import (
	"fmt"

	"github.com/sluiceproxy/sluice/host/config"
)

// Parse reports every mistake it finds, each with the file, the line and
// the key.
func ExampleParse() {
	_, err := config.Parse([]byte(`
[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9001"]
balance = "random"

[[route]]
upstream = "api"
`), "proxy.toml")
	fmt.Println(err)
	// Output:
	// config: proxy.toml:5: upstream[0].balance: unknown balance "random": want "round_robin" or "least_conn"
	// config: proxy.toml:8: route[0].upstream: no [[upstream]] is named "api"
}
