//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
)

// rawConnOf returns the connection's syscall.RawConn, taken once at dial so
// that the probe before each reuse does not allocate; nil when c has none.
func rawConnOf(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// quiet reports whether an idle connection to a target may carry a new
// request: a non-blocking peek finds neither the end of the stream (the
// target closed it) nor any byte (a response nobody asked for, a late
// body: whatever it is, it would be read as the next request's answer).
// It costs one recv(2) with MSG_PEEK|MSG_DONTWAIT, and is made before every
// reuse; this is the check nginx's keepalive module makes with a read
// event on the idle connection, and net/http's Transport with a read loop
// per connection.
func quiet(rc syscall.RawConn) bool {
	if rc == nil {
		return false
	}
	ok := false
	var buf [1]byte
	err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // done: never wait for readability here
	})
	return ok && err == nil
}
