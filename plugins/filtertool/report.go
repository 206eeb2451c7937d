package filtertool

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PrintResult writes a Result for a person: one block per hook call.
func PrintResult(w io.Writer, res *Result) {
	fmt.Fprintf(w, "module  %s\nsha256  %s\nhooks   %s\n", res.Module, res.SHA256, orNone(strings.Join(res.Hooks, ", ")))
	printLogs(w, "configure", res.Configure)
	if len(res.Calls) == 0 {
		fmt.Fprintln(w, "\nno hook ran: the filter handles none of the hooks this sample reaches")
	}
	for _, c := range res.Calls {
		printCall(w, c)
	}
}

func printCall(w io.Writer, c *Call) {
	title := c.Hook
	if c.Message != nil {
		kind := "text"
		if c.Binary {
			kind = "binary"
		}
		title = fmt.Sprintf("message #%d (%s, %s)", *c.Message+1, c.Direction, kind)
	}
	action := c.Action
	if action == "" {
		action = "ran"
	}
	if c.Failure != nil {
		action = "FAILED: " + c.Failure.Kind
	}
	fmt.Fprintf(w, "\n%-40s %-16s %s\n", title, orNone(action), duration(c.Duration))
	if f := c.Failure; f != nil {
		fmt.Fprintf(w, "  cause     %s\n", strings.ReplaceAll(strings.TrimSpace(f.Cause), "\n", "\n            "))
	}
	for _, ch := range c.Changes {
		fmt.Fprintf(w, "  changed   %s: %s -> %s\n", ch.What, quoted(ch.Before), quoted(ch.After))
	}
	if r := c.Reply; r != nil {
		fmt.Fprintf(w, "  response  %d\n", r.Status)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range r.Header[k] {
				fmt.Fprintf(w, "            %s: %s\n", k, v)
			}
		}
		if r.Body != "" {
			fmt.Fprintf(w, "            body %s\n", strconv.Quote(r.Body))
		}
	}
	if c.Payload != nil {
		fmt.Fprintf(w, "  payload   %s\n", strconv.Quote(*c.Payload))
	}
	for _, in := range c.Inject {
		fmt.Fprintf(w, "  inject    %s %s\n", in.Direction, strconv.Quote(in.Payload))
	}
	if c.Action == "close" {
		fmt.Fprintf(w, "  close     %d %s\n", c.CloseCode, strconv.Quote(c.CloseReason))
	}
	for _, ch := range c.State {
		fmt.Fprintf(w, "  state     %s: %s -> %s\n", strings.TrimPrefix(ch.What, "state "), quoted(ch.Before), quoted(ch.After))
	}
	for _, op := range c.Shared {
		fmt.Fprintf(w, "  shared    %s\n", sharedString(op))
	}
	printLogs(w, "log", c.Logs)
	if c.LogsDropped > 0 {
		fmt.Fprintf(w, "  log       ... and %d more lines, not kept\n", c.LogsDropped)
	}
}

func printLogs(w io.Writer, label string, lines []LogLine) {
	for _, l := range lines {
		src := l.Level
		if l.Stream != "" {
			src = l.Stream
		}
		fmt.Fprintf(w, "  %-9s %-6s %s\n", label, src, l.Message)
	}
}

func sharedString(op SharedOp) string {
	var s string
	switch op.Op {
	case "add":
		s = fmt.Sprintf("add %s %+d = %s", op.Key, op.Delta, op.Value)
	case "set":
		s = fmt.Sprintf("set %s = %s", op.Key, strconv.Quote(op.Value))
	default:
		s = op.Op + " " + op.Key
	}
	if op.TTL != "" {
		s += " (ttl " + op.TTL + ")"
	}
	return s
}

func quoted(p *string) string {
	if p == nil {
		return "(absent)"
	}
	return strconv.Quote(*p)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// duration prints a call's time with a precision that suits it.
func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}
