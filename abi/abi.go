// Package abi is the contract between the Sluice host and a WebAssembly
// filter (the guest): the host module name, the names and signatures of the
// functions each side exports, action codes, header kinds, properties,
// feature flags and the ABI version.
//
// It imports only the standard library, so SDKs, tools and the host agree on
// one source of truth. abi/ABI.md is the prose specification, written for an
// author of an SDK in another language.
//
// # The buffer convention
//
// A host function that returns bytes takes (buf, buf_cap) and returns the
// real length of the value. It writes the value into guest memory only when
// it fits (len <= buf_cap); otherwise it writes nothing, and the guest retries
// with a buffer of at least len bytes. No guest allocator is required and the
// host never writes part of a value. A result of -1 (where documented) means
// "absent", which is different from an empty value (0).
//
// For example, to read the request header "Accept" whose value is
// "text/html", a guest with a 4-byte scratch buffer at offset 1024 calls
//
//	get_header(0 /* request */, name, 6, 1024, 4) -> 10
//
// The host wrote nothing; the guest grows its buffer to 16 bytes and calls
//
//	get_header(0, name, 6, 2048, 16) -> 10
//
// and now reads "text/html\x00" at 2048 (one value, NUL-terminated).
//
// # Lists
//
// A list of strings (header names, header values) is each string followed
// by a NUL byte: "a\x00bb\x00". An empty list has length 0. Header pairs (for
// send_response) are name and value alternating: "Content-Type\x00text/plain\x00".
//
// # Memory safety
//
// Every (pointer, length) the guest passes must lie inside its exported
// memory; otherwise the host traps the guest. A trap ends the hook call,
// discards the instance, and applies the plugin's failure policy.
package abi

// Version is the ABI version this host implements. A guest declares the
// version it was built for through FuncABIVersion; the host refuses any other
// at load time.
const Version = 1

// HostModule is the import module name of every host function.
const HostModule = "sluice"

// Guest exports. Only FuncABIVersion and the memory export are required;
// every hook is optional, and the host skips hooks a guest does not export.
const (
	// FuncABIVersion () -> i32 returns the ABI version the guest was built
	// for. Required.
	FuncABIVersion = "sluice_abi_version"

	// FuncFeatures () -> i32 returns the Features the guest needs, such as
	// buffered bodies. Optional; absent means none.
	FuncFeatures = "sluice_features"

	// FuncHooks () -> i32 returns the Hooks the guest handles. Optional;
	// absent means every hook the guest exports. The host calls it after
	// FuncConfigure and skips the hooks outside the set, which lets an SDK
	// export every hook statically while a filter handles only some (and
	// keeps the WebSocket relay on its no-parse path when no filter handles
	// messages).
	FuncHooks = "sluice_hooks"

	// FuncConfigure (config_len i32) -> i32 runs once per instance, before
	// any hook, with the length of the plugin's JSON config (read it with
	// get_config). A non-zero result refuses the module at load time.
	FuncConfigure = "sluice_configure"

	// FuncOnRequestHeaders () -> i32 runs before a request is proxied.
	// Returns ActionContinue or ActionRespond.
	FuncOnRequestHeaders = "sluice_on_request_headers"

	// FuncOnResponseHeaders () -> i32 runs when the upstream's response
	// headers arrive. Returns ActionContinue or ActionRespond.
	FuncOnResponseHeaders = "sluice_on_response_headers"

	// FuncOnUpgrade () -> i32 runs for a WebSocket upgrade request, after
	// FuncOnRequestHeaders. Returns ActionContinue or ActionRespond (refuse).
	FuncOnUpgrade = "sluice_on_upgrade"

	// FuncOnMessage (direction i32, kind i32, len i32) -> i32 runs for each
	// whole WebSocket message. direction is a Direction, kind a MessageKind,
	// len the payload length (read it with get_message). Returns
	// ActionPass, ActionDrop or ActionClose.
	FuncOnMessage = "sluice_on_message"

	// FuncOnClose () runs once when a WebSocket session ends.
	FuncOnClose = "sluice_on_close"

	// MemoryExport is the name of the guest's exported linear memory.
	MemoryExport = "memory"
)

