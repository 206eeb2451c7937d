package sluice

import (
	"encoding/binary"

	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// The ABI's buffer convention: the guest passes (buf, cap) and the host
// returns the value's real length, writing only when it fits. The SDK keeps
// one scratch buffer, grows it when a value does not fit and calls again.
// Values are copied out (as strings or fresh slices) before the next host
// call, so one buffer serves every read without allocating per call.

// maxRetainedScratch bounds the scratch buffer the SDK keeps between calls;
// a larger value is read into a buffer of its own, so one large body does
// not pin its size in every pooled instance for good.
const maxRetainedScratch = 64 << 10

var scratch = make([]byte, 1024)

// readOp names the host function a read goes to, so one loop (and no
// closure, which would allocate in TinyGo) implements the retry.
type readOp uint8

const (
	opConfig readOp = iota
	opProperty
	opHeaderNames
	opHeader
	opMethod
	opPath
	opQuery
	opBody
	opMessage
	opState
	opShared
)

func callRead(op readOp, arg int32, key string, buf []byte) int32 {
	switch op {
	case opConfig:
		return wire.GetConfig(buf)
	case opProperty:
		return wire.GetProperty(arg, buf)
	case opHeaderNames:
		return wire.GetHeaderNames(arg, buf)
	case opHeader:
		return wire.GetHeader(arg, key, buf)
	case opMethod:
		return wire.GetMethod(buf)
	case opPath:
		return wire.GetPath(buf)
	case opQuery:
		return wire.GetQuery(buf)
	case opBody:
		return wire.GetBody(arg, buf)
	case opMessage:
		return wire.GetMessage(buf)
	case opState:
		return wire.StateGet(key, buf)
	case opShared:
		return wire.SharedGet(key, buf)
	}
	panic("sluice: unknown read")
}

// read calls op until the value fits and returns it, or ok false when the
// host reports it absent (-1). The result aliases the scratch buffer (or a
// temporary one): copy it before the next host call.
func read(op readOp, arg int32, key string) (b []byte, ok bool) {
	buf := scratch
	for {
		n := callRead(op, arg, key, buf)
		if n < 0 {
			return nil, false
		}
		if int(n) <= len(buf) {
			return buf[:n], true
		}
		// Too small: grow and retry. The value may change between calls
		// (another filter, another connection), so loop until it fits.
		buf = make([]byte, grow(int(n)))
		if len(buf) <= maxRetainedScratch {
			scratch = buf
		}
	}
}

func grow(n int) int {
	c := 2 * len(scratch)
	if c < n {
		c = n
	}
	return c
}

// readString reads a value as a string ("" when absent).
func readString(op readOp, arg int32, key string) (string, bool) {
	b, ok := read(op, arg, key)
	if !ok {
		return "", false
	}
	return string(b), true
}

// readCopy reads a value into a slice the caller owns.
func readCopy(op readOp, arg int32, key string) ([]byte, bool) {
	b, ok := read(op, arg, key)
	if !ok {
		return nil, false
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out, true
}

// splitList splits a NUL-terminated list ("a\x00bb\x00") into strings.
func splitList(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := indexNUL(b)
		if i < 0 {
			break // not terminated: the host broke the ABI; drop the rest
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}

// firstOfList returns the first string of a NUL-terminated list.
func firstOfList(b []byte) []byte {
	if i := indexNUL(b); i >= 0 {
		return b[:i]
	}
	return b
}

// indexNUL returns the index of the first NUL byte in b, or -1. It tests
// eight bytes per iteration: inside the proxy every loop iteration of a
// guest pays for a cancellation check, so fewer iterations matter more
// than they would natively.
func indexNUL(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if v := binary.LittleEndian.Uint64(b[i:]); (v-lo)&^v&hi != 0 {
			break // a NUL is in these eight bytes
		}
	}
	for ; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
	}
	return -1
}
