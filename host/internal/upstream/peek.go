//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
)

// prober checks an idle connection before reuse. It is built once per
// connection, so the probe allocates nothing: a closure passed to
// RawConn.Read would escape on every call.
type prober struct {
	rc    syscall.RawConn
	empty bool
	check func(fd uintptr) bool // p.peek, bound once
}

func newProber(c net.Conn) *prober {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.check = p.peek
	return p
}

func (p *prober) peek(fd uintptr) bool {
	p.empty = peekEmpty(fd)
	return true // done: never wait for readability here
}

// quiet reports whether an idle connection to a target may carry a new
// request: a non-blocking peek finds neither the end of the stream (the
// target closed it) nor any byte (a response nobody asked for, a late
// body: whatever it is, it would be read as the next request's answer).
// It costs one recv(2) with MSG_PEEK|MSG_DONTWAIT, and is made before every
// reuse; this is the check nginx's keepalive module makes with a read
// event on the idle connection, and net/http's Transport with a read loop
// per connection.
func quiet(p *prober) bool {
	if p == nil {
		return false
	}
	p.empty = false
	err := p.rc.Read(p.check)
	return p.empty && err == nil
}
