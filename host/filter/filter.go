// Package filter defines what the proxy core and a filter chain say to each
// other: the hook points (Chain, HookSet), what a hook sees of an HTTP
// exchange (Exchange, Reply, State) and of a WebSocket session (Session,
// Message, MessageVerdict). It depends on the standard library only, so the
// core (package host) and the WebAssembly runtime (package plugins) both
// import it without importing each other.
package filter

import (
	"net/http"
	"sync"
)

// Chain is the filter chain of one route as the proxy core sees it. The proxy
// calls it at its hook points and knows nothing about how filters run: the
// plugins package implements it with WebAssembly, tests may implement it in Go.
//
// A Chain must be safe for concurrent use: every request and every WebSocket
// message of a route goes through the same Chain value.
type Chain interface {
	// Hooks reports which hook points any filter of the chain implements, so
	// the proxy skips the others entirely. When it lacks HookMessage the
	// WebSocket relay copies bytes without parsing frames.
	Hooks() HookSet

	// OnRequestHeaders runs before the request is sent upstream. Filters may
	// change x.Request (method, URL path and query, headers) and, when the
	// chain declared HookRequestBody, x.RequestBody. A non-nil Reply is sent
	// to the client instead of proxying, and ends the exchange.
	OnRequestHeaders(x *Exchange) *Reply

	// OnUpgrade runs for a WebSocket upgrade request, after OnRequestHeaders
	// and before the upstream is dialled. A non-nil Reply refuses the upgrade.
	OnUpgrade(x *Exchange) *Reply

	// OnResponseHeaders runs when the upstream's response headers arrive.
	// Filters may change x.Status and x.ResponseHeader and, when the chain
	// declared HookResponseBody, x.ResponseBody. A non-nil Reply replaces the
	// upstream's response.
	OnResponseHeaders(x *Exchange) *Reply

	// OnMessage runs for each whole WebSocket message (after fragment
	// reassembly) in either direction. It is called only when Hooks has
	// HookMessage.
	OnMessage(s *Session, m *Message) MessageVerdict

	// OnClose runs once when a WebSocket session ends, whichever side ended it.
	OnClose(s *Session)
}

// BodyLimiter is implemented by a Chain that bounds the bodies it asks the
// proxy to buffer (HookRequestBody, HookResponseBody). The proxy holds at
// most MaxBufferedBody bytes of a body for the chain: a larger request gets
// 413, a larger response 502. A Chain without it gets the proxy's default
// of 16MiB.
type BodyLimiter interface {
	MaxBufferedBody() int64
}

// HookSet is a bit set of the hook points a chain implements.
type HookSet uint32

// The hook points. HookRequestBody and HookResponseBody are not hooks of their
// own: they tell the proxy to buffer that body so filters can read and replace
// it during the header hooks.
const (
	HookRequestHeaders HookSet = 1 << iota
	HookRequestBody
	HookResponseHeaders
	HookResponseBody
	HookUpgrade
	HookMessage
	HookClose
)

// Has reports whether every hook in h is in s.
func (s HookSet) Has(h HookSet) bool { return s&h == h }

// Reply is a response that a filter produces locally, instead of the upstream's.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Exchange is one HTTP request and its response as filters see them. The
// proxy creates it per request; it never outlives the request.
type Exchange struct {
	// Request is the request that will be sent upstream. Filters change it in
	// place; its URL is the path and query as the client sent them.
	Request *http.Request
	// Route is the name of the route that matched.
	Route string
	// ClientAddr is the client's address, "ip:port".
	ClientAddr string
	// Scheme is "http" or "https", as the client connected.
	Scheme string
	// RequestBody holds the whole request body when the chain declared
	// HookRequestBody; filters may replace it.
	RequestBody []byte

	// Status and ResponseHeader are set before OnResponseHeaders runs.
	Status         int
	ResponseHeader http.Header
	// ResponseBody holds the whole response body when the chain declared
	// HookResponseBody; filters may replace it.
	ResponseBody []byte

	// State is the per-request key/value that filters share for this request.
	// For a WebSocket upgrade it becomes the session's State.
	State State
}

