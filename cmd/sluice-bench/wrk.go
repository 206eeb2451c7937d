package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what the harness reads from one wrk run.
type wrkResult struct {
	Requests   int64   // completed requests
	Seconds    float64 // measured duration as wrk reports it
	RPS        float64
	P50, P99   float64 // latency, seconds
	Non2xx     int64
	SockErrors int64
}

// wrkOpts describes one wrk run.
type wrkOpts struct {
	URL      string
	Conns    int
	Duration time.Duration
	Header   []string // "Name: value"
	Script   string   // optional Lua script path (uploads)
}

// runWrk runs wrk once, bounded by its -d plus a margin.
func runWrk(ctx context.Context, o wrkOpts) (wrkResult, error) {
	secs := int(o.Duration.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	args := []string{"-t1", "-c" + strconv.Itoa(o.Conns), "-d" + strconv.Itoa(secs) + "s", "--timeout", "10s", "--latency"}
	for _, h := range o.Header {
		args = append(args, "-H", h)
	}
	if o.Script != "" {
		args = append(args, "-s", o.Script)
	}
	args = append(args, o.URL)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("sluice-bench: wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, out)
	}
	return r, nil
}

var (
	reDone    = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	rePct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func unitSeconds(v float64, unit string) float64 {
	switch unit {
	case "us":
		return v / 1e6
	case "ms":
		return v / 1e3
	case "m":
		return v * 60
	}
	return v
}

// parseWrk reads wrk's plain report (with --latency).
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := reDone.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("sluice-bench: no request count in wrk output")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	v, _ := strconv.ParseFloat(m[2], 64)
	r.Seconds = unitSeconds(v, m[3])
	if m := reRPS.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		s := unitSeconds(v, m[3])
		if m[1] == "50" {
			r.P50 = s
		} else {
			r.P99 = s
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("sluice-bench: no latency distribution in wrk output")
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SockErrors += n
		}
	}
	return r, nil
}
