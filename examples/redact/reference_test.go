package main

// The scanner as it was before it read eight bytes at a time (a byte loop
// for words, one table lookup per byte): simple enough to trust, and kept
// as the reference that FuzzRedact compares the fast scanner with.

import "strings"

// A refRedactor masks one message. It scans JSON with a small hand-written
// parser instead of encoding/json: the message hook is the hot path, and
// decoding into maps and encoding again would allocate per value, lose the
// sender's key order and formatting, and (in TinyGo) run through slow
// reflection. The scanner copies the input to out only around what it
// replaces, so a message with nothing to mask costs one pass and no
// allocation.

// refMaxDepth bounds nesting; deeper input is not treated as JSON.
const refMaxDepth = 128

type refRedactor struct {
	in      []byte
	pos     int
	out     []byte // the result, valid when changed
	last    int    // in[:last] is already in out
	changed bool

	fields       [][]byte // lower-case field names
	words        [][]byte // lower-case words
	phrases      bool     // some word holds a separator: see maskPhrases
	longest      int      // length of the longest word
	maskValue    []byte   // the mask as a JSON string, quotes included
	maskInString []byte   // the mask escaped for inside a JSON string
	maskText     []byte   // the mask as it is, for plain text
}

// replace makes out hold in[last:a] followed by with, and skips in[a:b].
func (r *refRedactor) replace(a, b int, with []byte) {
	if !r.changed {
		r.out, r.changed = r.out[:0], true
	}
	r.out = append(r.out, r.in[r.last:a]...)
	r.out = append(r.out, with...)
	r.last = b
}

// result returns the redacted message and whether anything changed.
func (r *refRedactor) result() ([]byte, bool) {
	if !r.changed {
		return r.in, false
	}
	r.out = append(r.out, r.in[r.last:]...)
	return r.out, true
}

func (r *refRedactor) reset(in []byte) {
	r.in, r.pos, r.last, r.changed = in, 0, 0, false
}

// redactJSON masks fields (and words in string values) of a JSON document.
// It returns false when in is not JSON; nothing is then replaced.
func (r *refRedactor) redactJSON(in []byte) (ok bool) {
	r.reset(in)
	r.ws()
	if !r.value(0, false) {
		return false
	}
	r.ws()
	return r.pos == len(r.in)
}

