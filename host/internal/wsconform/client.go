package wsconform

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Client is the client end of one WebSocket connection, speaking raw frames.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	// Resp is the server's handshake response.
	Resp *http.Response
	// Deflate holds the permessage-deflate parameters the server accepted,
	// nil when the extension is off.
	Deflate *DeflateParams

	closeSent bool
	window    []byte // the last 32 KiB inflated, when the server keeps its context
	zbuf      bytes.Buffer
	zw        *flate.Writer // the client's compressor, kept when it may keep its context
}

// DeflateParams are the negotiated permessage-deflate parameters
// (RFC 7692 section 7.1).
type DeflateParams struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int // 0 when absent
	ClientMaxWindowBits     int
}

// Dial connects to addr ("host:port") and runs the opening handshake for
// path. extensions, when not empty, is offered as Sec-WebSocket-Extensions.
// A handshake the server refuses returns the response and an error.
func Dial(addr, path, extensions string) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{conn: conn, br: br, Resp: resp}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return c, fmt.Errorf("wsconform: handshake refused: %s", resp.Status)
	}
	h := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-Websocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		conn.Close()
		return c, errors.New("wsconform: bad Sec-WebSocket-Accept")
	}
	if ext := resp.Header.Get("Sec-Websocket-Extensions"); ext != "" {
		p, err := ParseDeflate(ext)
		if err != nil {
			conn.Close()
			return c, err
		}
		c.Deflate = p
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// ParseDeflate parses a server's permessage-deflate response.
func ParseDeflate(ext string) (*DeflateParams, error) {
	parts := strings.Split(ext, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" || strings.Contains(ext, ",") {
		return nil, fmt.Errorf("wsconform: unexpected extension response %q", ext)
	}
	p := &DeflateParams{}
	for _, a := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(a), "=")
		var bits int
		if v != "" {
			fmt.Sscan(strings.Trim(v, `"`), &bits)
		}
		switch k {
		case "server_no_context_takeover":
			p.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			p.ClientNoContextTakeover = true
		case "server_max_window_bits":
			p.ServerMaxWindowBits = bits
		case "client_max_window_bits":
			p.ClientMaxWindowBits = bits
		default:
			return nil, fmt.Errorf("wsconform: unknown extension parameter %q", k)
		}
	}
	return p, nil
}

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// Send writes frames, masked with random keys, in one write.
func (c *Client) Send(frames ...Frame) error {
	var b []byte
	for _, f := range frames {
		var m [4]byte
		rand.Read(m[:])
		b = append(b, f.Encode(m)...)
		if f.Opcode == OpClose {
			c.closeSent = true
		}
	}
	return c.SendRaw(b)
}

// SendRaw writes bytes as they are.
func (c *Client) SendRaw(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// Compress compresses p as the next permessage-deflate message, keeping
// the compression context between messages unless the server asked the
// client not to (client_no_context_takeover).
func (c *Client) Compress(p []byte) []byte {
	c.zbuf.Reset()
	if c.zw == nil || c.Deflate == nil || c.Deflate.ClientNoContextTakeover {
		c.zw, _ = flate.NewWriter(&c.zbuf, flate.BestSpeed)
	}
	c.zw.Write(p)
	c.zw.Flush()
	return bytes.Clone(bytes.TrimSuffix(c.zbuf.Bytes(), []byte{0, 0, 0xff, 0xff}))
}

// Read collects what the server sends until the exchange ends: the server's
// close frame (which the client answers, once, as an endpoint does, unless
// it closed first) followed by the end of the TCP stream, a protocol
// violation, or the timeout. Pings are not answered: they are events.
func (c *Client) Read(timeout time.Duration) []Event {
	var evs []Event
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var msg []byte
	msgOp := -1
	msgZ := false
	for {
		f, err := c.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return append(evs, Event{Kind: EvTimeout})
			}
			if !errors.Is(err, io.EOF) || !closed(evs) {
				evs = append(evs, Event{Kind: EvBad, Data: []byte("stream ended without a close frame: " + err.Error())})
			}
			return evs
		}
		if closed(evs) {
			return append(evs, Event{Kind: EvBad, Data: []byte(fmt.Sprintf("frame after close: opcode %d", f.Opcode))})
		}
		if bad := c.check(f, msgOp >= 0); bad != "" {
			return append(evs, Event{Kind: EvBad, Data: []byte(bad)})
		}
		switch f.Opcode {
		case OpPing:
			evs = append(evs, Event{Kind: EvPing, Data: f.Payload})
		case OpPong:
			evs = append(evs, Event{Kind: EvPong, Data: f.Payload})
		case OpClose:
			e := Event{Kind: EvClose, Code: 1005}
			if len(f.Payload) >= 2 {
				e.Code = int(binary.BigEndian.Uint16(f.Payload))
				e.Reason = string(f.Payload[2:])
			}
			evs = append(evs, e)
			if !c.closeSent {
				c.Send(Frame{Fin: true, Opcode: OpClose, Payload: f.Payload})
			}
		case OpText, OpBinary:
			msgOp, msg, msgZ = int(f.Opcode), append([]byte(nil), f.Payload...), f.RSV&4 != 0
		case OpContinuation:
			msg = append(msg, f.Payload...)
		}
		if f.Fin && f.Opcode <= OpBinary {
			e := Event{Kind: EvText, Data: msg, Compressed: msgZ}
			if msgOp == OpBinary {
				e.Kind = EvBinary
			}
			if msgZ {
				p, err := c.inflate(msg)
				if err != nil {
					return append(evs, Event{Kind: EvBad, Data: []byte("inflate: " + err.Error())})
				}
				e.Data = p
			}
			evs = append(evs, e)
			msgOp, msg = -1, nil
		}
	}
}

