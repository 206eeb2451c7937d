package filtertool

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/sluiceproxy/sluice/host/filter"
)

// Sample is what a filter is run against: a request, and either the
// upstream's response or, for a WebSocket upgrade, the messages of the
// session.
type Sample struct {
	// Request is the client's request as the proxy hands it to filters.
	Request *http.Request
	// RequestBody is the request's body (seen by filters that ask for it).
	RequestBody []byte
	// Response is the upstream's response; nil when the sample stops at the
	// request (or is a WebSocket session).
	Response *Response
	// Messages are the WebSocket session's messages, in the order they
	// arrive. When there are any, the request is an upgrade.
	Messages []Message
	// ClientAddr is the client's "ip:port". Default "127.0.0.1:40000".
	ClientAddr string
	// Scheme is "http" (default) or "https".
	Scheme string
}

// Response is an upstream's response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Message is one WebSocket message of a sample.
type Message struct {
	Direction filter.Direction
	Binary    bool
	Payload   []byte
}

// maxSampleBody bounds a sample's bodies: a test input, not a stream.
const maxSampleBody = 16 << 20

// ParseRequest reads a request in HTTP/1.1 message syntax: a request line,
// header lines and, after an empty line, the body. Lines may end in LF or
// CRLF. A body without Content-Length is the rest of the input.
func ParseRequest(data []byte) (*http.Request, []byte, error) {
	data = crlf(data)
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, nil, fmt.Errorf("filtertool: request: %w", err)
	}
	body, err := readBody(r.Body, r.ContentLength, data)
	if err != nil {
		return nil, nil, fmt.Errorf("filtertool: request body: %w", err)
	}
	r.Body = http.NoBody
	r.RequestURI = ""
	return r, body, nil
}

// ParseResponse reads a response in HTTP/1.1 message syntax.
func ParseResponse(data []byte) (*Response, error) {
	data = crlf(data)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
	if err != nil {
		return nil, fmt.Errorf("filtertool: response: %w", err)
	}
	body, err := readBody(resp.Body, resp.ContentLength, data)
	if err != nil {
		return nil, fmt.Errorf("filtertool: response body: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// crlf makes the head of a message end its lines in CRLF, so files written
// with an editor's LF parse, and leaves the body alone.
func crlf(data []byte) []byte {
	head, body, found := bytes.Cut(data, []byte("\n\n"))
	if !found {
		if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
			return data
		}
		head, body = bytes.TrimRight(data, "\r\n"), nil
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	out := strings.Join(lines, "\r\n") + "\r\n\r\n"
	return append([]byte(out), body...)
}

// readBody reads a parsed message's body. Without Content-Length (-1 with
// no chunking, or 0 because net/http assumes no body on a request), the body
// is whatever follows the head in data.
func readBody(rc io.ReadCloser, n int64, data []byte) ([]byte, error) {
	if rc == nil || rc == http.NoBody {
		if n <= 0 {
			if _, rest, ok := bytes.Cut(data, []byte("\r\n\r\n")); ok && len(rest) > 0 {
				return rest, nil
			}
		}
		return nil, nil
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSampleBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSampleBody {
		return nil, fmt.Errorf("larger than %d bytes", maxSampleBody)
	}
	return b, nil
}

// ParseHeaderLines reads "Name: value" lines (flags, cases) into a header.
func ParseHeaderLines(lines []string) (http.Header, error) {
	h := http.Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("filtertool: header %q: want \"Name: value\"", l)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
	return h, nil
}

// messageLine is one line of a messages file:
//
//	{"direction": "client", "text": "hello"}
//	{"direction": "upstream", "binary": "AAEC"}   (base64)
//
// direction is "client" (client to upstream, the default) or "upstream",
// also spelled "client->upstream" and "upstream->client".
type messageLine struct {
	Direction string  `json:"direction" toml:"direction"`
	Text      *string `json:"text" toml:"text"`
	Binary    *string `json:"binary" toml:"binary"`
}

// ParseMessages reads WebSocket messages, one JSON object a line; blank
// lines and lines starting with # are skipped.
func ParseMessages(data []byte) ([]Message, error) {
	var out []Message
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		var ml messageLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ml); err != nil {
			return nil, fmt.Errorf("filtertool: messages line %d: %w", i+1, err)
		}
		m, err := ml.message()
		if err != nil {
			return nil, fmt.Errorf("filtertool: messages line %d: %w", i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (ml messageLine) message() (Message, error) {
	var m Message
	d, err := ParseDirection(ml.Direction)
	if err != nil {
		return m, err
	}
	m.Direction = d
	switch {
	case ml.Text != nil && ml.Binary != nil:
		return m, errors.New("set text or binary, not both")
	case ml.Text != nil:
		m.Payload = []byte(*ml.Text)
	case ml.Binary != nil:
		b, err := base64.StdEncoding.DecodeString(*ml.Binary)
		if err != nil {
			return m, fmt.Errorf("binary: %w", err)
		}
		m.Binary, m.Payload = true, b
	default:
		return m, errors.New("set text or binary (base64)")
	}
	return m, nil
}

// ParseDirection reads a message direction: "client" (the default when
// empty) or "upstream", or filter.Direction's own spellings.
func ParseDirection(s string) (filter.Direction, error) {
	switch s {
	case "", "client", "client->upstream":
		return filter.ClientToUpstream, nil
	case "upstream", "upstream->client":
		return filter.UpstreamToClient, nil
	}
	return 0, fmt.Errorf("direction %q: want \"client\" or \"upstream\"", s)
}
