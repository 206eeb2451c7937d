package wsconform

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
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

// Frame is one frame as it goes on the wire. Fields are taken as they are:
// a Frame may break every rule of RFC 6455, which is what it is for.
type Frame struct {
	Fin     bool
	RSV     byte // the three reserved bits, 0-7 (RSV1 is 4)
	Opcode  byte
	Payload []byte
	// Unmasked sends a client frame without a mask, which servers must
	// refuse.
	Unmasked bool
	// Length, when non-zero, is written as the payload length instead of
	// len(Payload).
	Length uint64
}

// Encode returns the frame's bytes; mask is the masking key to use unless
// the frame is Unmasked.
func (f Frame) Encode(mask [4]byte) []byte {
	b := make([]byte, 0, 14+len(f.Payload))
	b0 := f.Opcode&0x0f | (f.RSV&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	n := f.Length
	if n == 0 {
		n = uint64(len(f.Payload))
	}
	var m byte
	if !f.Unmasked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, n)
	}
	if f.Unmasked {
		return append(b, f.Payload...)
	}
	b = append(b, mask[:]...)
	for i, c := range f.Payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

// Text is a final, unfragmented text frame.
func Text(s string) Frame { return Frame{Fin: true, Opcode: OpText, Payload: []byte(s)} }

// Binary is a final, unfragmented binary frame.
func Binary(b []byte) Frame { return Frame{Fin: true, Opcode: OpBinary, Payload: b} }

// Ping is a ping frame.
func Ping(s string) Frame { return Frame{Fin: true, Opcode: OpPing, Payload: []byte(s)} }

// Pong is a pong frame.
func Pong(s string) Frame { return Frame{Fin: true, Opcode: OpPong, Payload: []byte(s)} }

// Close is a close frame with a code and a reason.
func Close(code int, reason string) Frame {
	return Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(code, reason)}
}

// CloseEmpty is a close frame without a payload (no status code).
func CloseEmpty() Frame { return Frame{Fin: true, Opcode: OpClose} }

// ClosePayload formats a close frame's payload.
func ClosePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// Fragment is one frame of a fragmented message: op is OpText or OpBinary
// for the first, OpContinuation for the others.
func Fragment(op byte, fin bool, p string) Frame {
	return Frame{Fin: fin, Opcode: op, Payload: []byte(p)}
}

// EventKind says what a peer sent.
type EventKind int

// The events Read reports.
const (
	EvText   EventKind = iota // a whole text message
	EvBinary                  // a whole binary message
	EvPing
	EvPong
	EvClose   // a close frame; Code 1005 when it had no payload
	EvBad     // the peer broke the protocol; Data says how
	EvTimeout // nothing ended the exchange in time
)

// Event is one thing the client received.
type Event struct {
	Kind   EventKind
	Data   []byte // message payload, control payload, or reason
	Code   int    // close code
	Reason string // close reason
	// Compressed says that the message arrived with RSV1 set
	// (permessage-deflate); Data is inflated.
	Compressed bool
}

// String renders an event compactly for test failures.
func (e Event) String() string {
	switch e.Kind {
	case EvText:
		return "text(" + short(e.Data) + ")" + zflag(e.Compressed)
	case EvBinary:
		return fmt.Sprintf("binary(%d bytes)", len(e.Data)) + zflag(e.Compressed)
	case EvPing:
		return "ping(" + short(e.Data) + ")"
	case EvPong:
		return "pong(" + short(e.Data) + ")"
	case EvClose:
		return fmt.Sprintf("close(%d %q)", e.Code, e.Reason)
	case EvBad:
		return "bad(" + string(e.Data) + ")"
	}
	return "timeout"
}

func zflag(z bool) string {
	if z {
		return "+z"
	}
	return ""
}

func short(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = fmt.Sprintf("%x", b)
	}
	if len(s) > 40 {
		s = fmt.Sprintf("%s…[%d]", s[:32], len(b))
	}
	return s
}

// Events renders a list of events on one line.
func Events(evs []Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}