func closed(evs []Event) bool { return len(evs) > 0 && evs[len(evs)-1].Kind == EvClose }

// check returns what is wrong with a frame a server sent, or "".
func (c *Client) check(f Frame, inMessage bool) string {
	rsv := f.RSV
	if c.Deflate != nil && (f.Opcode == OpText || f.Opcode == OpBinary) {
		rsv &^= 4
	}
	switch {
	case rsv != 0:
		return fmt.Sprintf("reserved bits %d", f.RSV)
	case !f.Unmasked:
		return "masked frame from a server"
	case f.Opcode >= OpClose && f.Opcode <= OpPong:
		if !f.Fin || len(f.Payload) > 125 {
			return "fragmented or oversized control frame"
		}
		if f.Opcode == OpClose {
			if len(f.Payload) == 1 {
				return "close payload of one byte"
			}
			if len(f.Payload) >= 2 {
				code := int(binary.BigEndian.Uint16(f.Payload))
				if !ValidCloseCode(code) {
					return fmt.Sprintf("close code %d may not be sent", code)
				}
				if !utf8.Valid(f.Payload[2:]) {
					return "close reason is not UTF-8"
				}
			}
		}
	case f.Opcode == OpContinuation:
		if !inMessage {
			return "continuation outside a message"
		}
	case f.Opcode == OpText || f.Opcode == OpBinary:
		if inMessage {
			return "new message inside a fragmented one"
		}
	default:
		return fmt.Sprintf("reserved opcode %d", f.Opcode)
	}
	return ""
}

// ValidCloseCode reports whether code may appear in a close frame
// (RFC 6455 section 7.4).
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// readFrame reads one frame; Unmasked is set when it had no mask.
func (c *Client) readFrame() (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: h[0] >> 4 & 7, Opcode: h[0] & 0x0f, Unmasked: h[1]&0x80 == 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("wsconform: frame of %d bytes", n)
	}
	var mask [4]byte
	if !f.Unmasked {
		if _, err := io.ReadFull(c.br, mask[:]); err != nil {
			return f, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.Payload); err != nil {
		return f, err
	}
	if !f.Unmasked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i&3]
		}
	}
	return f, nil
}

// inflate decompresses one message, keeping the server's sliding window
// when it uses context takeover.
func (c *Client) inflate(p []byte) ([]byte, error) {
	if c.Deflate == nil {
		return nil, errors.New("RSV1 without permessage-deflate")
	}
	var dict []byte
	if !c.Deflate.ServerNoContextTakeover {
		dict = c.window
	}
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	r := flate.NewReaderDict(src, dict)
	out, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, err
	}
	if !c.Deflate.ServerNoContextTakeover {
		c.window = append(c.window, out...)
		if len(c.window) > 32<<10 {
			c.window = append([]byte(nil), c.window[len(c.window)-32<<10:]...)
		}
	}
	return out, nil
}

// ReadMessage reads until one whole data message (or anything else that
// ends the wait: a close, a violation, the timeout) and returns it.
func (c *Client) ReadMessage(timeout time.Duration) Event {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.conn.SetReadDeadline(time.Time{})
	var msg []byte
	op := -1
	z := false
	for {
		f, err := c.readFrame()
		if err != nil {
			return Event{Kind: EvBad, Data: []byte(err.Error())}
		}
		switch f.Opcode {
		case OpText, OpBinary:
			op, msg, z = int(f.Opcode), append([]byte(nil), f.Payload...), f.RSV&4 != 0
		case OpContinuation:
			msg = append(msg, f.Payload...)
		case OpPing, OpPong:
			continue
		default:
			return Event{Kind: EvClose}
		}
		if !f.Fin || op < 0 {
			continue
		}
		e := Event{Kind: EvText, Data: msg, Compressed: z}
		if op == OpBinary {
			e.Kind = EvBinary
		}
		if z {
			p, err := c.inflate(msg)
			if err != nil {
				return Event{Kind: EvBad, Data: []byte(err.Error())}
			}
			e.Data = p
		}
		return e
	}
}

// DropCompressor forgets the client's compression context (its flate
// writer, about 1 MB): for tests that measure what the other end holds.
func (c *Client) DropCompressor() { c.zw = nil }
