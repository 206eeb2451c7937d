package wsrelay

import "sync/atomic"

// Counters are a session's traffic counters, by filter.Direction: data
// messages and bytes (payloads in message mode, wire bytes in raw mode).
// The relay adds to them as it goes; a caller that passes its own in
// Params reads them live, from any goroutine, for metrics.
type Counters struct {
	msgs, bytes [2]atomic.Int64
}

// Load returns the messages and bytes relayed so far in direction d (0
// client to upstream, 1 upstream to client).
func (c *Counters) Load(d int) (messages, bytes int64) {
	return c.msgs[d].Load(), c.bytes[d].Load()
}
