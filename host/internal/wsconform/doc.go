// Package wsconform is a WebSocket conformance kit for the relay: a client
// that writes any byte sequence on a real socket (masked or not, any reserved
// bits and opcodes, fragments, compressed frames), reads back what it is
// sent as a list of events, and two echo servers to stand behind the proxy,
// one that validates UTF-8 like a strict endpoint and one that does not.
//
// The client is deliberately not a WebSocket library: it checks what the
// peer sends (masking direction, reserved bits, control frame rules) and
// reports every deviation as an event, so a test asserts the exact sequence
// of frames a peer received, close code included.
package wsconform
