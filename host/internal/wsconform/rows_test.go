package wsconform

import (
	"bytes"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// row is one scenario: frames the client sends, and what it must receive.
type row struct {
	name string
	ext  string  // Sec-WebSocket-Extensions the client offers
	send []Frame // sent in one write
	// dynamic, when set, builds send once the handshake is done (for
	// frames that depend on what was negotiated).
	dynamic func(*Client) []Frame
	// then, when set, is sent in a second write 50ms later.
	then []Frame
	// want is keyed by target: "raw", "msg", "redact", optionally with the
	// upstream ("msg/lax"). Without a "raw" key, raw mode must deliver
	// exactly what the upstream sends when the client talks to it directly.
	want map[string][]Event
}

func (r row) batches() [][]Frame {
	if r.then == nil {
		return [][]Frame{r.send}
	}
	return [][]Frame{r.send, r.then}
}

func validUTF8(b []byte) bool { return utf8.Valid(b) }

// Expected events.
func eText(s string) Event             { return Event{Kind: EvText, Data: []byte(s)} }
func eBinary(b []byte) Event           { return Event{Kind: EvBinary, Data: b} }
func ePong(s string) Event             { return Event{Kind: EvPong, Data: []byte(s)} }
func eTextZ(s string) Event            { return Event{Kind: EvText, Data: []byte(s), Compressed: true} }
func eClose(code int) Event            { return Event{Kind: EvClose, Code: code} }
func eCloseR(code int, r string) Event { return Event{Kind: EvClose, Code: code, Reason: r} }

// all is the same expectation for every target.
func all(evs ...Event) map[string][]Event {
	return map[string][]Event{"raw": evs, "msg": evs}
}

// msgOnly sets the message-mode expectation; raw mode must match the
// upstream's direct behaviour.
func msgOnly(evs ...Event) map[string][]Event { return map[string][]Event{"msg": evs} }

// Sample payloads.
var (
	// invalidUTF8 is valid until a surrogate half (ED A0 80).
	invalidUTF8 = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
	hellos      = "Hello-µ@ßöäüàá-UTF-8!!"
	big         = strings.Repeat("0123456789abcdef", 3<<10) // 48 KiB
	allBytes    = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
)

func rows() []row {
	bye := Close(1000, "bye")
	return []row{
		// Framing.
		{name: "text", send: []Frame{Text("Hello"), bye}, want: all(eText("Hello"), eCloseR(1000, "bye"))},
		{name: "binary", send: []Frame{Binary(allBytes), bye}, want: all(eBinary(allBytes), eCloseR(1000, "bye"))},
		{name: "empty text", send: []Frame{Text(""), bye}, want: all(eText(""), eCloseR(1000, "bye"))},
		{name: "utf8 text", send: []Frame{Text(hellos), bye}, want: all(eText(hellos), eCloseR(1000, "bye"))},
		{name: "large text", send: []Frame{Text(big), bye}, want: all(eText(big), eCloseR(1000, "bye"))},
		{name: "many messages then close", send: []Frame{Text("a"), Text("b"), Binary([]byte{1}), Text("c"), bye},
			want: all(eText("a"), eText("b"), eBinary([]byte{1}), eText("c"), eCloseR(1000, "bye"))},
		{name: "one-byte text", send: []Frame{Text("x"), bye},
			want: all(eText("x"), eCloseR(1000, "bye"))},

		// Fragmentation.
		{name: "fragmented text", send: []Frame{Fragment(OpText, false, "Hel"), Fragment(OpContinuation, false, "lo "), Fragment(OpContinuation, true, "world"), bye},
			want: all(eText("Hello world"), eCloseR(1000, "bye"))},
		{name: "fragments with empty first and last", send: []Frame{Fragment(OpText, false, ""), Fragment(OpContinuation, false, "mid"), Fragment(OpContinuation, true, ""), bye},
			want: all(eText("mid"), eCloseR(1000, "bye"))},
		{name: "fragmented binary with a ping inside", send: []Frame{Fragment(OpBinary, false, "ab"), Ping("p1"), Fragment(OpContinuation, true, "cd"), bye},
			want: all(ePong("p1"), eBinary([]byte("abcd")), eCloseR(1000, "bye"))},
		{name: "fragmented text with a pong inside", send: []Frame{Fragment(OpText, false, "ab"), Pong("unsolicited"), Fragment(OpContinuation, true, "cd"), bye},
			want: all(eText("abcd"), eCloseR(1000, "bye"))},
		{name: "continuation without a message", send: []Frame{Fragment(OpContinuation, true, "x"), bye},
			want: all(eClose(1002))},
		{name: "text inside a fragmented text", send: []Frame{Fragment(OpText, false, "a"), Text("b"), bye},
			want: all(eClose(1002))},
		{name: "fragmented close", send: []Frame{{Opcode: OpClose, Payload: ClosePayload(1000, "")}, bye},
			want: all(eClose(1002))},
		{name: "fragmented ping", send: []Frame{{Opcode: OpPing, Payload: []byte("p")}, Fragment(OpContinuation, true, "q"), bye},
			want: all(eClose(1002))},

		// Pings and pongs.
		{name: "ping", send: []Frame{Ping("hi"), bye}, want: all(ePong("hi"), eCloseR(1000, "bye"))},
		{name: "empty ping", send: []Frame{Ping(""), bye}, want: all(ePong(""), eCloseR(1000, "bye"))},
		{name: "ping of 125 bytes", send: []Frame{Ping(strings.Repeat("p", 125)), bye}, want: all(ePong(strings.Repeat("p", 125)), eCloseR(1000, "bye"))},
		{name: "ping of 126 bytes", send: []Frame{Ping(strings.Repeat("p", 126)), bye}, want: all(eClose(1002))},
		{name: "unsolicited pong", send: []Frame{Pong("x"), Text("after"), bye}, want: all(eText("after"), eCloseR(1000, "bye"))},

		// Reserved bits and opcodes.
		{name: "RSV1 without an extension", send: []Frame{{Fin: true, RSV: 4, Opcode: OpText, Payload: []byte("x")}, bye}, want: all(eClose(1002))},
		{name: "RSV2", send: []Frame{{Fin: true, RSV: 2, Opcode: OpText, Payload: []byte("x")}, bye}, want: all(eClose(1002))},
		{name: "RSV3 on a ping", send: []Frame{{Fin: true, RSV: 1, Opcode: OpPing, Payload: []byte("x")}, bye}, want: all(eClose(1002))},
		{name: "reserved data opcode 3", send: []Frame{{Fin: true, Opcode: 3}, bye}, want: all(eClose(1002))},
		{name: "reserved control opcode 11", send: []Frame{{Fin: true, Opcode: 11}, bye}, want: all(eClose(1002))},
		{name: "unmasked client frame", send: []Frame{{Fin: true, Opcode: OpText, Payload: []byte("x"), Unmasked: true}, bye}, want: all(eClose(1002))},
		{name: "valid message, bad frame, ping", send: []Frame{Text("Hello"), {Fin: true, RSV: 7, Opcode: OpText, Payload: []byte("x")}, Ping("p")},
			want: all(eText("Hello"), eClose(1002))},
		{name: "valid message, reserved opcode, ping", send: []Frame{Text("Hello"), {Fin: true, Opcode: 5}, Ping("p")},
			want: all(eText("Hello"), eClose(1002))},
		{name: "valid message, stray continuation, ping", send: []Frame{Text("Hello"), Fragment(OpContinuation, true, "x"), Ping("p")},
			want: all(eText("Hello"), eClose(1002))},

		// UTF-8.
		{name: "invalid utf8 text", send: []Frame{Text(invalidUTF8), bye},
			want: map[string][]Event{"raw/strict": {eClose(1007)}, "raw/lax": {eText(invalidUTF8), eCloseR(1000, "bye")}, "msg": {eClose(1007)}}},
		{name: "invalid utf8 split across fragments", send: []Frame{Fragment(OpText, false, invalidUTF8[:12]), Fragment(OpContinuation, true, invalidUTF8[12:]), bye},
			want: map[string][]Event{"raw/strict": {eClose(1007)}, "raw/lax": {eText(invalidUTF8), eCloseR(1000, "bye")}, "msg": {eClose(1007)}}},
		{name: "valid utf8 split inside a character", send: []Frame{Fragment(OpText, false, hellos[:7]), Fragment(OpContinuation, true, hellos[7:]), bye},
			want: all(eText(hellos), eCloseR(1000, "bye"))},
		{name: "truncated utf8 at the end", send: []Frame{Text("abc\xe2\x82"), bye},
			want: map[string][]Event{"raw/strict": {eClose(1007)}, "raw/lax": {eText("abc\xe2\x82"), eCloseR(1000, "bye")}, "msg": {eClose(1007)}}},
		{name: "valid message then invalid utf8", send: []Frame{Text("ok"), Text("\xff"), bye},
			want: map[string][]Event{"raw/strict": {eText("ok"), eClose(1007)}, "raw/lax": {eText("ok"), eText("\xff"), eCloseR(1000, "bye")}, "msg": {eText("ok"), eClose(1007)}}},
		{name: "binary is not checked", send: []Frame{Binary([]byte("\xff\xfe")), bye}, want: all(eBinary([]byte("\xff\xfe")), eCloseR(1000, "bye"))},

		// Close codes and reasons.
		{name: "close without a payload", send: []Frame{CloseEmpty()}, want: all(eClose(1005))},
		{name: "close 3000", send: []Frame{Close(3000, "")}, want: all(eClose(3000))},
		{name: "close 4999 with reason", send: []Frame{Close(4999, "app reason")}, want: all(eCloseR(4999, "app reason"))},
		{name: "close reason of 123 bytes", send: []Frame{Close(1000, strings.Repeat("r", 123))}, want: all(eCloseR(1000, strings.Repeat("r", 123)))},
		{name: "close with a one-byte payload", send: []Frame{{Fin: true, Opcode: OpClose, Payload: []byte{3}}}, want: msgOnly(eClose(1002))},
		{name: "close 1005 on the wire", send: []Frame{Close(1005, "")}, want: msgOnly(eClose(1002))},
		{name: "close 1006 on the wire", send: []Frame{Close(1006, "")}, want: msgOnly(eClose(1002))},
		{name: "close 999", send: []Frame{Close(999, "")}, want: msgOnly(eClose(1002))},
		{name: "close 1016", send: []Frame{Close(1016, "")}, want: msgOnly(eClose(1002))},
		{name: "close 5000", send: []Frame{Close(5000, "")}, want: msgOnly(eClose(1002))},
		{name: "close reason not utf8", send: []Frame{Close(1000, "\xff\xfe")}, want: msgOnly(eClose(1007))},
		{name: "text after close is ignored", send: []Frame{bye, Text("late")}, want: all(eCloseR(1000, "bye"))},

		// Endings started by the upstream.
		{name: "upstream closes first", send: []Frame{Text("cmd:close 4001 upstream says bye")},
			want: all(eCloseR(4001, "upstream says bye"))},
		{name: "upstream sends a burst then closes", send: []Frame{Text("cmd:burst 20 4002")},
			want: all(burst(20, 4002)...)},
		{name: "upstream closes with 1002", send: []Frame{Text("cmd:close 1002 protocol")},
			want: all(eCloseR(1002, "protocol"))},

		// permessage-deflate.
		{name: "deflate: compressed text", ext: deflate, dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpText, lorem), bye}
		}, want: msgOnly(eTextZ(lorem), eCloseR(1000, "bye"))},
		{name: "deflate: compressed binary", ext: deflate, dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpBinary, lorem), bye}
		}, want: msgOnly(Event{Kind: EvBinary, Data: []byte(lorem), Compressed: true}, eCloseR(1000, "bye"))},
		{name: "deflate: three messages with the client's context kept", ext: deflate, dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpText, lorem), z(c, OpText, lorem), z(c, OpText, lorem+"!"), bye}
		}, want: msgOnly(eTextZ(lorem), eTextZ(lorem), eTextZ(lorem+"!"), eCloseR(1000, "bye"))},
		{name: "deflate: client context off", ext: deflate + "; client_no_context_takeover", dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpText, lorem), z(c, OpText, lorem), bye}
		}, want: msgOnly(eTextZ(lorem), eTextZ(lorem), eCloseR(1000, "bye"))},
		{name: "deflate: fragmented compressed message", ext: deflate, dynamic: func(c *Client) []Frame {
			p := c.Compress([]byte(lorem))
			return []Frame{{RSV: 4, Opcode: OpText, Payload: p[:5]}, {Opcode: OpContinuation, Payload: p[5:10]}, {Fin: true, Opcode: OpContinuation, Payload: p[10:]}, bye}
		}, want: msgOnly(eTextZ(lorem), eCloseR(1000, "bye"))},
		{name: "deflate: uncompressed messages too", ext: deflate, send: []Frame{Text("plain"), bye},
			want: all(eText("plain"), eCloseR(1000, "bye"))},
		{name: "deflate: RSV1 on a continuation", ext: deflate, dynamic: func(c *Client) []Frame {
			p := c.Compress([]byte(lorem))
			return []Frame{{RSV: 4, Opcode: OpText, Payload: p[:5]}, {Fin: true, RSV: 4, Opcode: OpContinuation, Payload: p[5:]}, bye}
		}, want: msgOnly(eClose(1002))},
		{name: "deflate: invalid compressed data", ext: deflate, send: []Frame{{Fin: true, RSV: 4, Opcode: OpBinary, Payload: []byte{0xff, 0xff, 0xff, 0xff}}, bye},
			want: msgOnly(eClose(1007))},
		{name: "deflate: invalid utf8 inside", ext: deflate, dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpText, lorem+"\xff"), bye}
		}, want: map[string][]Event{"raw/strict": {eClose(1007)}, "msg": {eClose(1007)}}},
		// 2 MiB of zeros is about 2 KiB compressed: 32 times the limit once
		// inflated. (Raw mode relays it, and the upstream echoes it.)
		{name: "deflate: bomb", ext: deflate, dynamic: func(c *Client) []Frame {
			return []Frame{z(c, OpBinary, string(make([]byte, 2<<20))), bye}
		}, want: msgOnly(eClose(1009))},
		{name: "deflate: a small server window is declined", ext: deflate + "; server_max_window_bits=10", dynamic: func(c *Client) []Frame {
			if c.Deflate != nil && c.Deflate.ServerMaxWindowBits != 0 && c.Deflate.ServerMaxWindowBits < 15 {
				return []Frame{Text("cannot happen: window accepted")}
			}
			return []Frame{Text("x"), bye}
		}, want: msgOnly(eText("x"), eCloseR(1000, "bye"))},

		// Violations by the upstream.
		{name: "upstream sends invalid utf8", send: []Frame{Text("cmd:raw " + hexFrame(Frame{Fin: true, Opcode: OpText, Payload: []byte("ok\xff"), Unmasked: true}))}, then: []Frame{bye},
			want: map[string][]Event{"raw": {eText("ok\xff"), eCloseR(1000, "bye")}, "msg": {eClose(1001)}}},
		{name: "upstream sends a masked frame after a message", send: []Frame{Text("cmd:raw " + hexFrame(Frame{Fin: true, Opcode: OpText, Payload: []byte("ok"), Unmasked: true}) + hexFrame(Text("masked")))},
			want: map[string][]Event{"raw": {eText("ok"), Event{Kind: EvBad, Data: []byte("masked frame from a server")}}, "msg": {eText("ok"), eClose(1001)}}},
		{name: "upstream sends a reserved opcode", send: []Frame{Text("cmd:raw " + hexFrame(Frame{Fin: true, Opcode: 4, Unmasked: true}))},
			want: map[string][]Event{"raw": {Event{Kind: EvBad, Data: []byte("reserved opcode 4")}}, "msg": {eClose(1001)}}},

		// Limits.
		// 64 KiB needs the 64-bit length field.
		{name: "message at the limit", send: []Frame{Binary(bytes.Repeat([]byte{7}, maxMessage)), bye},
			want: all(eBinary(bytes.Repeat([]byte{7}, maxMessage)), eCloseR(1000, "bye"))},
		{name: "message over the limit", send: []Frame{Binary(bytes.Repeat([]byte{7}, maxMessage+1)), bye},
			want: all(eClose(1009))},
		{name: "fragments over the limit", send: []Frame{Fragment(OpBinary, false, strings.Repeat("x", maxMessage/2)), Fragment(OpContinuation, false, strings.Repeat("x", maxMessage/2)), Fragment(OpContinuation, true, "x"), bye},
			want: all(eClose(1009))},
		{name: "frame length field over the limit", send: []Frame{{Fin: true, Opcode: OpBinary, Length: 1 << 62}},
			want: all(eClose(1009))},
	}
}

const deflate = "permessage-deflate"

// hexFrame is a frame as "cmd:raw" takes it.
func hexFrame(f Frame) string { return hex.EncodeToString(f.Encode([4]byte{1, 2, 3, 4})) }

// lorem is a text that compresses.
var lorem = strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 8)

// z is a compressed, unfragmented message.
func z(c *Client, op byte, s string) Frame {
	return Frame{Fin: true, RSV: 4, Opcode: op, Payload: c.Compress([]byte(s))}
}

// burst is what the upstream sends for "cmd:burst n code".
func burst(n, code int) []Event {
	var evs []Event
	for i := range n {
		evs = append(evs, eText("m"+itoa(i)))
	}
	return append(evs, eCloseR(code, "burst done"))
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
