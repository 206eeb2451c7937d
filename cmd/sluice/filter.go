package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluiceproxy/sluice/plugins/filtertool"
)

const filterUsage = `usage: sluice filter inspect [-json] [-config FILE] [-proxy proxy.toml -plugin NAME] MODULE.wasm
       sluice filter run [-json] [-config FILE] [-proxy proxy.toml -plugin NAME]
                         [-request FILE | -method M -url /path?q -H 'Name: v' -body S]
                         [-response FILE | -status N -rh 'Name: v' -rbody S] [-messages FILE.jsonl] MODULE.wasm
       sluice filter test [-v] [-module MODULE.wasm ...] CASES.toml ...
       sluice filter new -lang tinygo|go|rust [-dir DIR] NAME`

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
	case "run":
		fs := flag.NewFlagSet("sluice filter run", flag.ContinueOnError)
		var o filtertool.RunOptions
		pluginFlags(fs, &o.Plugin)
		fs.BoolVar(&o.JSON, "json", false, "print JSON")
		fs.StringVar(&o.RequestFile, "request", "", "the request, in HTTP/1.1 message syntax")
		fs.StringVar(&o.Method, "method", "", "request method (default GET)")
		fs.StringVar(&o.URL, "url", "", "request path and query, or an absolute URL (default /)")
		fs.Var((*lines)(&o.Headers), "H", "request header \"Name: value\" (repeatable)")
		fs.StringVar(&o.Body, "body", "", "request body")
		fs.StringVar(&o.ResponseFile, "response", "", "the upstream's response, in HTTP/1.1 message syntax")
		fs.IntVar(&o.Status, "status", 0, "the upstream's response status")
		fs.Var((*lines)(&o.ResponseHeaders), "rh", "response header \"Name: value\" (repeatable)")
		fs.StringVar(&o.ResponseBody, "rbody", "", "response body")
		fs.StringVar(&o.MessagesFile, "messages", "", "WebSocket messages, one JSON object a line: the request becomes an upgrade")
		if !parseModule(fs, args[1:], &o.Plugin, stderr) {
			return 2
		}
		return filtertool.Run(ctx, o, stdout, stderr)
	case "test":
		fs := flag.NewFlagSet("sluice filter test", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var o filtertool.TestOptions
		fs.Var((*lines)(&o.Modules), "module", "run the cases against this module instead of the file's (repeatable)")
		fs.BoolVar(&o.Verbose, "v", false, "print every case's report")
		if !parseAll(fs, args[1:], &o.Files) || len(o.Files) == 0 {
			fmt.Fprintln(stderr, filterUsage)
			return 2
		}
		return filtertool.Test(ctx, o, stdout, stderr)
	case "new":
		fs := flag.NewFlagSet("sluice filter new", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var o filtertool.NewOptions
		var names []string
		fs.StringVar(&o.Lang, "lang", "tinygo", "the filter's language: tinygo, go or rust")
		fs.StringVar(&o.Dir, "dir", "", "the folder to create (default NAME)")
		if !parseAll(fs, args[1:], &names) || len(names) != 1 {
			fmt.Fprintln(stderr, filterUsage)
			return 2
		}
		o.Name = names[0]
		return filtertool.New(o, stdout, stderr)
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

// parseModule parses args, flags before or after the module, and takes
// the module path from the one positional argument (optional with -proxy
// and -plugin).
func parseModule(fs *flag.FlagSet, args []string, p *filtertool.Plugin, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(pos) == 1:
		p.Module = pos[0]
	case len(pos) == 0 && p.Proxy != "":
	default:
		fmt.Fprintln(stderr, filterUsage)
		return false
	}
	return true
}

// parseAll parses args, flags anywhere, and collects the positional ones.
func parseAll(fs *flag.FlagSet, args []string, pos *[]string) bool {
	for {
		if err := fs.Parse(args); err != nil {
			return false
		}
		if fs.NArg() == 0 {
			return true
		}
		*pos = append(*pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// lines is a repeatable string flag.
type lines []string

func (l *lines) String() string     { return fmt.Sprint(*l) }
func (l *lines) Set(v string) error { *l = append(*l, v); return nil }
