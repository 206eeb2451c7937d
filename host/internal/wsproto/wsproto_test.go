package wsproto

import (
	"bytes"
	"compress/flate"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUTF8CheckerSplits(t *testing.T) {
	for _, s := range []string{"", "abc", "Hello-µ@ßöäüàá-UTF-8!!", "\xf0\x9f\x98\x80x", "\xed\xa0\x80", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
		"\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80", "\xf0\x9f\x98", "\xff", "a\xe2\x82"} {
		want := utf8.ValidString(s)
		// Every way of cutting s in two and three fragments.
		for i := 0; i <= len(s); i++ {
			for j := i; j <= len(s); j++ {
				var c utf8Checker
				msg := []byte(s[:i])
				ok := c.check(msg, false)
				msg = append(msg, s[i:j]...)
				ok = ok && c.check(msg, false)
				msg = append(msg, s[j:]...)
				ok = ok && c.check(msg, true)
				if ok != want {
					t.Fatalf("%q cut at %d,%d: got %v, want %v", s, i, j, ok, want)
				}
			}
		}
	}
}

// FuzzUTF8Checker checks the incremental checker against utf8.Valid for
// every cut of the input.
func FuzzUTF8Checker(f *testing.F) {
	f.Add([]byte("\xed\xa0\x80"), uint8(1))
	f.Add([]byte("Hello-µ@ßöäüàá"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		i := int(cut) % (len(b) + 1)
		var c utf8Checker
		ok := c.check(b[:i], false) && c.check(b, true)
		if ok != utf8.Valid(b) {
			t.Fatalf("%q cut at %d: got %v", b, i, ok)
		}
	})
}

// frames builds client frames (masked).
func frames(fs ...[]byte) *bytes.Reader { return bytes.NewReader(bytes.Join(fs, nil)) }

func TestReader(t *testing.T) {
	text := func(fin bool, op byte, s string) []byte { return AppendFrame(nil, fin, false, op, []byte(s), true) }
	tests := []struct {
		name string
		in   *bytes.Reader
		want []string // "op:payload" per message, or "err:code"
	}{
		{"text", frames(text(true, OpText, "hi")), []string{"1:hi"}},
		{"fragments and a ping", frames(text(false, OpText, "a"), text(true, OpPing, "p"), text(true, OpContinuation, "b")), []string{"9:p", "1:ab"}},
		{"unmasked", frames(AppendFrame(nil, true, false, OpText, []byte("x"), false)), []string{"err:1002"}},
		{"rsv1 without deflate", frames(AppendFrame(nil, true, true, OpText, []byte("x"), true)), []string{"err:1002"}},
		{"bad utf8 early", frames(text(false, OpText, "a\xed\xa0"), text(true, OpContinuation, "\x80")), []string{"err:1007"}},
		{"too big", frames(text(true, OpBinary, strings.Repeat("x", 11))), []string{"err:1009"}},
		{"close reason", frames(AppendFrame(nil, true, false, OpClose, CloseFrame(1000, "\xff"), true)), []string{"err:1007"}},
		{"close 1005 on the wire", frames(AppendFrame(nil, true, false, OpClose, []byte{0x03, 0xed}, true)), []string{"err:1002"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reader{R: tt.in, FromClient: true, MaxMessage: 10}
			var got []string
			for {
				m, err := r.Next()
				var pe *ProtocolError
				if errors.As(err, &pe) {
					got = append(got, "err:"+itoa(pe.Code))
					break
				}
				if err != nil {
					break
				}
				got = append(got, itoa(int(m.Op))+":"+string(m.Payload))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestInflateContextTakeover inflates what a compressor that keeps its
// context sends, and refuses a bomb after bounded work.
func TestInflateContextTakeover(t *testing.T) {
	var wire bytes.Buffer
	fw, _ := flate.NewWriter(&wire, 6)
	in := &Inflater{}
	msg := []byte(strings.Repeat("the same words again and again ", 50))
	for i := range 5 {
		wire.Reset()
		fw.Write(msg)
		fw.Flush()
		p := bytes.TrimSuffix(wire.Bytes(), []byte{0, 0, 0xff, 0xff})
		if i > 0 && len(p) > 20 {
			t.Errorf("message %d: %d compressed bytes: the context was not kept", i, len(p))
		}
		out, err := in.inflate(nil, p, 1<<20)
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("message %d: %v, %d bytes", i, err, len(out))
		}
	}
	bomb := Deflate(nil, make([]byte, 10<<20))
	if _, err := (&Inflater{}).inflate(nil, bomb, 1<<20); !errors.Is(err, errTooBig) {
		t.Fatalf("bomb: %v", err)
	}
}

func TestNegotiation(t *testing.T) {
	tests := []struct {
		offer      string
		keep       bool
		resp       string
		noCtxInput bool
	}{
		{"permessage-deflate", true, "permessage-deflate; server_no_context_takeover", false},
		{"permessage-deflate; client_max_window_bits", true, "permessage-deflate; server_no_context_takeover", false},
		{"permessage-deflate", false, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true, "permessage-deflate; server_no_context_takeover", false},
		{"permessage-deflate; server_max_window_bits=10", true, "", false},
		{"permessage-deflate; foo", true, "", false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", true, "", false},
		{"x-webkit-deflate-frame", true, "", false},
	}
	for _, tt := range tests {
		resp, in, ok := AcceptDeflate([]string{tt.offer}, tt.keep)
		if resp != tt.resp || ok != (tt.resp != "") || ok && in.NoContextTakeover != tt.noCtxInput {
			t.Errorf("%q keep=%v: got %q %v", tt.offer, tt.keep, resp, ok)
		}
	}
	if in, ok := AcceptedDeflate([]string{"permessage-deflate; client_max_window_bits=10"}, true); ok || in != nil {
		t.Errorf("a parameter that was not offered is accepted")
	}
	if in, ok := AcceptedDeflate([]string{"permessage-deflate; server_no_context_takeover"}, false); !ok || !in.NoContextTakeover {
		t.Errorf("a valid answer is refused")
	}
}

// FuzzReader feeds arbitrary bytes to a Reader, as a hostile client or
// server would send them, with and without permessage-deflate: it must
// never panic, never return a message over its limit, and never return a
// text message that is not valid UTF-8.
func FuzzReader(f *testing.F) {
	f.Add(AppendFrame(nil, true, false, OpText, []byte("hello"), true), true, false)
	f.Add(AppendFrame(AppendFrame(nil, false, false, OpText, []byte("h\xc3"), true), true, false, OpContinuation, []byte("\xa9"), true), true, false)
	f.Add(AppendFrame(nil, true, true, OpText, Deflate(nil, []byte(strings.Repeat("ab", 100))), false), false, true)
	f.Add(AppendFrame(nil, true, false, OpClose, CloseFrame(1000, "bye"), false), false, false)
	f.Fuzz(func(t *testing.T, in []byte, fromClient, deflate bool) {
		r := &Reader{R: bytes.NewReader(in), FromClient: fromClient, MaxMessage: 1 << 10}
		if deflate {
			r.Inflate = &Inflater{}
		}
		for {
			m, err := r.Next()
			if err != nil {
				return
			}
			switch m.Op {
			case OpText, OpBinary:
				if len(m.Payload) > 1<<10 {
					t.Fatalf("a message of %d bytes over the 1 KiB limit", len(m.Payload))
				}
				if m.Op == OpText && !utf8.Valid(m.Payload) {
					t.Fatalf("invalid UTF-8 in a text message: %q", m.Payload)
				}
			case OpClose:
				if m.Code != CloseNoStatus && !ValidCloseCode(m.Code) || !utf8.ValidString(m.Reason) {
					t.Fatalf("close %d %q passed", m.Code, m.Reason)
				}
			case OpPing, OpPong:
				if len(m.Payload) > MaxControlPayload {
					t.Fatalf("control frame of %d bytes", len(m.Payload))
				}
			default:
				t.Fatalf("opcode %d returned", m.Op)
			}
		}
	})
}
