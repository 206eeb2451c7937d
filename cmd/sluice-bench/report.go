package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// report renders BENCHMARKS.md and the charts from a run's results.
type report struct {
	plan     plan
	res      *results
	skipped  map[string]string
	micro    microResult
	profiles []profileResult
	machine  machine
	command  string
	elapsed  time.Duration
	charts   []string // chart files written, relative to the output dir
	idleNote string
	loads    []float64
	// analysis is docs/bench/analysis.md: the hand-written account of what
	// was profiled and changed, and why a goal is still missed. Numbers
	// come and go with each run; the reasons behind them are kept there.
	analysis string
}

// column is one metric shown in a table.
type column struct {
	metric string
	label  string
	scale  float64 // multiply the raw value by this
	digits int
	ratio  bool // add a "× nginx" column
}

func fmtNum(v float64, digits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := fmt.Sprintf("%.*f", digits, v)
	// Group thousands for readability.
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

// targetsOf lists the targets measured in a scenario, in recording order.
func (r *report) targetsOf(scn string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range r.res.Cells {
		if c.Scenario == scn && !seen[c.Target] {
			seen[c.Target] = true
			out = append(out, c.Target)
		}
	}
	return out
}

func (r *report) variantsOf(scn string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range r.res.Cells {
		if c.Scenario == scn && !seen[c.Variant] {
			seen[c.Variant] = true
			out = append(out, c.Variant)
		}
	}
	return out
}

// table writes one markdown table: a row per target, for one variant.
func (r *report) table(b *strings.Builder, scn, variant string, cols []column) {
	b.WriteString("| target |")
	sep := "|---|"
	for _, c := range cols {
		fmt.Fprintf(b, " %s median (min–max) |", c.label)
		sep += "---:|"
		if c.ratio {
			b.WriteString(" × nginx |")
			sep += "---:|"
		}
	}
	b.WriteString("\n" + sep + "\n")
	for _, t := range r.targetsOf(scn) {
		fmt.Fprintf(b, "| %s |", t)
		for _, c := range cols {
			s, ok := r.res.get(scn, variant, t, c.metric)
			if !ok {
				b.WriteString(" – |")
				if c.ratio {
					b.WriteString(" – |")
				}
				continue
			}
			if s.N > 1 {
				fmt.Fprintf(b, " %s (%s–%s) |", fmtNum(s.Median*c.scale, c.digits), fmtNum(s.Min*c.scale, c.digits), fmtNum(s.Max*c.scale, c.digits))
			} else {
				fmt.Fprintf(b, " %s |", fmtNum(s.Median*c.scale, c.digits))
			}
			if c.ratio {
				n, ok := r.res.get(scn, variant, "nginx", c.metric)
				if ok && n.Median != 0 {
					fmt.Fprintf(b, " %.2f× |", s.Median/n.Median)
				} else {
					b.WriteString(" – |")
				}
			}
		}
		b.WriteString("\n")
	}
	for _, t := range r.targetsOf(scn) {
		if c := r.res.cell(scn, variant, t); c.Note != "" {
			fmt.Fprintf(b, "\n%s (%s): %s\n", t, variant, firstLine(c.Note))
		}
	}
	b.WriteString("\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// goal is one target from the project's performance goals.
type goal struct {
	what     string
	measured string
	met      *bool // nil: not measured
}

func (r *report) goals() []goal {
	var gs []goal
	med := func(scn, variant, tgt, metric string) (float64, bool) {
		s, ok := r.res.get(scn, variant, tgt, metric)
		return s.Median, ok
	}
	ratioGoal := func(what, scn, variant, a, base, metric string, min float64) {
		g := goal{what: what}
		x, ok1 := med(scn, variant, a, metric)
		y, ok2 := med(scn, variant, base, metric)
		if ok1 && ok2 && y > 0 {
			ratio := x / y
			met := ratio >= min
			g.measured, g.met = fmt.Sprintf("%.2f×", ratio), &met
		} else {
			g.measured = "not measured"
		}
		gs = append(gs, g)
	}
	for _, v := range r.variantsOf("http") {
		ratioGoal(fmt.Sprintf("HTTP small, %s: sluice ≥ 1.0× nginx req/s", v), "http", v, "sluice", "nginx", "rps", 1.0)
		g := goal{what: fmt.Sprintf("HTTP small, %s: sluice p99 ≤ nginx p99", v)}
		x, ok1 := med("http", v, "sluice", "p99")
		y, ok2 := med("http", v, "nginx", "p99")
		if ok1 && ok2 {
			met := x <= y
			g.measured, g.met = fmt.Sprintf("%s µs vs %s µs", fmtNum(x*1e6, 0), fmtNum(y*1e6, 0)), &met
		} else {
			g.measured = "not measured"
		}
		gs = append(gs, g)
		ratioGoal(fmt.Sprintf("HTTP small, %s: sluice+headers ≥ 0.9× sluice req/s", v), "http", v, "sluice+headers", "sluice", "rps", 0.9)
	}
	for _, v := range r.variantsOf("bulk") {
		ratioGoal(fmt.Sprintf("1 MiB %s: sluice ≥ 0.9× nginx MB/s", v), "bulk", v, "sluice", "nginx", "mbps", 0.9)
	}
	for _, v := range r.variantsOf("ws") {
		ratioGoal(fmt.Sprintf("WebSocket %s: sluice (no hooks) ≥ 1.0× nginx msg/s", v), "ws", v, "sluice", "nginx", "msgs", 1.0)
		ratioGoal(fmt.Sprintf("WebSocket %s: sluice+noop ≥ 0.8× nginx msg/s", v), "ws", v, "sluice+noop", "nginx", "msgs", 0.8)
		ratioGoal(fmt.Sprintf("WebSocket %s: sluice+redact ≥ 0.8× nginx msg/s", v), "ws", v, "sluice+redact", "nginx", "msgs", 0.8)
		g := goal{what: fmt.Sprintf("WebSocket %s: RTT p50 added by sluice ≤ 100 µs", v)}
		x, ok1 := med("ws", v, "sluice", "rtt_p50")
		y, ok2 := med("ws", v, "direct", "rtt_p50")
		if ok1 && ok2 {
			added := (x - y) * 1e6
			met := added <= 100
			g.measured, g.met = fmt.Sprintf("%s µs", fmtNum(added, 0)), &met
		} else {
			g.measured = "not measured"
		}
		gs = append(gs, g)
	}
	for _, v := range r.variantsOf("idle") {
		for _, c := range []struct {
			tgt string
			max float64
		}{{"sluice", 10}, {"sluice+noop", 20}} {
			g := goal{what: fmt.Sprintf("idle WebSockets (%s): %s ≤ %.0f KiB/conn", v, c.tgt, c.max)}
			if x, ok := med("idle", v, c.tgt, "kib_per_conn"); ok {
				met := x <= c.max
				g.measured, g.met = fmt.Sprintf("%.1f KiB", x), &met
			} else {
				g.measured = "not measured"
			}
			gs = append(gs, g)
		}
	}
	return gs
}

// chart writes a clustered bar chart with min–max error bars: one cluster
// per target, one bar per variant.
func (r *report) chart(dir, name, title, ylabel, scn, metric string, scale float64, only []string) error {
	targets := r.targetsOf(scn)
	if only != nil {
		keep := map[string]bool{}
		for _, t := range only {
			keep[t] = true
		}
		var ts []string
		for _, t := range targets {
			if keep[t] {
				ts = append(ts, t)
			}
		}
		targets = ts
	}
	variants := r.variantsOf(scn)
	var dat strings.Builder
	rows := 0
	for _, t := range targets {
		fmt.Fprintf(&dat, "%q", t)
		any := false
		for _, v := range variants {
			s, ok := r.res.get(scn, v, t, metric)
			if ok {
				any = true
			}
			fmt.Fprintf(&dat, " %g %g %g", s.Median*scale, s.Min*scale, s.Max*scale)
		}
		dat.WriteString("\n")
		if any {
			rows++
		}
	}
	if rows == 0 {
		return nil
	}
	datPath := filepath.Join(dir, name+".dat")
	if err := os.WriteFile(datPath, []byte(dat.String()), 0o644); err != nil {
		return err
	}
	var plots []string
	for i, v := range variants {
		c := 2 + 3*i
		using := fmt.Sprintf("%d:%d:%d", c, c+1, c+2)
		if i == 0 {
			using += ":xtic(1)"
		}
		plots = append(plots, fmt.Sprintf("'%s' using %s title %q", datPath, using, v))
	}
	gp := fmt.Sprintf(`set terminal pngcairo size 900,480 noenhanced
set output '%s'
set title %q
set ylabel %q
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.75 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key outside right top vertical
set xtics nomirror
plot %s
`, filepath.Join(dir, name+".png"), title, ylabel, strings.Join(plots, ", "))
	gpPath := filepath.Join(dir, name+".gp")
	if err := os.WriteFile(gpPath, []byte(gp), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("gnuplot", gpPath).CombinedOutput(); err != nil {
		return fmt.Errorf("sluice-bench: gnuplot %s: %v: %s", name, err, out)
	}
	os.Remove(datPath)
	os.Remove(gpPath)
	r.charts = append(r.charts, name)
	return nil
}

func (r *report) image(b *strings.Builder, name, alt string) {
	for _, c := range r.charts {
		if c == name {
			fmt.Fprintf(b, "![%s](docs/bench/%s.png)\n\n", alt, name)
		}
	}
}

// write renders the charts into out/docs/bench and out/BENCHMARKS.md.
//
// Its complexity (about 30) is a flat list of charts and sections, each
// skipped when its scenario did not run; split up, the document's order
// would be spread over functions that each hold one "if ran" test.
func (r *report) write(out string, logf func(string, ...any)) error {
	dir := filepath.Join(out, "docs", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	charts := []struct {
		name, title, ylabel, scn, metric string
		scale                            float64
		only                             []string
	}{
		{"http-rps", "HTTP small responses: throughput", "requests/s", "http", "rps", 1, nil},
		{"http-p99", "HTTP small responses: p99 latency", "µs", "http", "p99", 1e6, nil},
		{"bulk-mbps", "1 MiB responses and uploads: throughput", "MB/s", "bulk", "mbps", 1, nil},
		{"bulk-cpu", "1 MiB responses and uploads: proxy CPU", "CPU seconds per GB", "bulk", "cpu_per_gb", 1, []string{"nginx", "sluice"}},
		{"ws-msgs", "WebSocket echo: pipelined messages", "messages/s", "ws", "msgs", 1, nil},
		{"ws-rtt", "WebSocket echo: ping-pong RTT p50", "µs", "ws", "rtt_p50", 1e6, nil},
		{"idle", "Idle WebSockets: proxy memory", "KiB per connection", "idle", "kib_per_conn", 1, nil},
	}
	for _, c := range charts {
		if err := r.chart(dir, c.name, c.title, c.ylabel, c.scn, c.metric, c.scale, c.only); err != nil {
			logf("chart %s: %v", c.name, err)
		}
	}

	var b strings.Builder
	p := r.plan
	m := r.machine
	b.WriteString("# Benchmarks: Sluice side by side with nginx\n\n")
	if p.Quick {
		b.WriteString("**Quick run** (`-quick`): short durations and few rounds; a smoke test of the harness, not numbers to quote.\n\n")
	}
	fmt.Fprintf(&b, "Regenerate everything on this page (tables, charts, `docs/bench/results.json`) with one command:\n\n```sh\n%s\n```\n\n", r.command)
	fmt.Fprintf(&b, "This run took %s, at commit `%s`.\n\n", r.elapsed.Round(time.Second), m.Commit)
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n| CPU | %d × %s |\n| memory | %s |\n| kernel | Linux %s |\n| Go | %s |\n| nginx | %s |\n| wrk | %s |\n| gnuplot | %s |\n\n",
		m.CPUs, m.Model, m.Memory, m.Kernel, m.Go, m.Nginx, m.Wrk, m.Gnuplot)

	b.WriteString("## Method\n\n")
	pin := "The proxy under test runs alone on CPU 0 (`taskset -c 0`); the load generators (wrk, the harness's WebSocket client) and the backend share CPU 1."
	if !pinning {
		pin = "This machine has one CPU, so nothing is pinned: proxy, load and backend share it."
	}
	fmt.Fprintf(&b, "- %s Sluice runs with `GOMAXPROCS=1`, nginx with `worker_processes 1`, so each proxy gets one core.\n", pin)
	b.WriteString("- Everything talks over 127.0.0.1. The backend is `sluice-bench backend`, a Go server with a 64-byte response (`/small`), a 1 MiB response (`/1m`), an upload sink (`/upload`) and a WebSocket echo (`/ws`, gorilla/websocket).\n")
	fmt.Fprintf(&b, "- Runs are interleaved: each round runs every target once (the starting target rotates per round); %d rounds for HTTP small and WebSocket, %d for 1 MiB. Tables show the median over rounds with the min–max range, and the ratio of medians to nginx.\n", p.Rounds, p.BulkRounds)
	b.WriteString("- Logging is at the same level on both sides: nginx has `access_log off` and logs errors (`error_log … warn`); Sluice runs with ")
	if len(sluiceLogArgs) > 0 {
		fmt.Fprintf(&b, "`%s` (no access log, warnings and errors only).\n", strings.Join(sluiceLogArgs, " "))
	} else {
		b.WriteString("its default logging (it writes no access log by default; warnings and errors only).\n")
	}
	fmt.Fprintf(&b, "- Both proxies keep up to %d idle upstream connections (nginx `upstream { keepalive %d; }` with `proxy_http_version 1.1` and an empty `Connection` header; Sluice's `max_idle_conns`), allow unlimited requests per client connection (nginx `keepalive_requests 1000000`, as Go's server), stream request bodies (nginx `proxy_request_buffering off`) and never buffer responses to disk (`proxy_max_temp_file_size 0`). nginx's buffers are 32 KiB (`proxy_buffer_size 32k`, `proxy_buffers 8 32k`, `client_body_buffer_size 32k`), the size of the copy buffer of Go's reverse proxy that Sluice uses: with nginx's default 4 KiB buffers its 1 MiB download throughput was about a third as high in a trial on this machine, which would have measured the defaults, not the proxy. Idle WebSocket memory was the same with either size. nginx forwards WebSocket upgrades with `Upgrade`/`Connection` headers and a 1-hour read timeout.\n", upstreamKeepalive, upstreamKeepalive)
	fmt.Fprintf(&b, "- Every request and every WebSocket handshake carries `Authorization: Bearer %s`, the token the `auth` filter accepts, so every target sees the same bytes.\n", benchToken)
	if len(r.loads) > 0 {
		ls := summarize(r.loads)
		fmt.Fprintf(&b, "- The 1-minute load average, sampled at each scenario's start, was %.1f–%.1f. The run itself keeps about two CPUs busy; more than that means other work shared the machine and the numbers are noisier (the min–max ranges show how much).\n", ls.Min, ls.Max)
	}
	b.WriteString("- The generated nginx config and Sluice configs are kept with `-keep` (printed at the end of the run).\n\n")

	if len(r.skipped) > 0 {
		b.WriteString("Targets that could not run:\n\n")
		names := make([]string, 0, len(r.skipped))
		for n := range r.skipped {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "- %s: %s\n", n, firstLine(r.skipped[n]))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Goals\n\n| goal | measured | |\n|---|---:|---|\n")
	for _, g := range r.goals() {
		status := "not measured"
		if g.met != nil {
			status = "**missed**"
			if *g.met {
				status = "met"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", g.what, g.measured, status)
	}
	b.WriteString("\n")
	if r.analysis != "" {
		b.WriteString(strings.TrimSpace(r.analysis) + "\n\n")
	}

	if len(r.variantsOf("http")) > 0 {
		fmt.Fprintf(&b, "## 1. HTTP, small responses\n\n`wrk -t1 -c<conns> -d%s --latency` for `GET /small` (64-byte body). Latency in µs.\n\n", p.HTTPDur)
		for _, v := range r.variantsOf("http") {
			fmt.Fprintf(&b, "### %s\n\n", v)
			r.table(&b, "http", v, []column{
				{metric: "rps", label: "req/s", scale: 1, ratio: true},
				{metric: "p50", label: "p50 µs", scale: 1e6},
				{metric: "p99", label: "p99 µs", scale: 1e6, ratio: true},
				{metric: "errors", label: "errors", scale: 1},
			})
		}
		r.image(&b, "http-rps", "HTTP small responses: requests per second")
		r.image(&b, "http-p99", "HTTP small responses: p99 latency")
	}
	if len(r.variantsOf("bulk")) > 0 {
		fmt.Fprintf(&b, "## 2. HTTP, 1 MiB responses and uploads\n\n`wrk -t1 -c%d -d%s` for `GET /1m` (download) and `POST /upload` with a 1 MiB body (upload, a three-line Lua script sets method and body). MB/s is 10⁶ bytes per second of bodies; CPU s/GB is the proxy's utime+stime (from `/proc/<pid>/stat`, all its processes) per 10⁹ body bytes.\n\n", p.BulkConns, p.BulkDur)
		for _, v := range r.variantsOf("bulk") {
			fmt.Fprintf(&b, "### %s\n\n", v)
			r.table(&b, "bulk", v, []column{
				{metric: "mbps", label: "MB/s", scale: 1, ratio: true},
				{metric: "cpu_per_gb", label: "CPU s/GB", scale: 1, digits: 3, ratio: true},
			})
		}
		r.image(&b, "bulk-mbps", "1 MiB throughput")
		r.image(&b, "bulk-cpu", "1 MiB proxy CPU per GB")
	}
	if len(r.variantsOf("ws")) > 0 {
		fmt.Fprintf(&b, "## 3. WebSocket echo\n\nJSON text messages (with a `password` field and the word `secret`, which `redact` masks). Ping-pong: %d connection, one message in flight, for %s; RTT in µs. Pipelined: %d connections with up to %d messages in flight each, for %s; echoed messages per second. `sluice` relays without message hooks (raw pass-through), `sluice+noop` runs a message hook that passes every message, `sluice+redact` rewrites matching fields.\n\n",
			p.WSRTTConns, p.WSDur, p.WSPipeConns, p.WSWindow, p.WSDur)
		for _, v := range r.variantsOf("ws") {
			fmt.Fprintf(&b, "### %s messages\n\n", v)
			r.table(&b, "ws", v, []column{
				{metric: "msgs", label: "msg/s", scale: 1, ratio: true},
				{metric: "rtt_p50", label: "RTT p50 µs", scale: 1e6, ratio: true},
				{metric: "rtt_p99", label: "RTT p99 µs", scale: 1e6},
			})
		}
		r.image(&b, "ws-msgs", "WebSocket pipelined messages per second")
		r.image(&b, "ws-rtt", "WebSocket RTT p50")
	}
	if len(r.variantsOf("idle")) > 0 {
		fmt.Fprintf(&b, "## 4. Idle WebSockets\n\nA freshly started proxy, one warm-up round trip, %s settle, VmRSS (all its processes); then the connections are opened and held (the client answers pings), %s settle, VmRSS again. KiB/conn = (RSS after − RSS before) / connections. %d repetition(s).\n\n", p.IdleSettle, p.IdleSettle, p.IdleReps)
		for _, v := range r.variantsOf("idle") {
			fmt.Fprintf(&b, "### %s\n\n", v)
			r.table(&b, "idle", v, []column{
				{metric: "kib_per_conn", label: "KiB/conn", scale: 1, digits: 1, ratio: true},
				{metric: "rss_before_mib", label: "RSS before MiB", scale: 1, digits: 1},
				{metric: "rss_after_mib", label: "RSS after MiB", scale: 1, digits: 1},
			})
		}
		if r.idleNote != "" {
			fmt.Fprintf(&b, "%s\n\n", r.idleNote)
		}
		r.image(&b, "idle", "Idle WebSockets: KiB per connection")
	}
	if r.micro.Command != "" {
		b.WriteString("## 5. Filter microbenchmarks\n\n")
		fmt.Fprintf(&b, "`%s`, pinned to CPU 0 with `GOMAXPROCS=1`, summarised by benchstat.\n\n", r.micro.Command)
		if r.micro.Note != "" {
			fmt.Fprintf(&b, "%s.\n\n", r.micro.Note)
		}
		if r.micro.Benchstat != "" {
			fmt.Fprintf(&b, "```\n%s```\n\n", r.micro.Benchstat)
		} else if r.micro.Raw != "" {
			fmt.Fprintf(&b, "```\n%s```\n\n", r.micro.Raw)
		}
	}
	if len(r.profiles) > 0 {
		b.WriteString("## Profiles\n\nProfiles of Sluice under the same load, taken after the measured rounds from a separate instance built with `net/http/pprof` added (through `go build -overlay`; the measured binary has no profiler). `go tool pprof -top`: CPU profiles show the hottest functions by flat time, heap profiles the in-use bytes by allocation site.\n\n")
		for _, pr := range r.profiles {
			fmt.Fprintf(&b, "### %s, %s\n\n", pr.Target, pr.Load)
			if pr.Err != "" {
				fmt.Fprintf(&b, "%s\n\n", pr.Err)
				continue
			}
			fmt.Fprintf(&b, "```\n%s```\n\n", pr.Top)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "BENCHMARKS.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	return nil
}
