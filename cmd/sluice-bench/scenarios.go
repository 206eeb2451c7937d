package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// plan holds the sizes and durations of one run; -quick picks a smaller one.
type plan struct {
	Quick       bool
	Rounds      int           // interleaved rounds for HTTP and WebSocket scenarios
	HTTPDur     time.Duration // one wrk run, small responses
	HTTPConns   []int
	BulkRounds  int
	BulkDur     time.Duration
	BulkConns   int
	WSDur       time.Duration // one RTT run and one pipelined run
	WSSizes     []int
	WSRTTConns  int
	WSPipeConns int
	WSWindow    int
	IdleConns   int
	IdleReps    int
	IdleSettle  time.Duration
	BenchCount  int
	BenchTime   string
}

func fullPlan() plan {
	return plan{
		Rounds: 5, HTTPDur: 5 * time.Second, HTTPConns: []int{32, 256},
		BulkRounds: 3, BulkDur: 4 * time.Second, BulkConns: 16,
		WSDur: 1500 * time.Millisecond, WSSizes: []int{64, 16 << 10}, WSRTTConns: 1, WSPipeConns: 64, WSWindow: 8,
		IdleConns: 10000, IdleReps: 2, IdleSettle: 3 * time.Second,
		BenchCount: 6, BenchTime: "1s",
	}
}

func quickPlan() plan {
	return plan{
		Quick:  true,
		Rounds: 2, HTTPDur: time.Second, HTTPConns: []int{32, 256},
		BulkRounds: 1, BulkDur: time.Second, BulkConns: 16,
		WSDur: 500 * time.Millisecond, WSSizes: []int{64, 16 << 10}, WSRTTConns: 1, WSPipeConns: 32, WSWindow: 8,
		IdleConns: 1000, IdleReps: 1, IdleSettle: time.Second,
		BenchCount: 2, BenchTime: "200ms",
	}
}

// bench runs the scenarios against a lab and records into res.
type bench struct {
	lab  *lab
	plan plan
	res  *results
	logf func(format string, args ...any)
	// skipped maps a target name to why it did not run.
	skipped map[string]string
	// profile asks for CPU profiles of the Sluice targets; profiles holds them.
	profile  bool
	profiles []profileResult
	idleNote string
	// loads samples the 1-minute load average at each scenario's start: the
	// machine may be shared, and readers should know how busy it was.
	loads []float64
}

// sampleLoad records the 1-minute load average.
func (b *bench) sampleLoad() {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	var l float64
	if _, err := fmt.Sscanf(string(raw), "%f", &l); err == nil {
		b.loads = append(b.loads, l)
	}
}

var authHeader = []string{"Authorization: Bearer " + benchToken}

