//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import (
	"net"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

// quiet cannot peek on this platform, so it cannot tell a quiet idle
// connection from one holding a stray response: no connection is reused.
func quiet(syscall.RawConn) bool { return false }