// Action codes returned by hooks.
const (
	// ActionContinue lets the request or response go on to the next filter.
	ActionContinue = 0
	// ActionRespond stops the chain and sends the response set with
	// FuncSendResponse. Returning it without calling send_response is an ABI
	// misuse.
	ActionRespond = 1

	// ActionPass forwards the message, with its payload as set_message left it.
	ActionPass = 0
	// ActionDrop discards the message and stops the chain.
	ActionDrop = 1
	// ActionClose closes both sides of the WebSocket with the code and reason
	// given to close_websocket (1000 and "" if it was not called).
	ActionClose = 2
)

// Features is a bit set a guest returns from FuncFeatures.
type Features uint32

// Feature flags.
const (
	// FeatureRequestBody makes the host buffer the request body before
	// on_request_headers, so get_body/set_body work on it.
	FeatureRequestBody Features = 1 << 0
	// FeatureResponseBody makes the host buffer the response body before
	// on_response_headers.
	FeatureResponseBody Features = 1 << 1
)

// Hooks is a bit set a guest returns from FuncHooks.
type Hooks uint32

// Hook bits.
const (
	HookRequestHeaders  Hooks = 1 << 0
	HookResponseHeaders Hooks = 1 << 1
	HookUpgrade         Hooks = 1 << 2
	HookMessage         Hooks = 1 << 3
	HookClose           Hooks = 1 << 4
)

// HeaderKind selects which header map a header function works on.
type HeaderKind = int32

// Header kinds.
const (
	// HeaderRequest is the request's headers (as sent upstream).
	HeaderRequest HeaderKind = 0
	// HeaderResponse is the response's headers; inside on_request_headers
	// and on_upgrade it is the header map of the pending local response.
	HeaderResponse HeaderKind = 1
)

// BodyKind selects the request or response body for get_body/set_body.
type BodyKind = int32

// Body kinds.
const (
	BodyRequest  BodyKind = 0
	BodyResponse BodyKind = 1
)

// Direction is the way a WebSocket message travels.
type Direction = int32

// Directions.
const (
	DirectionClientToUpstream Direction = 0
	DirectionUpstreamToClient Direction = 1
)

// MessageKind is a WebSocket data message's type.
type MessageKind = int32

// Message kinds.
const (
	MessageText   MessageKind = 0
	MessageBinary MessageKind = 1
)

// LogLevel is the level of FuncLog, mapped onto the proxy's log levels.
type LogLevel = int32

// Log levels.
const (
	LogDebug LogLevel = -1
	LogInfo  LogLevel = 0
	LogWarn  LogLevel = 1
	LogError LogLevel = 2
)

// Property identifies a read-only fact of the current request or session,
// read with FuncGetProperty.
type Property = int32

// Properties.
const (
	// PropertyClientAddr is the client's "ip:port".
	PropertyClientAddr Property = 0
	// PropertyHost is the Host the client asked for.
	PropertyHost Property = 1
	// PropertyScheme is "http" or "https".
	PropertyScheme Property = 2
	// PropertyRoute is the name of the route that matched.
	PropertyRoute Property = 3
	// PropertyRequestID is the request ID (X-Request-Id).
	PropertyRequestID Property = 4
	// PropertyPlugin is the name of the plugin the guest runs as.
	PropertyPlugin Property = 5
	// PropertyProtocol is the client's protocol, e.g. "HTTP/1.1".
	PropertyProtocol Property = 6
)

// Clock selects the clock of FuncClock.
type Clock = int32

// Clocks.
const (
	// ClockWall is nanoseconds since the Unix epoch.
	ClockWall Clock = 0
	// ClockMonotonic is nanoseconds since an arbitrary fixed point.
	ClockMonotonic Clock = 1
)

