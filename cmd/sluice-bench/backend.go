package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"
)

// Sizes of the backend's fixed responses.
const (
	smallBody = 64
	bigBody   = 1 << 20
)

// newBackend is the upstream every target proxies to: small responses, 1 MiB
// responses, an upload sink and a WebSocket echo. It is deliberately cheap so
// that the proxy, not the backend, is what the numbers describe.
func newBackend() http.Handler {
	small := bytes.Repeat([]byte("s"), smallBody-1)
	small = append(small, '\n')
	big := bytes.Repeat([]byte("0123456789abcdef"), bigBody/16)
	smallLen, bigLen := strconv.Itoa(len(small)), strconv.Itoa(len(big))
	up := websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{smallLen}
		w.Write(small)
	})
	mux.HandleFunc("/1m", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{bigLen}
		w.Write(big)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = []string{"text/plain"}
		fmt.Fprintf(w, "%d\n", n)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		echo(c)
	})
	return mux
}

// echo sends every message back as it came, until the peer goes away.
func echo(c *websocket.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		mt, r, err := c.NextReader()
		if err != nil {
			return
		}
		w, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			return
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}

// runBackend is the "backend" subcommand.
func runBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("sluice-bench: backend: %w", err)
	}
	fmt.Printf("backend listening on %s\n", l.Addr())
	srv := &http.Server{Handler: newBackend(), MaxHeaderBytes: 64 << 10}
	return srv.Serve(l)
}
