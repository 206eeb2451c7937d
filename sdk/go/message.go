package sluice

import "github.com/sluiceproxy/sluice/sdk/go/internal/wire"

// Direction is the way a WebSocket message travels.
type Direction int32

// Directions.
const (
	// ClientToUpstream is a message the client sent.
	ClientToUpstream Direction = wire.DirectionClientToUpstream
	// UpstreamToClient is a message the upstream sent.
	UpstreamToClient Direction = wire.DirectionUpstreamToClient
)

// String returns "client->upstream" or "upstream->client".
func (d Direction) String() string {
	if d == ClientToUpstream {
		return "client->upstream"
	}
	return "upstream->client"
}

// Reverse returns the other direction: the way a reply to a message goes.
func (d Direction) Reverse() Direction { return 1 - d }

// MessageKind is a WebSocket data message's type.
type MessageKind int32

// Message kinds.
const (
	Text   MessageKind = wire.MessageText
	Binary MessageKind = wire.MessageBinary
)

// String returns "text" or "binary".
func (k MessageKind) String() string {
	if k == Text {
		return "text"
	}
	return "binary"
}

// MessageAction is what a message handler tells the relay to do: Pass,
// Drop, or the value Close returns.
type MessageAction int32

// Message actions.
const (
	// Pass forwards the message, with its payload as SetPayload left it.
	Pass MessageAction = wire.ActionPass
	// Drop discards the message; later filters do not see it.
	Drop MessageAction = wire.ActionDrop
)

const actionClose MessageAction = wire.ActionClose

// Close closes both sides of the WebSocket with code and reason, and
// returns the MessageAction that does it:
//
//	return sluice.Close(1008, "policy violation")
func Close(code int, reason string) MessageAction {
	wire.CloseWebSocket(int32(code), reason)
	return actionClose
}

// Message is one whole WebSocket data message (fragments reassembled), in
// either direction. The SDK reuses one Message for every call: do not keep
// it, or its payload, after the handler returns.
type Message struct {
	// Direction is the way the message travels.
	Direction Direction
	// Kind is Text or Binary.
	Kind MessageKind
	// Size is the payload's length in bytes, known without reading it.
	Size int

	payload []byte
	loaded  bool
}

var (
	msg    Message
	msgBuf []byte
)

// Payload returns the message's payload as earlier filters left it. The
// slice is valid until the handler returns; copy what must outlive it.
func (m *Message) Payload() []byte {
	if m.loaded {
		return m.payload
	}
	if cap(msgBuf) < m.Size {
		msgBuf = make([]byte, m.Size)
	}
	buf := msgBuf[:cap(msgBuf)]
	for {
		n := wire.GetMessage(buf)
		if n < 0 {
			buf = buf[:0]
			break
		}
		if int(n) <= len(buf) {
			buf = buf[:n]
			break
		}
		msgBuf = make([]byte, n)
		buf = msgBuf
	}
	m.payload, m.loaded = buf, true
	return buf
}

// IsText reports whether the message is a text message.
func (m *Message) IsText() bool { return m.Kind == Text }

// SetPayload replaces the message's payload: the next filter and the
// receiving side see p. Return Pass to forward it.
func (m *Message) SetPayload(p []byte) {
	wire.SetMessage(p)
	m.payload, m.loaded, m.Size = p, true, len(p)
}

// Inject sends a new message in direction before the current message is
// acted on: a reply to the sender goes in m.Direction.Reverse().
func Inject(direction Direction, kind MessageKind, payload []byte) {
	wire.InjectMessage(int32(direction), int32(kind), payload)
}

// OnMessage registers the handler that runs for each whole WebSocket
// message in either direction. Registering it makes the proxy parse the
// frames of every WebSocket on the filter's routes; filters that do not
// need messages should not register it.
func OnMessage(h func(m *Message) MessageAction) {
	if h == nil {
		wire.Guest.Message = nil
		return
	}
	wire.Guest.Message = func(direction, kind, size int32) int32 {
		msg = Message{Direction: Direction(direction), Kind: MessageKind(kind), Size: int(size)}
		return int32(h(&msg))
	}
}
