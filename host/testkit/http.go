package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Client is an HTTP client for talking to a proxy under test: it does not
// follow redirects (tests look at them) and gives up after 10 seconds.
func Client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get does a GET and returns status, body and header; it fails the test on
// a transport error. hdr holds header names and values in turn; "Host"
// sets the request's Host.
func Get(t testing.TB, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// Eventually polls cond every 10 ms until it holds, and fails the test if
// it does not within the given time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NameBackend is an HTTP backend that answers "NAME REQUEST-URI" with
// header X-Backend: NAME, so tests see which target served a request.
func NameBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s", name, r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s
}

// DeadAddr returns a loopback address where nothing listens.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// CountingBackend is an HTTP backend that counts the TCP connections it
// accepted and those that were closed (or hijacked).
type CountingBackend struct {
	*httptest.Server
	Opened, Closed atomic.Int64
}

// NewCountingBackend starts a CountingBackend serving h, closed when the
// test ends.
func NewCountingBackend(t testing.TB, h http.HandlerFunc) *CountingBackend {
	t.Helper()
	b := &CountingBackend{}
	b.Server = httptest.NewUnstartedServer(h)
	b.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.Opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.Closed.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}
