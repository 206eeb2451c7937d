// Command redact is a Sluice filter that masks sensitive data in WebSocket
// text messages: in JSON messages, the values of the configured fields at
// any depth (and the configured words inside string values); in any other
// text, the configured words. Binary messages pass untouched.
//
// See README.md for the config keys.
package main

import (
	"encoding/json"
	"errors"
	"strings"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

var (
	red redactor
	// directions[d] reports whether messages travelling in d are redacted.
	directions [2]bool
)

func configure(raw []byte) error {
	var c struct {
		Fields    []string `json:"fields"`
		Words     []string `json:"words"`
		Mask      *string  `json:"mask"`
		Direction string   `json:"direction"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return errors.New("redact: config: " + err.Error())
	}
	if len(c.Fields) == 0 && len(c.Words) == 0 {
		return errors.New("redact: config: set fields, words or both")
	}
	mask := "***"
	if c.Mask != nil {
		mask = *c.Mask
	}
	r := redactor{
		maskValue:    append(append([]byte{'"'}, escapeJSON(mask)...), '"'),
		maskInString: escapeJSON(mask),
		maskText:     []byte(mask),
	}
	for _, f := range c.Fields {
		if f == "" {
			return errors.New("redact: config: fields: empty name")
		}
		r.fields = append(r.fields, []byte(strings.ToLower(f)))
	}
	var words [][]byte
	for _, w := range c.Words {
		if w == "" {
			return errors.New("redact: config: words: empty word")
		}
		words = append(words, []byte(strings.ToLower(w)))
	}
	r.setWords(words)
	switch c.Direction {
	case "", "both":
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
