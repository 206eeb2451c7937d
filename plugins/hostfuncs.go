package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// hostFunc is one function of the host module: its Go body and the names of
// its parameters (the types come from abi.Imports, the single source).
type hostFunc struct {
	fn     api.GoModuleFunc
	params []string
}

// hostFuncs implements every function of abi.Imports. Each is a
// GoModuleFunc reading its parameters from the stack: no reflection, no
// allocation beyond what the operation itself needs.
var hostFuncs = map[string]hostFunc{
	abi.FuncLog:            {hLog, []string{"level", "msg", "msg_len"}},
	abi.FuncGetConfig:      {hGetConfig, []string{"buf", "buf_cap"}},
	abi.FuncGetProperty:    {hGetProperty, []string{"prop", "buf", "buf_cap"}},
	abi.FuncClock:          {hClock, []string{"clock"}},
	abi.FuncGetHeaderNames: {hGetHeaderNames, []string{"kind", "buf", "buf_cap"}},
	abi.FuncGetHeader:      {hGetHeader, []string{"kind", "name", "name_len", "buf", "buf_cap"}},
	abi.FuncSetHeader:      {hSetHeader, []string{"kind", "name", "name_len", "value", "value_len"}},
	abi.FuncAddHeader:      {hAddHeader, []string{"kind", "name", "name_len", "value", "value_len"}},
	abi.FuncRemoveHeader:   {hRemoveHeader, []string{"kind", "name", "name_len"}},
	abi.FuncGetMethod:      {hGetMethod, []string{"buf", "buf_cap"}},
	abi.FuncSetMethod:      {hSetMethod, []string{"value", "value_len"}},
	abi.FuncGetPath:        {hGetPath, []string{"buf", "buf_cap"}},
	abi.FuncSetPath:        {hSetPath, []string{"value", "value_len"}},
	abi.FuncGetQuery:       {hGetQuery, []string{"buf", "buf_cap"}},
	abi.FuncSetQuery:       {hSetQuery, []string{"value", "value_len"}},
	abi.FuncGetStatus:      {hGetStatus, nil},
	abi.FuncSetStatus:      {hSetStatus, []string{"status"}},
	abi.FuncGetBody:        {hGetBody, []string{"kind", "buf", "buf_cap"}},
	abi.FuncSetBody:        {hSetBody, []string{"kind", "value", "value_len"}},
	abi.FuncSendResponse:   {hSendResponse, []string{"status", "headers", "headers_len", "body", "body_len"}},
	abi.FuncGetMessage:     {hGetMessage, []string{"buf", "buf_cap"}},
	abi.FuncSetMessage:     {hSetMessage, []string{"value", "value_len"}},
	abi.FuncInjectMessage:  {hInjectMessage, []string{"direction", "kind", "value", "value_len"}},
	abi.FuncCloseWebSocket: {hCloseWebSocket, []string{"code", "reason", "reason_len"}},
	abi.FuncStateGet:       {hStateGet, []string{"key", "key_len", "buf", "buf_cap"}},
	abi.FuncStateSet:       {hStateSet, []string{"key", "key_len", "value", "value_len"}},
	abi.FuncStateDelete:    {hStateDelete, []string{"key", "key_len"}},
	abi.FuncSharedGet:      {hSharedGet, []string{"key", "key_len", "buf", "buf_cap"}},
	abi.FuncSharedSet:      {hSharedSet, []string{"key", "key_len", "value", "value_len", "ttl_ms"}},
	abi.FuncSharedDelete:   {hSharedDelete, []string{"key", "key_len"}},
	abi.FuncSharedAdd:      {hSharedAdd, []string{"key", "key_len", "delta", "ttl_ms"}},
}

