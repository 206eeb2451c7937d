//go:build !wasip1

// Package sluicetest runs a Sluice filter natively, against an in-memory
// host, so that filters are unit-tested with go test.
//
// The filter's init registers its handlers as usual (import the filter's
// package, or test inside it); a Host then plays the proxy: it holds the
// request, response, message, state and clocks, calls the hooks through the
// same ABI entry points the proxy calls, and records what the filter did:
//
//	h := sluicetest.New()
//	h.Config = `{"tokens":["t1"]}`
//	h.RequestHeader.Set("Authorization", "Bearer t1")
//	if reply := h.RequestHeaders(); reply != nil {
//		t.Fatalf("refused: %d %s", reply.Status, reply.Body)
//	}
//
// The host follows the ABI's buffer convention strictly (it writes a value
// only when it fits), so tests also exercise the SDK's retry path.
//
// A filter has one set of handlers and the SDK one current host per
// process: tests that use a Host must not run in parallel.
package sluicetest

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// Hook is one of the ABI's hooks, as a filter reports them.
type Hook uint32

// Hooks.
const (
	HookRequestHeaders  Hook = wire.HookRequestHeaders
	HookResponseHeaders Hook = wire.HookResponseHeaders
	HookUpgrade         Hook = wire.HookUpgrade
	HookMessage         Hook = wire.HookMessage
	HookClose           Hook = wire.HookClose
)

// Host is an in-memory Sluice host for one request or one WebSocket
// session. Set its fields, then call the hook methods; fields the filter
// changes (headers, path, state, ...) show the change afterwards.
type Host struct {
	// Config is the plugin's config as JSON; "" means "{}".
	Config string
	// Properties are the values of get_property. New fills them with
	// plausible defaults; delete one to make it unknown.
	Properties map[sluice.Property]string

	// Method, Path and Query (raw, without "?") are the request line.
	Method, Path, Query string
	// RequestHeader is the request's header map.
	RequestHeader http.Header
	// RequestBody is the buffered request body, visible to the filter when
	// it declared NeedRequestBody.
	RequestBody []byte

	// Status, ResponseHeader and ResponseBody are the upstream's response,
	// seen by ResponseHeaders (the body only with NeedResponseBody).
	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte

	// State is the per-request or per-connection store (state_get/set).
	State map[string][]byte

	// Now is the wall clock; Advance moves it and the monotonic clock.
	Now time.Time

	// Logs is every line the filter logged, in order.
	Logs []LogLine

	shared     map[string]sharedEntry
	mono       int64
	configured bool
	features   uint32
	hooks      uint32

	// per-call state
	phase       phase
	pending     http.Header // local response headers in request phase
	reply       *Reply
	payload     []byte
	inMessage   bool
	injected    []Message
	closeCode   int
	closeReason string
}

type phase int

const (
	phaseNone phase = iota
	phaseRequest
	phaseResponse
	phaseMessage
)

// sharedEntry is a shared value; counters are decimal text, as the proxy's
// store keeps them.
type sharedEntry struct {
	value   []byte
	expires time.Time // zero: never
}

// LogLine is one line the filter logged.
type LogLine struct {
	Level   sluice.Level
	Message string
}

// Reply is a local response a filter produced with sluice.Respond.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Outcome is what a message hook decided.
type Outcome int

// Outcomes.
const (
	Passed Outcome = iota
	Dropped
	Closed
)

// String returns "pass", "drop" or "close".
func (o Outcome) String() string {
	return [...]string{"pass", "drop", "close"}[o]
}

// Message is a WebSocket message, as given to Host.Message or injected by
// the filter.
type Message struct {
	Direction sluice.Direction
	Kind      sluice.MessageKind
	Payload   []byte
}

// Verdict is the result of one message hook call.
type Verdict struct {
	Outcome Outcome
	// Payload is the message's payload as the filter left it.
	Payload []byte
	// CloseCode and CloseReason are set when Outcome is Closed (1000 and ""
	// when the filter did not name them).
	CloseCode   int
	CloseReason string
	// Injected holds the messages the filter injected, in order.
	Injected []Message
}

