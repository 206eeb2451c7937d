package wsproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ProtocolError is a violation of the protocol by the peer: the connection
// must be closed with Code (1002, 1007 or 1009) and Reason.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("wsproto: peer broke the protocol (%d): %s", e.Code, e.Reason)
}

func violation(code int, format string, args ...any) error {
	return &ProtocolError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Message is what Reader.Next returns: a whole data message, or one control
// frame.
type Message struct {
	Op byte // OpText, OpBinary, OpClose, OpPing or OpPong
	// Payload is a data message's payload (in *Buf), or a control frame's
	// (valid until the next call to Next).
	Payload []byte
	// Buf is the buffer a data message was read into, from Reader.Get: the
	// caller gives it back when done with Payload.
	Buf *[]byte
	// Code and Reason are a close frame's; Code is CloseNoStatus when the
	// frame had no payload.
	Code   int
	Reason string
	// Compressed says the message arrived compressed (it is inflated).
	Compressed bool
}

// Reader reads the frames one peer sends, checks them as an RFC 6455
// endpoint must, and assembles messages. Control frames are returned as
// they arrive, also between the fragments of a message.
type Reader struct {
	R io.Reader
	// FromClient says the peer is a client: its frames must be masked.
	// A server's must not be.
	FromClient bool
	// MaxMessage bounds the payload of one message, after inflating; 0 is
	// no bound. A longer message is refused with 1009 before its payload
	// is read (or inflated past the bound).
	MaxMessage int64
	// Inflate is permessage-deflate as negotiated with this peer, nil when
	// it is off (and RSV1 is a violation).
	Inflate *Inflater
	// Get lends the buffer a data message is read into; nil allocates.
	Get func() *[]byte
	// Put takes back a buffer that Next does not return (an error, a
	// compressed payload once inflated); nil drops it.
	Put func(*[]byte)

	hdr [8]byte
	ctl [MaxControlPayload]byte

	// The data message in progress: op is 0 when there is none.
	op         byte
	compressed bool
	buf        *[]byte
	utf        utf8Checker
}

// InMessage reports whether a fragmented data message is in progress.
func (r *Reader) InMessage() bool { return r.op != 0 }

// Next reads until it has a whole data message or a control frame. A
// *ProtocolError says the peer broke the protocol; other errors come from
// the underlying reader.
func (r *Reader) Next() (Message, error) {
	for {
		m, done, err := r.frame()
		if err != nil {
			r.drop()
			return Message{}, err
		}
		if done {
			return m, nil
		}
	}
}

// drop gives back the buffer of the message in progress.
func (r *Reader) drop() {
	if r.buf != nil && r.Put != nil {
		r.Put(r.buf)
	}
	r.buf, r.op = nil, 0
}

// frame reads one frame. done says it completed a message or was a
// control frame.
func (r *Reader) frame() (m Message, done bool, err error) {
	h := r.hdr[:2]
	if _, err := io.ReadFull(r.R, h); err != nil {
		return m, false, err
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f
	masked, n := h[1]&0x80 != 0, uint64(h[1]&0x7f)
	control := op&0x8 != 0
	switch {
	case op > OpBinary && op < OpClose || op > OpPong:
		return m, false, violation(CloseProtocolError, "reserved opcode %d", op)
	case rsv == 0x40 && r.Inflate != nil && (op == OpText || op == OpBinary):
		// RSV1 marks a compressed message, on its first frame only.
	case rsv != 0:
		return m, false, violation(CloseProtocolError, "reserved bits set")
	}
	switch {
	case masked != r.FromClient && r.FromClient:
		return m, false, violation(CloseProtocolError, "unmasked frame from a client")
	case masked != r.FromClient:
		return m, false, violation(CloseProtocolError, "masked frame from a server")
	case control && !fin:
		return m, false, violation(CloseProtocolError, "fragmented control frame")
	case control && n > MaxControlPayload:
		return m, false, violation(CloseProtocolError, "control frame of more than 125 bytes")
	case op == OpContinuation && r.op == 0:
		return m, false, violation(CloseProtocolError, "continuation frame outside a message")
	case (op == OpText || op == OpBinary) && r.op != 0:
		return m, false, violation(CloseProtocolError, "new message inside a fragmented one")
	}
	switch n {
	case 126:
		if _, err := io.ReadFull(r.R, r.hdr[:2]); err != nil {
			return m, false, err
		}
		n = uint64(binary.BigEndian.Uint16(r.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(r.R, r.hdr[:8]); err != nil {
			return m, false, err
		}
		n = binary.BigEndian.Uint64(r.hdr[:8])
		if n>>63 != 0 {
			return m, false, violation(CloseProtocolError, "frame length with the top bit set")
		}
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r.R, key[:]); err != nil {
			return m, false, err
		}
	}
	if control {
		return r.control(op, key, int(n))
	}
	return r.data(fin, rsv != 0, op, key, n)
}

// control reads a control frame's payload.
func (r *Reader) control(op byte, key [4]byte, n int) (m Message, done bool, err error) {
	p := r.ctl[:n]
	if _, err := io.ReadFull(r.R, p); err != nil {
		return m, false, err
	}
	mask(p, key, 0)
	m = Message{Op: op, Payload: p}
	if op != OpClose {
		return m, true, nil
	}
	m.Code = CloseNoStatus
	switch {
	case n == 1:
		return m, false, violation(CloseProtocolError, "close frame of one byte")
	case n >= 2:
		m.Code = int(binary.BigEndian.Uint16(p))
		if !ValidCloseCode(m.Code) {
			return m, false, violation(CloseProtocolError, "close code %d may not be sent", m.Code)
		}
		if !utf8.Valid(p[2:]) {
			return m, false, violation(CloseInvalidData, "close reason is not UTF-8")
		}
		m.Reason = string(p[2:])
	}
	return m, true, nil
}

// data reads a data frame's payload onto the message in progress.
func (r *Reader) data(fin, rsv1 bool, op byte, key [4]byte, n uint64) (m Message, done bool, err error) {
	if op != OpContinuation {
		r.op, r.compressed, r.utf = op, rsv1, utf8Checker{}
		if r.Get != nil {
			r.buf = r.Get()
		} else {
			r.buf = new([]byte)
		}
		*r.buf = (*r.buf)[:0]
	}
	b := *r.buf
	limit := r.MaxMessage
	if r.compressed && limit > 0 {
		// Compressed bytes of incompressible data run a little longer than
		// the data (5 bytes per stored block); the inflated size is checked
		// exactly below.
		limit += limit>>10 + 64
	}
	if limit > 0 && uint64(len(b))+n > uint64(limit) {
		return m, false, violation(CloseTooBig, "message larger than %d bytes", r.MaxMessage)
	}
	// Grow as bytes arrive, not by what the length field claims.
	pos := 0
	for n > 0 {
		k := int(min(n, 64<<10))
		if cap(b)-len(b) < k {
			b = append(b[:cap(b)], make([]byte, k)...)[:len(b)]
		}
		start := len(b)
		b = b[:start+k]
		*r.buf = b
		if _, err := io.ReadFull(r.R, b[start:]); err != nil {
			return m, false, err
		}
		pos = mask(b[start:], key, pos)
		n -= uint64(k)
	}
	*r.buf = b
	if r.op == OpText && !r.compressed && !r.utf.check(b, fin) {
		return m, false, violation(CloseInvalidData, "text message is not valid UTF-8")
	}
	if !fin {
		return m, false, nil
	}
	m = Message{Op: r.op, Payload: b, Buf: r.buf, Compressed: r.compressed}
	r.op, r.buf = 0, nil
	if m.Compressed {
		if err := r.inflate(&m); err != nil {
			r.buf = m.Buf // for drop
			return Message{}, false, err
		}
		if m.Op == OpText && !utf8.Valid(m.Payload) {
			r.buf = m.Buf
			return Message{}, false, violation(CloseInvalidData, "text message is not valid UTF-8")
		}
	}
	return m, true, nil
}

// errTooBig is the inflater's way of saying the output reached its limit.
var errTooBig = errors.New("wsproto: inflated message too big")

// inflate replaces m's compressed payload with the inflated one, in a
// buffer of its own.
func (r *Reader) inflate(m *Message) error {
	var out *[]byte
	if r.Get != nil {
		out = r.Get()
	} else {
		out = new([]byte)
	}
	p, err := r.Inflate.inflate((*out)[:0], m.Payload, r.MaxMessage)
	*out = p
	if r.Put != nil {
		r.Put(m.Buf)
	}
	m.Buf, m.Payload = out, p
	switch {
	case errors.Is(err, errTooBig):
		return violation(CloseTooBig, "message larger than %d bytes once inflated", r.MaxMessage)
	case err != nil:
		return violation(CloseInvalidData, "compressed message is not valid deflate data")
	}
	return nil
}
