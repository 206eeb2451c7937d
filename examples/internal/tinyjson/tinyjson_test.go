package tinyjson

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0.5e+3`, `12345678901234567890`,
		`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\u4e2d\ud83d\ude00"`, `"raw é 中"`,
		`{"a":[1,{"b":null}],"c":"d","a":2}`, " \n\t[ 1 , 2 ]\r\n",
	} {
		v, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if got := toAny(v); !equal(got, want) {
			t.Errorf("%s: got %#v, want %#v", in, got, want)
		}
	}
}

func toAny(v Value) any {
	switch v.Kind {
	case Bool:
		return v.Bool
	case Number:
		return v.Num
	case String:
		return v.Str
	case Array:
		out := []any{}
		for _, it := range v.Items {
			out = append(out, toAny(it))
		}
		return out
	case Object:
		out := map[string]any{}
		for _, m := range v.Members {
			out[m.Key] = toAny(m.Value)
		}
		return out
	}
	return nil
}

func equal(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[1,]`, `{"a":1,}`, `{a:1}`, `'a'`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`,
		`"unterminated`, "\"ctl \x01\"", `"bad \x"`, `"\u12"`, `"\ud800\u0041"`, `{} {}`, `[1 2]`,
		strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
		if json.Valid([]byte(in)) && !strings.HasPrefix(in, "[[[") && in != `"\ud800\u0041"` {
			t.Errorf("%q is valid JSON: the test is wrong", in)
		}
	}
}

func TestInt(t *testing.T) {
	for in, want := range map[string]int64{`7`: 7, `-3`: -3, `1e3`: 1000, `9007199254740993`: 9007199254740993} {
		v, _ := Parse([]byte(in))
		if n, ok := v.Int(); !ok || n != want {
			t.Errorf("%s: %d %v", in, n, ok)
		}
	}
	for _, in := range []string{`1.5`, `"7"`, `1e30`} {
		v, _ := Parse([]byte(in))
		if _, ok := v.Int(); ok {
			t.Errorf("%s: Int ok", in)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := NewConfig([]byte(`{"name":"x","n":3,"list":["a","b"],"sub":{"k":"v"}}`), "f: config")
	if err != nil {
		t.Fatal(err)
	}
	if c.String("name", "") != "x" || c.Int("n", 0) != 3 || strings.Join(c.Strings("list"), ",") != "a,b" ||
		c.String("absent", "def") != "def" || c.Table("sub").String("k", "") != "v" {
		t.Fatal("values")
	}
	if err := c.Done(); err != nil {
		t.Fatal(err)
	}

	for raw, want := range map[string]string{
		`[]`:                         "f: config: want a table, got an array",
		`{"name":1}`:                 "f: config: name: want a string, got a number",
		`{"n":1.5}`:                  "f: config: n: want a whole number",
		`{"list":["a",1]}`:           "f: config: list: want a list of strings, found a number",
		`{"typo":1}`:                 "f: config: unknown key typo",
		`{"sub":{"k":"v","x":true}}`: "f: config: sub: unknown key x",
		`{"sub":[]}`:                 "f: config: sub: want a table, got an array",
		`{`:                          "f: config: invalid JSON at offset 1: want a string key",
	} {
		c, err := NewConfig([]byte(raw), "f: config")
		if err == nil {
			c.String("name", "")
			c.Int("n", 0)
			c.Strings("list")
			c.Table("sub").String("k", "")
			err = c.Done()
		}
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
