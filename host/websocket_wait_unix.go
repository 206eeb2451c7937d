//go:build unix

package host

import (
	"net"
	"syscall"
)

// wsWaitReadable blocks until c has bytes to read (or EOF, or an error, or its
// read deadline), without a buffer: it parks on the runtime's poller and peeks
// one byte. The raw relay takes a copy buffer from the pool only afterwards,
// so ten thousand idle sessions hold no copy buffers at all. Connections that
// are not plain sockets (TLS) return at once and are read with a buffer held.
func wsWaitReadable(c net.Conn, scratch *[1]byte) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc.Read(func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), scratch[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // park until the poller says readable
			}
			return true // data, EOF or an error: the Read that follows reports it
		}
	})
}
