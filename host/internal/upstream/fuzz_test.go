package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzResponse feeds arbitrary bytes, as a target's answer, to the client's
// response reading (status line and headers under their bound, 1xx
// responses, the body's framing) over a real loopback connection, and
// checks the decision that keeps clients apart: the connection is handed
// to another request only if the bytes ended exactly where net/http's
// reading of the same response says it ends, with keep-alive allowed.
// The target either keeps the connection open after its bytes or closes
// it.
//
//	go test -run XXX -fuzz FuzzResponse -fuzztime 10s ./host/internal/upstream/
//
// The seed corpus is in testdata/fuzz/FuzzResponse.
func FuzzResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false, true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"), false, true)
	f.Add([]byte("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nEVIL"), false, true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"), true, true)
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), false, false)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, data []byte, head, keepOpen bool) {
		c := &Client{
			dialer:  &Dialer{},
			maxIdle: 1,
			// Short bounds: most inputs are cut short, and a timeout only
			// makes the client give up the connection, which is always safe.
			respTimeout: 10 * time.Millisecond,
			readTimeout: 5 * time.Millisecond,
			sendTimeout: time.Second,
			idleTimeout: time.Minute,
		}
		hp := &hostPool{c: c, addr: addr}
		defer hp.close()
		ctx := context.Background()
		pc, err := hp.get(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			if _, err := http.ReadRequest(bufio.NewReader(srv)); err != nil {
				return
			}
			srv.Write(data)
			if !keepOpen {
				srv.(*net.TCPConn).CloseWrite()
			}
		}()

		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, "http://"+addr+"/", nil)
		resp, err := pc.roundTrip(req)
		var got []byte
		if err == nil {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				resp.Body.Close()
				<-served
				return // the connection left the pool's hands
			}
			got, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		<-served
		time.Sleep(time.Millisecond) // the target's close, if any, arrives

		end, keepAlive, wantBody := reference(data, req)
		if err == nil && end >= 0 && !bytes.Equal(got, wantBody) {
			t.Fatalf("body %q, net/http reads %q", got, wantBody)
		}
		next, err := hp.get(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer next.conn.Close()
		if next != pc {
			return // not reused: always safe
		}
		if end != len(data) || !keepAlive {
			t.Fatalf("connection reused after a response that ends at %d of %d bytes (keep-alive %v)", end, len(data), keepAlive)
		}
	})
}

// reference reads data as one response to req the way net/http does
// (1xx responses skipped) and returns where it ends (-1 when it is not a
// whole, well-formed response), whether it allows keep-alive, and its body.
func reference(data []byte, req *http.Request) (end int, keepAlive bool, body []byte) {
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return -1, false, nil
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		body, err = io.ReadAll(resp.Body)
		if err != nil {
			return -1, false, nil
		}
		return len(data) - r.Len() - br.Buffered(), !resp.Close, body
	}
}