// State is a small key/value scoped to one request or one WebSocket session.
// The proxy allocates it lazily; the zero value is ready to use. It is not
// safe for concurrent use: the proxy calls the hooks of one request or one
// session direction in sequence, and guards a session's State itself.
//
// It counts its keys and bytes, so that whoever fills it (the plugins
// package, for its state_max_bytes and state_max_keys quotas) can bound it.
type State struct {
	m     map[string][]byte
	bytes int
}

// Get returns the value stored under key and whether there was one.
func (s *State) Get(key string) ([]byte, bool) {
	v, ok := s.m[key]
	return v, ok
}

// Set stores a copy of value under key.
func (s *State) Set(key string, value []byte) {
	if s.m == nil {
		s.m = make(map[string][]byte)
	}
	if old, ok := s.m[key]; ok {
		s.bytes -= len(key) + len(old)
	}
	s.m[key] = append([]byte(nil), value...)
	s.bytes += len(key) + len(value)
}

// Delete removes key.
func (s *State) Delete(key string) {
	if old, ok := s.m[key]; ok {
		s.bytes -= len(key) + len(old)
		delete(s.m, key)
	}
}

// Len returns the number of keys.
func (s *State) Len() int { return len(s.m) }

// Bytes returns the bytes of every key and value.
func (s *State) Bytes() int { return s.bytes }

// After returns the keys and bytes the state would hold if value were set
// under key, so a caller can check a quota before it calls Set.
func (s *State) After(key string, value []byte) (keys, bytes int) {
	keys, bytes = len(s.m), s.bytes+len(key)+len(value)
	if old, ok := s.m[key]; ok {
		bytes -= len(key) + len(old)
	} else {
		keys++
	}
	return keys, bytes
}

// Direction is the way a WebSocket message travels.
type Direction uint8

// The two directions of a WebSocket session.
const (
	ClientToUpstream Direction = iota
	UpstreamToClient
)

// String returns "client->upstream" or "upstream->client".
func (d Direction) String() string {
	if d == ClientToUpstream {
		return "client->upstream"
	}
	return "upstream->client"
}

// Message is one whole WebSocket data message.
type Message struct {
	Direction Direction
	// Binary is true for a binary message, false for text.
	Binary bool
	// Payload is the message's bytes. The relay reads messages into pooled
	// buffers and lends one to the chain for the OnMessage call, so Payload
	// is valid only during that call: a chain that keeps it must copy it. To
	// change what is forwarded, a chain may overwrite the buffer (appending
	// to Payload[:0]) or replace the slice with one of its own.
	Payload []byte
}

// MessageAction is what the relay does with a message after the chain ran.
type MessageAction uint8

// The actions a message hook chain can end with.
const (
	// MessagePass forwards the message (with its payload as the chain left it).
	MessagePass MessageAction = iota
	// MessageDrop discards the message.
	MessageDrop
	// MessageClose closes both sides with CloseCode and CloseReason.
	MessageClose
)

// MessageVerdict is the outcome of OnMessage.
type MessageVerdict struct {
	Action      MessageAction
	CloseCode   int
	CloseReason string
	// Inject holds messages the filters asked to send, each in its own
	// direction; the relay sends them before acting on the current message.
	Inject []Message
}

// Session is one proxied WebSocket connection as filters see it.
type Session struct {
	// ID is the request ID of the upgrade request.
	ID string
	// Route is the name of the route the upgrade matched.
	Route string
	// Upgrade is the client's upgrade request (read-only after the upgrade).
	Upgrade *http.Request
	// ClientAddr is the client's address, "ip:port".
	ClientAddr string
	// State is the per-connection key/value, carried over from the upgrade
	// exchange. The relay serialises hook calls on a session, so filters may
	// use it without further locking.
	State State

	// hookMu serialises the hook calls of the session: the relay reads both
	// sides at once, and filters see one call at a time.
	hookMu sync.Mutex
}

// Serialize runs f while holding the session's hook lock. The relay makes
// every hook call of a session through it, because it reads both sides at
// once while filters must see one call at a time. The lock is not
// reentrant: a Chain must not call Serialize from inside a hook.
func (s *Session) Serialize(f func()) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	f()
}
