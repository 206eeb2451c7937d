package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// srvState holds the listeners and servers of a running proxy.
type srvState struct {
	mu      sync.Mutex
	ln      net.Listener
	adminLn net.Listener
	tlsCfg  *tls.Config
	admin   *http.ServeMux
	// ready is true while the listeners serve and no shutdown has begun.
	ready atomic.Bool
}

// Listen binds server.listen (and admin.listen when set) and loads the TLS
// certificate, so that Addr and AdminAddr are known before Run serves. Run
// calls it when it has not been called.
func (p *Proxy) Listen() error {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if p.srv.ln != nil {
		return errors.New("host: already listening")
	}
	cfg := p.gen.Load().cfg
	if s := cfg.Server; s.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("host: load TLS certificate: %w", err)
		}
		p.srv.tlsCfg = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// h2 for browsers and API clients; http/1.1 for everything else,
			// WebSocket upgrades included (net/http's HTTP/2 server has no
			// RFC 8441 extended CONNECT, so WebSocket clients offer h1 only).
			NextProtos: []string{"h2", "http/1.1"},
		}
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("host: listen: %w", err)
	}
	if cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("host: admin listen: %w", err)
		}
		p.srv.adminLn = aln
	}
	p.srv.ln = ln
	return nil
}

// Addr returns the address the proxy listens on, or nil before Listen.
func (p *Proxy) Addr() net.Addr {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if p.srv.ln == nil {
		return nil
	}
	return p.srv.ln.Addr()
}

// AdminAddr returns the admin listener's address, or nil when there is none.
func (p *Proxy) AdminAddr() net.Addr {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if p.srv.adminLn == nil {
		return nil
	}
	return p.srv.adminLn.Addr()
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish and closes WebSockets with 1001,
// all within server.shutdown_grace, after which remaining connections are
// closed. It then stops health checks and returns.
//
// # Errors
//
// A listen or certificate error, or a listener failing while serving.
func (p *Proxy) Run(ctx context.Context) error {
	if p.Addr() == nil {
		if err := p.Listen(); err != nil {
			return err
		}
	}
	defer p.Close()
	cfg := p.gen.Load().cfg
	s := cfg.Server
	main := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: s.ReadHeaderTimeout.Duration,
		ReadTimeout:       s.ReadTimeout.Duration,
		WriteTimeout:      s.WriteTimeout.Duration,
		IdleTimeout:       s.IdleTimeout.Duration,
		MaxHeaderBytes:    int(s.MaxHeaderBytes),
		TLSConfig:         p.srv.tlsCfg,
		// Client mistakes (bad TLS handshakes, malformed requests) are not
		// the operator's problem: keep them at debug level.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 2)
	go func() {
		var err error
		if p.srv.tlsCfg != nil {
			err = main.ServeTLS(p.srv.ln, "", "")
		} else {
			err = main.Serve(p.srv.ln)
		}
		errc <- err
	}()
	var admin *http.Server
	if p.srv.adminLn != nil {
		admin = &http.Server{
			Handler:           p.adminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       30 * time.Second,
			ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}
		go func() { errc <- admin.Serve(p.srv.adminLn) }()
	}
	p.srv.ready.Store(true)
	p.log.Info("listening", "addr", p.Addr().String(), "tls", p.srv.tlsCfg != nil, "admin", addrString(p.AdminAddr()))

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		serveErr = fmt.Errorf("host: serve: %w", err)
	}

	p.srv.ready.Store(false)
	grace := s.ShutdownGrace.Duration
	p.log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	var httpErr, wsErr error
	go func() { defer wg.Done(); httpErr = main.Shutdown(sctx) }()
	go func() { defer wg.Done(); wsErr = p.closeSessions(sctx) }()
	if admin != nil {
		_ = admin.Shutdown(sctx)
	}
	wg.Wait()
	if httpErr != nil || wsErr != nil {
		p.log.Warn("shutdown grace exceeded: closing the remaining connections")
		main.Close()
		if admin != nil {
			admin.Close()
		}
	}
	return serveErr
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
