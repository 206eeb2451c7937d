//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import "net"

// prober has nothing to probe with on this platform.
type prober struct{}

func newProber(net.Conn) *prober { return nil }

// quiet cannot peek on this platform, so it cannot tell a quiet idle
// connection from one holding a stray response: no connection is reused.
func quiet(*prober) bool { return false }
