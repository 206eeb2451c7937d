package plugins

import (
	"context"
	"unicode/utf8"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero/api"
)

// The host functions of the message hook: the message, injections and
// closing the session.

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
	if len(v) > in.p.quotas.maxMessage {
		in.overQuota(abi.FuncSetMessage, "server.websocket.max_message_size", int64(in.p.quotas.maxMessage), int64(len(v)))
	}
	if !in.st.m.Binary && !utf8.Valid(v) {
		in.misuse("%s: a text message must be UTF-8", abi.FuncSetMessage)
	}
	in.msgBuf = append(in.msgBuf[:0], v...)
	in.st.payload = in.msgBuf
	in.st.payloadSet = true
}

func hInjectMessage(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncInjectMessage
	dir, kind := api.DecodeI32(stack[0]), api.DecodeI32(stack[1])
	v := in.read(fn, stack[2], stack[3])
	if in.st.phase != phaseMessage {
		in.misuse("%s: called outside on_message", fn)
	}
	q := &in.p.quotas
	if len(in.st.inject) >= q.injectCount {
		in.overQuota(fn, "max_injected_messages", int64(q.injectCount), int64(len(in.st.inject)+1))
	}
	if len(v) > q.maxMessage {
		in.overQuota(fn, "server.websocket.max_message_size", int64(q.maxMessage), int64(len(v)))
	}
	if in.st.injectBytes+len(v) > q.injectBytes {
		in.overQuota(fn, "max_injected_bytes", int64(q.injectBytes), int64(in.st.injectBytes+len(v)))
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
	in.st.injectBytes += len(v)
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
