package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// NewTransport builds the transport of one upstream. Each upstream gets its
// own so its timeouts and connection limits apply to it alone, and so a
// reload can close one upstream's connections without touching others.
func NewTransport(cfg config.Upstream) *http.Transport {
	d := NewDialer(cfg)
	return &http.Transport{
		// No environment proxy: the targets are where the user said.
		Proxy:          nil,
		DialContext:    d.DialContext,
		DialTLSContext: d.DialTLSContext,
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

// DialError is a failure to connect to a target: the proxy answers 502 and
// counts it for passive ejection. A dial abandoned because the client went
// away is not one.
type DialError struct{ err error }

// Error describes the failure.
func (e *DialError) Error() string { return "upstream: connect to target: " + e.err.Error() }

// Unwrap returns the dialer's error.
func (e *DialError) Unwrap() error { return e.err }

// IsTimeout reports whether err, from a dial or a round trip, is a timeout
// (which the proxy answers with 504 rather than 502).
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
