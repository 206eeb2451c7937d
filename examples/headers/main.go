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
// Each side applies remove, then set, then add, each in the order of the
// config. A side with no rules does not register its hook, so the proxy
// never calls the filter for it.
package main

import (
	"errors"

	"github.com/sluiceproxy/sluice/examples/internal/tinyjson"
	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// rules is the config of one side (request or response).
type rules struct {
	remove   []string
	set, add []tinyjson.Member // value: a string or a list of strings
}

func readRules(c *tinyjson.Config) rules {
	var r rules
	r.remove = c.Strings("remove")
	for _, key := range []string{"set", "add"} {
		v := c.Value(key)
		switch v.Kind {
		case tinyjson.Missing:
			continue
		case tinyjson.Object:
		default:
			c.Fail(key, "want a table of header = value")
			continue
		}
		if key == "set" {
			r.set = v.Members
		} else {
			r.add = v.Members
		}
	}
	return r
}

// values returns a header's values from config: a string or a list of
// strings.
func values(v tinyjson.Value) ([]string, bool) {
	switch v.Kind {
	case tinyjson.String:
		return []string{v.Str}, true
	case tinyjson.Array:
		out := make([]string, 0, len(v.Items))
		for _, it := range v.Items {
			if it.Kind != tinyjson.String {
				return nil, false
			}
			out = append(out, it.Str)
		}
		return out, true
	}
	return nil, false
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
	for _, n := range r.remove {
		if !validName(n) {
			return nil, errors.New(side + ".remove: invalid header name " + quote(n))
		}
		ops = append(ops, op{kind: 'r', name: n})
	}
	for _, kind := range []byte{'s', 'a'} {
		members, key := r.set, "set"
		if kind == 'a' {
			members, key = r.add, "add"
		}
		for _, m := range members {
			if !validName(m.Key) {
				return nil, errors.New(side + "." + key + ": invalid header name " + quote(m.Key))
			}
			vals, ok := values(m.Value)
			if !ok {
				return nil, errors.New(side + "." + key + ": " + m.Key + ": want a string or a list of strings")
			}
			for i, v := range vals {
				if !validValue(v) {
					return nil, errors.New(side + "." + key + ": invalid value for " + m.Key)
				}
				k := kind
				if kind == 's' && i > 0 {
					k = 'a' // set with a list: the first replaces, the rest add
				}
				ops = append(ops, op{kind: k, name: m.Key, value: v})
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
	c, err := tinyjson.NewConfig(cfg, "headers: config")
	if err != nil {
		return err
	}
	req, resp := readRules(c.Table("request")), readRules(c.Table("response"))
	if err := c.Done(); err != nil {
		return err
	}
	if requestOps, err = compile("request", req); err != nil {
		return errors.New("headers: config: " + err.Error())
	}
	if responseOps, err = compile("response", resp); err != nil {
		return errors.New("headers: config: " + err.Error())
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
