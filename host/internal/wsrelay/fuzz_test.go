package wsrelay

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/sluiceproxy/sluice/host/internal/wsproto"
)

// FuzzFrameTracker feeds an arbitrary byte stream to the raw-mode frame
// tracker in arbitrary chunks and checks it against a reference parser
// that sees the whole stream at once: the same messages counted, the same
// close frames and codes, the same boundary at the end, and, with a size
// limit, the same cut (the offset where the first message outgrows the
// limit, whose header then must not have been forwarded). The seed corpus
// is in testdata/fuzz/FuzzFrameTracker; make test runs it for a bounded
// time.
func FuzzFrameTracker(f *testing.F) {
	for _, s := range trackerSeeds() {
		f.Add(s, uint16(7), uint16(40))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16, limit uint16) {
		want := referenceFrames(stream, int64(limit))
		tr := frameTracker{limit: int64(limit)}
		step := int(chunk%64) + 1
		var msgs int64
		var codes []int
		cut := -1
		off := 0
		for off < len(stream) && cut < 0 {
			// Chunk sizes vary with the position, so that every header
			// gets split somewhere.
			n := min(len(stream)-off, step+off%5)
			ev := tr.feed(stream[off : off+n])
			if ev.tooBig {
				// The relay forwards the chunk up to the cut. When the
				// offending header began in an earlier chunk (already
				// forwarded), the cut is the chunk's start and not clean.
				cut = off + ev.cut
				if !ev.cutClean {
					if ev.cut != 0 || want.cut >= off || want.cut < off-14 {
						t.Fatalf("unclean cut at %d (chunk at %d), reference %d", cut, off, want.cut)
					}
					cut = want.cut
				}
			}
			msgs += ev.msgs
			if ev.closed {
				codes = append(codes, ev.code)
			}
			off += n
		}
		if cut != want.cut {
			t.Fatalf("cut at %d, reference %d", cut, want.cut)
		}
		if cut >= 0 {
			// After a cut the relay forwards nothing more: only what came
			// before must agree, and what it still reads from the
			// offender counts for nothing.
			for off < len(stream) {
				n := min(len(stream)-off, step+off%5)
				if ev := tr.feed(stream[off : off+n]); ev != (frameEvents{}) {
					t.Fatalf("events after the cut at %d: %+v", cut, ev)
				}
				off += n
			}
			return
		}
		if msgs != want.msgs || len(codes) != len(want.codes) || tr.atBoundary() != want.boundary {
			t.Fatalf("msgs %d codes %v boundary %v; reference msgs %d codes %v boundary %v",
				msgs, codes, tr.atBoundary(), want.msgs, want.codes, want.boundary)
		}
		for i := range codes {
			if codes[i] != want.codes[i] {
				t.Fatalf("close codes %v, reference %v", codes, want.codes)
			}
		}
	})
}

// reference is what the reference parser found in a whole stream.
type reference struct {
	msgs     int64
	codes    []int
	boundary bool
	cut      int // offset of the header of the first frame that takes a message past the limit, -1 for none
}

// referenceFrames parses a whole stream frame by frame, the plain way.
func referenceFrames(b []byte, limit int64) reference {
	r := reference{boundary: true, cut: -1}
	var msgLen uint64
	off := 0
	for off < len(b) {
		start := off
		if len(b)-off < 2 {
			r.boundary = false
			return r
		}
		b0, b1 := b[off], b[off+1]
		n := uint64(b1 & 0x7f)
		hl := 2
		switch n {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		masked := b1&0x80 != 0
		if masked {
			hl += 4
		}
		if len(b)-off < hl {
			r.boundary = false
			return r
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(b[off+2:]))
		case 127:
			n = binary.BigEndian.Uint64(b[off+2:])
		}
		op := b0 & 0x0f
		if op <= 2 {
			if op != 0 {
				msgLen = 0
			}
			msgLen += min(n, 1<<62)
			if limit > 0 && msgLen > uint64(limit) {
				r.cut = start
				return r
			}
			if b0&0x80 != 0 {
				r.msgs++
			}
		}
		off += hl
		if uint64(len(b)-off) < n {
			r.boundary = false
			return r
		}
		if op == 8 {
			code := 1005
			if n >= 2 {
				p := b[off : off+int(n)]
				c := binary.BigEndian.Uint16(p)
				if masked {
					key := b[off-4 : off]
					c = uint16(p[0]^key[0])<<8 | uint16(p[1]^key[1])
				}
				code = int(c)
			}
			r.codes = append(r.codes, code)
		}
		off += int(n)
	}
	return r
}

// trackerSeeds are streams worth starting from: every length encoding,
// masked and not, fragments, control frames between fragments, a close
// with and without a code.
func trackerSeeds() [][]byte {
	frame := func(b0 byte, payload []byte, masked bool) []byte {
		var f []byte
		f = append(f, b0)
		m := byte(0)
		if masked {
			m = 0x80
		}
		switch n := len(payload); {
		case n < 126:
			f = append(f, m|byte(n))
		case n <= 0xffff:
			f = append(f, m|126, byte(n>>8), byte(n))
		default:
			f = append(f, m|127)
			f = binary.BigEndian.AppendUint64(f, uint64(n))
		}
		if masked {
			f = append(f, 1, 2, 3, 4)
			for i, c := range payload {
				f = append(f, c^[]byte{1, 2, 3, 4}[i&3])
			}
			return f
		}
		return append(f, payload...)
	}
	join := func(fs ...[]byte) []byte {
		var out []byte
		for _, f := range fs {
			out = append(out, f...)
		}
		return out
	}
	big := make([]byte, 70000)
	return [][]byte{
		join(frame(0x81, []byte("hello"), true), frame(0x88, []byte{0x03, 0xe8, 'b'}, true)),
		join(frame(0x01, []byte("he"), false), frame(0x89, []byte("p"), false), frame(0x80, []byte("llo"), false)),
		join(frame(0x82, make([]byte, 300), true), frame(0x88, nil, false)),
		join(frame(0x82, big, false), frame(0x81, nil, true)),
		frame(0x88, []byte{0x0f, 0xa1}, true),
		{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 9},
	}
}

// TestFrameTrackerStopsAtCut: the chunk that holds the cut is not looked at
// past the offending header, so after it the tracker cannot know where a
// frame begins. Following on misreads the offender's later bytes: here the
// rest of its message is taken for the unread payload of the offending
// frame, and its close reply, misread as a close frame of the session, could
// end the direction and have the relay close the client's socket while the
// client still sent (a reset, which can lose the 1009 the client had not
// read yet).
func TestFrameTrackerStopsAtCut(t *testing.T) {
	text := func(fin bool, op byte, n int) []byte {
		return wsproto.AppendFrame(nil, fin, false, op, bytes.Repeat([]byte("x"), n), true)
	}
	first := append(text(false, wsproto.OpText, 30), text(false, wsproto.OpContinuation, 30)...)
	rest := append(text(true, wsproto.OpContinuation, 24),
		wsproto.AppendFrame(nil, true, false, wsproto.OpClose, wsproto.CloseFrame(1009, ""), true)...)

	tr := frameTracker{limit: 40}
	ev := tr.feed(first)
	if !ev.tooBig || ev.cut != len(first)/2 || !ev.cutClean {
		t.Fatalf("first chunk: %+v, want a clean cut at %d", ev, len(first)/2)
	}
	if ev := tr.feed(rest); ev != (frameEvents{}) {
		t.Fatalf("after the cut: %+v, want no event", ev)
	}
}
