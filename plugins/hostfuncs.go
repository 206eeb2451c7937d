package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/sluiceproxy/sluice/abi"
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
	if in.st.phase == phaseInit && level >= slog.LevelWarn {
		// Kept to explain a refused config in the load error.
		in.st.initLog = string(msg)
	}
	if in.p.logger.Enabled(context.Background(), level) && in.p.logs.allow(in.p.logger) {
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
