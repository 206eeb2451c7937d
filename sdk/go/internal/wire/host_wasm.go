//go:build wasip1

package wire

import "unsafe"

// Raw imports from the "sluice" host module. Pointers are unsafe.Pointer so
// the Go toolchain keeps the memory alive for the call; lengths are i32.

//go:wasmimport sluice log
func hostLog(level int32, msg unsafe.Pointer, msgLen int32)

//go:wasmimport sluice get_config
func hostGetConfig(buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice get_property
func hostGetProperty(prop int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice clock
func hostClock(clock int32) int64

//go:wasmimport sluice get_header_names
func hostGetHeaderNames(kind int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice get_header
func hostGetHeader(kind int32, name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_header
func hostSetHeader(kind int32, name unsafe.Pointer, nameLen int32, value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice add_header
func hostAddHeader(kind int32, name unsafe.Pointer, nameLen int32, value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice remove_header
func hostRemoveHeader(kind int32, name unsafe.Pointer, nameLen int32)

//go:wasmimport sluice get_method
func hostGetMethod(buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_method
func hostSetMethod(value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice get_path
func hostGetPath(buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_path
func hostSetPath(value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice get_query
func hostGetQuery(buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_query
func hostSetQuery(value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice get_status
func hostGetStatus() int32

//go:wasmimport sluice set_status
func hostSetStatus(status int32)

//go:wasmimport sluice get_body
func hostGetBody(kind int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_body
func hostSetBody(kind int32, value unsafe.Pointer, valueLen int32) int32

//go:wasmimport sluice send_response
func hostSendResponse(status int32, headers unsafe.Pointer, headersLen int32, body unsafe.Pointer, bodyLen int32)

//go:wasmimport sluice get_message
func hostGetMessage(buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice set_message
func hostSetMessage(value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice inject_message
func hostInjectMessage(direction, kind int32, value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice close_websocket
func hostCloseWebSocket(code int32, reason unsafe.Pointer, reasonLen int32)

//go:wasmimport sluice state_get
func hostStateGet(key unsafe.Pointer, keyLen int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice state_set
func hostStateSet(key unsafe.Pointer, keyLen int32, value unsafe.Pointer, valueLen int32)

//go:wasmimport sluice state_delete
func hostStateDelete(key unsafe.Pointer, keyLen int32)

//go:wasmimport sluice shared_get
func hostSharedGet(key unsafe.Pointer, keyLen int32, buf unsafe.Pointer, bufCap int32) int32

//go:wasmimport sluice shared_set
func hostSharedSet(key unsafe.Pointer, keyLen int32, value unsafe.Pointer, valueLen int32, ttlMillis int64)

//go:wasmimport sluice shared_delete
func hostSharedDelete(key unsafe.Pointer, keyLen int32)

//go:wasmimport sluice shared_add
func hostSharedAdd(key unsafe.Pointer, keyLen int32, delta int64, ttlMillis int64) int64

func sp(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }
func bp(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// Log writes msg to the proxy's log at level.
func Log(level int32, msg string) { hostLog(level, sp(msg), int32(len(msg))) }

// GetConfig reads the plugin's JSON config into buf.
func GetConfig(buf []byte) int32 { return hostGetConfig(bp(buf), int32(len(buf))) }

// GetProperty reads a property into buf.
func GetProperty(prop int32, buf []byte) int32 {
	return hostGetProperty(prop, bp(buf), int32(len(buf)))
}

// Clock reads a clock in nanoseconds.
func Clock(clock int32) int64 { return hostClock(clock) }

// GetHeaderNames lists header names of kind into buf.
func GetHeaderNames(kind int32, buf []byte) int32 {
	return hostGetHeaderNames(kind, bp(buf), int32(len(buf)))
}

// GetHeader lists the values of header name into buf.
func GetHeader(kind int32, name string, buf []byte) int32 {
	return hostGetHeader(kind, sp(name), int32(len(name)), bp(buf), int32(len(buf)))
}

// SetHeader replaces the values of header name with value.
func SetHeader(kind int32, name, value string) {
	hostSetHeader(kind, sp(name), int32(len(name)), sp(value), int32(len(value)))
}

// AddHeader appends value to header name.
func AddHeader(kind int32, name, value string) {
	hostAddHeader(kind, sp(name), int32(len(name)), sp(value), int32(len(value)))
}

// RemoveHeader removes header name.
func RemoveHeader(kind int32, name string) { hostRemoveHeader(kind, sp(name), int32(len(name))) }

// GetMethod reads the request method into buf.
func GetMethod(buf []byte) int32 { return hostGetMethod(bp(buf), int32(len(buf))) }

// SetMethod changes the request method.
func SetMethod(v string) { hostSetMethod(sp(v), int32(len(v))) }

// GetPath reads the request path into buf.
func GetPath(buf []byte) int32 { return hostGetPath(bp(buf), int32(len(buf))) }

// SetPath changes the request path.
func SetPath(v string) { hostSetPath(sp(v), int32(len(v))) }

// GetQuery reads the raw query into buf.
func GetQuery(buf []byte) int32 { return hostGetQuery(bp(buf), int32(len(buf))) }

// SetQuery changes the raw query.
func SetQuery(v string) { hostSetQuery(sp(v), int32(len(v))) }

// GetStatus reads the response status.
func GetStatus() int32 { return hostGetStatus() }

// SetStatus changes the response status.
func SetStatus(status int32) { hostSetStatus(status) }

// GetBody reads a buffered body into buf.
func GetBody(kind int32, buf []byte) int32 { return hostGetBody(kind, bp(buf), int32(len(buf))) }

// SetBody replaces a buffered body.
func SetBody(kind int32, v []byte) int32 { return hostSetBody(kind, bp(v), int32(len(v))) }

// SendResponse sets the local response.
func SendResponse(status int32, headers, body []byte) {
	hostSendResponse(status, bp(headers), int32(len(headers)), bp(body), int32(len(body)))
}

// GetMessage reads the current message's payload into buf.
func GetMessage(buf []byte) int32 { return hostGetMessage(bp(buf), int32(len(buf))) }

// SetMessage replaces the current message's payload.
func SetMessage(v []byte) { hostSetMessage(bp(v), int32(len(v))) }

// InjectMessage sends a new message.
func InjectMessage(direction, kind int32, v []byte) {
	hostInjectMessage(direction, kind, bp(v), int32(len(v)))
}

// CloseWebSocket sets the close code and reason.
func CloseWebSocket(code int32, reason string) {
	hostCloseWebSocket(code, sp(reason), int32(len(reason)))
}

// StateGet reads a per-request or per-connection value into buf.
func StateGet(key string, buf []byte) int32 {
	return hostStateGet(sp(key), int32(len(key)), bp(buf), int32(len(buf)))
}

// StateSet stores a per-request or per-connection value.
func StateSet(key string, v []byte) { hostStateSet(sp(key), int32(len(key)), bp(v), int32(len(v))) }

// StateDelete removes a per-request or per-connection value.
func StateDelete(key string) { hostStateDelete(sp(key), int32(len(key))) }

// SharedGet reads a shared value into buf.
func SharedGet(key string, buf []byte) int32 {
	return hostSharedGet(sp(key), int32(len(key)), bp(buf), int32(len(buf)))
}

// SharedSet stores a shared value.
func SharedSet(key string, v []byte, ttlMillis int64) {
	hostSharedSet(sp(key), int32(len(key)), bp(v), int32(len(v)), ttlMillis)
}

// SharedDelete removes a shared value.
func SharedDelete(key string) { hostSharedDelete(sp(key), int32(len(key))) }

// SharedAdd adds delta to a shared counter.
func SharedAdd(key string, delta, ttlMillis int64) int64 {
	return hostSharedAdd(sp(key), int32(len(key)), delta, ttlMillis)
}
