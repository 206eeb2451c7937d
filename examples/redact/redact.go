package main

import (
	"errors"
	"math/bits"
	"strings"
)

// A redactor masks one message. It scans JSON with a small hand-written
// parser instead of encoding/json: the message hook is the hot path, and
// decoding into maps and encoding again would allocate per value, lose the
// sender's key order and formatting, and (in TinyGo) run through slow
// reflection. The scanner copies the input to out only around what it
// replaces, so a message with nothing to mask costs one pass and no
// allocation.
//
// Inside the proxy every loop iteration of the guest pays for the check
// that lets a hook deadline stop a runaway filter (a counter the host
// compiles in; it was about 25 ns per iteration when wazero's
// WithCloseOnContextDone did it). So the scanner reads 64 bytes per
// iteration over long runs, tests
// eight at once with bit tricks (SWAR: SIMD within a register), jumps
// straight to the byte that matters, and masks the words of a JSON string
// in the same pass that finds its end. README.md has the why and the
// figures; reference_test.go keeps the byte-at-a-time scanner it replaced,
// which FuzzRedact compares it with.

// maxDepth bounds nesting; deeper input is not treated as JSON.
const maxDepth = 128

type redactor struct {
	in      []byte
	pos     int
	out     []byte // the result, valid when changed
	last    int    // in[:last] is already in out
	changed bool

	fields       []pattern
	words        []pattern
	maskValue    []byte // the mask as a JSON string, quotes included
	maskInString []byte // the mask escaped for inside a JSON string
	maskText     []byte // the mask as it is, for plain text

	// byFirst lists, for each lower-case byte, the indexes in words of the
	// words that start with it, in config order.
	byFirst [256][]int
	// The filter that finds where words may start (see firstBytes): a
	// position passes when, or-ed with 0x20, its byte equals first[k] and
	// the next byte second[k] (or anything, where anySecond[k] is set), for
	// some slot k. Each value holds its byte eight times. Unused slots
	// repeat slot 0.
	first, second, anySecond [slots]uint64
	// every is msb, passing every byte, when the words need more than
	// slots filters: then every position after a separator is a candidate.
	every uint64
	// pairs is how many slots are in use (0 with every).
	pairs int
	// inString is set when no word holds a quote, a backslash or a control
	// character: a match then never crosses the end of a JSON string or an
	// escape, and words are masked while the string is scanned.
	inString bool
}

// slots is how many (first byte, second byte) filters firstBytes tests at
// once; more distinct pairs fall back to testing every word start.
const slots = 4

// A pattern is a lower-case field name or word, prepared for comparing
// eight bytes at a time regardless of ASCII case.
type pattern struct {
	text []byte
	// For each eight bytes of text: the bytes, and 0x20 where the byte is a
	// lower-case ASCII letter, so that an input byte or-ed with it equals
	// the pattern's byte exactly when it is that letter in either case.
	val, fold []uint64
}

func newPattern(text []byte) pattern {
	p := pattern{text: text}
	for k := 0; k < len(text); k += 8 {
		var val, fold uint64
		for j := k; j < len(text) && j < k+8; j++ {
			val |= uint64(text[j]) << (8 * (j - k))
			if text[j] >= 'a' && text[j] <= 'z' {
				fold |= 0x20 << (8 * (j - k))
			}
		}
		p.val, p.fold = append(p.val, val), append(p.fold, fold)
	}
	return p
}

// at reports whether in[i:] starts with p, ignoring ASCII case in in. The
// caller checks that i+len(p.text) <= len(in).
func (p *pattern) at(in []byte, i int) bool {
	n := len(p.text)
	if (load(in, i)|p.fold[0])&lowBytes(min(n, 8)) != p.val[0] {
		return false
	}
	for k := 1; 8*k < n; k++ {
		if (load(in, i+8*k)|p.fold[k])&lowBytes(min(n-8*k, 8)) != p.val[k] {
			return false
		}
	}
	return true
}

// newRedactor prepares the fields, words (both matched ignoring case) and
// mask of a config.
func newRedactor(fields, words []string, mask string) (redactor, error) {
	r := redactor{
		maskValue:    append(append([]byte{'"'}, escapeJSON(mask)...), '"'),
		maskInString: escapeJSON(mask),
		maskText:     []byte(mask),
	}
	for _, f := range fields {
		if f == "" {
			return r, errors.New("redact: config: fields: empty name")
		}
		r.fields = append(r.fields, newPattern([]byte(strings.ToLower(f))))
	}
	var lower [][]byte
	for _, w := range words {
		if w == "" {
			return r, errors.New("redact: config: words: empty word")
		}
		lower = append(lower, []byte(strings.ToLower(w)))
	}
	r.setWords(lower)
	return r, nil
}

