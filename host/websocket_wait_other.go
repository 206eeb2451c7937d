//go:build !unix

package host

import "net"

// wsWaitReadable returns at once where peeking at a socket is not available:
// the raw relay then holds its copy buffer while it waits for bytes.
func wsWaitReadable(net.Conn, *[1]byte) error { return nil }
