// Package tinyjson decodes JSON into a small tree of Values, for filter
// configs and tokens.
//
// It exists because encoding/json adds about 240 KB to a TinyGo module and
// decodes through reflection, which is slow in TinyGo; this package adds a
// few KB and needs no reflection. It is strict (RFC 8259: no trailing
// commas, no comments, control characters escaped, nothing after the
// value) and bounded (nesting deeper than MaxDepth is an error).
package tinyjson

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds nesting, so hostile input cannot exhaust the stack. It is
// low because a TinyGo guest's stack is small: a JWT header nested 33 levels
// deep overflowed it at 64 and trapped the filter. Configs and tokens never
// need more than a few levels.
const MaxDepth = 16

// Kind is the type of a Value. The zero Kind, Missing, is what Get returns
// for an absent key.
type Kind uint8

// Kinds.
const (
	Missing Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// String returns the kind's JSON name ("missing" for Missing).
func (k Kind) String() string {
	return [...]string{"missing", "null", "boolean", "number", "string", "array", "object"}[k]
}

// article returns the kind with its indefinite article: "a number", "an array".
func (k Kind) article() string {
	if k == Array || k == Object {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// Value is one decoded JSON value.
type Value struct {
	Kind Kind
	Bool bool
	// Num is a Number's value; Raw keeps its text for exact integers.
	Num float64
	Raw string
	// Str is a String's (unescaped) value.
	Str string
	// Items are an Array's elements.
	Items []Value
	// Members are an Object's members, in document order.
	Members []Member
}

// Member is one name/value pair of an Object.
type Member struct {
	Key   string
	Value Value
}

// Get returns the member key of an Object (the last one if repeated), or a
// Missing Value.
func (v Value) Get(key string) Value {
	for i := len(v.Members) - 1; i >= 0; i-- {
		if v.Members[i].Key == key {
			return v.Members[i].Value
		}
	}
	return Value{}
}

// Int returns a Number as an int64, and false when it is not a whole number
// that fits.
func (v Value) Int() (int64, bool) {
	if v.Kind != Number {
		return 0, false
	}
	if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
		return n, true
	}
	if v.Num == float64(int64(v.Num)) && v.Num < 1<<63 && v.Num >= -(1<<63) {
		return int64(v.Num), true
	}
	return 0, false
}

// Parse decodes one JSON document.
func Parse(b []byte) (Value, error) {
	p := parser{in: b}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.ws()
	if p.pos != len(p.in) {
		return Value{}, p.errorf("unexpected data after the value")
	}
	return v, nil
}

type parser struct {
	in  []byte
	pos int
}

// SyntaxError is a JSON syntax error at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

func (p *parser) errorf(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func (p *parser) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errorf("nested too deeply")
	}
	if p.pos >= len(p.in) {
		return Value{}, p.errorf("unexpected end")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return Value{Kind: String, Str: s}, err
	case c == 't':
		return Value{Kind: Bool, Bool: true}, p.literal("true")
	case c == 'f':
		return Value{Kind: Bool}, p.literal("false")
	case c == 'n':
		return Value{Kind: Null}, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return Value{}, p.errorf("unexpected character " + strconv.QuoteRune(rune(p.in[p.pos])))
}

func (p *parser) object(depth int) (Value, error) {
	v := Value{Kind: Object}
	p.pos++
	p.ws()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.ws()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return Value{}, p.errorf("want a string key")
		}
		key, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.ws()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return Value{}, p.errorf("want ':'")
		}
		p.pos++
		p.ws()
		val, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Members = append(v.Members, Member{Key: key, Value: val})
		p.ws()
		if p.pos >= len(p.in) {
			return Value{}, p.errorf("unexpected end in an object")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errorf("want ',' or '}'")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	v := Value{Kind: Array}
	p.pos++
	p.ws()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.ws()
		item, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Items = append(v.Items, item)
		p.ws()
		if p.pos >= len(p.in) {
			return Value{}, p.errorf("unexpected end in an array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errorf("want ',' or ']'")
		}
	}
}

func (p *parser) literal(lit string) error {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) number() (Value, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.in[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.in) && p.in[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return Value{}, p.errorf("invalid number")
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return Value{}, p.errorf("invalid number")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return Value{}, p.errorf("invalid number")
		}
	}
	raw := string(p.in[start:p.pos])
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return Value{}, &SyntaxError{Offset: start, Msg: "number out of range"}
	}
	return Value{Kind: Number, Num: f, Raw: raw}, nil
}

var errSurrogate = errors.New("invalid surrogate")

// string decodes a string starting at its opening quote.
//
// Its complexity (about 28) is the escape switch of RFC 8259 section 7 with
// the surrogate-pair checks, kept in one place so every rule is read
// together with the others.
func (p *parser) string() (string, error) {
	p.pos++
	start := p.pos
	// Fast path: no escapes, one conversion.
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			s := string(p.in[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in a string")
		}
		p.pos++
	}
	b := append([]byte(nil), p.in[start:p.pos]...)
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			b = append(b, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.in) {
			break
		}
		e := p.in[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if r >= 0xd800 && r < 0xdc00 { // a high surrogate needs its low half
				if p.pos+1 < len(p.in) && p.in[p.pos] == '\\' && p.in[p.pos+1] == 'u' {
					p.pos += 2
					lo, ok := p.hex4()
					if !ok || lo < 0xdc00 || lo >= 0xe000 {
						return "", p.errorf(errSurrogate.Error())
					}
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xdc00 && r < 0xe000 {
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.errorf("invalid escape")
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.in)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
