package upstream

import (
	"syscall"
	"unsafe"
)

// peekEmpty reports whether a non-blocking peek on fd finds nothing to
// read yet (not a byte, not the end of the stream). It calls recvfrom(2)
// directly: syscall.Recvfrom allocates the sender's address on every call.
func peekEmpty(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
}
