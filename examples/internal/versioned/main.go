// Command versioned is a test filter whose only trait is the version built
// into it: it answers every request locally with that version in an
// X-Version header. Reload tests build many distinct modules from it:
//
//	tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug \
//	    -ldflags "-X main.version=7" -o versioned.wasm .
package main

import sluice "github.com/sluiceproxy/sluice/sdk/go"

// version is set at build time with -ldflags "-X main.version=..." (TinyGo
// sets only variables without an initial value).
var version string

func init() {
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action {
		return sluice.Respond(200, []string{"X-Version", version}, nil)
	})
}

func main() {}