// New returns a host with an empty GET / request, default properties and a
// fixed clock, and makes it the SDK's current host.
func New() *Host {
	h := &Host{
		Properties: map[sluice.Property]string{
			sluice.PropertyClientAddr: "192.0.2.1:50000",
			sluice.PropertyHost:       "example.com",
			sluice.PropertyScheme:     "http",
			sluice.PropertyRoute:      "test",
			sluice.PropertyRequestID:  "req-1",
			sluice.PropertyPlugin:     "test",
			sluice.PropertyProtocol:   "HTTP/1.1",
		},
		Method:         "GET",
		Path:           "/",
		RequestHeader:  http.Header{},
		Status:         200,
		ResponseHeader: http.Header{},
		State:          map[string][]byte{},
		Now:            time.Unix(1_700_000_000, 0).UTC(),
		shared:         map[string]sharedEntry{},
		mono:           int64(time.Hour), // an arbitrary fixed point, not 0
	}
	wire.SetHost(abiHost{h})
	return h
}

// Use makes h the SDK's current host again (New already does it); use it
// when a test switches between hosts, e.g. two WebSocket sessions.
func (h *Host) Use() { wire.SetHost(abiHost{h}) }

// Advance moves the wall and monotonic clocks forward by d.
func (h *Host) Advance(d time.Duration) {
	h.Now = h.Now.Add(d)
	h.mono += int64(d)
}

// Configure runs the filter's sluice_configure with Config and reads its
// features and hooks, as the proxy does when it loads a module. A non-zero
// result is an error carrying what the filter logged.
func (h *Host) Configure() error {
	h.Use()
	h.configured = true
	if wire.Configure(int32(len(h.config()))) != 0 {
		var msgs []string
		for _, l := range h.Logs {
			if l.Level == sluice.LevelError {
				msgs = append(msgs, l.Message)
			}
		}
		return fmt.Errorf("sluicetest: configure refused: %s", strings.Join(msgs, "; "))
	}
	if v := wire.ABIVersion(); v != wire.Version {
		return fmt.Errorf("sluicetest: ABI version %d, want %d", v, wire.Version)
	}
	h.features = uint32(wire.Features())
	h.hooks = uint32(wire.Hooks())
	return nil
}

// Handles reports whether the filter registered a handler for hook
// (sluice_hooks), configuring it first if needed.
func (h *Host) Handles(hook Hook) bool {
	h.ensureConfigured()
	return h.hooks&uint32(hook) != 0
}

func (h *Host) ensureConfigured() {
	h.Use()
	if !h.configured {
		if err := h.Configure(); err != nil {
			panic(err)
		}
	}
}

func (h *Host) config() string {
	if h.Config == "" {
		return "{}"
	}
	return h.Config
}

// RequestHeaders runs the filter's request hook and returns its local
// response, or nil when the request goes on upstream (with the changes now
// visible in Method, Path, Query, RequestHeader and RequestBody).
func (h *Host) RequestHeaders() *Reply {
	return h.httpHook(HookRequestHeaders, phaseRequest, wire.OnRequestHeaders)
}

// Upgrade runs the filter's WebSocket upgrade hook, like RequestHeaders. A
// proxy runs RequestHeaders first; so should a test of an upgrade.
func (h *Host) Upgrade() *Reply {
	return h.httpHook(HookUpgrade, phaseRequest, wire.OnUpgrade)
}

// ResponseHeaders runs the filter's response hook and returns its local
// response, or nil when the upstream's response goes on (with the changes
// now visible in Status, ResponseHeader and ResponseBody).
func (h *Host) ResponseHeaders() *Reply {
	return h.httpHook(HookResponseHeaders, phaseResponse, wire.OnResponseHeaders)
}

