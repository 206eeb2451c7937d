package filtertool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sluiceproxy/sluice/host/config"
)

// Cases is a cases file: the module under test, its [[plugin]] settings,
// and the cases. The format is documented in docs/filter-cases.md.
type Cases struct {
	// Module is the default module, relative to the cases file.
	Module string `toml:"module"`
	// Plugin holds [[plugin]] settings: memory_limit, timeout.
	Plugin struct {
		MemoryLimit config.Size     `toml:"memory_limit"`
		Timeout     config.Duration `toml:"timeout"`
	} `toml:"plugin"`
	// Config is the plugin config of every case that sets none.
	Config map[string]any `toml:"config"`
	Case   []Case         `toml:"case"`

	file string
}

// Case is one input and what the filter must do with it.
type Case struct {
	Name string `toml:"name"`
	// Config replaces the file's config for this case.
	Config map[string]any `toml:"config"`

	// The request: a message in HTTP/1.1 syntax, or the parts.
	Request string   `toml:"request"`
	Method  string   `toml:"method"`
	URL     string   `toml:"url"`
	Headers []string `toml:"headers"`
	Body    string   `toml:"body"`
	// The upstream's response: a message in HTTP/1.1 syntax, or the parts.
	Response        string   `toml:"response"`
	Status          int      `toml:"status"`
	ResponseHeaders []string `toml:"response_headers"`
	ResponseBody    string   `toml:"response_body"`
	// Messages makes the request a WebSocket upgrade and these the
	// session's messages.
	Messages []messageLine `toml:"messages"`

	Expect Expect `toml:"expect"`

	line int
}

// Expect is what a case checks. Only what it sets is checked.
type Expect struct {
	// Failure is "trap", "timeout", "misuse" or "error" when the run must
	// fail that way; empty means no call may fail.
	Failure string `toml:"failure"`
	// Logs must each appear in a line the filter logged during the case.
	Logs []string `toml:"logs"`

	RequestHeaders  *HTTPExpect     `toml:"request_headers"`
	Upgrade         *HTTPExpect     `toml:"upgrade"`
	ResponseHeaders *HTTPExpect     `toml:"response_headers"`
	Message         []MessageExpect `toml:"message"`
	// Shared holds the last value the case wrote to each shared key.
	Shared map[string]string `toml:"shared"`
}

// HTTPExpect checks one HTTP hook call.
type HTTPExpect struct {
	// Action is "continue" or "respond".
	Action string `toml:"action"`
	// Reply checks the local response of a "respond".
	ReplyStatus       int               `toml:"reply_status"`
	ReplyHeaders      map[string]string `toml:"reply_headers"`
	ReplyBody         *string           `toml:"reply_body"`
	ReplyBodyContains string            `toml:"reply_body_contains"`
	// Headers are header values after the hook: the request's in the
	// request and upgrade hooks, the response's in the response hook. ""
	// means the header must be absent.
	Headers map[string]string `toml:"headers"`
	Method  string            `toml:"method"`
	Path    string            `toml:"path"`
	Query   *string           `toml:"query"`
	Status  int               `toml:"status"`
	Body    *string           `toml:"body"`
	// State holds per-request state after the hook; "" means absent.
	State map[string]string `toml:"state"`
}

// MessageExpect checks the message hook call of one message, in order.
type MessageExpect struct {
	// Action is "pass", "drop" or "close".
	Action string `toml:"action"`
	// Payload is the payload forwarded (after the hook); PayloadBase64 the
	// same in base64, for binary payloads a TOML string cannot hold.
	Payload       *string `toml:"payload"`
	PayloadBase64 *string `toml:"payload_base64"`
	// Inject lists the payloads of the injected messages, in order.
	Inject      []string `toml:"inject"`
	CloseCode   int      `toml:"close_code"`
	CloseReason *string  `toml:"close_reason"`
	// State holds per-connection state after the hook.
	State map[string]string `toml:"state"`
}

// LoadCases reads and checks a cases file. Unknown keys are errors, with
// their line.
func LoadCases(path string) (*Cases, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("filtertool: %w", err)
	}
	var c Cases
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("filtertool: %s: %w", path, err)
	}
	var bad []string
	for _, k := range md.Undecoded() {
		// Configs are free-form: the filter checks them.
		if k[0] == "config" || (len(k) > 2 && k[0] == "case" && k[1] == "config") {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s: unknown key %q", path, k.String()))
	}
	if len(bad) > 0 {
		return nil, errors.New("filtertool: " + strings.Join(bad, "\n"))
	}
	c.file = path
	lines := caseLines(string(data))
	for i := range c.Case {
		if i < len(lines) {
			c.Case[i].line = lines[i]
		}
		if c.Case[i].Name == "" {
			c.Case[i].Name = fmt.Sprintf("case %d", i+1)
		}
	}
	if len(c.Case) == 0 {
		return nil, fmt.Errorf("filtertool: %s: no [[case]]", path)
	}
	return &c, nil
}

// caseLines finds the line of each [[case]] header.
func caseLines(data string) []int {
	var out []int
	for i, l := range strings.Split(data, "\n") {
		if strings.TrimSpace(l) == "[[case]]" {
			out = append(out, i+1)
		}
	}
	return out
}

// modulePath resolves the file's module relative to its folder.
func (c *Cases) modulePath() string {
	if c.Module == "" || filepath.IsAbs(c.Module) {
		return c.Module
	}
	return filepath.Join(filepath.Dir(c.file), c.Module)
}

// sample builds a case's Sample.
func (k *Case) sample() (*Sample, error) {
	o := RunOptions{Method: k.Method, URL: k.URL, Headers: k.Headers, Body: k.Body,
		Status: k.Status, ResponseHeaders: k.ResponseHeaders, ResponseBody: k.ResponseBody}
	s := &Sample{}
	var err error
	if k.Request != "" {
		if k.Method != "" || k.URL != "" || len(k.Headers) > 0 || k.Body != "" {
			return nil, errors.New("request replaces method, url, headers and body")
		}
		if s.Request, s.RequestBody, err = ParseRequest([]byte(k.Request)); err != nil {
			return nil, err
		}
	} else if s.Request, err = buildRequest(o.Method, o.URL, o.Headers, o.Body); err != nil {
		return nil, err
	} else {
		s.RequestBody = []byte(k.Body)
	}
	if k.Response != "" {
		if s.Response, err = ParseResponse([]byte(k.Response)); err != nil {
			return nil, err
		}
	} else if k.Status != 0 || len(k.ResponseHeaders) > 0 || k.ResponseBody != "" {
		h, err := ParseHeaderLines(k.ResponseHeaders)
		if err != nil {
			return nil, err
		}
		status := k.Status
		if status == 0 {
			status = 200
		}
		s.Response = &Response{Status: status, Header: h, Body: []byte(k.ResponseBody)}
	}
	for i, ml := range k.Messages {
		m, err := ml.message()
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		s.Messages = append(s.Messages, m)
	}
	if len(s.Messages) > 0 {
		if s.Response != nil {
			return nil, errors.New("a WebSocket session (messages) has no HTTP response to filter")
		}
		makeUpgrade(s.Request)
	}
	return s, nil
}

// sortedKeys returns m's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
