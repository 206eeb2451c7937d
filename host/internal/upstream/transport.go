package host

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// newTransport builds the transport of one upstream. Each upstream gets its
// own so its timeouts and connection limits apply to it alone, and so a
// reload can close one upstream's connections without touching others.
func newTransport(cfg config.Upstream) *http.Transport {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout.Duration, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// No environment proxy: the targets are where the user said.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil && ctx.Err() == nil {
				// Marked so the proxy answers 502 and counts it for passive
				// ejection; a cancelled client is not the target's fault.
				return nil, &dialError{err}
			}
			return c, err
		},
		TLSHandshakeTimeout: cfg.ConnectTimeout.Duration,
		// The default of 2 idle connections per host makes a busy proxy
		// open and close connections constantly; keep what the config says.
		MaxIdleConnsPerHost:   cfg.MaxIdleConns,
		MaxIdleConns:          cfg.MaxIdleConns * len(cfg.Targets),
		DisableKeepAlives:     cfg.MaxIdleConns == 0,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseTimeout.Duration,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as the target encoded them: the client asked
		// for that encoding, not the proxy.
		DisableCompression: true,
		ReadBufferSize:     32 << 10,
		WriteBufferSize:    32 << 10,
	}
}

// dialError is a failure to connect to a target.
type dialError struct{ err error }

func (e *dialError) Error() string { return "host: connect to target: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