func (h *Host) httpHook(hook Hook, p phase, call func() int32) *Reply {
	if !h.Handles(hook) {
		return nil
	}
	h.phase, h.reply = p, nil
	h.pending = http.Header{}
	defer func() { h.phase = phaseNone }()
	switch a := call(); a {
	case wire.ActionContinue:
		return nil
	case wire.ActionRespond:
		if h.reply == nil {
			panic("sluicetest: ABI misuse: hook returned respond without send_response")
		}
		return h.reply
	default:
		panic(fmt.Sprintf("sluicetest: ABI misuse: hook returned unknown action %d", a))
	}
}

// Message runs the filter's message hook for one message and returns its
// verdict. A filter without a message hook passes every message.
func (h *Host) Message(direction sluice.Direction, kind sluice.MessageKind, payload []byte) Verdict {
	if !h.Handles(HookMessage) {
		return Verdict{Outcome: Passed, Payload: payload}
	}
	h.phase, h.inMessage = phaseMessage, true
	h.payload = append([]byte(nil), payload...)
	h.injected, h.closeCode, h.closeReason = nil, 1000, ""
	defer func() { h.phase, h.inMessage = phaseNone, false }()
	v := Verdict{}
	switch a := wire.OnMessage(int32(direction), int32(kind), int32(len(payload))); a {
	case wire.ActionPass:
		v.Outcome = Passed
	case wire.ActionDrop:
		v.Outcome = Dropped
	case wire.ActionClose:
		v.Outcome, v.CloseCode, v.CloseReason = Closed, h.closeCode, h.closeReason
	default:
		panic(fmt.Sprintf("sluicetest: ABI misuse: message hook returned unknown action %d", a))
	}
	v.Payload, v.Injected = h.payload, h.injected
	return v
}

// Text runs the message hook for a text message; shorthand for Message.
func (h *Host) Text(direction sluice.Direction, payload string) Verdict {
	return h.Message(direction, sluice.Text, []byte(payload))
}

// Close runs the filter's close hook, as the proxy does once when a
// WebSocket session ends.
func (h *Host) Close() {
	if h.Handles(HookClose) {
		wire.OnClose()
	}
}

// SharedValue returns a shared value as the filter stored it (counters in
// decimal), and false when it is absent or expired.
func (h *Host) SharedValue(key string) (string, bool) {
	e, ok := h.sharedEntry(key)
	return string(e.value), ok
}

func (h *Host) sharedEntry(key string) (sharedEntry, bool) {
	e, ok := h.shared[key]
	if ok && !e.expires.IsZero() && !h.Now.Before(e.expires) {
		delete(h.shared, key)
		return sharedEntry{}, false
	}
	return e, ok
}

// abiHost implements the ABI's host functions over a Host; it is separate
// so that Host's API shows test concerns only.
type abiHost struct{ h *Host }

var _ wire.Host = abiHost{}

// fill implements the buffer convention: write v only when it fits.
func fill(buf, v []byte) int32 {
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return int32(len(v))
}

func fillString(buf []byte, v string) int32 {
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return int32(len(v))
}

func (a abiHost) Log(level int32, msg string) {
	a.h.Logs = append(a.h.Logs, LogLine{Level: sluice.Level(level), Message: msg})
}

func (a abiHost) GetConfig(buf []byte) int32 { return fillString(buf, a.h.config()) }

func (a abiHost) GetProperty(prop int32, buf []byte) int32 {
	v, ok := a.h.Properties[sluice.Property(prop)]
	if !ok {
		return -1
	}
	return fillString(buf, v)
}

func (a abiHost) Clock(clock int32) int64 {
	switch clock {
	case wire.ClockWall:
		return a.h.Now.UnixNano()
	case wire.ClockMonotonic:
		return a.h.mono
	}
	panic(fmt.Sprintf("sluicetest: ABI misuse: unknown clock %d", clock))
}

