package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluiceproxy/sluice/plugins/filtertool"
)

const filterUsage = `usage: sluice filter inspect [-json] [-config FILE] [-proxy proxy.toml -plugin NAME] MODULE.wasm`

// filterCmd parses the flags of `sluice filter SUBCOMMAND` and calls the
// filtertool package, which does the work.
func filterCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, filterUsage)
		return 2
	}
	ctx := context.Background()
	switch args[0] {
	case "inspect":
		fs := flag.NewFlagSet("sluice filter inspect", flag.ContinueOnError)
		var o filtertool.InspectOptions
		pluginFlags(fs, &o.Plugin)
		fs.BoolVar(&o.JSON, "json", false, "print JSON")
		if !parseModule(fs, args[1:], &o.Plugin, stderr) {
			return 2
		}
		return filtertool.Inspect(ctx, o, stdout, stderr)
	}
	fmt.Fprintln(stderr, filterUsage)
	return 2
}

// pluginFlags declares the flags that choose a module's settings.
func pluginFlags(fs *flag.FlagSet, p *filtertool.Plugin) {
	fs.StringVar(&p.ConfigFile, "config", "", "the plugin's config: a TOML or JSON file")
	fs.StringVar(&p.Proxy, "proxy", "", "take the plugin's settings from this proxy.toml (with -plugin)")
	fs.StringVar(&p.Name, "plugin", "", "the [[plugin]] of -proxy to take settings from")
}

// parseModule parses args and takes the module path from the one positional
// argument (optional with -proxy and -plugin).
func parseModule(fs *flag.FlagSet, args []string, p *filtertool.Plugin, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	switch {
	case fs.NArg() == 1:
		p.Module = fs.Arg(0)
	case fs.NArg() == 0 && p.Proxy != "":
	default:
		fmt.Fprintln(stderr, filterUsage)
		return false
	}
	return true
}
