package plugins

import (
	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/filter"
)

// chain is a route's filter chain: the route's plugins in order. For each
// hook it keeps only the plugins that handle it, so a hook no filter handles
// costs a nil slice range.
type chain struct {
	route   string
	plugins []*plugin
	by      [numHooks][]*plugin
	hooks   filter.HookSet
	// bodyLimit is the smallest max_body_buffer of the plugins that buffer
	// bodies: the proxy buffers no more than any of them allows.
	bodyLimit int64
}

var (
	_ filter.Chain       = (*chain)(nil)
	_ filter.BodyLimiter = (*chain)(nil)
)

// hookSets maps each hook to the proxy's hook point.
var hookSets = [numHooks]filter.HookSet{
	hookRequestHeaders:  filter.HookRequestHeaders,
	hookResponseHeaders: filter.HookResponseHeaders,
	hookUpgrade:         filter.HookUpgrade,
	hookMessage:         filter.HookMessage,
	hookClose:           filter.HookClose,
}

func newChain(route string, plugins []*plugin) *chain {
	c := &chain{route: route, plugins: plugins}
	for _, p := range plugins {
		for h := range numHooks {
			if p.hooks&(1<<h) != 0 {
				c.by[h] = append(c.by[h], p)
				c.hooks |= hookSets[h]
			}
		}
		if p.features&abi.FeatureRequestBody != 0 {
			c.hooks |= filter.HookRequestBody
		}
		if p.features&abi.FeatureResponseBody != 0 {
			c.hooks |= filter.HookResponseBody
		}
		if p.features&(abi.FeatureRequestBody|abi.FeatureResponseBody) != 0 &&
			(c.bodyLimit == 0 || p.quotas.bodyBuffer < c.bodyLimit) {
			c.bodyLimit = p.quotas.bodyBuffer
		}
	}
	return c
}

// MaxBufferedBody implements filter.BodyLimiter.
func (c *chain) MaxBufferedBody() int64 { return c.bodyLimit }

// Hooks implements filter.Chain.
func (c *chain) Hooks() filter.HookSet { return c.hooks }

// OnRequestHeaders implements filter.Chain.
func (c *chain) OnRequestHeaders(x *filter.Exchange) *filter.Reply {
	return c.http(hookRequestHeaders, phaseRequest, x)
}

// OnUpgrade implements filter.Chain.
func (c *chain) OnUpgrade(x *filter.Exchange) *filter.Reply {
	return c.http(hookUpgrade, phaseUpgrade, x)
}

// OnResponseHeaders implements filter.Chain.
func (c *chain) OnResponseHeaders(x *filter.Exchange) *filter.Reply {
	return c.http(hookResponseHeaders, phaseResponse, x)
}

// denyReply is what a failing filter under on_error = "deny" answers: 503,
// because the proxy (not the upstream) cannot serve the request now.
func denyReply() *filter.Reply { return &filter.Reply{Status: 503} }

// http runs an HTTP hook through the chain. Each filter sees the exchange as
// the previous one left it; the first local response ends the chain.
func (c *chain) http(h hook, ph phase, x *filter.Exchange) *filter.Reply {
	for _, p := range c.by[h] {
		in, ce := p.acquire()
		if ce != nil {
			if p.fail(h, ce) {
				return denyReply()
			}
			continue
		}
		in.st = callState{phase: ph, x: x}
		action, ce := p.invoke(in, h)
		var reply *filter.Reply
		if ce == nil {
			switch action {
			case abi.ActionContinue:
			case abi.ActionRespond:
				if reply = in.st.reply; reply == nil {
					ce = misuse("returned ActionRespond (1) without calling send_response")
				}
			default:
				ce = misuse("returned unknown action %d", int32(action))
			}
		}
		p.release(in, ce)
		if ce != nil {
			if p.fail(h, ce) {
				return denyReply()
			}
			continue
		}
		if reply != nil {
			return reply
		}
	}
	return nil
}

// maxKeptMessageBuf is the largest set_message buffer an instance keeps for
// its next call; a larger one is left to the collector.
const maxKeptMessageBuf = 1 << 20

// OnMessage implements filter.Chain. Each filter sees the payload as the
// previous one left it; injected messages accumulate; a drop or close ends
// the chain.
func (c *chain) OnMessage(s *filter.Session, m *filter.Message) filter.MessageVerdict {
	var v filter.MessageVerdict
	dir, kind := abi.DirectionClientToUpstream, abi.MessageText
	if m.Direction == filter.UpstreamToClient {
		dir = abi.DirectionUpstreamToClient
	}
	if m.Binary {
		kind = abi.MessageBinary
	}
	for _, p := range c.by[hookMessage] {
		in, ce := p.acquire()
		if ce != nil {
			if p.fail(hookMessage, ce) {
				return failClose(v)
			}
			continue
		}
		in.st = callState{phase: phaseMessage, s: s, m: m, closeCode: 1000}
		in.stack[0] = api32(dir)
		in.stack[1] = api32(kind)
		in.stack[2] = uint64(uint32(len(m.Payload)))
		action, ce := p.invoke(in, hookMessage)
		if ce == nil {
			switch action {
			case abi.ActionPass, abi.ActionDrop, abi.ActionClose:
				if in.st.payloadSet {
					// Into the message's own buffer, which the relay lends
					// for this call: the instance's copy is reused by its
					// next call.
					m.Payload = append(m.Payload[:0], in.st.payload...)
					if cap(in.msgBuf) > maxKeptMessageBuf {
						in.msgBuf = nil
					}
				}
				v.Inject = append(v.Inject, in.st.inject...)
				switch action {
				case abi.ActionDrop:
					v.Action = filter.MessageDrop
				case abi.ActionClose:
					v.Action = filter.MessageClose
					v.CloseCode, v.CloseReason = in.st.closeCode, in.st.closeText
				}
			default:
				ce = misuse("returned unknown message action %d", int32(action))
			}
		}
		p.release(in, ce)
		if ce != nil {
			if p.fail(hookMessage, ce) {
				return failClose(v)
			}
			continue
		}
		if v.Action != filter.MessagePass {
			return v
		}
	}
	return v
}

// failClose is the verdict of a failing filter under on_error = "deny":
// close with 1011 (internal error). Messages injected by earlier filters
// still go out first.
func failClose(v filter.MessageVerdict) filter.MessageVerdict {
	v.Action = filter.MessageClose
	v.CloseCode = 1011
	v.CloseReason = "filter error"
	return v
}

func api32(v int32) uint64 { return uint64(uint32(v)) }

// OnClose implements filter.Chain. Every filter that handles it runs; a
// failure is counted and logged but changes nothing, the session is over.
func (c *chain) OnClose(s *filter.Session) {
	for _, p := range c.by[hookClose] {
		in, ce := p.acquire()
		if ce != nil {
			p.fail(hookClose, ce)
			continue
		}
		in.st = callState{phase: phaseClose, s: s}
		_, ce = p.invoke(in, hookClose)
		p.release(in, ce)
		if ce != nil {
			p.fail(hookClose, ce)
		}
	}
}
