package sluice

import (
	"errors"

	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// ErrBodyNotBuffered is returned by the body methods when the proxy did not
// buffer the body: the filter did not call NeedRequestBody or
// NeedResponseBody in init, or the phase has no such body.
var ErrBodyNotBuffered = errors.New("sluice: body not buffered (call NeedRequestBody or NeedResponseBody in init)")

// Request is the request being proxied. Its methods read and change the
// request the upstream will receive; it holds no data itself, so it is free
// to copy.
type Request struct{}

// Method returns the request method.
func (Request) Method() string { s, _ := readString(opMethod, 0, ""); return s }

// SetMethod changes the method sent upstream.
func (Request) SetMethod(method string) { wire.SetMethod(method) }

// Path returns the request path, without the query.
func (Request) Path() string { s, _ := readString(opPath, 0, ""); return s }

// SetPath changes the path sent upstream.
func (Request) SetPath(path string) { wire.SetPath(path) }

// Query returns the raw query, without the "?".
func (Request) Query() string { s, _ := readString(opQuery, 0, ""); return s }

// SetQuery changes the raw query sent upstream ("" removes it).
func (Request) SetQuery(rawQuery string) { wire.SetQuery(rawQuery) }

// Header returns the request's headers.
func (Request) Header() Header { return Header{kind: wire.HeaderRequest} }

// Body returns a copy of the buffered request body.
func (Request) Body() ([]byte, error) { return body(wire.BodyRequest) }

// SetBody replaces the buffered request body.
func (Request) SetBody(b []byte) error { return setBody(wire.BodyRequest, b) }

// ClientAddr returns the client's address, "ip:port".
func (Request) ClientAddr() string { return property(PropertyClientAddr) }

// Host returns the host the client asked for.
func (Request) Host() string { return property(PropertyHost) }

// Scheme returns "http" or "https", as the client connected.
func (Request) Scheme() string { return property(PropertyScheme) }

// Route returns the name of the route that matched.
func (Request) Route() string { return property(PropertyRoute) }

// ID returns the request ID.
func (Request) ID() string { return property(PropertyRequestID) }

// Response is the upstream's response on its way to the client. Like
// Request it holds no data and is free to copy.
type Response struct{}

// Request returns the request this response answers.
func (Response) Request() Request { return Request{} }

// Status returns the response status.
func (Response) Status() int { return int(wire.GetStatus()) }

// SetStatus changes the response status.
func (Response) SetStatus(status int) { wire.SetStatus(int32(status)) }

// Header returns the response's headers.
func (Response) Header() Header { return Header{kind: wire.HeaderResponse} }

// Body returns a copy of the buffered response body.
func (Response) Body() ([]byte, error) { return body(wire.BodyResponse) }

// SetBody replaces the buffered response body. The proxy fixes
// Content-Length.
func (Response) SetBody(b []byte) error { return setBody(wire.BodyResponse, b) }

func body(kind int32) ([]byte, error) {
	b, ok := readCopy(opBody, kind, "")
	if !ok {
		return nil, ErrBodyNotBuffered
	}
	return b, nil
}

func setBody(kind int32, b []byte) error {
	if wire.SetBody(kind, b) < 0 {
		return ErrBodyNotBuffered
	}
	return nil
}

// Header is a request's or response's header map. Names are
// case-insensitive; the host reports them in canonical form
// ("Content-Type").
type Header struct{ kind int32 }

// Get returns the first value of name, or "" when it is absent.
func (h Header) Get(name string) string {
	b, _ := read(opHeader, h.kind, name)
	return string(firstOfList(b))
}

// Lookup returns the first value of name and whether the header is present
// (an empty value counts as present).
func (h Header) Lookup(name string) (string, bool) {
	b, _ := read(opHeader, h.kind, name)
	if len(b) == 0 {
		return "", false
	}
	return string(firstOfList(b)), true
}

// Has reports whether the header name is present.
func (h Header) Has(name string) bool {
	b, _ := read(opHeader, h.kind, name)
	return len(b) > 0
}

// AppendValue appends the first value of name to dst and returns the
// result, and false when the header is absent. With a reused dst it reads a
// header without allocating, which keeps TinyGo's garbage collector (whose
// every cycle scans the module's whole memory) out of the hot path.
func (h Header) AppendValue(dst []byte, name string) ([]byte, bool) {
	b, _ := read(opHeader, h.kind, name)
	if len(b) == 0 {
		return dst, false
	}
	return append(dst, firstOfList(b)...), true
}

// Values returns every value of name, in order; nil when it is absent.
func (h Header) Values(name string) []string {
	b, _ := read(opHeader, h.kind, name)
	return splitList(b)
}

// Set replaces every value of name with value.
func (h Header) Set(name, value string) { wire.SetHeader(h.kind, name, value) }

// Add appends value to name's values.
func (h Header) Add(name, value string) { wire.AddHeader(h.kind, name, value) }

// Remove deletes name and all its values.
func (h Header) Remove(name string) { wire.RemoveHeader(h.kind, name) }

// Names returns the names of every header present, in canonical form.
func (h Header) Names() []string {
	b, _ := read(opHeaderNames, h.kind, "")
	return splitList(b)
}
