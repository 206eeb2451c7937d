// Command headers is a Sluice filter that adds, sets and removes request and
// response headers, as its config says:
//
//	[plugin.config.request]
//	remove = ["X-Internal"]
//	set = { "X-Env" = "prod" }
//	add = { "Via" = "sluice", "X-Tag" = ["a", "b"] }
//	[plugin.config.response]
//	set = { "X-Powered-By" = "sluice" }
//
// Each side applies remove, then set, then add. A side with no rules does not
// register its hook, so the proxy never calls the filter for it.
package main

import (
	"encoding/json"
	"errors"
	"sort"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// values is one header's values: a JSON string or an array of strings.
type values []string

func (v *values) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = values{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("a header value must be a string or a list of strings")
	}
	*v = list
	return nil
}

// rules is the config of one side (request or response).
type rules struct {
	Remove []string          `json:"remove"`
	Set    map[string]values `json:"set"`
	Add    map[string]values `json:"add"`
}

// op is one header change, precomputed so a hook only walks a slice.
type op struct {
	kind  byte // 'r'emove, 's'et, 'a'dd
	name  string
	value string
}

var requestOps, responseOps []op

func compile(side string, r rules) ([]op, error) {
	var ops []op
	for _, n := range r.Remove {
		if !validName(n) {
			return nil, errors.New(side + ".remove: invalid header name " + quote(n))
		}
		ops = append(ops, op{kind: 'r', name: n})
	}
	for _, kind := range []byte{'s', 'a'} {
		m := r.Set
		if kind == 'a' {
			m = r.Add
		}
		// Map order is random; sort so the result is the same every time.
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !validName(n) {
				return nil, errors.New(side + ": invalid header name " + quote(n))
			}
			for i, v := range m[n] {
				if !validValue(v) {
					return nil, errors.New(side + ": invalid value for " + n)
				}
				k := kind
				if kind == 's' && i > 0 {
					k = 'a' // set with a list: the first replaces, the rest add
				}
				ops = append(ops, op{kind: k, name: n, value: v})
			}
		}
	}
	return ops, nil
}

func apply(h sluice.Header, ops []op) {
	for _, o := range ops {
		switch o.kind {
		case 'r':
			h.Remove(o.name)
		case 's':
			h.Set(o.name, o.value)
		case 'a':
			h.Add(o.name, o.value)
		}
	}
}

func configure(cfg []byte) error {
	var c struct {
		Request  rules `json:"request"`
		Response rules `json:"response"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return errors.New("headers: config: " + err.Error())
	}
	var err error
	if requestOps, err = compile("request", c.Request); err != nil {
		return errors.New("headers: " + err.Error())
	}
	if responseOps, err = compile("response", c.Response); err != nil {
		return errors.New("headers: " + err.Error())
	}
	// The proxy reads the filter's hooks after configure: a side without
	// rules costs nothing.
	if len(requestOps) == 0 {
		sluice.OnRequestHeaders(nil)
	}
	if len(responseOps) == 0 {
		sluice.OnResponseHeaders(nil)
	}
	return nil
}

func init() { register() }

// register installs the filter's handlers (a function of its own so tests
// can start again from the filter as loaded).
func register() {
	sluice.OnConfigure(configure)
	sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
		apply(req.Header(), requestOps)
		return sluice.Continue
	})
	sluice.OnResponseHeaders(func(resp sluice.Response) sluice.Action {
		apply(resp.Header(), responseOps)
		return sluice.Continue
	})
}

func main() {}

// validName reports whether n is an HTTP field name (an RFC 9110 token).
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}

// validValue reports whether v can be a header value: no control characters
// other than tab (a CR or LF would split the header).
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func quote(s string) string { return `"` + s + `"` }
