package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// tcpKeepAlive is how often the kernel probes an idle connection to a
// target, so a target that vanished without a FIN is noticed.
const tcpKeepAlive = 30 * time.Second

// Dialer is how the proxy connects to the targets of one upstream, for
// requests and WebSocket handshakes alike: connect_timeout bounds the TCP
// connect and, for https and wss targets, the TLS handshake; TCP keep-alive
// probes every connection; a failure to connect is a *DialError.
type Dialer struct {
	net     net.Dialer
	timeout time.Duration
}

// NewDialer returns the dialer of the upstream cfg.
func NewDialer(cfg config.Upstream) *Dialer {
	t := cfg.ConnectTimeout.Duration
	return &Dialer{net: net.Dialer{Timeout: t, KeepAlive: tcpKeepAlive}, timeout: t}
}

// DialContext connects to addr. A failure is a *DialError unless ctx ended
// first: a client that went away is not the target's fault.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.net.DialContext(ctx, network, addr)
	if err != nil && ctx.Err() == nil {
		return nil, &DialError{err}
	}
	return c, err
}

// DialTLSContext connects to addr and runs the TLS handshake, verifying the
// certificate for addr's host and offering HTTP/1.1 by ALPN (the relay and
// the client speak nothing else). The handshake has connect_timeout of its
// own; its failure is not a DialError (the target is up, but refused).
func (d *Dialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hctx := ctx
	if d.timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	host, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(c, &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
