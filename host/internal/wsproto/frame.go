package wsproto

import (
	"encoding/binary"
	"math/rand/v2"
)

// The opcodes of RFC 6455 section 5.2.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// The close codes the package sends (RFC 6455 section 7.4.1).
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	CloseNoStatus      = 1005 // never on the wire: a close frame without a payload
	CloseAbnormal      = 1006 // never on the wire: no close frame at all
	CloseInvalidData   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseInternalError = 1011
)

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// ValidCloseCode reports whether code may be sent in a close frame.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendHeader appends a frame header. A masked header gets a random key,
// which it returns for the payload.
func AppendHeader(dst []byte, fin, rsv1 bool, op byte, n int, masked bool) ([]byte, [4]byte) {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	var m byte
	if masked {
		m = 0x80
	}
	dst = append(dst, b0)
	switch {
	case n < 126:
		dst = append(dst, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var key [4]byte
	if masked {
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
		dst = append(dst, key[:]...)
	}
	return dst, key
}

// AppendFrame appends one whole frame: header, then the payload, masked
// with the header's key when masked is set (frames a client sends).
func AppendFrame(dst []byte, fin, rsv1 bool, op byte, payload []byte, masked bool) []byte {
	dst, key := AppendHeader(dst, fin, rsv1, op, len(payload), masked)
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		mask(dst[start:], key, 0)
	}
	return dst
}

// CloseFrame returns the payload of a close frame: code and reason, the
// reason cut at a character boundary to fit. Code CloseNoStatus gives an
// empty payload.
func CloseFrame(code int, reason string) []byte {
	if code == CloseNoStatus {
		return nil
	}
	reason = trimReason(reason)
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// trimReason cuts a close reason to the 123 bytes a close frame holds, at a
// character boundary.
func trimReason(s string) string {
	if len(s) <= MaxControlPayload-2 {
		return s
	}
	s = s[:MaxControlPayload-2]
	for len(s) > 0 && !(&utf8Checker{}).check([]byte(s), true) {
		s = s[:len(s)-1]
	}
	return s
}

// mask XORs p with key, starting at key offset pos.
func mask(p []byte, key [4]byte, pos int) int {
	for i := range p {
		p[i] ^= key[(pos+i)&3]
	}
	return (pos + len(p)) & 3
}
