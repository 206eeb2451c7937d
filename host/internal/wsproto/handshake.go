package wsproto

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// The opening handshake (RFC 6455 section 4), as far as the relay does it
// itself: it answers the client, and checks the upstream's answer.

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// NewKey returns a fresh Sec-WebSocket-Key.
func NewKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// HasToken reports whether a comma-separated header of h holds token
// (ASCII case-insensitive).
func HasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// AppendSwitching appends the server's 101 response: the handshake headers,
// the chosen extensions (when not empty), then every header of extra.
func AppendSwitching(dst []byte, key, extensions string, extra http.Header) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, AcceptKey(key)...)
	dst = append(dst, "\r\n"...)
	if extensions != "" {
		dst = append(dst, "Sec-WebSocket-Extensions: "...)
		dst = append(dst, extensions...)
		dst = append(dst, "\r\n"...)
	}
	for k, vs := range extra {
		for _, v := range vs {
			// Header values come from the upstream's response, already
			// parsed: no CR or LF can be in them.
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// ErrBadAnswer says the upstream's 101 response is not a valid WebSocket
// handshake answer.
var ErrBadAnswer = errors.New("wsproto: upstream answered the handshake wrongly")

// CheckAnswer checks a server's 101 response to a handshake sent with key:
// the upgrade headers and Sec-WebSocket-Accept.
func CheckAnswer(resp *http.Response, key string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!HasToken(resp.Header, "Upgrade", "websocket") || !HasToken(resp.Header, "Connection", "upgrade") ||
		resp.Header.Get("Sec-Websocket-Accept") != AcceptKey(key) {
		return ErrBadAnswer
	}
	return nil
}
