// Command demo-backend is the upstream of the Sluice demo: a small HTTP and
// WebSocket server. `make run` starts two of them behind the proxy.
//
//	GET /           the chat page (embedded), which connects to /ws/chat
//	GET /ws/chat    a WebSocket chat room: every text message goes to everyone
//	GET /echo       a WebSocket that sends every message back, text or binary
//	GET /api/hello  JSON naming this backend and the request headers it saw
//	GET /healthz    "ok", for the proxy's health checks
//
// Usage: demo-backend -listen 127.0.0.1:9001 -name backend-1
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

//go:embed chat.html
var chatPage []byte

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	name := flag.String("name", "backend", "name reported in /api/hello and on the chat page")
	flag.Parse()

	srv := &http.Server{
		Addr:              *listen,
		Handler:           newMux(*name),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Printf("demo-backend %s listening on http://%s", *name, *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// upgrader accepts any origin: in the demo the browser talks to the proxy,
// whose address is not this server's.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func newMux(name string) *http.ServeMux {
	room := newRoom(name)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(chatPage)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"message": "hello from " + name,
			"backend": name,
			"method":  r.Method,
			"path":    r.URL.RequestURI(),
			"headers": r.Header,
		})
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // gorilla answered the client
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /ws/chat", room.serve)
	return mux
}

// room is a chat room: every text message a member sends goes to every
// member. Each backend has its own room.
type room struct {
	name    string
	mu      sync.Mutex
	members map[*member]bool
}

// member is one chat connection. Its writer goroutine owns the connection's
// writes (gorilla allows one writer at a time); send is its queue.
type member struct {
	conn *websocket.Conn
	send chan []byte
}

func newRoom(name string) *room { return &room{name: name, members: make(map[*member]bool)} }

func (rm *room) serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	m := &member{conn: c, send: make(chan []byte, 64)}
	n := rm.join(m)
	go m.writeLoop()
	m.send <- system(fmt.Sprintf("connected to %s; %d here", rm.name, n))
	rm.broadcast(system("someone joined"), m)

	c.SetReadLimit(64 << 10)
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			break
		}
		if typ == websocket.TextMessage {
			rm.broadcast(msg, nil)
		}
	}
	rm.leave(m)
	rm.broadcast(system("someone left"), nil)
}

func (rm *room) join(m *member) int {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.members[m] = true
	return len(rm.members)
}

func (rm *room) leave(m *member) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.members[m] {
		delete(rm.members, m)
		close(m.send)
	}
}

// broadcast queues msg for every member but skip. A member too slow to keep
// up loses the message rather than holding the room up.
func (rm *room) broadcast(msg []byte, skip *member) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for m := range rm.members {
		if m == skip {
			continue
		}
		select {
		case m.send <- msg:
		default:
		}
	}
}

// writeLoop sends queued messages and pings, and closes the connection when
// the queue is closed.
func (m *member) writeLoop() {
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	defer m.conn.Close()
	for {
		select {
		case msg, ok := <-m.send:
			m.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if !ok {
				m.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				return
			}
			if err := m.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ping.C:
			if err := m.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				return
			}
		}
	}
}

// system is a message from the room itself, as the chat page shows it.
func system(text string) []byte {
	b, _ := json.Marshal(map[string]string{"system": text})
	return b
}