// setWords installs the (lower-case) words and the filter that finds where
// they may start.
func (r *redactor) setWords(words [][]byte) {
	r.words, r.byFirst, r.every, r.pairs, r.inString = nil, [256][]int{}, 0, 0, true
	type pair struct {
		first, second byte
		any           bool
	}
	var pairs []pair
	for i, w := range words {
		r.words = append(r.words, newPattern(w))
		r.byFirst[w[0]] = append(r.byFirst[w[0]], i)
		for _, c := range w {
			if c == '"' || c == '\\' || c < 0x20 {
				r.inString = false
			}
		}
		// The filter or-s input bytes with 0x20 (to fold case), so it looks
		// for the pattern's bytes or-ed with 0x20 too.
		p := pair{first: w[0] | 0x20, any: len(w) == 1}
		if !p.any {
			p.second = w[1] | 0x20
		}
		known := false
		for _, q := range pairs {
			known = known || q == p
		}
		if !known {
			pairs = append(pairs, p)
		}
	}
	switch {
	case len(pairs) == 0:
		return
	case len(pairs) > slots:
		r.every = msb
		return
	}
	r.pairs = len(pairs)
	for k := range r.first {
		p := pairs[0]
		if k < len(pairs) {
			p = pairs[k]
		}
		r.first[k], r.second[k] = lsb*uint64(p.first), lsb*uint64(p.second)
		r.anySecond[k] = 0x80 << 56 // the next byte is in the next eight
		if p.any {
			r.anySecond[k] = msb
		}
	}
}

// replace makes out hold in[last:a] followed by with, and skips in[a:b].
func (r *redactor) replace(a, b int, with []byte) {
	if !r.changed {
		r.out, r.changed = r.out[:0], true
	}
	r.out = append(r.out, r.in[r.last:a]...)
	r.out = append(r.out, with...)
	r.last = b
}

// result returns the redacted message and whether anything changed.
func (r *redactor) result() ([]byte, bool) {
	if !r.changed {
		return r.in, false
	}
	r.out = append(r.out, r.in[r.last:]...)
	return r.out, true
}

func (r *redactor) reset(in []byte) {
	r.in, r.pos, r.last, r.changed = in, 0, 0, false
}

// redactJSON masks fields (and words in string values) of a JSON document.
// It returns false when in is not JSON; nothing is then replaced.
func (r *redactor) redactJSON(in []byte) (ok bool) {
	r.reset(in)
	r.ws()
	if !r.value(0, false) {
		return false
	}
	r.ws()
	return r.pos == len(r.in)
}

// ws skips whitespace. It is small enough for Go to inline: most calls
// find none, and in a Go build every call costs a cancellation check.
func (r *redactor) ws() {
	if r.pos < len(r.in) && r.in[r.pos] <= ' ' {
		r.skipSpace()
	}
}

