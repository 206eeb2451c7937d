// Command redact is a Sluice filter that masks sensitive data in WebSocket
// text messages: in JSON messages, the values of the configured fields at
// any depth (and the configured words inside string values); in any other
// text, the configured words. Binary messages pass untouched.
//
// See README.md for the config keys.
package main

import (
	"errors"

	"github.com/sluiceproxy/sluice/examples/internal/tinyjson"
	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

var (
	red redactor
	// directions[d] reports whether messages travelling in d are redacted.
	directions [2]bool
)

func configure(raw []byte) error {
	c, err := tinyjson.NewConfig(raw, "redact: config")
	if err != nil {
		return err
	}
	fields, words := c.Strings("fields"), c.Strings("words")
	mask := c.String("mask", "***")
	direction := c.String("direction", "both")
	if err := c.Done(); err != nil {
		return err
	}
	if len(fields) == 0 && len(words) == 0 {
		return errors.New("redact: config: set fields, words or both")
	}
	r, err := newRedactor(fields, words, mask)
	if err != nil {
		return err
	}
	switch direction {
	case "both":
		directions = [2]bool{true, true}
	case "client_to_upstream":
		directions = [2]bool{true, false}
	case "upstream_to_client":
		directions = [2]bool{false, true}
	default:
		return errors.New(`redact: config: direction must be "both", "client_to_upstream" or "upstream_to_client"`)
	}
	red = r
	return nil
}

func onMessage(m *sluice.Message) sluice.MessageAction {
	if m.Kind != sluice.Text || !directions[m.Direction&1] {
		return sluice.Pass
	}
	p := m.Payload()
	if !red.redactJSON(p) {
		red.redactText(p)
	}
	if out, changed := red.result(); changed {
		m.SetPayload(out)
	}
	return sluice.Pass
}

func init() {
	sluice.OnConfigure(configure)
	sluice.OnMessage(onMessage)
}

func main() {}
