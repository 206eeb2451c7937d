// Command redact is a Sluice filter that masks sensitive data in WebSocket
// text messages: in JSON messages, the values of the configured fields at
// any depth (and the configured words inside string values); in any other
// text, the configured words. Binary messages pass untouched.
//
// See README.md for the config keys.
package main

import (
	"errors"
	"strings"

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
	r := redactor{
		maskValue:    append(append([]byte{'"'}, escapeJSON(mask)...), '"'),
		maskInString: escapeJSON(mask),
		maskText:     []byte(mask),
	}
	for _, f := range fields {
		if f == "" {
			return errors.New("redact: config: fields: empty name")
		}
		r.fields = append(r.fields, []byte(strings.ToLower(f)))
	}
	var lower [][]byte
	for _, w := range words {
		if w == "" {
			return errors.New("redact: config: words: empty word")
		}
		lower = append(lower, []byte(strings.ToLower(w)))
	}
	r.setWords(lower)
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
