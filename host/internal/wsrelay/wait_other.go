//go:build !unix

package host

import (
	"net"
	"syscall"
)

// wsRawConn returns nil where a socket cannot be read through its RawConn:
// the relay then holds a buffer while it waits for bytes.
func wsRawConn(net.Conn) syscall.RawConn { return nil }

func (s *wsSock) sysRead(uintptr) bool { return true }
