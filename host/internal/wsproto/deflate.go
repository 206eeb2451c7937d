package wsproto

import (
	"bytes"
	"compress/flate"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// permessage-deflate (RFC 7692).
//
// The relay inflates what a peer compressed, with the peer's context
// (a 32 KiB window kept between messages) unless the peer agreed to reset
// it per message; and it deflates without context takeover, always: Go's
// flate writer holds 0.8-1.2 MB, too much to keep one per peer, so writers
// are pooled and borrowed for one message. A peer that asks the relay's
// window to be smaller than 32 KiB (server_max_window_bits < 15 in a
// client's offer) gets that offer declined: Go's writer cannot shrink its
// window. See RATIONALE.md.

// windowSize is the deflate window: what a peer with context takeover may
// refer back to.
const windowSize = 32 << 10

// deflateTail ends every compressed message on the wire once removed
// (RFC 7692 section 7.2.1); finalBlock is an empty final stored block, so
// the reader sees a proper end of stream.
var inflateTail = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// Inflater inflates one peer's compressed messages.
type Inflater struct {
	// NoContextTakeover says the peer resets its compressor for every
	// message; otherwise the last 32 KiB inflated is the next message's
	// dictionary.
	NoContextTakeover bool
	window            []byte
}

// WindowBytes is the memory the inflater keeps between messages.
func (f *Inflater) WindowBytes() int { return cap(f.window) }

var flateReaders sync.Pool

// inflate appends the inflation of p to dst, stopping with errTooBig once
// more than limit bytes came out (limit 0: none).
func (f *Inflater) inflate(dst, p []byte, limit int64) ([]byte, error) {
	deflateSlots <- struct{}{}
	defer func() { <-deflateSlots }()
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(inflateTail))
	var dict []byte
	if !f.NoContextTakeover {
		dict = f.window
	}
	fr, _ := flateReaders.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReaderDict(src, dict)
	} else {
		fr.(flate.Resetter).Reset(src, dict)
	}
	defer flateReaders.Put(fr)
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if limit > 0 && int64(len(dst)-start) > limit {
			return dst, errTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, err
		}
	}
	if !f.NoContextTakeover {
		f.keep(dst[start:])
	}
	return dst, nil
}

// keep slides the window over out.
func (f *Inflater) keep(out []byte) {
	if len(out) >= windowSize {
		if cap(f.window) < windowSize {
			f.window = make([]byte, 0, windowSize)
		}
		f.window = append(f.window[:0], out[len(out)-windowSize:]...)
		return
	}
	if len(f.window)+len(out) > windowSize {
		drop := len(f.window) + len(out) - windowSize
		f.window = f.window[:copy(f.window, f.window[drop:])]
	}
	f.window = append(f.window, out...)
}

var flateWriters sync.Pool

// deflateSlots bounds how many messages are deflated or inflated at once,
// and so how many flate writers (1.2 MB each) and readers (44 KB) exist:
// it is CPU work on bytes in memory, so more at once than twice the
// processors would only queue in the scheduler. Nobody holds a slot while
// waiting for another.
var deflateSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// Deflate appends the compressed form of p, as one permessage-deflate
// message without context takeover, to dst. It waits while
// 2 x GOMAXPROCS other messages are being deflated.
func Deflate(dst, p []byte) []byte {
	deflateSlots <- struct{}{}
	defer func() { <-deflateSlots }()
	buf := bytes.NewBuffer(dst)
	fw, _ := flateWriters.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(buf, flate.BestSpeed)
	} else {
		fw.Reset(buf)
	}
	fw.Write(p)
	fw.Flush()
	fw.Reset(io.Discard) // drop the reference to buf
	flateWriters.Put(fw)
	return bytes.TrimSuffix(buf.Bytes(), inflateTail[:4])
}

// MinDeflate is the smallest message worth compressing: below it the
// deflate header and tail outweigh what it saves.
const MinDeflate = 64

// extension is one offered or accepted extension: its name and parameters
// in order.
type extension struct {
	name   string
	params [][2]string
}

// parseExtensions parses Sec-WebSocket-Extensions values.
func parseExtensions(values []string) []extension {
	var out []extension
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			parts := strings.Split(e, ";")
			x := extension{name: strings.TrimSpace(parts[0])}
			if x.name == "" {
				continue
			}
			for _, p := range parts[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				x.params = append(x.params, [2]string{strings.TrimSpace(k), strings.Trim(strings.TrimSpace(val), `"`)})
			}
			out = append(out, x)
		}
	}
	return out
}

func windowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15
}

// AcceptDeflate answers a client's offers (its Sec-WebSocket-Extensions
// values) as a server: the first permessage-deflate offer it can honour.
// keepContext lets the client keep its compression context between
// messages (costing a 32 KiB window here); otherwise the response asks it
// not to. ok is false when no offer can be accepted: the session then runs
// without compression.
func AcceptDeflate(offers []string, keepContext bool) (response string, in *Inflater, ok bool) {
offers:
	for _, x := range parseExtensions(offers) {
		if x.name != "permessage-deflate" {
			continue
		}
		seen := map[string]bool{}
		clientNoCtx := !keepContext
		for _, p := range x.params {
			if seen[p[0]] {
				continue offers // a parameter twice: decline the offer
			}
			seen[p[0]] = true
			switch p[0] {
			case "server_no_context_takeover":
				if p[1] != "" {
					continue offers
				}
			case "client_no_context_takeover":
				if p[1] != "" {
					continue offers
				}
				clientNoCtx = true
			case "server_max_window_bits":
				// Go's flate writer uses a 32 KiB window: only 15 can be
				// honoured.
				if p[1] != "15" {
					continue offers
				}
			case "client_max_window_bits":
				if p[1] != "" && !windowBits(p[1]) {
					continue offers
				}
			default:
				continue offers
			}
		}
		response = "permessage-deflate; server_no_context_takeover"
		if clientNoCtx {
			response += "; client_no_context_takeover"
		}
		return response, &Inflater{NoContextTakeover: clientNoCtx}, true
	}
	return "", nil, false
}

// OfferDeflate is the offer the relay makes to an upstream as a client: it
// never keeps its own context, and asks the server not to keep its context
// unless keepContext.
func OfferDeflate(keepContext bool) string {
	if keepContext {
		return "permessage-deflate; client_no_context_takeover"
	}
	return "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
}

// AcceptedDeflate reads a server's answer to OfferDeflate (its
// Sec-WebSocket-Extensions values). in is nil when the server declined;
// ok is false when the answer is not one the offer allows, which fails
// the handshake (RFC 7692 section 5).
func AcceptedDeflate(values []string, keepContext bool) (in *Inflater, ok bool) {
	xs := parseExtensions(values)
	if len(xs) == 0 {
		return nil, true
	}
	if len(xs) > 1 || xs[0].name != "permessage-deflate" {
		return nil, false
	}
	in = &Inflater{}
	seen := map[string]bool{}
	for _, p := range xs[0].params {
		if seen[p[0]] {
			return nil, false
		}
		seen[p[0]] = true
		switch p[0] {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p[1] != "" {
				return nil, false
			}
			if p[0] == "server_no_context_takeover" {
				in.NoContextTakeover = true
			}
		case "server_max_window_bits":
			if !windowBits(p[1]) {
				return nil, false
			}
		default:
			// client_max_window_bits was not offered.
			return nil, false
		}
	}
	if !keepContext && !in.NoContextTakeover {
		return nil, false
	}
	return in, true
}