// instantiateHost adds the host module to a runtime. Every instance in the
// runtime shares it: host functions find their caller's per-call state
// through the call's context, so nothing in the module is per plugin.
func instantiateHost(ctx context.Context, r wazero.Runtime) error {
	names := make([]string, 0, len(abi.Imports))
	for name := range abi.Imports {
		names = append(names, name)
	}
	sort.Strings(names)
	b := r.NewHostModuleBuilder(abi.HostModule)
	for _, name := range names {
		hf, ok := hostFuncs[name]
		sig := abi.Imports[name]
		if !ok || len(hf.params) != len(sig.Params) {
			return fmt.Errorf("plugins: host function %s is not implemented as abi.Imports declares it", name)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(hf.fn, apiTypes(sig.Params), apiTypes(sig.Results)).
			WithParameterNames(hf.params...).
			WithName(name).
			Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// instantiateTick adds the module whose one function the instrumented guest
// calls every tickEvery loop iterations and function entries.
func instantiateTick(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder(tickModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hTick), nil, nil).
		WithName(tickName).
		Export(tickName).
		Instantiate(ctx)
	return err
}

// errDeadline is the trap tick raises at a call's deadline.
var errDeadline = sys.NewExitError(sys.ExitCodeDeadlineExceeded)

// hTick traps the guest when its call is past its deadline or was cut
// short. During instantiation (a start function) the context is the
// loader's, with a deadline of its own.
func hTick(ctx context.Context, _ api.Module, _ []uint64) {
	c, ok := ctx.(*callCtx)
	if !ok {
		if in, found := ctx.Value(instanceKey{}).(*instance); found {
			c = in.ctx
		}
	}
	if c != nil {
		if c.expired() {
			panic(errDeadline)
		}
		return
	}
	if ctx.Err() != nil {
		panic(errDeadline)
	}
}

func apiTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

// --- guest memory and failures ---

// misuse traps the guest for breaking the ABI. The panic unwinds the guest
// (wazero turns it into the call's error); the recorded reason tells the
// caller it was misuse, not a plain trap.
func (in *instance) misuse(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	in.st.misuse = err
	panic(err)
}

// outOfRange traps the guest for a (pointer, length) outside its memory.
func (in *instance) outOfRange(fn string, ptr, n uint32) {
	panic(fmt.Errorf("%s: range [%d, %d+%d) is outside guest memory of %d bytes",
		fn, ptr, ptr, n, in.mem.Size()))
}

// read returns a view of guest memory [ptr, ptr+n), trapping the guest
// when it is out of range. The view is valid until the guest runs again.
func (in *instance) read(fn string, ptr, n uint64) []byte {
	b, ok := in.mem.Read(uint32(ptr), uint32(n))
	if !ok {
		in.outOfRange(fn, uint32(ptr), uint32(n))
	}
	return b
}

// put applies the buffer convention: it writes v at buf only when it fits
// in bufCap, and returns v's length either way. The whole (buf, bufCap)
// must be guest memory, whether or not v fits.
func (in *instance) put(fn string, buf, bufCap uint64, v []byte) uint64 {
	dst := in.read(fn, buf, bufCap)
	if len(v) > math.MaxInt32 {
		in.misuse("%s: value of %d bytes is too large for the ABI", fn, len(v))
	}
	if len(v) <= len(dst) {
		copy(dst, v)
	}
	return uint64(uint32(len(v)))
}

// putString is put for a string, without converting it.
func (in *instance) putString(fn string, buf, bufCap uint64, v string) uint64 {
	dst := in.read(fn, buf, bufCap)
	if len(v) > math.MaxInt32 {
		in.misuse("%s: value of %d bytes is too large for the ABI", fn, len(v))
	}
	if len(v) <= len(dst) {
		copy(dst, v)
	}
	return uint64(uint32(len(v)))
}

// absent is the -1 result of the buffer convention, as an i32 on the stack.
var absent = api.EncodeI32(-1)

// --- the current request, session and maps ---

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

// validValue reports whether v may be a header value: no CR, LF or NUL.
func validValue(v []byte) bool {
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

func hLog(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	msg := in.read(abi.FuncLog, stack[1], stack[2])
	if len(msg) > maxLogLine {
		msg = msg[:maxLogLine]
	}
	var level slog.Level
	switch l := api.DecodeI32(stack[0]); {
	case l <= abi.LogDebug:
		level = slog.LevelDebug
	case l == abi.LogInfo:
		level = slog.LevelInfo
	case l == abi.LogWarn:
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	if in.p.logger.Enabled(context.Background(), level) {
		in.p.logger.Log(context.Background(), level, string(msg))
	}
}

func hGetConfig(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	stack[0] = in.put(abi.FuncGetConfig, stack[0], stack[1], in.p.config)
}

func hGetProperty(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v, ok := in.property(api.DecodeI32(stack[0]))
	if !ok {
		in.read(abi.FuncGetProperty, stack[1], stack[2])
		stack[0] = absent
		return
	}
	stack[0] = in.putString(abi.FuncGetProperty, stack[1], stack[2], v)
}

// property returns a Property of the current call; ok is false for an
// unknown property or one the call has no value for (in sluice_configure,
// only the plugin's name is known).
func (in *instance) property(prop int32) (string, bool) {
	x, s := in.st.x, in.st.s
	var r *http.Request
	switch {
	case x != nil:
		r = x.Request
	case s != nil:
		r = s.Upgrade
	}
	switch prop {
	case abi.PropertyPlugin:
		return in.p.name, true
	case abi.PropertyClientAddr:
		switch {
		case x != nil:
			return x.ClientAddr, true
		case s != nil:
			return s.ClientAddr, true
		}
	case abi.PropertyRoute:
		switch {
		case x != nil:
			return x.Route, true
		case s != nil:
			return s.Route, true
		}
	case abi.PropertyScheme:
		switch {
		case x != nil:
			return x.Scheme, true
		case r != nil && r.TLS != nil:
			return "https", true
		case r != nil:
			return "http", true
		}
	case abi.PropertyRequestID:
		switch {
		case s != nil:
			return s.ID, true
		case r != nil:
			if v := r.Header["X-Request-Id"]; len(v) > 0 {
				return v[0], true
			}
			return "", true
		}
	case abi.PropertyHost:
		if r != nil {
			return r.Host, true
		}
	case abi.PropertyProtocol:
		if r != nil {
			return r.Proto, true
		}
	}
	return "", false
}

func hClock(ctx context.Context, _ api.Module, stack []uint64) {
	switch api.DecodeI32(stack[0]) {
	case abi.ClockWall:
		stack[0] = api.EncodeI64(time.Now().UnixNano())
	case abi.ClockMonotonic:
		stack[0] = api.EncodeI64(monoNow())
	default:
		instanceOf(ctx).misuse("%s: unknown clock %d", abi.FuncClock, api.DecodeI32(stack[0]))
	}
}

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
		in.misuse("%s: the value of %s contains CR, LF or NUL", fn, name)
	}
	if kind == abi.HeaderRequest && isHost(name) {
		in.writableRequest(fn).Host = string(value)
		return
	}
	h := in.headers(fn, kind, true)
	key := textproto.CanonicalMIMEHeaderKey(string(name))
	if add {
		h[key] = append(h[key], string(value))
	} else {
		h[key] = []string{string(value)}
	}
}

func hRemoveHeader(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncRemoveHeader
	kind := api.DecodeI32(stack[0])
	name := in.read(fn, stack[1], stack[2])
	h := in.headers(fn, kind, true)
	if isCanonical(name) {
		delete(h, string(name))
	} else {
		delete(h, textproto.CanonicalMIMEHeaderKey(string(name)))
	}
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
	if len(v) == 0 || v[0] != '/' || !validValue(v) {
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
	if status < 100 || status > 999 {
		in.misuse("%s: %d is not an HTTP status", abi.FuncSetStatus, status)
	}
	in.st.x.Status = int(status)
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
	in.st.replyHeader = h
	in.st.reply = &filter.Reply{Status: int(status), Header: h, Body: append([]byte{}, body...)}
}

func hGetMessage(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	if in.st.phase != phaseMessage {
		in.read(abi.FuncGetMessage, stack[0], stack[1])
		stack[0] = absent
		return
	}
	p := in.st.m.Payload
	if in.st.payloadSet {
		p = in.st.payload
	}
	stack[0] = in.put(abi.FuncGetMessage, stack[0], stack[1], p)
}

func hSetMessage(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	v := in.read(abi.FuncSetMessage, stack[0], stack[1])
	if in.st.phase != phaseMessage {
		in.misuse("%s: called outside on_message", abi.FuncSetMessage)
	}
	in.msgBuf = append(in.msgBuf[:0], v...)
	in.st.payload = in.msgBuf
	in.st.payloadSet = true
}

// maxInjections bounds the messages one on_message call may inject, so a
// guest cannot make the host buffer without limit within one deadline.
const maxInjections = 16

func hInjectMessage(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncInjectMessage
	dir, kind := api.DecodeI32(stack[0]), api.DecodeI32(stack[1])
	v := in.read(fn, stack[2], stack[3])
	if in.st.phase != phaseMessage {
		in.misuse("%s: called outside on_message", fn)
	}
	if len(in.st.inject) >= maxInjections {
		in.misuse("%s: more than %d messages injected in one call", fn, maxInjections)
	}
	if dir != abi.DirectionClientToUpstream && dir != abi.DirectionUpstreamToClient {
		in.misuse("%s: unknown direction %d", fn, dir)
	}
	if kind != abi.MessageText && kind != abi.MessageBinary {
		in.misuse("%s: unknown message kind %d", fn, kind)
	}
	if kind == abi.MessageText && !utf8.Valid(v) {
		in.misuse("%s: a text message must be UTF-8", fn)
	}
	d := filter.ClientToUpstream
	if dir == abi.DirectionUpstreamToClient {
		d = filter.UpstreamToClient
	}
	in.st.inject = append(in.st.inject, filter.Message{
		Direction: d,
		Binary:    kind == abi.MessageBinary,
		Payload:   append([]byte{}, v...),
	})
}

// validCloseCode reports whether a filter may close with code (RFC 6455
// 7.4: the codes an endpoint may send, plus the registered and private
// ranges).
func validCloseCode(code int32) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func hCloseWebSocket(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncCloseWebSocket
	code := api.DecodeI32(stack[0])
	reason := in.read(fn, stack[1], stack[2])
	if in.st.phase != phaseMessage {
		in.misuse("%s: called outside on_message", fn)
	}
	if !validCloseCode(code) {
		in.misuse("%s: %d is not a close code a filter may send", fn, code)
	}
	if len(reason) > 123 || !utf8.Valid(reason) {
		in.misuse("%s: the reason must be UTF-8 of at most 123 bytes", fn)
	}
	in.st.closeCode = int(code)
	in.st.closeText = string(reason)
}

func hStateGet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateGet, stack[0], stack[1])
	v, ok := in.state(abi.FuncStateGet).Get(string(key))
	if !ok {
		in.read(abi.FuncStateGet, stack[2], stack[3])
		stack[0] = absent
		return
	}
	stack[0] = in.put(abi.FuncStateGet, stack[2], stack[3], v)
}

func hStateSet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateSet, stack[0], stack[1])
	v := in.read(abi.FuncStateSet, stack[2], stack[3])
	in.state(abi.FuncStateSet).Set(string(key), v)
}

