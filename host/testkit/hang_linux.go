package testkit

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// HangingAddr returns a loopback address where a TCP connect hangs: a
// listener that never accepts, with the smallest backlog, whose queue is
// already full. Linux drops the SYN of any further connect rather than
// refuse it, so the dialler waits (retransmitting) until its own timeout;
// that makes a connect timeout observable without leaving the machine. The
// listener and the connections that fill it close when the test ends.
// Elsewhere than on Linux the test skips.
func HangingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testkit: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("testkit: bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatalf("testkit: listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("testkit: getsockname: %v", err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the accept queue: connects succeed until it is full, and the
	// first one that times out shows it is.
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("testkit: %s still accepts connections after 16 that were never accepted", addr)
	return ""
}