// startAll starts every spec that can run here; the rest are recorded as skipped.
func (b *bench) startAll(ctx context.Context, specs []spec) ([]*target, error) {
	var ts []*target
	for _, s := range specs {
		if ctx.Err() != nil {
			return ts, ctx.Err()
		}
		t, err := b.lab.start(ctx, s)
		if err != nil {
			b.logf("  %s: skipped: %v", s.Name, err)
			b.skipped[s.Name] = err.Error()
			continue
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func (b *bench) stopAll(ts []*target) {
	for _, t := range ts {
		b.lab.stop(t)
	}
}

// rotate returns ts starting at the i-th, so no target always runs first.
func rotate(ts []*target, i int) []*target {
	if len(ts) == 0 {
		return ts
	}
	i %= len(ts)
	return append(append([]*target(nil), ts[i:]...), ts[:i]...)
}

// warmHTTP sends a few thousand small requests so pools and caches are warm.
func warmHTTP(t *target) {
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				req, _ := http.NewRequest("GET", "http://"+t.Addr+"/small", nil)
				req.Header.Set("Authorization", "Bearer "+benchToken)
				resp, err := c.Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

// scenarioHTTP is scenario 1: small responses through every target.
func (b *bench) scenarioHTTP(ctx context.Context) error {
	b.sampleLoad()
	b.logf("scenario 1: HTTP small responses")
	ts, err := b.startAll(ctx, []spec{specDirect, specNginx, specSluice, specHeaders, specAuthHeaders})
	defer b.stopAll(ts)
	if err != nil {
		return err
	}
	for _, t := range ts {
		warmHTTP(t)
	}
	for round := 0; round < b.plan.Rounds; round++ {
		for _, conns := range b.plan.HTTPConns {
			variant := fmt.Sprintf("%d conns", conns)
			for _, t := range rotate(ts, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := runWrk(ctx, wrkOpts{URL: "http://" + t.Addr + "/small", Conns: conns, Duration: b.plan.HTTPDur, Header: authHeader})
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					b.res.note("http", variant, t.Name, err.Error())
					b.logf("  %s %s: %v", t.Name, variant, err)
					continue
				}
				b.res.add("http", variant, t.Name, "rps", r.RPS)
				b.res.add("http", variant, t.Name, "p50", r.P50)
				b.res.add("http", variant, t.Name, "p99", r.P99)
				b.res.add("http", variant, t.Name, "errors", float64(r.Non2xx+r.SockErrors))
				b.logf("  round %d %-20s %-9s %9.0f req/s  p50 %7.0fµs  p99 %7.0fµs  errors %d",
					round+1, t.Name, variant, r.RPS, r.P50*1e6, r.P99*1e6, r.Non2xx+r.SockErrors)
			}
		}
	}
	conns := b.plan.HTTPConns[len(b.plan.HTTPConns)-1]
	b.stopAll(ts)
	for _, t := range ts {
		b.profileUnderLoad(ctx, t.spec, fmt.Sprintf("HTTP small, %d conns", conns), func(c context.Context, p *target) {
			runWrk(c, wrkOpts{URL: "http://" + p.Addr + "/small", Conns: conns, Duration: (profileSeconds + 2) * time.Second, Header: authHeader})
		})
	}
	return nil
}

// scenarioBulk is scenario 2: 1 MiB downloads and uploads.
func (b *bench) scenarioBulk(ctx context.Context) error {
	b.sampleLoad()
	b.logf("scenario 2: HTTP 1 MiB responses and uploads")
	script := filepath.Join(b.lab.dir, "upload.lua")
	lua := "-- POST a 1 MiB body on every request.\nwrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1048576)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	ts, err := b.startAll(ctx, []spec{specDirect, specNginx, specSluice})
	defer b.stopAll(ts)
	if err != nil {
		return err
	}
	for _, t := range ts {
		warmHTTP(t)
	}
	for round := 0; round < b.plan.BulkRounds; round++ {
		for _, variant := range []string{"download", "upload"} {
			for _, t := range rotate(ts, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				o := wrkOpts{URL: "http://" + t.Addr + "/1m", Conns: b.plan.BulkConns, Duration: b.plan.BulkDur, Header: authHeader}
				if variant == "upload" {
					o.URL, o.Script = "http://"+t.Addr+"/upload", script
				}
				var cpu0 float64
				if t.PID != 0 {
					cpu0 = cpuSeconds(t.PID)
				}
				r, err := runWrk(ctx, o)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					b.res.note("bulk", variant, t.Name, err.Error())
					b.logf("  %s %s: %v", t.Name, variant, err)
					continue
				}
				bytes := float64(r.Requests) * (1 << 20)
				mbps := bytes / r.Seconds / 1e6
				b.res.add("bulk", variant, t.Name, "mbps", mbps)
				b.res.add("bulk", variant, t.Name, "errors", float64(r.Non2xx+r.SockErrors))
				line := fmt.Sprintf("  round %d %-14s %-8s %8.0f MB/s", round+1, t.Name, variant, mbps)
				if t.PID != 0 {
					cpu := cpuSeconds(t.PID) - cpu0
					perGB := cpu / (bytes / 1e9)
					b.res.add("bulk", variant, t.Name, "cpu_per_gb", perGB)
					line += fmt.Sprintf("  %.3f CPU s/GB", perGB)
				}
				b.logf("%s  errors %d", line, r.Non2xx+r.SockErrors)
			}
		}
	}
	return nil
}

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// scenarioWS is scenario 3: WebSocket echo, ping-pong and pipelined.
func (b *bench) scenarioWS(ctx context.Context) error {
	b.sampleLoad()
	b.logf("scenario 3: WebSocket echo")
	ts, err := b.startAll(ctx, []spec{specDirect, specNginx, specSluice, specNoop, specRedact})
	defer b.stopAll(ts)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if _, err := wsRTT(ctx, "ws://"+t.Addr+"/ws", 64, 1, time.Second, 200); err != nil {
			b.logf("  %s: warm-up: %v", t.Name, err)
		}
	}
	// Each round runs the ping-pong of every target, then the pipelined runs,
	// so a latency run never follows a throughput run directly; a short pause
	// between runs lets the previous connections finish closing.
	const maxRTTMsgs = 500000
	pause := func() { time.Sleep(250 * time.Millisecond) }
	for round := 0; round < b.plan.Rounds; round++ {
		for _, size := range b.plan.WSSizes {
			variant := sizeLabel(size)
			for _, t := range rotate(ts, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rtt, err := wsRTT(ctx, "ws://"+t.Addr+"/ws", size, b.plan.WSRTTConns, b.plan.WSDur, maxRTTMsgs)
				if err != nil {
					b.res.note("ws", variant, t.Name, err.Error())
					b.logf("  %s %s: %v", t.Name, variant, err)
					continue
				}
				b.res.add("ws", variant, t.Name, "rtt_p50", rtt.P50)
				b.res.add("ws", variant, t.Name, "rtt_p99", rtt.P99)
				b.logf("  round %d %-14s %-7s ping-pong RTT p50 %6.0fµs p99 %6.0fµs", round+1, t.Name, variant, rtt.P50*1e6, rtt.P99*1e6)
				pause()
			}
			for _, t := range rotate(ts, round) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rate, err := wsPipelined(ctx, "ws://"+t.Addr+"/ws", size, b.plan.WSPipeConns, b.plan.WSWindow, b.plan.WSDur)
				if err != nil {
					b.res.note("ws", variant, t.Name, err.Error())
					b.logf("  %s %s: %v", t.Name, variant, err)
					continue
				}
				b.res.add("ws", variant, t.Name, "msgs", rate)
				b.logf("  round %d %-14s %-7s pipelined %8.0f msg/s", round+1, t.Name, variant, rate)
				pause()
			}
		}
	}
	b.stopAll(ts)
	for _, t := range ts {
		b.profileUnderLoad(ctx, t.spec, "WebSocket 64 B pipelined", func(c context.Context, p *target) {
			wsPipelined(c, "ws://"+p.Addr+"/ws", 64, b.plan.WSPipeConns, b.plan.WSWindow, (profileSeconds+1)*time.Second)
		})
	}
	// A filter that reads whole messages scales with their size: profile the
	// largest size too.
	big := b.plan.WSSizes[len(b.plan.WSSizes)-1]
	b.profileUnderLoad(ctx, specRedact, "WebSocket "+sizeLabel(big)+" pipelined", func(c context.Context, p *target) {
		wsPipelined(c, "ws://"+p.Addr+"/ws", big, b.plan.WSPipeConns, b.plan.WSWindow, (profileSeconds+1)*time.Second)
	})
	return nil
}