func (a abiHost) header(kind int32) http.Header {
	switch {
	case kind == wire.HeaderRequest:
		return a.h.RequestHeader
	case kind == wire.HeaderResponse && a.h.phase == phaseRequest:
		return a.h.pending
	case kind == wire.HeaderResponse:
		return a.h.ResponseHeader
	}
	panic(fmt.Sprintf("sluicetest: ABI misuse: unknown header kind %d", kind))
}

func (a abiHost) GetHeaderNames(kind int32, buf []byte) int32 {
	hdr := a.header(kind)
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, n := range names {
		b = append(append(b, n...), 0)
	}
	return fill(buf, b)
}

func (a abiHost) GetHeader(kind int32, name string, buf []byte) int32 {
	var b []byte
	for _, v := range a.header(kind)[textproto.CanonicalMIMEHeaderKey(name)] {
		b = append(append(b, v...), 0)
	}
	return fill(buf, b)
}

// writable returns the header map kind for a change, and panics where the
// proxy would trap the filter: the request changed after the request phase,
// or a name or value that would break the header block.
func (a abiHost) writable(fn string, kind int32, name, value string) http.Header {
	if kind == wire.HeaderRequest && a.h.phase != phaseRequest {
		panic("sluicetest: ABI misuse: " + fn + ": the request can only change in on_request_headers and on_upgrade")
	}
	if !validName(name) {
		panic(fmt.Sprintf("sluicetest: ABI misuse: %s: %q is not a valid header name", fn, name))
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		panic(fmt.Sprintf("sluicetest: ABI misuse: %s: the value of %s contains CR, LF or NUL", fn, name))
	}
	return a.header(kind)
}

// validName reports whether name is an HTTP token (RFC 9110).
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (a abiHost) SetHeader(kind int32, name, value string) {
	a.writable("set_header", kind, name, value).Set(name, value)
}

func (a abiHost) AddHeader(kind int32, name, value string) {
	a.writable("add_header", kind, name, value).Add(name, value)
}

func (a abiHost) RemoveHeader(kind int32, name string) {
	a.writable("remove_header", kind, "X", "").Del(name)
}

func (a abiHost) requestLine(fn, v string) {
	if a.h.phase != phaseRequest {
		panic("sluicetest: ABI misuse: " + fn + ": the request can only change in on_request_headers and on_upgrade")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			panic(fmt.Sprintf("sluicetest: ABI misuse: %s: %q has a byte a request line cannot carry", fn, v))
		}
	}
}

func (a abiHost) GetMethod(buf []byte) int32 { return fillString(buf, a.h.Method) }
func (a abiHost) SetMethod(v string)         { a.requestLine("set_method", v); a.h.Method = v }
func (a abiHost) GetPath(buf []byte) int32   { return fillString(buf, a.h.Path) }
func (a abiHost) SetPath(v string)           { a.requestLine("set_path", v); a.h.Path = v }
func (a abiHost) GetQuery(buf []byte) int32  { return fillString(buf, a.h.Query) }
func (a abiHost) SetQuery(v string)          { a.requestLine("set_query", v); a.h.Query = v }

func (a abiHost) GetStatus() int32 {
	if a.h.phase != phaseResponse {
		return 0
	}
	return int32(a.h.Status)
}

func (a abiHost) SetStatus(status int32) {
	if a.h.phase != phaseResponse {
		panic("sluicetest: ABI misuse: set_status outside the response phase")
	}
	a.h.Status = int(status)
}

func (a abiHost) body(kind int32) (*[]byte, bool) {
	switch {
	case kind == wire.BodyRequest && a.h.features&wire.FeatureRequestBody != 0 && a.h.phase == phaseRequest:
		return &a.h.RequestBody, true
	case kind == wire.BodyResponse && a.h.features&wire.FeatureResponseBody != 0 && a.h.phase == phaseResponse:
		return &a.h.ResponseBody, true
	}
	return nil, false
}

func (a abiHost) GetBody(kind int32, buf []byte) int32 {
	b, ok := a.body(kind)
	if !ok {
		return -1
	}
	return fill(buf, *b)
}

