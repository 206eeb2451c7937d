package main

import "encoding/binary"

// Eight bytes at a time. The helpers below mark bytes by setting their
// high bit (0x80) in a uint64 that holds eight input bytes, lowest address
// lowest. TinyGo builds for size and inlines none of them, and a call per
// eight bytes would cost as much as the work, so the loops that run over
// long stretches (string, maskWords) read 64 bytes per iteration and test
// them with one call or none.

// Eight-byte constants: each byte 0x01, each byte 0x80, each byte 0x7f.
const (
	lsb  = 0x0101010101010101
	msb  = 0x8080808080808080
	low7 = 0x7f7f7f7f7f7f7f7f
)

// load returns the eight bytes at in[i:] as a little-endian number (byte
// i lowest), with zeros past the end of in.
func load(in []byte, i int) uint64 {
	if i+8 <= len(in) {
		return le(in[i:])
	}
	return loadTail(in, i)
}

// le reads the first eight bytes of b (one load instruction).
func le(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// loadTail is load for the last bytes of in.
func loadTail(in []byte, i int) uint64 {
	var b [8]byte
	copy(b[:], in[i:])
	return binary.LittleEndian.Uint64(b[:])
}

// lowBytes is a mask of the n (1 to 8) lowest bytes.
func lowBytes(n int) uint64 { return ^uint64(0) >> (64 - 8*n) }

// zeros sets the high bit of each byte of x that is zero, and only those.
func zeros(x uint64) uint64 { return ^((x&low7 + low7) | x) & msb }

// below sets the high bit of each byte of x that is less than n (n <= 0x80).
func below(x, n uint64) uint64 { return ^((x&low7 + lsb*(0x80-n)) | x) & msb }

// between sets the high bit of each byte of x in [lo, hi] (hi < 0x80).
func between(x, lo, hi uint64) uint64 {
	x7 := x & low7
	return (x7 + lsb*(0x80-lo)) &^ (x7 + lsb*(0x7f-hi)) &^ x & msb
}

// special marks the bytes that end an ordinary run in a JSON string: a
// quote, a backslash or a control character.
func special(v uint64) uint64 {
	return zeros(v^lsb*'"') | zeros(v^lsb*'\\') | below(v, 0x20)
}

// specialRun tells whether 64 bytes hold a byte that ends an ordinary run
// in a JSON string: the result has a high bit set if so, without saying
// where. (x-lsb)&^x has the high bit of every zero byte of x set (and maybe
// of bytes above one). One call per 64 bytes is cheap enough not to spell
// out.
func specialRun(v0, v1, v2, v3, v4, v5, v6, v7 uint64) uint64 {
	q0, q1, q2, q3 := v0^lsb*'"', v1^lsb*'"', v2^lsb*'"', v3^lsb*'"'
	q4, q5, q6, q7 := v4^lsb*'"', v5^lsb*'"', v6^lsb*'"', v7^lsb*'"'
	b0, b1, b2, b3 := v0^lsb*'\\', v1^lsb*'\\', v2^lsb*'\\', v3^lsb*'\\'
	b4, b5, b6, b7 := v4^lsb*'\\', v5^lsb*'\\', v6^lsb*'\\', v7^lsb*'\\'
	return (q0-lsb)&^q0 | (b0-lsb)&^b0 | (v0-lsb*0x20)&^v0 |
		(q1-lsb)&^q1 | (b1-lsb)&^b1 | (v1-lsb*0x20)&^v1 |
		(q2-lsb)&^q2 | (b2-lsb)&^b2 | (v2-lsb*0x20)&^v2 |
		(q3-lsb)&^q3 | (b3-lsb)&^b3 | (v3-lsb*0x20)&^v3 |
		(q4-lsb)&^q4 | (b4-lsb)&^b4 | (v4-lsb*0x20)&^v4 |
		(q5-lsb)&^q5 | (b5-lsb)&^b5 | (v5-lsb*0x20)&^v5 |
		(q6-lsb)&^q6 | (b6-lsb)&^b6 | (v6-lsb*0x20)&^v6 |
		(q7-lsb)&^q7 | (b7-lsb)&^b7 | (v7-lsb*0x20)&^v7
}

// wordBytes marks the bytes of v that words are made of (see wordByte).
func wordBytes(v uint64) uint64 {
	return v&msb | between(v, '0', '9') | between(v|lsb*0x20, 'a', 'z') | zeros(v^lsb*'_')
}

// firstBytes marks, roughly, the bytes of v that may start a word: those
// that pass one of the (first, second) filters. Bytes that start no word
// may pass too (it is a filter, and (x-lsb)&^x may mark a byte above a zero
// one); the first byte of a match always does. The slots are written out:
// a loop would cost a cancellation check each.
func (r *redactor) firstBytes(v uint64) uint64 {
	f := v | lsb*0x20
	x, y := f^r.first[0], f^r.second[0]
	m := r.every | (x-lsb)&^x&((y-lsb)&^y>>8|r.anySecond[0])
	if r.pairs > 1 {
		x, y = f^r.first[1], f^r.second[1]
		m |= (x - lsb) &^ x & ((y-lsb)&^y>>8 | r.anySecond[1])
		if r.pairs > 2 {
			x, y = f^r.first[2], f^r.second[2]
			m |= (x - lsb) &^ x & ((y-lsb)&^y>>8 | r.anySecond[2])
			x, y = f^r.first[3], f^r.second[3]
			m |= (x - lsb) &^ x & ((y-lsb)&^y>>8 | r.anySecond[3])
		}
	}
	return m & msb
}
