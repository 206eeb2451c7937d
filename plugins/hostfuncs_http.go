package plugins

import (
	"context"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero/api"
)

// The host functions of the HTTP hooks: headers, method, path, query,
// status, bodies and local responses.

func (in *instance) request(fn string) *http.Request {
	switch {
	case in.st.x != nil && in.st.x.Request != nil:
		return in.st.x.Request
	case in.st.s != nil && in.st.s.Upgrade != nil:
		return in.st.s.Upgrade
	}
	in.misuse("%s: there is no request in this call", fn)
	return nil
}

// writableRequest is the request in the hooks that may still change it.
func (in *instance) writableRequest(fn string) *http.Request {
	if (in.st.phase == phaseRequest || in.st.phase == phaseUpgrade) && in.st.x != nil && in.st.x.Request != nil {
		return in.st.x.Request
	}
	in.misuse("%s: the request can only change in on_request_headers and on_upgrade", fn)
	return nil
}

// writableURL is writableRequest's URL, which set_path and set_query change.
func (in *instance) writableURL(fn string) *url.URL {
	r := in.writableRequest(fn)
	if r.URL == nil {
		in.misuse("%s: the request has no URL", fn)
	}
	return r.URL
}

// headers returns the header map kind addresses in this call; with write it
// creates a missing map, without it a missing map is returned as nil.
func (in *instance) headers(fn string, kind int32, write bool) http.Header {
	switch kind {
	case abi.HeaderRequest:
		var r *http.Request
		if write {
			r = in.writableRequest(fn)
		} else {
			r = in.request(fn)
		}
		if r.Header == nil && write {
			r.Header = make(http.Header)
		}
		return r.Header
	case abi.HeaderResponse:
		switch in.st.phase {
		case phaseRequest, phaseUpgrade:
			// The pending local response's headers.
			if in.st.replyHeader == nil && write {
				in.st.replyHeader = make(http.Header)
			}
			return in.st.replyHeader
		case phaseResponse:
			x := in.st.x
			if x.ResponseHeader == nil && write {
				x.ResponseHeader = make(http.Header)
			}
			return x.ResponseHeader
		}
		in.misuse("%s: there are no response headers in this call", fn)
	}
	in.misuse("%s: unknown header kind %d", fn, kind)
	return nil
}

func (in *instance) state(fn string) *filter.State {
	switch in.st.phase {
	case phaseRequest, phaseUpgrade, phaseResponse:
		return &in.st.x.State
	case phaseMessage, phaseClose:
		return &in.st.s.State
	}
	in.misuse("%s: there is no request or connection state in this call", fn)
	return nil
}

// requestLineFits traps the guest when v alone would not fit the request
// head a client may send (server.max_header_bytes bounds the request line
// and the headers together).
func (in *instance) requestLineFits(fn string, v []byte) {
	if max := in.p.quotas.maxHeader; len(v) > max {
		in.overQuota(fn, "server.max_header_bytes", int64(max), int64(len(v)))
	}
}

// isCanonical reports whether name is already in canonical MIME header form
// ("Content-Type"), so it can index an http.Header without allocating.
func isCanonical(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	upper := true
	for _, c := range name {
		switch {
		case 'A' <= c && c <= 'Z':
			if !upper {
				return false
			}
		case 'a' <= c && c <= 'z':
			if upper {
				return false
			}
		case c == '-':
		case '0' <= c && c <= '9':
		default:
			return false
		}
		upper = c == '-'
	}
	return true
}

func lookup(h http.Header, name []byte) []string {
	if isCanonical(name) {
		return h[string(name)]
	}
	return h[textproto.CanonicalMIMEHeaderKey(string(name))]
}

func isHost(name []byte) bool { return len(name) == 4 && strings.EqualFold(string(name), "host") }

