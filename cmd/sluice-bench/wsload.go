package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// secretValue is the password in every benchmark message; the redact
// filter must never let it through.
const secretValue = "hunter2"

// wsMessage builds a JSON text message of exactly size bytes (at least 56).
// It carries a password field and the word "secret", which the redact filter
// is configured to mask, so that filter has real work on every message.
func wsMessage(size int) []byte {
	head := `{"user":"alice","password":"` + secretValue + `","text":"a secret `
	tail := `"}`
	n := size - len(head) - len(tail)
	if n < 0 {
		n = 0
	}
	return []byte(head + strings.Repeat("x", n) + tail)
}

var wsDialer = &websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  4096,
	NetDialContext:   (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}

func dialWS(ctx context.Context, url string) (*websocket.Conn, error) {
	c, resp, err := wsDialer.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + benchToken}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("sluice-bench: dial %s: %w (status %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("sluice-bench: dial %s: %w", url, err)
	}
	return c, nil
}

// rttResult is the outcome of a ping-pong run.
type rttResult struct {
	Msgs     int64
	P50, P99 float64 // seconds
}

// dialWSConns opens n connections to url. closeAll closes those that
// opened, also when a failed dial ended the opening.
func dialWSConns(ctx context.Context, url string, n int) (cs []*websocket.Conn, closeAll func(), err error) {
	cs = make([]*websocket.Conn, 0, n)
	closeAll = func() {
		for _, c := range cs {
			c.Close()
		}
	}
	for range n {
		c, err := dialWS(ctx, url)
		if err != nil {
			return cs, closeAll, err
		}
		cs = append(cs, c)
	}
	return cs, closeAll, nil
}

// wsRTT keeps one message in flight per connection and times each echo,
// for dur or until maxMsgs round trips.
func wsRTT(ctx context.Context, url string, size, conns int, dur time.Duration, maxMsgs int) (rttResult, error) {
	msg := wsMessage(size)
	cs, closeAll, err := dialWSConns(ctx, url, conns)
	defer closeAll()
	if err != nil {
		return rttResult{}, err
	}
	deadline := time.Now().Add(dur)
	per := maxMsgs / conns
	samples := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline.Add(10 * time.Second))
			s := make([]time.Duration, 0, 1024)
			for len(s) < per && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs[i] = err
					return
				}
				if _, _, err := c.ReadMessage(); err != nil {
					errs[i] = err
					return
				}
				s = append(s, time.Since(t0))
			}
			samples[i] = s
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return rttResult{}, fmt.Errorf("sluice-bench: ws rtt: %w", err)
		}
	}
	var all []time.Duration
	for _, s := range samples {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return rttResult{}, fmt.Errorf("sluice-bench: ws rtt: no round trip completed")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return rttResult{
		Msgs: int64(len(all)),
		P50:  all[len(all)/2].Seconds(),
		P99:  all[len(all)*99/100].Seconds(),
	}, nil
}

// wsPipelined sends messages on many connections with up to window
// unanswered messages each, and returns echoed messages per second. At the
// end it waits for the messages in flight and closes cleanly, so the next
// run does not start while the proxy still drains this one.
func wsPipelined(ctx context.Context, url string, size, conns, window int, dur time.Duration) (float64, error) {
	msg := wsMessage(size)
	cs, closeAll, err := dialWSConns(ctx, url, conns)
	defer closeAll()
	if err != nil {
		return 0, err
	}
	var received atomic.Int64
	var counting atomic.Bool
	stop := make(chan struct{})
	var firstErr atomic.Value
	var writers, readers sync.WaitGroup
	sent := make([]atomic.Int64, conns)
	got := make([]atomic.Int64, conns)
	for i, c := range cs {
		tokens := make(chan struct{}, window)
		for j := 0; j < window; j++ {
			tokens <- struct{}{}
		}
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				select {
				case <-stop:
					return
				case <-tokens:
				}
				select {
				case <-stop:
					return
				default:
				}
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				sent[i].Add(1)
			}
		}()
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				got[i].Add(1)
				if counting.Load() {
					received.Add(1)
				}
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}()
	}
	// A short ramp lets every connection reach its steady window first.
	time.Sleep(dur / 10)
	counting.Store(true)
	t0 := time.Now()
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	counting.Store(false)
	elapsed := time.Since(t0)
	n := received.Load()
	close(stop)
	writers.Wait()
	// Drain: wait (bounded) until every message sent has come back.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		pending := false
		for i := range cs {
			if got[i].Load() < sent[i].Load() {
				pending = true
				break
			}
		}
		if !pending {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range cs {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.NetConn().Close()
	}
	readers.Wait()
	if err, _ := firstErr.Load().(error); err != nil && n == 0 {
		return 0, fmt.Errorf("sluice-bench: ws pipelined: %w", err)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// holdIdle opens n WebSocket connections and leaves them open; the returned
// function closes them all.
func holdIdle(ctx context.Context, url string, n, parallel int) (func(), error) {
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := dialWS(ctx, url)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					return
				}
				conns[i] = c
				// Reading lets the client answer the proxy's pings, as a
				// real idle client would.
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	wg.Wait()
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	if err, _ := firstErr.Load().(error); err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}
