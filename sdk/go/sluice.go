package sluice

import (
	"time"

	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// ABIVersion is the version of the Sluice ABI this SDK implements. The
// module reports it to the host, which refuses versions it does not know.
const ABIVersion = wire.Version

// Action is what an HTTP hook (request headers, response headers, upgrade)
// tells the proxy to do next: Continue, or the value Respond returns.
type Action int32

// Continue lets the request or response go on to the next filter.
const Continue Action = wire.ActionContinue

// actionRespond is never returned without a response set; Respond is the
// only way to produce it.
const actionRespond Action = wire.ActionRespond

// OnConfigure registers the handler that receives the plugin's config (the
// [plugin.config] table as JSON, "{}" when there is none) once per instance,
// before any hook. An error refuses the module when the proxy loads it, and
// its text goes to the proxy's log.
func OnConfigure(h func(config []byte) error) {
	configHandler = h
}

var (
	configHandler func(config []byte) error
	configBytes   []byte
)

func init() {
	// Configure is always wired so Config works without a handler.
	wire.Guest.Configure = configure
}

func configure(n int32) int32 {
	configBytes = nil
	if n >= 0 {
		configBytes = make([]byte, n)
		// A config never changes during an instance's life, so the length
		// the host announced is the buffer we need; retry only in case.
		if m := wire.GetConfig(configBytes); m > n {
			configBytes, _ = readCopy(opConfig, 0, "")
		} else if m >= 0 {
			configBytes = configBytes[:m]
		}
	}
	if configHandler == nil {
		return 0
	}
	if err := configHandler(configBytes); err != nil {
		wire.Log(wire.LogError, "configure: "+err.Error())
		return 1
	}
	return 0
}

// Config returns the plugin's config as JSON, as handed to OnConfigure.
// The slice is shared: do not modify it.
func Config() []byte { return configBytes }

// OnRequestHeaders registers the handler that runs before a request is
// proxied, for every request including WebSocket upgrades (before
// OnUpgrade). It may change the request or answer it with Respond.
func OnRequestHeaders(h func(req Request) Action) {
	if h == nil {
		wire.Guest.RequestHeaders = nil
		return
	}
	wire.Guest.RequestHeaders = func() int32 { return int32(h(Request{})) }
}

// OnResponseHeaders registers the handler that runs when the upstream's
// response headers arrive. It may change the status and headers or replace
// the response with Respond.
func OnResponseHeaders(h func(resp Response) Action) {
	if h == nil {
		wire.Guest.ResponseHeaders = nil
		return
	}
	wire.Guest.ResponseHeaders = func() int32 { return int32(h(Response{})) }
}

// OnUpgrade registers the handler that runs for a WebSocket upgrade request,
// after OnRequestHeaders and before the upstream is dialled. Respond refuses
// the upgrade with that response.
func OnUpgrade(h func(req Request) Action) {
	if h == nil {
		wire.Guest.Upgrade = nil
		return
	}
	wire.Guest.Upgrade = func() int32 { return int32(h(Request{})) }
}

// OnClose registers the handler that runs once when a WebSocket session
// ends, whichever side ended it. State still holds the connection's values.
func OnClose(h func()) {
	wire.Guest.Close = h
}

// NeedRequestBody asks the proxy to buffer request bodies, so that
// Request.Body and Request.SetBody work. Call it in init: it costs memory
// and latency on every request of the routes the filter is on.
func NeedRequestBody() { wire.Guest.Features |= wire.FeatureRequestBody }

// NeedResponseBody asks the proxy to buffer response bodies, so that
// Response.Body and Response.SetBody work. Call it in init.
func NeedResponseBody() { wire.Guest.Features |= wire.FeatureResponseBody }

var respondBuf []byte

// Respond sets a local response and returns the Action that sends it: the
// chain stops and the client gets status, headers and body instead of the
// upstream's answer. headers holds name and value pairs ("Content-Type",
// "application/json", ...); an odd final name gets an empty value.
//
//	return sluice.Respond(403, []string{"Content-Type", "text/plain"}, []byte("forbidden\n"))
func Respond(status int, headers []string, body []byte) Action {
	b := respondBuf[:0]
	for i, s := range headers {
		b = append(b, s...)
		b = append(b, 0)
		if i == len(headers)-1 && i%2 == 0 {
			b = append(b, 0)
		}
	}
	respondBuf = b
	wire.SendResponse(int32(status), b, body)
	return actionRespond
}

// Level is the level of a log line.
type Level int32

// Log levels, mapped onto the proxy's.
const (
	LevelDebug Level = wire.LogDebug
	LevelInfo  Level = wire.LogInfo
	LevelWarn  Level = wire.LogWarn
	LevelError Level = wire.LogError
)

// Log writes msg to the proxy's log at level, tagged with the plugin's name.
func Log(level Level, msg string) { wire.Log(int32(level), msg) }

// LogDebug writes msg to the proxy's log at debug level.
func LogDebug(msg string) { wire.Log(wire.LogDebug, msg) }

// LogInfo writes msg to the proxy's log at info level.
func LogInfo(msg string) { wire.Log(wire.LogInfo, msg) }

// LogWarn writes msg to the proxy's log at warn level.
func LogWarn(msg string) { wire.Log(wire.LogWarn, msg) }

// LogError writes msg to the proxy's log at error level.
func LogError(msg string) { wire.Log(wire.LogError, msg) }

// Now returns the host's wall clock. Prefer it to time.Now in filters: it is
// the proxy's clock, and tests can set it.
func Now() time.Time { return time.Unix(0, wire.Clock(wire.ClockWall)) }

// Nanotime returns the host's monotonic clock in nanoseconds since an
// arbitrary fixed point; use it to measure intervals.
func Nanotime() int64 { return wire.Clock(wire.ClockMonotonic) }

// Property is a read-only fact of the current request or WebSocket session.
type Property int32

// Properties.
const (
	// PropertyClientAddr is the client's "ip:port".
	PropertyClientAddr Property = wire.PropertyClientAddr
	// PropertyHost is the Host the client asked for.
	PropertyHost Property = wire.PropertyHost
	// PropertyScheme is "http" or "https".
	PropertyScheme Property = wire.PropertyScheme
	// PropertyRoute is the name of the route that matched.
	PropertyRoute Property = wire.PropertyRoute
	// PropertyRequestID is the request ID (X-Request-Id); for a WebSocket,
	// the ID of its upgrade request.
	PropertyRequestID Property = wire.PropertyRequestID
	// PropertyPlugin is the name the plugin runs as in proxy.toml.
	PropertyPlugin Property = wire.PropertyPlugin
	// PropertyProtocol is the client's protocol, e.g. "HTTP/1.1".
	PropertyProtocol Property = wire.PropertyProtocol
)

// GetProperty returns a property's value, and false when the host does not
// know the property.
func GetProperty(p Property) (string, bool) { return readString(opProperty, int32(p), "") }

func property(p Property) string {
	s, _ := readString(opProperty, int32(p), "")
	return s
}
