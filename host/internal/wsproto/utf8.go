package wsproto

import "unicode/utf8"

// utf8Checker validates a text message as its fragments arrive, so that a
// message that cannot become valid is refused at the fragment that breaks
// it, not at its end. It checks what was appended to the message since the
// last call, carrying a character split across fragments over.
type utf8Checker struct {
	checked int // msg[:checked] is valid and ends at a character boundary
}

// check reports whether msg (the whole message so far) can still be valid
// UTF-8. final says the message is complete: no character may be left open.
func (c *utf8Checker) check(msg []byte, final bool) bool {
	p := msg[c.checked:]
	if final {
		c.checked = len(msg)
		return utf8.Valid(p)
	}
	// Find where an incomplete character at the end starts, if any.
	open := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				open = i
			}
			break
		}
	}
	if !utf8.Valid(p[:open]) || !validPrefix(p[open:]) {
		return false
	}
	c.checked += open
	return true
}

// validPrefix reports whether p, an incomplete character, can still be
// completed into a valid one (RFC 3629's table: no overlong forms, no
// surrogates, nothing above U+10FFFF).
func validPrefix(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	lo, hi := byte(0x80), byte(0xbf)
	switch b := p[0]; {
	case b >= 0xc2 && b <= 0xdf, b >= 0xe1 && b <= 0xec, b == 0xee || b == 0xef, b >= 0xf1 && b <= 0xf3:
	case b == 0xe0:
		lo = 0xa0
	case b == 0xed:
		hi = 0x9f
	case b == 0xf0:
		lo = 0x90
	case b == 0xf4:
		hi = 0x8f
	default:
		return false
	}
	for i, b := range p[1:] {
		if i == 0 && (b < lo || b > hi) || i > 0 && (b < 0x80 || b > 0xbf) {
			return false
		}
	}
	return true
}
