// Command stamp is the filter the reload tests deploy in two versions: it
// marks what passes through it with the stamp its config names, so a test
// sees which version served each response and message. Responses get the
// header X-Version: STAMP; in text messages, in both directions, every
// "secret" becomes "[STAMP]".
//
//	[plugin.config]
//	stamp = "A"
package main

import (
	"bytes"
	"errors"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

var (
	stamp []byte
	mask  []byte
)

// configure reads {"stamp": "..."}: the one key, a string without escapes.
func configure(raw []byte) error {
	const key = `"stamp"`
	i := bytes.Index(raw, []byte(key))
	if i < 0 {
		return errors.New("stamp: config: stamp is required")
	}
	rest := bytes.TrimLeft(raw[i+len(key):], " \t\r\n")
	rest, ok := bytes.CutPrefix(rest, []byte(":"))
	rest = bytes.TrimLeft(rest, " \t\r\n")
	rest, ok2 := bytes.CutPrefix(rest, []byte(`"`))
	end := bytes.IndexByte(rest, '"')
	if !ok || !ok2 || end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return errors.New("stamp: config: stamp must be a plain string")
	}
	stamp = append([]byte(nil), rest[:end]...)
	mask = append(append([]byte("["), stamp...), ']')
	return nil
}

func onResponse(resp sluice.Response) sluice.Action {
	resp.Header().Set("X-Version", string(stamp))
	return sluice.Continue
}

func onMessage(m *sluice.Message) sluice.MessageAction {
	if m.Kind != sluice.Text {
		return sluice.Pass
	}
	if p := m.Payload(); bytes.Contains(p, []byte("secret")) {
		m.SetPayload(bytes.ReplaceAll(p, []byte("secret"), mask))
	}
	return sluice.Pass
}

func init() {
	sluice.OnConfigure(configure)
	sluice.OnResponseHeaders(onResponse)
	sluice.OnMessage(onMessage)
}

func main() {}
