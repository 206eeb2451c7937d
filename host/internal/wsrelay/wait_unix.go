//go:build unix

package wsrelay

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConn returns the RawConn of a plain socket, or nil (TLS and other
// wrappers cannot be read without a buffer held while waiting).
func rawConn(c net.Conn) syscall.RawConn {
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

// sysRead is the RawConn.Read callback of sock: one read(2) into op.into,
// or into a buffer borrowed from the pool for as long as bytes came. On
// EAGAIN the buffer goes back and the runtime parks the goroutine on the
// poller until the socket is readable; the stack it parks on is this short
// call chain, so an idle relay goroutine stays at the smallest stack size.
func (s *sock) sysRead(fd uintptr) bool {
	op := &s.op
	buf := op.into
	if buf == nil {
		op.bp = getBuf()
		buf = *op.bp
	}
	for {
		n, err := syscall.Read(int(fd), buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if op.bp != nil {
				putBuf(op.bp)
				op.bp = nil
			}
			if s.resume != nil {
				s.setIdleDeadline()
			}
			return false
		}
		if n > 0 {
			op.n = n
			return true
		}
		if op.bp != nil {
			putBuf(op.bp)
			op.bp = nil
		}
		op.err = io.EOF
		if err != nil {
			op.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		}
		return true
	}
}
