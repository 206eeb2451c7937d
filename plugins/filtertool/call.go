package filtertool

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

// call makes the hook calls of one run and records each.
type call struct {
	r     *Runner
	set   *plugins.Set
	res   *Result
	stats plugins.Stats // the plugin's counters after the previous call
}

// http runs an HTTP hook and reports whether the exchange goes on.
func (c *call) http(name string, x *filter.Exchange, hook func(*filter.Exchange) *filter.Reply) bool {
	before := snapExchange(x)
	var reply *filter.Reply
	rec := c.run(name, &x.State, nil, func() { reply = hook(x) })
	if rec.Failure != nil {
		return false
	}
	rec.after = snapExchange(x)
	rec.Changes = diffExchange(before, rec.after)
	rec.Action = "continue"
	if reply != nil {
		rec.Action = "respond"
		rec.Reply = &Reply{Status: reply.Status, Header: reply.Header, Body: string(reply.Body)}
		return false
	}
	return true
}

// message runs the message hook on message i and reports whether the
// session goes on.
func (c *call) message(chain filter.Chain, sess *filter.Session, i int, m Message) bool {
	fm := &filter.Message{Direction: m.Direction, Binary: m.Binary, Payload: append([]byte(nil), m.Payload...)}
	var v filter.MessageVerdict
	rec := c.run("message", &sess.State, &i, func() { v = chain.OnMessage(sess, fm) })
	rec.Direction, rec.Binary = m.Direction.String(), m.Binary
	if rec.Failure != nil {
		return false
	}
	rec.forwarded = string(fm.Payload)
	if rec.forwarded != string(m.Payload) {
		p := string(fm.Payload)
		rec.Payload = &p
	}
	for _, in := range v.Inject {
		rec.Inject = append(rec.Inject, Injected{Direction: in.Direction.String(), Binary: in.Binary, Payload: string(in.Payload)})
	}
	switch v.Action {
	case filter.MessagePass:
		rec.Action = "pass"
	case filter.MessageDrop:
		rec.Action = "drop"
	case filter.MessageClose:
		rec.Action = "close"
		rec.CloseCode, rec.CloseReason = v.CloseCode, v.CloseReason
		return false
	}
	return true
}

// run makes one hook call through f and records its time, logs, state and
// shared-state writes, and whether it failed. The chain turns a failure
// into the plugin's policy (a 503 or a 1011 close); the plugin's counters
// and its log say it was a failure and why.
func (c *call) run(name string, st *filter.State, msg *int, f func()) *Call {
	before := snapState(st)
	start := time.Now()
	f()
	rec := &Call{Hook: name, Message: msg, Duration: time.Since(start)}
	rec.state = snapState(st)
	rec.State = diffMaps("state ", before, rec.state)
	logs, dropped, cause := c.r.logs.take()
	rec.Logs, rec.LogsDropped = logs, dropped
	rec.Shared = c.r.store.take()
	now := c.set.Stats()[0]
	if kind := failureKind(c.stats, now); kind != "" {
		// The plugins package words a cause "<kind>: <error>".
		for _, k := range []string{"trap: ", "timeout: ", "ABI misuse: ", "no instance: "} {
			cause = strings.TrimPrefix(cause, k)
		}
		if cause == "" {
			cause = kind
		}
		rec.Action = "failed"
		rec.Failure = &Failure{Hook: name, Kind: kind, Cause: cause}
		c.res.Failure = rec.Failure
	}
	c.stats = now
	c.res.Calls = append(c.res.Calls, rec)
	return rec
}

// failureKind tells from the plugin's counters before and after a call
// whether it failed, and how.
func failureKind(before, after plugins.Stats) string {
	switch {
	case after.Timeouts > before.Timeouts:
		return "timeout"
	case after.Traps > before.Traps:
		return "trap"
	case after.Misuses > before.Misuses:
		return "misuse"
	case after.Errors > before.Errors:
		return "error"
	}
	return ""
}

// exchangeSnap is what a filter can change in an exchange, flattened to
// named values.
type exchangeSnap map[string]string

func snapExchange(x *filter.Exchange) exchangeSnap {
	s := exchangeSnap{}
	r := x.Request
	s["method"] = r.Method
	s["path"] = r.URL.Path
	s["query"] = r.URL.RawQuery
	addHeaders(s, "request header ", r.Header)
	if x.RequestBody != nil {
		s["request body"] = string(x.RequestBody)
	}
	if x.Status != 0 {
		s["status"] = strconv.Itoa(x.Status)
	}
	addHeaders(s, "response header ", x.ResponseHeader)
	if x.ResponseBody != nil {
		s["response body"] = string(x.ResponseBody)
	}
	return s
}

func addHeaders(s exchangeSnap, prefix string, h http.Header) {
	for k, vs := range h {
		s[prefix+k] = strings.Join(vs, ", ")
	}
}

func diffExchange(before, after exchangeSnap) []Change {
	return diffMaps("", before, after)
}

// diffMaps lists the keys whose values differ, sorted, named prefix+key.
func diffMaps(prefix string, before, after map[string]string) []Change {
	keys := make([]string, 0, len(after))
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Change
	for _, k := range keys {
		b, bok := before[k]
		a, aok := after[k]
		if bok == aok && a == b {
			continue
		}
		ch := Change{What: prefix + k}
		if bok {
			ch.Before = &b
		}
		if aok {
			ch.After = &a
		}
		out = append(out, ch)
	}
	return out
}

func snapState(st *filter.State) map[string]string {
	m := make(map[string]string, st.Len())
	st.Range(func(k string, v []byte) bool {
		m[k] = string(v)
		return true
	})
	return m
}
