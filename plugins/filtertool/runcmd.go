package filtertool

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// RunOptions are the inputs of `sluice filter run`.
type RunOptions struct {
	Plugin
	// RequestFile is a request in HTTP/1.1 message syntax. Without it the
	// request is built from Method, URL, Headers and Body.
	RequestFile string
	Method      string
	// URL is the request target: a path with an optional query, or an
	// absolute URL whose host becomes the Host header.
	URL     string
	Headers []string // "Name: value"
	Body    string
	// ResponseFile is the upstream's response in HTTP/1.1 message syntax;
	// Status (with ResponseHeaders and ResponseBody) builds one instead.
	ResponseFile    string
	Status          int
	ResponseHeaders []string
	ResponseBody    string
	// MessagesFile holds WebSocket messages as JSON lines (see
	// ParseMessages); with it the request is a WebSocket upgrade.
	MessagesFile string
	// JSON prints the Result as JSON.
	JSON bool
}

// Run runs a sample through a module and prints what each hook did. It
// returns the exit status: 0 when every call succeeded, 1 when the module
// was refused or a call failed (a trap, a timeout, ABI misuse), 2 when the
// inputs are wrong.
func Run(ctx context.Context, o RunOptions, stdout, stderr io.Writer) int {
	pc, err := o.settings()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	s, err := o.sample()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	r, err := NewRunner(pc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer r.Close()
	res, err := r.Run(ctx, s, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		PrintResult(stdout, res)
	}
	if f := res.Failure; f != nil {
		fmt.Fprintf(stderr, "filtertool: %s failed (%s): %s\n", f.Hook, f.Kind, f.Cause)
		return 1
	}
	return 0
}

// sample builds the Sample the options describe.
func (o *RunOptions) sample() (*Sample, error) {
	s := &Sample{}
	var err error
	if o.RequestFile != "" {
		if o.Method != "" || o.URL != "" || len(o.Headers) > 0 || o.Body != "" {
			return nil, fmt.Errorf("filtertool: -request replaces -method, -url, -H and -body")
		}
		data, err := os.ReadFile(o.RequestFile)
		if err != nil {
			return nil, fmt.Errorf("filtertool: %w", err)
		}
		if s.Request, s.RequestBody, err = ParseRequest(data); err != nil {
			return nil, err
		}
	} else if s.Request, err = buildRequest(o.Method, o.URL, o.Headers, o.Body); err != nil {
		return nil, err
	} else {
		s.RequestBody = []byte(o.Body)
	}
	switch {
	case o.ResponseFile != "":
		data, err := os.ReadFile(o.ResponseFile)
		if err != nil {
			return nil, fmt.Errorf("filtertool: %w", err)
		}
		if s.Response, err = ParseResponse(data); err != nil {
			return nil, err
		}
	case o.Status != 0 || len(o.ResponseHeaders) > 0 || o.ResponseBody != "":
		h, err := ParseHeaderLines(o.ResponseHeaders)
		if err != nil {
			return nil, err
		}
		status := o.Status
		if status == 0 {
			status = 200
		}
		s.Response = &Response{Status: status, Header: h, Body: []byte(o.ResponseBody)}
	}
	if o.MessagesFile != "" {
		data, err := os.ReadFile(o.MessagesFile)
		if err != nil {
			return nil, fmt.Errorf("filtertool: %w", err)
		}
		if s.Messages, err = ParseMessages(data); err != nil {
			return nil, err
		}
		if s.Response != nil {
			return nil, fmt.Errorf("filtertool: a WebSocket session (-messages) has no HTTP response to filter")
		}
		makeUpgrade(s.Request)
	}
	return s, nil
}

// buildRequest makes a request from flags. Defaults: GET, "/", Host
// example.com.
func buildRequest(method, target string, headers []string, body string) (*http.Request, error) {
	if method == "" {
		method = http.MethodGet
	}
	if target == "" {
		target = "/"
	}
	u, err := url.Parse(target)
	if err != nil || (u.Host == "" && !strings.HasPrefix(target, "/")) {
		return nil, fmt.Errorf("filtertool: -url %q: want a path such as /api?x=1 or an absolute URL", target)
	}
	h, err := ParseHeaderLines(headers)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if host == "" {
		host = "example.com"
	}
	if v := h.Get("Host"); v != "" {
		host = v
		h.Del("Host")
	}
	r := &http.Request{
		Method: method, URL: &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: host, Body: http.NoBody, ContentLength: int64(len(body)),
	}
	if body != "" && h.Get("Content-Length") == "" {
		h.Set("Content-Length", fmt.Sprint(len(body)))
	}
	return r, nil
}

// makeUpgrade adds the WebSocket upgrade headers a client would send, when
// the sample's request lacks them.
func makeUpgrade(r *http.Request) {
	set := func(k, v string) {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	set("Connection", "Upgrade")
	set("Upgrade", "websocket")
	set("Sec-WebSocket-Version", "13")
	set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
}