// Host functions, imported by the guest from HostModule. The signature of
// each is in Imports. Results named len follow the buffer convention.
const (
	// FuncLog (level i32, msg i32, msg_len i32) writes to the proxy's log,
	// tagged with the plugin's name.
	FuncLog = "log"
	// FuncGetConfig (buf i32, buf_cap i32) -> len i32 reads the plugin's
	// config as JSON ("{}" when it has none).
	FuncGetConfig = "get_config"
	// FuncGetProperty (prop i32, buf i32, buf_cap i32) -> len i32 reads a
	// Property; -1 when the property is unknown.
	FuncGetProperty = "get_property"
	// FuncClock (clock i32) -> i64 reads a Clock in nanoseconds.
	FuncClock = "clock"

	// FuncGetHeaderNames (kind i32, buf i32, buf_cap i32) -> len i32 lists
	// the header names of kind, canonical form, NUL-terminated.
	FuncGetHeaderNames = "get_header_names"
	// FuncGetHeader (kind i32, name i32, name_len i32, buf i32, buf_cap i32)
	// -> len i32 lists the values of one header, NUL-terminated; 0 when the
	// header is absent.
	FuncGetHeader = "get_header"
	// FuncSetHeader (kind i32, name i32, name_len i32, value i32,
	// value_len i32) replaces all values of a header with one value.
	FuncSetHeader = "set_header"
	// FuncAddHeader (kind, name, name_len, value, value_len) appends a value.
	FuncAddHeader = "add_header"
	// FuncRemoveHeader (kind i32, name i32, name_len i32) removes a header.
	FuncRemoveHeader = "remove_header"

	// FuncGetMethod (buf, buf_cap) -> len reads the request method.
	FuncGetMethod = "get_method"
	// FuncSetMethod (value, value_len) changes the method sent upstream.
	FuncSetMethod = "set_method"
	// FuncGetPath (buf, buf_cap) -> len reads the request path (no query).
	FuncGetPath = "get_path"
	// FuncSetPath (value, value_len) changes the path sent upstream.
	FuncSetPath = "set_path"
	// FuncGetQuery (buf, buf_cap) -> len reads the raw query (no "?").
	FuncGetQuery = "get_query"
	// FuncSetQuery (value, value_len) changes the raw query.
	FuncSetQuery = "set_query"
	// FuncGetStatus () -> i32 reads the response status (0 before the
	// response phase).
	FuncGetStatus = "get_status"
	// FuncSetStatus (status i32) changes the response status.
	FuncSetStatus = "set_status"

	// FuncGetBody (kind i32, buf i32, buf_cap i32) -> len i32 reads a
	// buffered body; -1 when the body is not buffered (the guest did not
	// declare the matching Feature, or the phase has no such body).
	FuncGetBody = "get_body"
	// FuncSetBody (kind i32, value i32, value_len i32) -> i32 replaces a
	// buffered body; returns 0, or -1 when the body is not buffered.
	FuncSetBody = "set_body"

	// FuncSendResponse (status i32, headers i32, headers_len i32, body i32,
	// body_len i32) sets the local response that ActionRespond sends.
	// headers is a list of name/value pairs.
	FuncSendResponse = "send_response"

	// FuncGetMessage (buf i32, buf_cap i32) -> len i32 reads the current
	// message's payload (as earlier filters left it); -1 outside on_message.
	FuncGetMessage = "get_message"
	// FuncSetMessage (value i32, value_len i32) replaces the current
	// message's payload.
	FuncSetMessage = "set_message"
	// FuncInjectMessage (direction i32, kind i32, value i32, value_len i32)
	// sends a new message in direction, before the current one is acted on.
	FuncInjectMessage = "inject_message"
	// FuncCloseWebSocket (code i32, reason i32, reason_len i32) sets the
	// close code and reason that ActionClose uses.
	FuncCloseWebSocket = "close_websocket"

	// FuncStateGet (key i32, key_len i32, buf i32, buf_cap i32) -> len i32
	// reads the per-request (HTTP hooks) or per-connection (WebSocket hooks)
	// value of key; -1 when absent.
	FuncStateGet = "state_get"
	// FuncStateSet (key, key_len, value, value_len) stores a value.
	FuncStateSet = "state_set"
	// FuncStateDelete (key, key_len) removes a value.
	FuncStateDelete = "state_delete"

	// FuncSharedGet (key i32, key_len i32, buf i32, buf_cap i32) -> len i32
	// reads the plugin's shared (cross-connection) value of key; -1 when
	// absent or expired.
	FuncSharedGet = "shared_get"
	// FuncSharedSet (key i32, key_len i32, value i32, value_len i32,
	// ttl_ms i64) stores a shared value; ttl_ms 0 means no expiry.
	FuncSharedSet = "shared_set"
	// FuncSharedDelete (key i32, key_len i32) removes a shared value.
	FuncSharedDelete = "shared_delete"
	// FuncSharedAdd (key i32, key_len i32, delta i64, ttl_ms i64) -> i64
	// atomically adds delta to a shared counter (a missing or expired key
	// counts as 0 and gets ttl_ms) and returns the new value. A key holding a
	// non-counter value is treated as 0.
	FuncSharedAdd = "shared_add"
)