func (r *redactor) skipSpace() {
	in, i := r.in, r.pos
	if !isSpace(in[i]) {
		return
	}
	for i < len(in) {
		v := load(in, i)
		m := ^(zeros(v^lsb*' ') | zeros(v^lsb*'\t') | zeros(v^lsb*'\n') | zeros(v^lsb*'\r')) & msb
		if m &= lowBytes(min(len(in)-i, 8)); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		i += 8
	}
	r.pos = min(i, len(in))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// value scans one JSON value. With skip set (the value is being masked
// whole) nothing inside is replaced.
func (r *redactor) value(depth int, skip bool) bool {
	if r.pos >= len(r.in) || depth > maxDepth {
		return false
	}
	switch c := r.in[r.pos]; {
	case c == '{':
		return r.object(depth, skip)
	case c == '[':
		return r.array(depth, skip)
	case c == '"':
		start := r.pos + 1
		switch {
		case skip || len(r.words) == 0:
			return r.string()
		case r.inString:
			r.pos = r.maskWords(start, start, len(r.in), true, r.maskInString)
			return r.pos >= 0
		}
		if !r.string() {
			return false
		}
		r.maskWords(start, start, r.pos-1, false, r.maskInString)
		return true
	case c == 't':
		return r.literal(litTrue, 4)
	case c == 'f':
		return r.literal(litFalse, 5)
	case c == 'n':
		return r.literal(litNull, 4)
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	return false
}

func (r *redactor) object(depth int, skip bool) bool {
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
		mask := !skip && r.isField(keyStart, r.pos-1)
		r.ws()
		if r.pos >= len(r.in) || r.in[r.pos] != ':' {
			return false
		}
		r.pos++
		r.ws()
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

func (r *redactor) array(depth int, skip bool) bool {
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
func (r *redactor) string() bool {
	in, i := r.in, r.pos+1
	for {
		// Sixty-four ordinary bytes per iteration.
		for ; i+64 <= len(in); i += 64 {
			p := in[i : i+64]
			if specialRun(le(p), le(p[8:]), le(p[16:]), le(p[24:]), le(p[32:]), le(p[40:]), le(p[48:]), le(p[56:]))&msb != 0 {
				break
			}
		}
		// Then eight, exactly.
		if i >= len(in) {
			return false
		}
		m := special(load(in, i)) & lowBytes(min(len(in)-i, 8))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) >> 3
		switch in[i] {
		case '"':
			r.pos = i + 1
			return true
		case '\\':
			i += 2
		default: // a control character
			return false
		}
	}
}

// The literals as load reads them.
const (
	litTrue  = 't' | 'r'<<8 | 'u'<<16 | 'e'<<24
	litFalse = 'f' | 'a'<<8 | 'l'<<16 | 's'<<24 | 'e'<<32
	litNull  = 'n' | 'u'<<8 | 'l'<<16 | 'l'<<24
)

// literal scans the n-byte literal lit (a load of its bytes). Past the
// end of the input load reads zeros, which match no literal.
func (r *redactor) literal(lit uint64, n int) bool {
	if load(r.in, r.pos)&lowBytes(n) != lit {
		return false
	}
	r.pos += n
	return true
}

// number scans a JSON number loosely: the characters a number may hold. A
// malformed number makes a malformed document, which the proxy forwards
// anyway; the scanner only needs to find where the value ends. The first
// byte is a digit or '-'.
func (r *redactor) number() bool {
	in, i := r.in, r.pos
	for i < len(in) {
		v := load(in, i)
		num := between(v, '0', '9') | zeros(v^lsb*'-') | zeros(v^lsb*'+') | zeros(v^lsb*'.') | zeros(v|lsb*0x20^lsb*'e')
		if m := ^num & msb & lowBytes(min(len(in)-i, 8)); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		i += 8
	}
	r.pos = min(i, len(in))
	return true
}

// isField reports whether the raw (still escaped) key in[a:b] is a field
// to mask, ignoring ASCII case.
func (r *redactor) isField(a, b int) bool {
	for k := range r.fields {
		if f := &r.fields[k]; len(f.text) == b-a && f.at(r.in, a) {
			return true
		}
	}
	return false
}

// redactText masks words in plain text.
func (r *redactor) redactText(in []byte) {
	r.reset(in)
	if len(r.words) > 0 {
		r.maskWords(0, 0, len(in), false, r.maskText)
	}
}

// maskWords replaces whole words of in[a:b], ignoring ASCII case, with mask,
// looking from i on. A word is delimited by anything that is not a letter,
// digit, '_' or a non-ASCII byte, so "secret" matches in "my secret!" but
// not in "secretary". A word may hold such separators ("top secret"); it
// then still starts and ends at a word boundary. At a position where
// several words match, the first in config order wins.
//
// With json set, in[a:] is the inside of a JSON string (the words are
// inString) and b is len(in): the scan also finds the string's closing
// quote and returns the position after it, or -1 when the string is not
// valid (it does not end, or holds a control character). Without, it
// returns b.
func (r *redactor) maskWords(i, a, b int, json bool, mask []byte) int {
	in := r.in
	f1, f2, any := r.first[0], r.second[0], r.anySecond[0]
	for {
		// Sixty-four bytes per iteration while none may start a word (by
		// the filters alone; the test of the byte before comes below) and,
		// in JSON, none ends a run of ordinary string bytes (see string).
		// Without filters (every), a word may start only after a separator:
		// the loop skips blocks without one, unless i itself may start one.
		fast := r.every == 0 || i > a && i < b && wordByte[in[i-1]]
		for ; fast && i+64 <= b; i += 64 {
			p := in[i : i+64]
			v0, v1, v2, v3 := le(p), le(p[8:]), le(p[16:]), le(p[24:])
			v4, v5, v6, v7 := le(p[32:]), le(p[40:]), le(p[48:]), le(p[56:])
			var hit uint64
			if r.pairs == 1 { // firstBytes for one filter, spelled out
				l0, l1, l2, l3 := v0|lsb*0x20, v1|lsb*0x20, v2|lsb*0x20, v3|lsb*0x20
				l4, l5, l6, l7 := v4|lsb*0x20, v5|lsb*0x20, v6|lsb*0x20, v7|lsb*0x20
				x0, x1, x2, x3 := l0^f1, l1^f1, l2^f1, l3^f1 // zero where a first byte is
				x4, x5, x6, x7 := l4^f1, l5^f1, l6^f1, l7^f1
				y0, y1, y2, y3 := l0^f2, l1^f2, l2^f2, l3^f2 // zero where a second byte is
				y4, y5, y6, y7 := l4^f2, l5^f2, l6^f2, l7^f2
				hit = (x0-lsb)&^x0&((y0-lsb)&^y0>>8|any) |
					(x1-lsb)&^x1&((y1-lsb)&^y1>>8|any) |
					(x2-lsb)&^x2&((y2-lsb)&^y2>>8|any) |
					(x3-lsb)&^x3&((y3-lsb)&^y3>>8|any) |
					(x4-lsb)&^x4&((y4-lsb)&^y4>>8|any) |
					(x5-lsb)&^x5&((y5-lsb)&^y5>>8|any) |
					(x6-lsb)&^x6&((y6-lsb)&^y6>>8|any) |
					(x7-lsb)&^x7&((y7-lsb)&^y7>>8|any)
			} else if r.every != 0 { // a separator anywhere
				hit = ^(wordBytes(v0) & wordBytes(v1) & wordBytes(v2) & wordBytes(v3) &
					wordBytes(v4) & wordBytes(v5) & wordBytes(v6) & wordBytes(v7))
			} else {
				hit = r.firstBytes(v0) | r.firstBytes(v1) | r.firstBytes(v2) | r.firstBytes(v3) |
					r.firstBytes(v4) | r.firstBytes(v5) | r.firstBytes(v6) | r.firstBytes(v7)
			}
			if json {
				hit |= specialRun(v0, v1, v2, v3, v4, v5, v6, v7)
			}
			if hit&msb != 0 {
				break
			}
		}
		if i >= b {
			if json {
				return -1
			}
			return b
		}
		// Then eight bytes exactly: in JSON, up to the first special byte.
		n := min(b-i, 8)
		v, valid := load(in, i), lowBytes(n)
		var sp uint64
		if json {
			if sp = special(v) & valid; sp != 0 {
				valid &= sp&-sp - 1
			}
		}
		var prev uint64 // 0x80 when the byte before is a word byte
		if i > a && wordByte[in[i-1]] {
			prev = 0x80
		}
		if m := r.firstBytes(v) &^ (wordBytes(v)<<8 | prev) & valid; m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			if n := r.wordAt(i, b); n > 0 {
				r.replace(i, i+n, mask)
				i += n
			} else {
				i++
			}
			continue
		}
		if sp == 0 {
			i += n
			continue
		}
		i += bits.TrailingZeros64(sp) >> 3
		switch in[i] {
		case '"':
			return i + 1
		case '\\':
			// Skip the escaped byte when it could end the string or
			// fail it (at the end of the input, in[i] is the backslash).
			// An ordinary one is read as such: words are matched in the
			// raw text, where a word may start after a backslash (`\.x`
			// holds the word x, `\nx` does not).
			if c := in[min(i+1, len(in)-1)]; c == '"' || c == '\\' || c < 0x20 {
				i++
			}
			i++
		default: // a control character
			return -1
		}
	}
}

// wordAt returns the length of the first word (in config order) that in[i:]
// starts with and that ends at b or before a separator, or 0.
func (r *redactor) wordAt(i, b int) int {
	for _, k := range r.byFirst[lower(r.in[i])] {
		w := &r.words[k]
		end := i + len(w.text)
		if end <= b && w.at(r.in, i) && (end == b || !wordByte[r.in[end]]) {
			return len(w.text)
		}
	}
	return 0
}

// wordByte holds the bytes words are made of: ASCII letters and digits, '_',
// and every byte of a multi-byte UTF-8 character (so "café" is one word).
var wordByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
	}
	return t
}()

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// escapeJSON escapes s for the inside of a JSON string.
func escapeJSON(s string) []byte {
	const hex = "0123456789abcdef"
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}