func (r *refRedactor) ws() {
	for r.pos < len(r.in) {
		switch r.in[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// value scans one JSON value. With skip set (the value is being masked
// whole) nothing inside is replaced.
func (r *refRedactor) value(depth int, skip bool) bool {
	if r.pos >= len(r.in) || depth > refMaxDepth {
		return false
	}
	switch c := r.in[r.pos]; {
	case c == '{':
		return r.object(depth, skip)
	case c == '[':
		return r.array(depth, skip)
	case c == '"':
		start := r.pos + 1
		if !r.string() {
			return false
		}
		if !skip && len(r.words) > 0 {
			r.maskWords(start, r.pos-1, r.maskInString)
		}
		return true
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	return false
}

func (r *refRedactor) object(depth int, skip bool) bool {
	r.pos++ // {
	r.ws()
	if r.pos < len(r.in) && r.in[r.pos] == '}' {
		r.pos++
		return true
	}
	for {
		r.ws()
		if r.pos >= len(r.in) || r.in[r.pos] != '"' {
			return false
		}
		keyStart := r.pos + 1
		if !r.string() {
			return false
		}
		key := r.in[keyStart : r.pos-1]
		r.ws()
		if r.pos >= len(r.in) || r.in[r.pos] != ':' {
			return false
		}
		r.pos++
		r.ws()
		mask := !skip && r.isField(key)
		start := r.pos
		if !r.value(depth+1, skip || mask) {
			return false
		}
		if mask {
			r.replace(start, r.pos, r.maskValue)
		}
		r.ws()
		if r.pos >= len(r.in) {
			return false
		}
		switch r.in[r.pos] {
		case ',':
			r.pos++
		case '}':
			r.pos++
			return true
		default:
			return false
		}
	}
}

func (r *refRedactor) array(depth int, skip bool) bool {
	r.pos++ // [
	r.ws()
	if r.pos < len(r.in) && r.in[r.pos] == ']' {
		r.pos++
		return true
	}
	for {
		r.ws()
		if !r.value(depth+1, skip) {
			return false
		}
		r.ws()
		if r.pos >= len(r.in) {
			return false
		}
		switch r.in[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return true
		default:
			return false
		}
	}
}

// string scans a string starting at its opening quote and leaves pos after
// the closing one.
func (r *refRedactor) string() bool {
	r.pos++
	for r.pos < len(r.in) {
		switch c := r.in[r.pos]; {
		case c == '"':
			r.pos++
			return true
		case c == '\\':
			r.pos += 2
		case c < 0x20:
			return false
		default:
			r.pos++
		}
	}
	return false
}

func (r *refRedactor) literal(lit string) bool {
	if len(r.in)-r.pos < len(lit) || string(r.in[r.pos:r.pos+len(lit)]) != lit {
		return false
	}
	r.pos += len(lit)
	return true
}

// number scans a JSON number loosely: the characters a number may hold. A
// malformed number makes a malformed document, which the proxy forwards
// anyway; the scanner only needs to find where the value ends.
func (r *refRedactor) number() bool {
	start := r.pos
	for r.pos < len(r.in) {
		switch c := r.in[r.pos]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			r.pos++
		default:
			return r.pos > start
		}
	}
	return r.pos > start
}

// isField reports whether a raw (still escaped) key is a field to mask,
// ignoring ASCII case.
func (r *refRedactor) isField(key []byte) bool {
	for _, f := range r.fields {
		if refEqualFold(key, f) {
			return true
		}
	}
	return false
}

// redactText masks words in plain text.
func (r *refRedactor) redactText(in []byte) {
	r.reset(in)
	r.maskWords(0, len(in), r.maskText)
}

// maskWords replaces whole words of in[a:b], ignoring ASCII case, with mask.
// A word is delimited by anything that is not a letter, digit, '_' or a
// non-ASCII byte, so "secret" matches in "my secret!" but not in
// "secretary".
func (r *refRedactor) maskWords(a, b int, mask []byte) {
	if r.phrases {
		r.maskPhrases(a, b, mask)
		return
	}
	// Every word is one token: cut the text into tokens and compare each
	// with the words of its length. One table lookup per byte.
	in := r.in
	for i := a; i < b; {
		for i < b && !refWordByte[in[i]] {
			i++
		}
		start := i
		for i < b && refWordByte[in[i]] {
			i++
		}
		if n := i - start; n > 0 && n <= r.longest {
			for _, w := range r.words {
				if len(w) == n && refEqualFold(in[start:i], w) {
					r.replace(start, i, mask)
					break
				}
			}
		}
	}
}

// maskPhrases is maskWords for words that hold separators ("top secret"):
// it tries every word at every word start.
func (r *refRedactor) maskPhrases(a, b int, mask []byte) {
	in := r.in
	for i := a; i < b; {
		if i > a && refWordByte[in[i-1]] {
			i++
			continue
		}
		matched := 0
		for _, w := range r.words {
			end := i + len(w)
			if end <= b && refLower(in[i]) == w[0] && refEqualFold(in[i:end], w) && (end == b || !refWordByte[in[end]]) {
				matched = len(w)
				break
			}
		}
		if matched == 0 {
			i++
			continue
		}
		r.replace(i, i+matched, mask)
		i += matched
	}
}

// refWordByte holds the bytes words are made of: ASCII letters and digits, '_',
// and every byte of a multi-byte UTF-8 character (so "café" is one word).
var refWordByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
	}
	return t
}()

// setWords installs the (lower-case) words and picks the matching strategy.
func (r *refRedactor) setWords(words [][]byte) {
	r.words, r.phrases, r.longest = words, false, 0
	for _, w := range words {
		if len(w) > r.longest {
			r.longest = len(w)
		}
		for _, c := range w {
			if !refWordByte[c] {
				r.phrases = true
			}
		}
	}
}

func refLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// refEqualFold compares s with lower-case t, ignoring ASCII case in s.
func refEqualFold(s, t []byte) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if refLower(s[i]) != t[i] {
			return false
		}
	}
	return true
}

// newRefRedactor is newRedactor for the reference scanner.
func newRefRedactor(fields, words []string, mask string) *refRedactor {
	r := &refRedactor{
		maskValue:    append(append([]byte{'"'}, escapeJSON(mask)...), '"'),
		maskInString: escapeJSON(mask),
		maskText:     []byte(mask),
	}
	for _, f := range fields {
		r.fields = append(r.fields, []byte(strings.ToLower(f)))
	}
	var lower [][]byte
	for _, w := range words {
		lower = append(lower, []byte(strings.ToLower(w)))
	}
	r.setWords(lower)
	return r
}
