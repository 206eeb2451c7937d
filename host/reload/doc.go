// Package reload keeps a running host.Proxy in step with its files: it
// reads proxy.toml and every file it names (modules, certificate, key),
// builds the filter chains with a Builder, and swaps the new generation in
// with Proxy.Apply, on demand (SIGHUP, POST /reload) or when a file
// changes (Watch). It uses only the proxy's exported API: the core serves
// generations, this package decides when there is a new one.
package reload
