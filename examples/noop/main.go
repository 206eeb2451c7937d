// Command noop is the smallest message filter: it handles every WebSocket
// message and passes it unchanged. It exists to measure what the message
// hook itself costs (frame parsing, the call into the sandbox) in benchmarks.
package main

import sluice "github.com/sluiceproxy/sluice/sdk/go"

func init() {
	sluice.OnMessage(func(*sluice.Message) sluice.MessageAction { return sluice.Pass })
}

func main() {}
