//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import "syscall"

// peekEmpty reports whether a non-blocking peek on fd finds nothing to
// read yet (not a byte, not the end of the stream).
func peekEmpty(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