func hStateDelete(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateDelete, stack[0], stack[1])
	in.state(abi.FuncStateDelete).Delete(string(key))
}

// sharedFailed traps the guest when the shared store fails: the hook cannot
// go on with a value it did not get, and the failure policy decides.
func (in *instance) sharedFailed(fn string, err error) {
	panic(fmt.Errorf("%s: shared store: %w", fn, err))
}

func ttlOf(in *instance, fn string, ms int64) time.Duration {
	if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		in.misuse("%s: ttl_ms %d is out of range", fn, ms)
	}
	return time.Duration(ms) * time.Millisecond
}

func hSharedGet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedGet
	key := in.read(fn, stack[0], stack[1])
	in.read(fn, stack[2], stack[3])
	v, ok, err := in.p.shared.Get(ctx, in.p.name, string(key))
	if err != nil {
		in.sharedFailed(fn, err)
	}
	if !ok {
		stack[0] = absent
		return
	}
	stack[0] = in.put(fn, stack[2], stack[3], v)
}

func hSharedSet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedSet
	key := in.read(fn, stack[0], stack[1])
	v := in.read(fn, stack[2], stack[3])
	ttl := ttlOf(in, fn, int64(stack[4])) // i64: the whole slot
	if err := in.p.shared.Set(ctx, in.p.name, string(key), v, ttl); err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedDelete(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedDelete
	key := in.read(fn, stack[0], stack[1])
	if err := in.p.shared.Delete(ctx, in.p.name, string(key)); err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedAdd(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedAdd
	key := in.read(fn, stack[0], stack[1])
	delta := int64(stack[2])
	ttl := ttlOf(in, fn, int64(stack[3]))
	n, err := in.p.shared.Add(ctx, in.p.name, string(key), delta, ttl)
	if err != nil {
		in.sharedFailed(fn, err)
	}
	stack[0] = api.EncodeI64(n)
}
