package filtertool

import (
	"encoding/base64"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// check compares a run's result with a case's expectations and returns
// every difference, each "what: want X, got Y".
func check(k *Case, res *Result) []string {
	var d diffs
	e := k.Expect
	switch f := res.Failure; {
	case f == nil && e.Failure != "":
		d.add("failure", e.Failure, "no failure")
	case f != nil && e.Failure == "":
		d.add("failure", "none", fmt.Sprintf("%s in %s: %s", f.Kind, f.Hook, firstLine(f.Cause)))
	case f != nil && f.Kind != e.Failure:
		d.add("failure", e.Failure, fmt.Sprintf("%s in %s: %s", f.Kind, f.Hook, firstLine(f.Cause)))
	}
	logs := allLogs(res)
	for _, want := range e.Logs {
		if !strings.Contains(logs, want) {
			d.add("logs", fmt.Sprintf("a line containing %q", want), orNone(strings.TrimSpace(logs)))
		}
	}
	d.http("request_headers", e.RequestHeaders, findCall(res, "request_headers"), "request header ")
	d.http("upgrade", e.Upgrade, findCall(res, "upgrade"), "request header ")
	d.http("response_headers", e.ResponseHeaders, findCall(res, "response_headers"), "response header ")
	var msgs []*Call
	for _, c := range res.Calls {
		if c.Hook == "message" {
			msgs = append(msgs, c)
		}
	}
	for i, me := range e.Message {
		what := fmt.Sprintf("message[%d]", i)
		if i >= len(msgs) {
			d.add(what, "a message hook call", fmt.Sprintf("%d message hook calls", len(msgs)))
			continue
		}
		d.message(what, &me, msgs[i])
	}
	if len(e.Shared) > 0 {
		last := map[string]string{}
		for _, c := range res.Calls {
			for _, op := range c.Shared {
				last[op.Key] = op.Value
				if op.Op == "delete" {
					delete(last, op.Key)
				}
			}
		}
		for _, key := range sortedKeys(e.Shared) {
			d.value("shared."+key, e.Shared[key], last[key], hasKey(last, key))
		}
	}
	return d
}

type diffs []string

func (d *diffs) add(what, want, got string) {
	*d = append(*d, fmt.Sprintf("%s: want %s, got %s", what, want, got))
}

// value compares a string that "" means absent.
func (d *diffs) value(what, want, got string, present bool) {
	switch {
	case want == "" && present:
		d.add(what, "absent", strconv.Quote(got))
	case want != "" && !present:
		d.add(what, strconv.Quote(want), "absent")
	case want != "" && got != want:
		d.add(what, strconv.Quote(want), strconv.Quote(got))
	}
}

func (d *diffs) http(hook string, e *HTTPExpect, c *Call, headerPrefix string) {
	if e == nil {
		return
	}
	if c == nil {
		d.add(hook, "a call", "the hook did not run")
		return
	}
	if c.Failure != nil {
		return // reported as the failure
	}
	if e.Action != "" && e.Action != c.Action {
		d.add(hook+".action", strconv.Quote(e.Action), strconv.Quote(c.Action)+replySummary(c))
	}
	if r := c.Reply; r != nil {
		if e.ReplyStatus != 0 && e.ReplyStatus != r.Status {
			d.add(hook+".reply_status", strconv.Itoa(e.ReplyStatus), strconv.Itoa(r.Status))
		}
		for _, name := range sortedKeys(e.ReplyHeaders) {
			vs := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
			d.value(hook+".reply_headers."+name, e.ReplyHeaders[name], strings.Join(vs, ", "), len(vs) > 0)
		}
		if e.ReplyBody != nil && *e.ReplyBody != r.Body {
			d.add(hook+".reply_body", strconv.Quote(*e.ReplyBody), strconv.Quote(r.Body))
		}
		if e.ReplyBodyContains != "" && !strings.Contains(r.Body, e.ReplyBodyContains) {
			d.add(hook+".reply_body_contains", strconv.Quote(e.ReplyBodyContains), strconv.Quote(r.Body))
		}
	} else if e.ReplyStatus != 0 || len(e.ReplyHeaders) > 0 || e.ReplyBody != nil || e.ReplyBodyContains != "" {
		d.add(hook+".reply", "a local response", "none")
	}
	for _, name := range sortedKeys(e.Headers) {
		got, ok := c.after[headerPrefix+textproto.CanonicalMIMEHeaderKey(name)]
		d.value(hook+".headers."+name, e.Headers[name], got, ok)
	}
	str := func(field, want string) {
		if want != "" && c.after[field] != want {
			d.add(hook+"."+field, strconv.Quote(want), strconv.Quote(c.after[field]))
		}
	}
	str("method", e.Method)
	str("path", e.Path)
	if e.Query != nil && c.after["query"] != *e.Query {
		d.add(hook+".query", strconv.Quote(*e.Query), strconv.Quote(c.after["query"]))
	}
	if e.Status != 0 && c.after["status"] != strconv.Itoa(e.Status) {
		d.add(hook+".status", strconv.Itoa(e.Status), orNone(c.after["status"]))
	}
	if e.Body != nil {
		field := "request body"
		if hook == "response_headers" {
			field = "response body"
		}
		if c.after[field] != *e.Body {
			d.add(hook+".body", strconv.Quote(*e.Body), strconv.Quote(c.after[field]))
		}
	}
	d.state(hook, e.State, c)
}

func (d *diffs) message(what string, e *MessageExpect, c *Call) {
	if c.Failure != nil {
		return
	}
	if e.Action != "" && e.Action != c.Action {
		d.add(what+".action", strconv.Quote(e.Action), strconv.Quote(c.Action))
	}
	if e.Payload != nil && c.forwarded != *e.Payload {
		d.add(what+".payload", strconv.Quote(*e.Payload), strconv.Quote(c.forwarded))
	}
	if e.PayloadBase64 != nil {
		if got := base64.StdEncoding.EncodeToString([]byte(c.forwarded)); got != *e.PayloadBase64 {
			d.add(what+".payload_base64", *e.PayloadBase64, got)
		}
	}
	if e.Inject != nil {
		var got []string
		for _, in := range c.Inject {
			got = append(got, in.Payload)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", e.Inject) {
			d.add(what+".inject", fmt.Sprintf("%q", e.Inject), fmt.Sprintf("%q", got))
		}
	}
	if e.CloseCode != 0 && e.CloseCode != c.CloseCode {
		d.add(what+".close_code", strconv.Itoa(e.CloseCode), strconv.Itoa(c.CloseCode))
	}
	if e.CloseReason != nil && *e.CloseReason != c.CloseReason {
		d.add(what+".close_reason", strconv.Quote(*e.CloseReason), strconv.Quote(c.CloseReason))
	}
	d.state(what, e.State, c)
}

func (d *diffs) state(what string, want map[string]string, c *Call) {
	for _, key := range sortedKeys(want) {
		got, ok := c.state[key]
		d.value(what+".state."+key, want[key], got, ok)
	}
}

func findCall(res *Result, hook string) *Call {
	for _, c := range res.Calls {
		if c.Hook == hook {
			return c
		}
	}
	return nil
}

func replySummary(c *Call) string {
	if c.Reply == nil {
		return ""
	}
	return fmt.Sprintf(" (%d %q)", c.Reply.Status, firstLine(c.Reply.Body))
}

func allLogs(res *Result) string {
	var b strings.Builder
	add := func(ls []LogLine) {
		for _, l := range ls {
			b.WriteString(l.Message + "\n")
		}
	}
	add(res.Configure)
	for _, c := range res.Calls {
		add(c.Logs)
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
