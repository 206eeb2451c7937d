// Package wire is the SDK's side of the Sluice ABI: the host functions with
// Go slices in place of (pointer, length) pairs, and the guest hooks as
// plain functions over ABI integers.
//
// In a WebAssembly build (wasip1) the host functions are imports from the
// "sluice" module and the hooks are exported; in a native build the host
// functions call a Host set with SetHost, so filters and the SDK run under
// go test with sluicetest's in-memory host. Both builds share the hook
// dispatch below, so a native test drives the same code the proxy does.
//
// The constants mirror github.com/sluiceproxy/sluice/abi, which this module
// must not import (the SDK has no dependencies).
package wire

// ABI constants, mirrored from the abi package.
const (
	Version = 1

	ActionContinue = 0
	ActionRespond  = 1
	ActionPass     = 0
	ActionDrop     = 1
	ActionClose    = 2

	FeatureRequestBody  = 1 << 0
	FeatureResponseBody = 1 << 1

	HookRequestHeaders  = 1 << 0
	HookResponseHeaders = 1 << 1
	HookUpgrade         = 1 << 2
	HookMessage         = 1 << 3
	HookClose           = 1 << 4

	HeaderRequest  = 0
	HeaderResponse = 1

	BodyRequest  = 0
	BodyResponse = 1

	DirectionClientToUpstream = 0
	DirectionUpstreamToClient = 1

	MessageText   = 0
	MessageBinary = 1

	LogDebug = -1
	LogInfo  = 0
	LogWarn  = 1
	LogError = 2

	PropertyClientAddr = 0
	PropertyHost       = 1
	PropertyScheme     = 2
	PropertyRoute      = 3
	PropertyRequestID  = 4
	PropertyPlugin     = 5
	PropertyProtocol   = 6

	ClockWall      = 0
	ClockMonotonic = 1
)

// Guest holds the filter's handlers as the SDK registered them, over ABI
// integers. A nil handler is a hook the filter does not handle: its export
// returns the neutral action and Hooks leaves its bit clear.
var Guest struct {
	Configure       func(configLen int32) int32
	RequestHeaders  func() int32
	ResponseHeaders func() int32
	Upgrade         func() int32
	Message         func(direction, kind, length int32) int32
	Close           func()
	// Features is the set of abi Features the filter declared.
	Features uint32
}

// ABIVersion is sluice_abi_version.
func ABIVersion() int32 { return Version }

// Features is sluice_features.
func Features() int32 { return int32(Guest.Features) }

// Hooks is sluice_hooks: the hooks that have a handler.
func Hooks() int32 {
	var h int32
	if Guest.RequestHeaders != nil {
		h |= HookRequestHeaders
	}
	if Guest.ResponseHeaders != nil {
		h |= HookResponseHeaders
	}
	if Guest.Upgrade != nil {
		h |= HookUpgrade
	}
	if Guest.Message != nil {
		h |= HookMessage
	}
	if Guest.Close != nil {
		h |= HookClose
	}
	return h
}

// Configure is sluice_configure.
func Configure(configLen int32) int32 {
	if f := Guest.Configure; f != nil {
		return f(configLen)
	}
	return 0
}

// OnRequestHeaders is sluice_on_request_headers.
func OnRequestHeaders() int32 {
	if f := Guest.RequestHeaders; f != nil {
		return f()
	}
	return ActionContinue
}

// OnResponseHeaders is sluice_on_response_headers.
func OnResponseHeaders() int32 {
	if f := Guest.ResponseHeaders; f != nil {
		return f()
	}
	return ActionContinue
}

// OnUpgrade is sluice_on_upgrade.
func OnUpgrade() int32 {
	if f := Guest.Upgrade; f != nil {
		return f()
	}
	return ActionContinue
}

// OnMessage is sluice_on_message.
func OnMessage(direction, kind, length int32) int32 {
	if f := Guest.Message; f != nil {
		return f(direction, kind, length)
	}
	return ActionPass
}

// OnClose is sluice_on_close.
func OnClose() {
	if f := Guest.Close; f != nil {
		f()
	}
}