// ValueType is a WebAssembly value type in a signature.
type ValueType byte

// The value types this ABI uses (their WebAssembly binary encodings).
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
)

// Signature is the parameter and result types of a function.
type Signature struct {
	Params  []ValueType
	Results []ValueType
}

func sig(params []ValueType, results ...ValueType) Signature {
	return Signature{Params: params, Results: results}
}

func i32s(n int) []ValueType {
	p := make([]ValueType, n)
	for i := range p {
		p[i] = I32
	}
	return p
}

// Imports is every host function of ABI v1 and its signature. A guest that
// imports a name from HostModule that is not here, or with another
// signature, is refused at load time.
var Imports = map[string]Signature{
	FuncLog:            sig(i32s(3)),
	FuncGetConfig:      sig(i32s(2), I32),
	FuncGetProperty:    sig(i32s(3), I32),
	FuncClock:          sig(i32s(1), I64),
	FuncGetHeaderNames: sig(i32s(3), I32),
	FuncGetHeader:      sig(i32s(5), I32),
	FuncSetHeader:      sig(i32s(5)),
	FuncAddHeader:      sig(i32s(5)),
	FuncRemoveHeader:   sig(i32s(3)),
	FuncGetMethod:      sig(i32s(2), I32),
	FuncSetMethod:      sig(i32s(2)),
	FuncGetPath:        sig(i32s(2), I32),
	FuncSetPath:        sig(i32s(2)),
	FuncGetQuery:       sig(i32s(2), I32),
	FuncSetQuery:       sig(i32s(2)),
	FuncGetStatus:      sig(nil, I32),
	FuncSetStatus:      sig(i32s(1)),
	FuncGetBody:        sig(i32s(3), I32),
	FuncSetBody:        sig(i32s(3), I32),
	FuncSendResponse:   sig(i32s(5)),
	FuncGetMessage:     sig(i32s(2), I32),
	FuncSetMessage:     sig(i32s(2)),
	FuncInjectMessage:  sig(i32s(4)),
	FuncCloseWebSocket: sig(i32s(3)),
	FuncStateGet:       sig(i32s(4), I32),
	FuncStateSet:       sig(i32s(4)),
	FuncStateDelete:    sig(i32s(2)),
	FuncSharedGet:      sig(i32s(4), I32),
	FuncSharedSet:      sig(append(i32s(4), I64)),
	FuncSharedDelete:   sig(i32s(2)),
	FuncSharedAdd:      sig([]ValueType{I32, I32, I64, I64}, I64),
}

// Exports is every guest export the host knows and its signature. Only
// FuncABIVersion is required; the others are optional hooks. An export of
// one of these names with another signature is refused at load time.
var Exports = map[string]Signature{
	FuncABIVersion:        sig(nil, I32),
	FuncFeatures:          sig(nil, I32),
	FuncHooks:             sig(nil, I32),
	FuncConfigure:         sig(i32s(1), I32),
	FuncOnRequestHeaders:  sig(nil, I32),
	FuncOnResponseHeaders: sig(nil, I32),
	FuncOnUpgrade:         sig(nil, I32),
	FuncOnMessage:         sig(i32s(3), I32),
	FuncOnClose:           sig(nil),
}
