package main

import (
	"strconv"
	"time"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// decision is the outcome of one take.
type decision struct {
	allowed   bool
	remaining int64 // allowed: what is left of the limit now
	reset     int64 // allowed: seconds until the window has fully slid on
	retry     int64 // refused: seconds until one more would be allowed
}

// take counts one event of id against limit with a sliding window: the
// count of the current fixed window plus the previous window's count
// weighted by how much of it the sliding window still covers. The current
// count is one shared_add, atomic across proxies; the previous window's
// count is final, so it is read once and remembered. A refused event is
// taken back, so only allowed events count and a client that keeps
// knocking is let in again as the window slides.
//
// Keys: "<kind>:<policy>:<window index>:<id>", with a TTL of two windows
// set when the window's counter is created.
func take(p *policy, kind, id string, limit int64) decision {
	now := sluice.Now().UnixMilli()
	w := p.window
	idx, elapsed := now/w, now%w
	prefix := kind + ":" + p.name + ":"
	cur := prefix + strconv.FormatInt(idx, 10) + ":" + id
	ttl := ms(2 * w)
	n := sluice.Shared.Add(cur, 1, ttl)
	var prev int64
	if n <= limit {
		prev = previous(prefix + strconv.FormatInt(idx-1, 10) + ":" + id)
	}
	weighted := prev * (w - elapsed) / w
	if n+weighted <= limit {
		return decision{allowed: true, remaining: limit - n - weighted, reset: ceilSec(w - elapsed)}
	}
	sluice.Shared.Add(cur, -1, ttl)
	return decision{retry: retryAfter(n-1, prev, limit, w, elapsed)}
}

// retryAfter is how long until one more event fits: count is this
// window's allowed events, prev the previous window's. An event at elapsed
// time e fits when c+1 + floor(p*(w-e)/w) <= limit, that is when
// e > w - w*(limit-c)/p.
func retryAfter(count, prev, limit, w, elapsed int64) int64 {
	var wait int64
	if count >= limit {
		// Not in this window. In the next one this window's count is the
		// previous count (p = count) and nothing is counted yet (c = 0).
		wait = w - elapsed + max(0, w-w*limit/count+1)
	} else {
		wait = w - w*(limit-count)/prev + 1 - elapsed
	}
	return max(ceilSec(wait), 1)
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func ceilSec(ms int64) int64 { return (ms + 999) / 1000 }

// prevCache remembers previous-window counts this instance has read: a
// finished window's count no longer grows, so one read per key and window
// is enough. It is bounded; when full it starts over.
var prevCache = map[string]int64{}

const prevCacheMax = 1024

func previous(key string) int64 {
	if n, ok := prevCache[key]; ok {
		return n
	}
	var n int64
	if v, ok := sluice.Shared.Get(key); ok {
		n, _ = strconv.ParseInt(string(v), 10, 64)
	}
	if len(prevCache) >= prevCacheMax {
		prevCache = map[string]int64{}
	}
	prevCache[key] = n
	return n
}
