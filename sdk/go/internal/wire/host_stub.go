//go:build !wasip1

package wire

// Host is the host side of the ABI in a native build. Its methods have the
// semantics of the host functions of the same names, including the buffer
// convention: a method that fills buf returns the value's real length and
// writes only when it fits.
type Host interface {
	Log(level int32, msg string)
	GetConfig(buf []byte) int32
	GetProperty(prop int32, buf []byte) int32
	Clock(clock int32) int64
	GetHeaderNames(kind int32, buf []byte) int32
	GetHeader(kind int32, name string, buf []byte) int32
	SetHeader(kind int32, name, value string)
	AddHeader(kind int32, name, value string)
	RemoveHeader(kind int32, name string)
	GetMethod(buf []byte) int32
	SetMethod(v string)
	GetPath(buf []byte) int32
	SetPath(v string)
	GetQuery(buf []byte) int32
	SetQuery(v string)
	GetStatus() int32
	SetStatus(status int32)
	GetBody(kind int32, buf []byte) int32
	SetBody(kind int32, v []byte) int32
	SendResponse(status int32, headers, body []byte)
	GetMessage(buf []byte) int32
	SetMessage(v []byte)
	InjectMessage(direction, kind int32, v []byte)
	CloseWebSocket(code int32, reason string)
	StateGet(key string, buf []byte) int32
	StateSet(key string, v []byte)
	StateDelete(key string)
	SharedGet(key string, buf []byte) int32
	SharedSet(key string, v []byte, ttlMillis int64)
	SharedDelete(key string)
	SharedAdd(key string, delta, ttlMillis int64) int64
}

var host Host

// SetHost makes h the host of every host function call, and returns the
// previous one.
func SetHost(h Host) Host {
	old := host
	host = h
	return old
}

func current() Host {
	if host == nil {
		panic("sluice: no host in a native build; drive the filter with sluicetest.New")
	}
	return host
}

// Log writes msg to the proxy's log at level.
func Log(level int32, msg string) { current().Log(level, msg) }

// GetConfig reads the plugin's JSON config into buf.
func GetConfig(buf []byte) int32 { return current().GetConfig(buf) }

// GetProperty reads a property into buf.
func GetProperty(prop int32, buf []byte) int32 { return current().GetProperty(prop, buf) }

// Clock reads a clock in nanoseconds.
func Clock(clock int32) int64 { return current().Clock(clock) }

// GetHeaderNames lists header names of kind into buf.
func GetHeaderNames(kind int32, buf []byte) int32 { return current().GetHeaderNames(kind, buf) }

// GetHeader lists the values of header name into buf.
func GetHeader(kind int32, name string, buf []byte) int32 {
	return current().GetHeader(kind, name, buf)
}

// SetHeader replaces the values of header name with value.
func SetHeader(kind int32, name, value string) { current().SetHeader(kind, name, value) }

// AddHeader appends value to header name.
func AddHeader(kind int32, name, value string) { current().AddHeader(kind, name, value) }

// RemoveHeader removes header name.
func RemoveHeader(kind int32, name string) { current().RemoveHeader(kind, name) }

// GetMethod reads the request method into buf.
func GetMethod(buf []byte) int32 { return current().GetMethod(buf) }

// SetMethod changes the request method.
func SetMethod(v string) { current().SetMethod(v) }

// GetPath reads the request path into buf.
func GetPath(buf []byte) int32 { return current().GetPath(buf) }

// SetPath changes the request path.
func SetPath(v string) { current().SetPath(v) }

// GetQuery reads the raw query into buf.
func GetQuery(buf []byte) int32 { return current().GetQuery(buf) }

// SetQuery changes the raw query.
func SetQuery(v string) { current().SetQuery(v) }

// GetStatus reads the response status.
func GetStatus() int32 { return current().GetStatus() }

// SetStatus changes the response status.
func SetStatus(status int32) { current().SetStatus(status) }

// GetBody reads a buffered body into buf.
func GetBody(kind int32, buf []byte) int32 { return current().GetBody(kind, buf) }

// SetBody replaces a buffered body.
func SetBody(kind int32, v []byte) int32 { return current().SetBody(kind, v) }

// SendResponse sets the local response.
func SendResponse(status int32, headers, body []byte) {
	current().SendResponse(status, headers, body)
}

// GetMessage reads the current message's payload into buf.
func GetMessage(buf []byte) int32 { return current().GetMessage(buf) }

// SetMessage replaces the current message's payload.
func SetMessage(v []byte) { current().SetMessage(v) }

// InjectMessage sends a new message.
func InjectMessage(direction, kind int32, v []byte) {
	current().InjectMessage(direction, kind, v)
}

// CloseWebSocket sets the close code and reason.
func CloseWebSocket(code int32, reason string) { current().CloseWebSocket(code, reason) }

// StateGet reads a per-request or per-connection value into buf.
func StateGet(key string, buf []byte) int32 { return current().StateGet(key, buf) }

// StateSet stores a per-request or per-connection value.
func StateSet(key string, v []byte) { current().StateSet(key, v) }

// StateDelete removes a per-request or per-connection value.
func StateDelete(key string) { current().StateDelete(key) }

// SharedGet reads a shared value into buf.
func SharedGet(key string, buf []byte) int32 { return current().SharedGet(key, buf) }

// SharedSet stores a shared value.
func SharedSet(key string, v []byte, ttlMillis int64) { current().SharedSet(key, v, ttlMillis) }

// SharedDelete removes a shared value.
func SharedDelete(key string) { current().SharedDelete(key) }

// SharedAdd adds delta to a shared counter.
func SharedAdd(key string, delta, ttlMillis int64) int64 {
	return current().SharedAdd(key, delta, ttlMillis)
}