// scenarioIdle is scenario 4: memory per idle WebSocket held through a proxy.
// Every measurement uses a freshly started proxy so earlier load does not
// leave freed memory behind that new connections would reuse.
func (b *bench) scenarioIdle(ctx context.Context) error {
	b.sampleLoad()
	n := b.plan.IdleConns
	// Each proxied connection holds two descriptors in the proxy (client and
	// upstream side); stay under the descriptor limit with some spare.
	if max := int(b.lab.nofile/2) - 100; n > max {
		b.idleNote = fmt.Sprintf("This machine's hard RLIMIT_NOFILE is %d and cannot be raised here; a proxied connection holds two descriptors in the proxy, so the run holds %d connections instead of %d.", b.lab.nofile, max, n)
		b.logf("  %s", b.idleNote)
		n = max
	}
	variant := fmt.Sprintf("%d conns", n)
	b.logf("scenario 4: %d idle WebSockets", n)
	specs := []spec{specNginx, specSluice, specNoop}
	for rep := 0; rep < b.plan.IdleReps; rep++ {
		for i := range specs {
			s := specs[(i+rep)%len(specs)]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t, err := b.lab.start(ctx, s)
			if err != nil {
				b.logf("  %s: skipped: %v", s.Name, err)
				b.skipped[s.Name] = err.Error()
				continue
			}
			err = b.idleOnce(ctx, t, n, variant)
			b.lab.stop(t)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.res.note("idle", variant, s.Name, err.Error())
				b.logf("  %s: %v", s.Name, err)
			}
		}
	}
	for _, s := range specs {
		if s.Kind == "sluice" && b.lab.available(s) == nil {
			b.profileIdle(ctx, s, n)
		}
	}
	return nil
}

func (b *bench) idleOnce(ctx context.Context, t *target, n int, variant string) error {
	url := "ws://" + t.Addr + "/ws"
	// One round trip runs the upgrade and relay code once before the baseline.
	if _, err := wsRTT(ctx, url, 64, 1, time.Second, 10); err != nil {
		return err
	}
	time.Sleep(b.plan.IdleSettle)
	before := rssBytes(t.PID)
	t0 := time.Now()
	closeAll, err := holdIdle(ctx, url, n, 32)
	if err != nil {
		return err
	}
	defer closeAll()
	dial := time.Since(t0)
	time.Sleep(b.plan.IdleSettle)
	after := rssBytes(t.PID)
	per := float64(after-before) / float64(n) / 1024
	b.res.add("idle", variant, t.Name, "kib_per_conn", per)
	b.res.add("idle", variant, t.Name, "rss_before_mib", float64(before)/(1<<20))
	b.res.add("idle", variant, t.Name, "rss_after_mib", float64(after)/(1<<20))
	b.logf("  %-12s RSS %6.1f MiB -> %6.1f MiB with %d conns (opened in %s): %.2f KiB/conn",
		t.Name, float64(before)/(1<<20), float64(after)/(1<<20), n, dial.Round(time.Millisecond), per)
	return nil
}