// validName reports whether name is an HTTP token (RFC 9110), so a guest
// cannot inject header lines.
func validName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validValue reports whether v may be a header value (RFC 9110, 5.5): no
// control byte but the horizontal tab, and no DEL. Bytes from 0x80 up
// (obs-text) pass, as they do from clients.
func validValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validPath reports whether v may be a decoded path: no CR, LF or NUL (the
// host escapes the rest when it writes the request).
func validPath(v []byte) bool {
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// noControls reports whether v has no byte a request line cannot carry.
func noControls(v []byte) bool {
	for _, c := range v {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// --- the host functions ---

func hGetHeaderNames(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	kind := api.DecodeI32(stack[0])
	h := in.headers(abi.FuncGetHeaderNames, kind, false)
	names := in.names[:0]
	for k := range h {
		names = append(names, k)
	}
	if kind == abi.HeaderRequest {
		if r := in.request(abi.FuncGetHeaderNames); r.Host != "" && h["Host"] == nil {
			names = append(names, "Host")
		}
	}
	slices.Sort(names)
	b := in.scratch[:0]
	for _, k := range names {
		b = append(b, k...)
		b = append(b, 0)
	}
	in.names, in.scratch = names[:0], b
	stack[0] = in.put(abi.FuncGetHeaderNames, stack[1], stack[2], b)
}

func hGetHeader(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncGetHeader
	kind := api.DecodeI32(stack[0])
	name := in.read(fn, stack[1], stack[2])
	b := in.scratch[:0]
	if kind == abi.HeaderRequest && isHost(name) {
		if hv := in.request(fn).Host; hv != "" {
			b = append(append(b, hv...), 0)
		}
	} else {
		for _, v := range lookup(in.headers(fn, kind, false), name) {
			b = append(append(b, v...), 0)
		}
	}
	in.scratch = b
	stack[0] = in.put(fn, stack[3], stack[4], b)
}

func hSetHeader(ctx context.Context, _ api.Module, stack []uint64) {
	setHeader(ctx, abi.FuncSetHeader, stack, false)
}

func hAddHeader(ctx context.Context, _ api.Module, stack []uint64) {
	setHeader(ctx, abi.FuncAddHeader, stack, true)
}

func setHeader(ctx context.Context, fn string, stack []uint64, add bool) {
	in := instanceOf(ctx)
	kind := api.DecodeI32(stack[0])
	name := in.read(fn, stack[1], stack[2])
	value := in.read(fn, stack[3], stack[4])
	if !validName(name) {
		in.misuse("%s: %q is not a valid header name", fn, name)
	}
	if !validValue(value) {
		in.misuse("%s: the value of %s contains a control byte (only HTAB is allowed)", fn, name)
	}
	if kind == abi.HeaderRequest && isHost(name) {
		in.requestLineFits(fn, value)
		in.writableRequest(fn).Host = string(value)
		return
	}
	h := in.headers(fn, kind, true)
	key := textproto.CanonicalMIMEHeaderKey(string(name))
	// The headers a filter leaves must fit the limit a client's do.
	before := in.headerSize(kind, h)
	after := before + len(key) + len(value) + 4
	if !add {
		for _, v := range h[key] {
			after -= len(key) + len(v) + 4
		}
	}
	if after > in.p.quotas.maxHeader && after > before {
		in.overQuota(fn, "server.max_header_bytes", int64(in.p.quotas.maxHeader), int64(after))
	}
	if add {
		h[key] = append(h[key], string(value))
	} else {
		h[key] = []string{string(value)}
	}
	in.st.hdrBytes[kind] = after
}

// headerSize returns the wire size of the headers kind addresses (see
// headerBytes), measured once per call and then kept up to date by the host
// functions that change them, so a guest adding header after header costs
// the host one pass over the map, not one per call.
func (in *instance) headerSize(kind int32, h http.Header) int {
	if !in.st.hdrKnown[kind] {
		in.st.hdrBytes[kind] = headerBytes(h)
		in.st.hdrKnown[kind] = true
	}
	return in.st.hdrBytes[kind]
}

func hRemoveHeader(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncRemoveHeader
	kind := api.DecodeI32(stack[0])
	name := in.read(fn, stack[1], stack[2])
	h := in.headers(fn, kind, true)
	key := string(name)
	if !isCanonical(name) {
		key = textproto.CanonicalMIMEHeaderKey(key)
	}
	if in.st.hdrKnown[kind] {
		for _, v := range h[key] {
			in.st.hdrBytes[kind] -= len(key) + len(v) + 4
		}
	}
	delete(h, key)
}

func hGetMethod(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	m := in.request(abi.FuncGetMethod).Method
	if m == "" {
		m = http.MethodGet
	}
	stack[0] = in.putString(abi.FuncGetMethod, stack[0], stack[1], m)
}

func hSetMethod(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v := in.read(abi.FuncSetMethod, stack[0], stack[1])
	in.requestLineFits(abi.FuncSetMethod, v)
	if !validName(v) {
		in.misuse("%s: %q is not a valid method", abi.FuncSetMethod, v)
	}
	in.writableRequest(abi.FuncSetMethod).Method = string(v)
}

func hGetPath(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	path := ""
	if u := in.request(abi.FuncGetPath).URL; u != nil {
		path = u.Path
	}
	stack[0] = in.putString(abi.FuncGetPath, stack[0], stack[1], path)
}

func hSetPath(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v := in.read(abi.FuncSetPath, stack[0], stack[1])
	in.requestLineFits(abi.FuncSetPath, v)
	if len(v) == 0 || v[0] != '/' || !validPath(v) {
		in.misuse("%s: %q is not a path (it must start with / and have no CR, LF or NUL)", abi.FuncSetPath, v)
	}
	u := in.writableURL(abi.FuncSetPath)
	u.Path = string(v)
	u.RawPath = "" // re-escaped from Path when the request is written
}

func hGetQuery(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	q := ""
	if u := in.request(abi.FuncGetQuery).URL; u != nil {
		q = u.RawQuery
	}
	stack[0] = in.putString(abi.FuncGetQuery, stack[0], stack[1], q)
}

func hSetQuery(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v := in.read(abi.FuncSetQuery, stack[0], stack[1])
	in.requestLineFits(abi.FuncSetQuery, v)
	if !noControls(v) || strings.IndexByte(string(v), '#') >= 0 {
		in.misuse("%s: %q is not a raw query (no spaces, control bytes or #)", abi.FuncSetQuery, v)
	}
	in.writableURL(abi.FuncSetQuery).RawQuery = string(v)
}

func hGetStatus(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	status := 0
	if in.st.phase == phaseResponse {
		status = in.st.x.Status
	}
	stack[0] = api.EncodeI32(int32(status))
}

func hSetStatus(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	status := api.DecodeI32(stack[0])
	if in.st.phase != phaseResponse {
		in.misuse("%s: only on_response_headers can change the status (use send_response to answer locally)", abi.FuncSetStatus)
	}
	if status < 200 || status > 599 {
		in.misuse("%s: %d is not a status a filter may set (200-599)", abi.FuncSetStatus, status)
	}
	if (status == 204 || status == 304) && in.responseHasBody() {
		in.misuse("%s: %d cannot carry the response's body", abi.FuncSetStatus, status)
	}
	in.st.x.Status = int(status)
}

// responseHasBody reports whether the upstream's response, as the filters
// left it, may carry a body, so a 204 or 304 status would break its framing.
func (in *instance) responseHasBody() bool {
	x := in.st.x
	if in.p.features&abi.FeatureResponseBody != 0 {
		return len(x.ResponseBody) > 0
	}
	switch x.Status {
	case 204, 304:
		return false
	}
	if cl := x.ResponseHeader["Content-Length"]; len(cl) == 1 && cl[0] == "0" {
		return false
	}
	return true
}

// body returns the buffered body kind addresses, or nil when it is not
// buffered for this guest in this call.
func (in *instance) body(fn string, kind int32) *[]byte {
	x := in.st.x
	switch kind {
	case abi.BodyRequest:
		if x != nil && in.p.features&abi.FeatureRequestBody != 0 &&
			(in.st.phase == phaseRequest || in.st.phase == phaseUpgrade || in.st.phase == phaseResponse) {
			return &x.RequestBody
		}
	case abi.BodyResponse:
		if x != nil && in.p.features&abi.FeatureResponseBody != 0 && in.st.phase == phaseResponse {
			return &x.ResponseBody
		}
	default:
		in.misuse("%s: unknown body kind %d", fn, kind)
	}
	return nil
}

func hGetBody(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	b := in.body(abi.FuncGetBody, api.DecodeI32(stack[0]))
	if b == nil {
		in.read(abi.FuncGetBody, stack[1], stack[2])
		stack[0] = absent
		return
	}
	stack[0] = in.put(abi.FuncGetBody, stack[1], stack[2], *b)
}

func hSetBody(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v := in.read(abi.FuncSetBody, stack[1], stack[2])
	b := in.body(abi.FuncSetBody, api.DecodeI32(stack[0]))
	if b == nil {
		stack[0] = absent
		return
	}
	if int64(len(v)) > in.p.quotas.bodyBuffer {
		in.overQuota(abi.FuncSetBody, "max_body_buffer", in.p.quotas.bodyBuffer, int64(len(v)))
	}
	*b = append([]byte{}, v...)
	stack[0] = 0
}

func hSendResponse(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSendResponse
	status := api.DecodeI32(stack[0])
	hdrs := in.read(fn, stack[1], stack[2])
	body := in.read(fn, stack[3], stack[4])
	switch in.st.phase {
	case phaseRequest, phaseUpgrade, phaseResponse:
	default:
		in.misuse("%s: only HTTP hooks can answer locally", fn)
	}
	if status < 200 || status > 599 {
		in.misuse("%s: %d is not a status a local response can have (200-599)", fn, status)
	}
	if len(body) > 0 && (status == 204 || status == 304) {
		in.misuse("%s: a %d response cannot have a body", fn, status)
	}
	if len(body) > in.p.quotas.localResponse {
		in.overQuota(fn, "max_local_response", int64(in.p.quotas.localResponse), int64(len(body)))
	}
	if len(hdrs) > in.p.quotas.maxHeader {
		in.overQuota(fn, "server.max_header_bytes", int64(in.p.quotas.maxHeader), int64(len(hdrs)))
	}
	h := in.st.replyHeader
	if h == nil {
		h = make(http.Header)
	}
	if len(hdrs) > 0 {
		if hdrs[len(hdrs)-1] != 0 {
			in.misuse("%s: the header list does not end with NUL", fn)
		}
		parts := strings.Split(string(hdrs[:len(hdrs)-1]), "\x00")
		if len(parts)%2 != 0 {
			in.misuse("%s: the header list has a name without a value", fn)
		}
		for i := 0; i < len(parts); i += 2 {
			if !validName([]byte(parts[i])) || !validValue([]byte(parts[i+1])) {
				in.misuse("%s: invalid header %q", fn, parts[i])
			}
			h.Add(parts[i], parts[i+1])
		}
	}
	if n := headerBytes(h); n > in.p.quotas.maxHeader {
		in.overQuota(fn, "server.max_header_bytes", int64(in.p.quotas.maxHeader), int64(n))
	}
	in.st.hdrKnown[abi.HeaderResponse] = false // the pairs were added without it
	in.st.replyHeader = h
	in.st.reply = &filter.Reply{Status: int(status), Header: h, Body: append([]byte{}, body...)}
}
