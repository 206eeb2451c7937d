package testkit

import (
	"net"
	"testing"
	"time"
)

// A connect to HangingAddr neither succeeds nor fails: it times out.
func TestHangingAddr(t *testing.T) {
	addr := HangingAddr(t)
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("connect to %s succeeded", addr)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("connect to %s: %v, want a timeout", addr, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("connect to %s failed after %v, before its timeout", addr, d)
	}
}
