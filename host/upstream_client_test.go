package host

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/internal/upstream"
	"github.com/sluiceproxy/sluice/host/testkit"
)

func upstreamConf(target string, extra ...string) string {
	return fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n%s\n[[route]]\nupstream = \"u\"\n", target, strings.Join(extra, "\n"))
}

func TestUpstreamClientReusesConnections(t *testing.T) {
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	cl := testkit.Client()
	for i := range 50 {
		if status, body, _ := testkit.Get(t, cl, fmt.Sprintf("%s/seq/%d", px.url, i)); status != 200 || body != fmt.Sprintf("GET /seq/%d", i) {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	// A body that is not read to the end by the proxy never happens here:
	// uploads and empty bodies also keep the connection.
	for i := range 10 {
		resp, err := cl.Post(px.url+"/post", "text/plain", strings.NewReader(strings.Repeat("p", i*1000)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := back.Opened.Load(); n != 1 {
		t.Errorf("60 sequential requests opened %d upstream connections, want 1", n)
	}

	// Concurrent clients: no more connections than requests in flight.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testkit.Client()
			for range 25 {
				resp, err := c.Get(px.url + "/par")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := back.Opened.Load(); n > 9 {
		t.Errorf("8 concurrent clients opened %d upstream connections", n)
	}
	if idle := px.gen.Load().pools["u"].client.IdleConns(); idle < 1 || idle > 9 {
		t.Errorf("%d idle connections after the load", idle)
	}
}

// rawUpstream serves HTTP/1.1 by hand, so tests control exactly when a
// connection closes. Each accepted connection runs serve.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// A target that closes a keep-alive connection right after answering (no
// Connection: close) leaves a dead connection in the pool. The next GET
// fails on it before any response byte, and is retried on a new connection
// instead of becoming a 502.
func TestUpstreamClientRetriesStaleConnection(t *testing.T) {
	addr, conns := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		body := "served " + req.Method
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		if req.Method != http.MethodHead {
			io.WriteString(c, body)
		}
		// Close as soon as the proxy has read the response: the
		// connection goes back to the pool and dies there.
	})
	px := pxStart(t, upstreamConf(addr), nil)
	cl := testkit.Client()
	for i := range 5 {
		status, body, _ := testkit.Get(t, cl, px.url+"/")
		if status != 200 || body != "served GET" {
			t.Fatalf("GET %d: %d %q", i, status, body)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	if n := conns.Load(); n < 5 {
		t.Errorf("%d upstream connections for 5 requests on a closing target", n)
	}

	// A HEAD is idempotent too; a POST with a body is not retried, but a
	// connection idle for longer than upstream.StaleCheckAfter is probed before use,
	// so the POST does not meet the dead connection in the first place.
	req, _ := http.NewRequest(http.MethodHead, px.url+"/", nil)
	if resp, err := cl.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	time.Sleep(upstream.StaleCheckAfter + 100*time.Millisecond)
	resp, err := cl.Post(px.url+"/", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "served POST" {
		t.Errorf("POST after the idle probe: %d %q", resp.StatusCode, b)
	}
}

// Connection: close from the target is honoured: the connection is not
// reused, and every request still succeeds.
func TestUpstreamClientConnectionClose(t *testing.T) {
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	cl := testkit.Client()
	for i := range 4 {
		status, body, h := testkit.Get(t, cl, px.url+"/")
		if status != 200 || body != "bye" || h.Get("Connection") != "" {
			t.Fatalf("request %d: %d %q %v", i, status, body, h)
		}
	}
	if n := back.Opened.Load(); n != 4 {
		t.Errorf("%d upstream connections for 4 Connection: close responses", n)
	}
	testkit.Eventually(t, 2*time.Second, "upstream connections closed", func() bool { return back.Closed.Load() == 4 })
	if idle := px.gen.Load().pools["u"].client.IdleConns(); idle != 0 {
		t.Errorf("%d idle connections kept after Connection: close", idle)
	}
}

// max_idle_conns = 0 turns keep-alive off towards the target.
func TestUpstreamClientKeepAliveOff(t *testing.T) {
	var sawClose atomic.Int64
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			sawClose.Add(1)
		}
		io.WriteString(w, "ok")
	})
	px := pxStart(t, upstreamConf(back.URL, "max_idle_conns = 0"), nil)
	for range 3 {
		if status, _, _ := testkit.Get(t, testkit.Client(), px.url+"/"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if back.Opened.Load() != 3 || sawClose.Load() != 3 {
		t.Errorf("keep-alive off: %d connections, %d requests with Connection: close; want 3 and 3", back.Opened.Load(), sawClose.Load())
	}
}

// Large bodies stream both ways through the client, with the connection
// kept for the next request.
func TestUpstreamClientLargeBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x %q", n, h.Sum(nil), r.TransferEncoding)
			return
		}
		w.Write(big)
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	cl := testkit.Client()
	for range 2 {
		resp, err := cl.Get(px.url + "/big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("download: %d bytes, %v", len(got), err)
		}
	}
	// A body of unknown length travels chunked; one of known length with
	// Content-Length.
	for _, chunked := range []bool{true, false} {
		var body io.Reader = bytes.NewReader(big)
		if chunked {
			body = io.MultiReader(bytes.NewReader(big[:1000]), bytes.NewReader(big[1000:]))
		}
		resp, err := cl.Post(px.url+"/up", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		te := `[]`
		if chunked {
			te = `["chunked"]`
		}
		if want := fmt.Sprintf("%d %x %s", len(big), sha256.Sum256(big), te); string(got) != want {
			t.Errorf("upload (chunked %v): %q, want %q", chunked, got, want)
		}
	}
	if n := back.Opened.Load(); n != 1 {
		t.Errorf("%d upstream connections for 4 large exchanges", n)
	}
}

// response_timeout bounds the wait for response headers (504); the slow
// connection is not reused. A streaming body may take longer.
func TestUpstreamClientResponseTimeout(t *testing.T) {
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		if r.URL.Path == "/stream" {
			w.WriteHeader(200)
			for i := range 4 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(150 * time.Millisecond)
			}
			return
		}
		io.WriteString(w, "fast")
	})
	px := pxStart(t, upstreamConf(back.URL, `response_timeout = "300ms"`), nil)
	cl := testkit.Client()
	start := time.Now()
	status, _, _ := testkit.Get(t, cl, px.url+"/slow")
	if status != http.StatusGatewayTimeout {
		t.Fatalf("slow upstream: status %d, want 504", status)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("504 took %v", d)
	}
	// The timed-out connection is closed, so the target sees it go.
	testkit.Eventually(t, 2*time.Second, "timed-out upstream connection closed", func() bool { return back.Closed.Load() >= 1 })
	if status, body, _ := testkit.Get(t, cl, px.url+"/fast"); status != 200 || body != "fast" {
		t.Errorf("after a timeout: %d %q", status, body)
	}
	// 600 ms of body after quick headers is fine.
	if status, body, _ := testkit.Get(t, cl, px.url+"/stream"); status != 200 || body != "part 0\npart 1\npart 2\npart 3\n" {
		t.Errorf("stream longer than response_timeout: %d %q", status, body)
	}
}

// A client that goes away mid-response makes the proxy close the upstream
// connection (rather than return it to the pool half read); so does one
// that goes away while the proxy waits for the response headers.
func TestUpstreamClientCancelClosesConnection(t *testing.T) {
	upstreamGone := make(chan string, 2)
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.WriteHeader(200)
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			upstreamGone <- r.URL.Path
		case <-time.After(5 * time.Second):
		}
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	addr := strings.TrimPrefix(px.url, "http://")
	for _, path := range []string{"/body", "/headers"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		if path == "/body" {
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first line: %q %v", line, err)
			}
		} else {
			time.Sleep(100 * time.Millisecond) // the request is upstream by now
		}
		c.Close()
		select {
		case got := <-upstreamGone:
			if got != path {
				t.Errorf("upstream saw %s end, want %s", got, path)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: the upstream connection stayed open after the client left", path)
		}
	}
	if idle := px.gen.Load().pools["u"].client.IdleConns(); idle != 0 {
		t.Errorf("%d idle connections after cancelled requests", idle)
	}
}

// Informational responses: a 103 reaches the client, a 100 Continue from the
// target is absorbed (the body was already sent), and Expect: 100-continue
// from the client works end to end.
func TestUpstreamClientInformational(t *testing.T) {
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // sends 100 Continue when the client expects it
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		}
		fmt.Fprintf(w, "got %q expect=%q", b, r.Header.Get("Expect"))
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	addr := strings.TrimPrefix(px.url, "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprint(c, "GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") == "" {
		t.Fatalf("want 103 with Link first, got %v %v", resp, err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("final response: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)

	// Expect: 100-continue: the client waits for 100 before it sends.
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", resp, err)
	}
	fmt.Fprint(c, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("final response after 100: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `got "hello" expect="100-continue"` {
		t.Errorf("upstream saw %q", b)
	}
}

// A 101 answer to a non-WebSocket upgrade hands the connection over:
// bytes flow both ways through ReverseProxy and the client's connection.
func TestUpstreamClientUpgrade(t *testing.T) {
	addr, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "echo" {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello ")
		io.Copy(c, br)
	})
	px := pxStart(t, upstreamConf(addr), nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(px.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(c, "world")
	got := make([]byte, len("hello world"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "hello world" {
		t.Fatalf("relayed %q %v", got, err)
	}
}

// Bodies of at least spliceMin with a known length go from the target's
// socket to the client's in one piece (spliced on Linux): the bytes arrive
// whole, the access log counts them, the connection is reused, and a HEAD
// or a client that leaves half way does not break the pool.
func TestUpstreamClientPumpedBody(t *testing.T) {
	const size = 1<<20 + 123
	big := bytes.Repeat([]byte("sluice-"), size/7+1)[:size]
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/endless" {
			w.Header().Set("Content-Length", fmt.Sprint(64<<20))
			for i := 0; i < 64; i++ {
				if _, err := w.Write(big[:1<<20]); err != nil {
					return
				}
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	})
	px := pxStart(t, upstreamConf(back.URL), nil)
	cl := testkit.Client()
	for i := range 3 {
		resp, err := cl.Get(px.url + "/big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, big) || resp.ContentLength != size {
			t.Fatalf("download %d: %d bytes (length %d), %v", i, len(got), resp.ContentLength, err)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, px.url+"/big", nil)
	resp, err := cl.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := back.Opened.Load(); n != 1 {
		t.Errorf("%d upstream connections for 4 requests", n)
	}
	testkit.Eventually(t, 2*time.Second, "access records", func() bool { return len(px.logs.records("access")) == 4 })
	for _, rec := range px.logs.records("access")[:3] {
		if rec["bytes"] != float64(size) || rec["status"] != float64(200) {
			t.Errorf("access log: bytes %v status %v, want %d 200", rec["bytes"], rec["status"], size)
		}
	}

	// A client that leaves after the first bytes: the upstream connection
	// is closed, not pooled, and the next request gets a sound one.
	c, err := net.Dial("tcp", strings.TrimPrefix(px.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	testkit.Eventually(t, 5*time.Second, "upstream connection closed after the client left", func() bool { return back.Closed.Load() >= 1 })
	if status, body, _ := testkit.Get(t, cl, px.url+"/big"); status != 200 || body != string(big) {
		t.Errorf("after an abandoned download: %d, %d bytes", status, len(body))
	}
}

// A target whose response headers never end gets a 502 once they pass
// upstream.MaxResponseHeaderBytes, rather than growing the proxy's memory: the proxy
// stops reading long before the target runs out of headers to send.
func TestUpstreamClientHeaderLimit(t *testing.T) {
	var sent atomic.Int64
	done := make(chan struct{})
	addr, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		defer close(done)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("f", 1000) + "\r\n"
		for sent.Load() < 256<<20 {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
			sent.Add(int64(len(line)))
		}
	})
	px := pxStart(t, upstreamConf(addr), nil)
	if status, _, _ := testkit.Get(t, testkit.Client(), px.url+"/"); status != http.StatusBadGateway {
		t.Errorf("endless headers: status %d, want 502", status)
	}
	<-done
	if n := sent.Load(); n > 16*upstream.MaxResponseHeaderBytes {
		t.Errorf("the proxy read %d bytes of headers", n)
	}
}