func (a abiHost) SetBody(kind int32, v []byte) int32 {
	b, ok := a.body(kind)
	if !ok {
		return -1
	}
	*b = append([]byte(nil), v...)
	return 0
}

func (a abiHost) SendResponse(status int32, headers, body []byte) {
	if a.h.phase != phaseRequest && a.h.phase != phaseResponse {
		panic("sluicetest: ABI misuse: send_response outside an HTTP hook")
	}
	if status < 200 || status > 599 {
		panic(fmt.Sprintf("sluicetest: ABI misuse: send_response: %d is not a status a local response can have (200-599)", status))
	}
	hdr := a.h.pending
	if a.h.phase == phaseResponse || hdr == nil {
		hdr = http.Header{}
	}
	hdr = hdr.Clone()
	list := strings.Split(string(headers), "\x00")
	if len(headers) > 0 {
		if list[len(list)-1] != "" || len(list)%2 != 1 {
			panic(fmt.Sprintf("sluicetest: ABI misuse: malformed header list %q", headers))
		}
		for i := 0; i+1 < len(list); i += 2 {
			if !validName(list[i]) || strings.ContainsAny(list[i+1], "\r\n") {
				panic(fmt.Sprintf("sluicetest: ABI misuse: send_response: invalid header %q", list[i]))
			}
			hdr.Add(list[i], list[i+1])
		}
	}
	a.h.reply = &Reply{Status: int(status), Header: hdr, Body: append([]byte(nil), body...)}
}

func (a abiHost) GetMessage(buf []byte) int32 {
	if !a.h.inMessage {
		return -1
	}
	return fill(buf, a.h.payload)
}

func (a abiHost) SetMessage(v []byte) {
	if !a.h.inMessage {
		panic("sluicetest: ABI misuse: set_message outside on_message")
	}
	a.h.payload = append([]byte(nil), v...)
}

func (a abiHost) InjectMessage(direction, kind int32, v []byte) {
	if !a.h.inMessage {
		panic("sluicetest: ABI misuse: inject_message outside on_message")
	}
	a.h.injected = append(a.h.injected, Message{
		Direction: sluice.Direction(direction),
		Kind:      sluice.MessageKind(kind),
		Payload:   append([]byte(nil), v...),
	})
}

func (a abiHost) CloseWebSocket(code int32, reason string) {
	a.h.closeCode, a.h.closeReason = int(code), reason
}

func (a abiHost) StateGet(key string, buf []byte) int32 {
	v, ok := a.h.State[key]
	if !ok {
		return -1
	}
	return fill(buf, v)
}

func (a abiHost) StateSet(key string, v []byte) { a.h.State[key] = append([]byte(nil), v...) }
func (a abiHost) StateDelete(key string)        { delete(a.h.State, key) }

func (a abiHost) expiry(ttlMillis int64) time.Time {
	if ttlMillis <= 0 {
		return time.Time{}
	}
	return a.h.Now.Add(time.Duration(ttlMillis) * time.Millisecond)
}

func (a abiHost) SharedGet(key string, buf []byte) int32 {
	e, ok := a.h.sharedEntry(key)
	if !ok {
		return -1
	}
	return fill(buf, e.value)
}

func (a abiHost) SharedSet(key string, v []byte, ttlMillis int64) {
	a.h.shared[key] = sharedEntry{value: append([]byte(nil), v...), expires: a.expiry(ttlMillis)}
}

func (a abiHost) SharedDelete(key string) { delete(a.h.shared, key) }

func (a abiHost) SharedAdd(key string, delta, ttlMillis int64) int64 {
	e, ok := a.h.sharedEntry(key)
	if !ok {
		e = sharedEntry{expires: a.expiry(ttlMillis)}
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	if err != nil {
		n = 0 // a value that is not a counter counts as 0
	}
	n += delta
	e.value = strconv.AppendInt(nil, n, 10)
	a.h.shared[key] = e
	return n
}
