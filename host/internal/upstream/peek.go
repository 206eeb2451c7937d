//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle connection to a target is still usable:
// a non-blocking peek finds neither the end of the stream (the target
// closed it) nor unexpected bytes (a response nobody asked for). It costs
// one syscall, so the pool calls it only for connections idle for a while.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Only "nothing to read yet" means alive: 0 bytes is the end of
		// the stream, any byte is one the target should not have sent.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // done: never wait for readability here
	})
	return alive && err == nil
}
