//go:build !unix

package wsrelay

import (
	"net"
	"syscall"
)

// rawConn returns nil where a socket cannot be read through its RawConn:
// the relay then holds a buffer while it waits for bytes.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (s *sock) sysRead(uintptr) bool { return true }
