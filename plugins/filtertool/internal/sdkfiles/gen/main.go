// Command gen writes the archive of the SDK sources that package sdkfiles
// embeds: gen SDKDIR OUT. It takes what a project needs to build and test
// against the SDK (sources, manifests, READMEs), not the SDK's own tests
// or build output.
package main

import (
	"fmt"
	"os"

	"github.com/sluiceproxy/sluice/plugins/filtertool/internal/sdkfiles"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen SDKDIR OUT")
		os.Exit(2)
	}
	files, err := sdkfiles.Collect(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], []byte(sdkfiles.Encode(files)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
