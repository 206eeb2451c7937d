//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package host

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxy measures the HTTP path end to end over real loopback
// sockets: a client that writes raw keep-alive requests on 16 connections,
// the proxy, and an upstream that answers 64 bytes (or 1 MiB). -benchmem
// counts the allocations of all three; the client and the upstream do the
// same work in every version of the proxy, so differences are the proxy's.
func BenchmarkProxy(b *testing.B) {
	for _, size := range []int{64, 1 << 20} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) { benchProxy(b, size) })
	}
}

func benchProxy(b *testing.B, size int) {
	body := []byte(strings.Repeat("x", size))
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	defer back.Close()
	px := pxStart(b, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	addr := strings.TrimPrefix(px.url, "http://")

	const conns = 16
	req := []byte("GET /small HTTP/1.1\r\nHost: bench.example\r\nAuthorization: Bearer bench-token\r\n\r\n")
	var next sync.Mutex
	left := b.N
	take := func() bool {
		next.Lock()
		defer next.Unlock()
		if left == 0 {
			return false
		}
		left--
		return true
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 32<<10)
			for take() {
				if _, err := c.Write(req); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || n != int64(size) {
					errs <- fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	// CPU time of the whole process (client, proxy and upstream) per
	// request: on a shared machine it moves less than wall time does.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
