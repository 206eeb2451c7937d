package plugins

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/metrics"
)

// hookLabels are the hook names metrics and logs use.
var hookLabels = [numHooks]string{
	hookRequestHeaders:  "request_headers",
	hookResponseHeaders: "response_headers",
	hookUpgrade:         "upgrade",
	hookMessage:         "message",
	hookClose:           "close",
}

// initMetrics resolves the plugin's metric handles once its hooks are
// known, so a hook call records without a lookup.
func (p *plugin) initMetrics(reg *metrics.Registry) {
	p.m = reg.Plugin(p.name)
	for h := range numHooks {
		if p.hooks&(1<<h) != 0 {
			p.hm[h] = p.m.Hook(hookLabels[h])
		}
	}
	p.debug = p.logger.Enabled(context.Background(), slog.LevelDebug)
}

// record is deferred by invoke: it records the call, its duration and its
// outcome (a failure's is recorded by fail, with its cause), the instance's
// memory if the call grew it, and at debug level logs the call.
//
// start is monoNow's: one clock read where time.Now takes two.
func (p *plugin) record(in *instance, h hook, start int64, action *uint32, ce **callError) {
	d := time.Duration(monoNow() - start)
	if in.mem != nil {
		if sz := in.mem.Size(); sz != in.memSize {
			p.m.MemoryChanged(in.memSize, sz)
			in.memSize = sz
		}
	}
	o, valid := outcomeOf(h, *action, &in.st)
	if *ce != nil || !valid {
		o = metrics.OutcomeFailure // counted by fail, with its cause
	}
	if hm := p.hm[h]; hm != nil {
		hm.Call(d, o)
	}
	if p.debug {
		attrs := []slog.Attr{
			slog.String("hook", hookLabels[h]),
			slog.Float64("duration_ms", float64(d)/1e6),
		}
		if *ce != nil {
			attrs = append(attrs, slog.String("outcome", "failure"), slog.String("cause", failCause(*ce).String()))
		} else if valid {
			attrs = append(attrs, slog.String("outcome", outcomeNames[o]))
		} else {
			attrs = append(attrs, slog.Int("action", int(int32(*action))))
		}
		attrs = append(attrs, callRefAttrs(&in.st)...)
		p.logger.LogAttrs(context.Background(), slog.LevelDebug, "plugins: hook call", attrs...)
	}
}

var outcomeNames = [...]string{
	metrics.OutcomeContinue: "continue",
	metrics.OutcomeRespond:  "respond",
	metrics.OutcomeDrop:     "drop",
	metrics.OutcomeClose:    "close",
	metrics.OutcomeFailure:  "failure",
}

// outcomeOf maps a hook's returned action to its outcome; valid is false
// for an action the ABI does not allow there (the chain reports it as
// misuse).
func outcomeOf(h hook, action uint32, st *callState) (o metrics.Outcome, valid bool) {
	a := int32(action)
	if h == hookMessage {
		switch a {
		case abi.ActionPass:
			return metrics.OutcomeContinue, true
		case abi.ActionDrop:
			return metrics.OutcomeDrop, true
		case abi.ActionClose:
			return metrics.OutcomeClose, true
		}
		return 0, false
	}
	switch {
	case a == abi.ActionContinue:
		return metrics.OutcomeContinue, true
	case a == abi.ActionRespond && st.reply != nil && h != hookClose:
		return metrics.OutcomeRespond, true
	}
	return 0, false
}

// failCause maps a failed call to its metrics and log cause.
func failCause(ce *callError) metrics.FailCause {
	switch ce.kind {
	case failTimeout:
		return metrics.FailTimeout
	case failMisuse:
		if _, ok := ce.err.(*quotaExceeded); ok {
			return metrics.FailQuota
		}
		return metrics.FailABIMisuse
	case failNoInstance:
		return metrics.FailNoInstance
	case failShared:
		return metrics.FailSharedStore
	case failTripped:
		return metrics.FailTripped
	}
	return metrics.FailTrap
}

// failLog rate-limits the failure log of one plugin: at most one record a
// second per cause, so a trap does not hide the timeout that follows it,
// and each record says how many of its cause were not logged since the
// last one. The metrics count every failure.
type failLog struct {
	last    [numFailCauses]atomic.Int64 // monotonic ns of the last record; 0 never
	dropped [numFailCauses]atomic.Uint64
}

const numFailCauses = 7

// logFailure writes the log record of a failed call: the request or
// session it served (request id, route), the plugin, hook and cause, the
// error and, for a trap, the guest's stack as wazero reports it (function
// names when the module has a name section).
func (p *plugin) logFailure(h hook, ce *callError, x *filter.Exchange, s *filter.Session) {
	c := failCause(ce)
	now := monoNow()
	last := p.flog.last[c].Load()
	if (last != 0 && now-last < int64(time.Second)) || !p.flog.last[c].CompareAndSwap(last, now) {
		p.flog.dropped[c].Add(1)
		return
	}
	policy := "allow: filter skipped"
	if p.deny {
		policy = "deny"
	}
	msg, stack := splitStack(ce.Error())
	attrs := make([]slog.Attr, 0, 10)
	st := callState{x: x, s: s}
	attrs = append(attrs, callRefAttrs(&st)...)
	attrs = append(attrs,
		slog.String("hook", hookLabels[h]),
		slog.String("cause", c.String()),
		slog.String("error", msg),
	)
	if len(stack) > 0 {
		attrs = append(attrs, slog.Any("guest_stack", stack))
	}
	attrs = append(attrs,
		slog.String("on_error", policy),
		slog.Uint64("dropped_since_last", p.flog.dropped[c].Swap(0)),
	)
	p.logger.LogAttrs(context.Background(), slog.LevelWarn, "plugins: hook failed", attrs...)
}

// callRefAttrs names the request or session a call served.
func callRefAttrs(st *callState) []slog.Attr {
	switch {
	case st.x != nil:
		id := ""
		if st.x.Request != nil {
			id = st.x.Request.Header.Get("X-Request-Id")
		}
		return []slog.Attr{slog.String("request_id", id), slog.String("route", st.x.Route)}
	case st.s != nil:
		return []slog.Attr{slog.String("request_id", st.s.ID), slog.String("route", st.s.Route)}
	}
	return nil
}

// splitStack separates wazero's "wasm stack trace:" from an error message:
// the message's first part, and the frames, one per element.
func splitStack(s string) (string, []string) {
	msg, trace, ok := strings.Cut(s, "\nwasm stack trace:\n")
	if !ok {
		return s, nil
	}
	var frames []string
	for _, l := range strings.Split(trace, "\n") {
		// Instances are unnamed modules: wazero writes ".func(...)".
		if l = strings.TrimPrefix(strings.TrimSpace(l), "."); l != "" {
			frames = append(frames, l)
		}
	}
	return msg, frames
}

// failureReason is the close reason of a WebSocket a failing filter closed
// with 1011: short, carrying the request id of the upgrade.
func failureReason(s *filter.Session) string {
	return "filter error (request id " + s.ID + ")"
}
