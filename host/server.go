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

	"github.com/sluiceproxy/sluice/host/config"
)

// srvState holds the listeners and servers of a running proxy.
type srvState struct {
	mu      sync.Mutex
	ln      net.Listener
	adminLn net.Listener
	tlsCfg  *tls.Config
	admin   *http.ServeMux
	// cert is the certificate new TLS handshakes get: a reload stores a new
	// one and connections already established keep theirs.
	cert atomic.Pointer[tls.Certificate]
	// main and adminSrv are set while Run serves, so that a reload can start
	// serving a new listener on the same server.
	main, adminSrv *http.Server
	// errc receives the error of a listener that failed while serving.
	errc chan error
	// closedLns are listeners a reload replaced: their Serve loop ending is
	// not a failure.
	closedLns map[net.Listener]bool
	// ready is true while the listeners serve and no shutdown has begun.
	ready atomic.Bool
}

// Listen binds server.listen (and admin.listen when set) and loads the TLS
// certificate, so that Addr and AdminAddr are known before Run serves. Run
// calls it when it has not been called.
func (p *Proxy) Listen() error {
	p.applyMu.Lock() // a reload must not change the config under us
	defer p.applyMu.Unlock()
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if p.srv.ln != nil {
		return errors.New("host: already listening")
	}
	cfg := p.gen.Load().cfg
	if s := cfg.Server; s.TLSCert != "" {
		cert, err := loadCert(s)
		if err != nil {
			return err
		}
		p.srv.cert.Store(cert)
		p.srv.tlsCfg = &tls.Config{
			// Read per handshake, so a reload that renews the certificate
			// serves it to new connections without touching the listener.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.srv.cert.Load(), nil },
			MinVersion:     tls.VersionTLS12,
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

func loadCert(s config.Server) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("host: load TLS certificate: %w", err)
	}
	return &cert, nil
}

// listenerChange is what a reload does to the listeners, prepared before the
// swap so that a failure changes nothing.
type listenerChange struct {
	ln, adminLn net.Listener     // newly bound, or nil when unchanged
	closeAdmin  bool             // admin.listen was removed
	cert        *tls.Certificate // re-read certificate, or nil
}

// prepareListeners binds the addresses that changed between old and cfg and
// reads the TLS certificate again (renewed files keep their names). Before
// Listen it does nothing: Listen will use the new config.
func (p *Proxy) prepareListeners(old, cfg *config.Config) (*listenerChange, error) {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	lc := &listenerChange{}
	if p.srv.ln == nil {
		return lc, nil
	}
	s, o := cfg.Server, old.Server
	if (s.TLSCert != "") != (o.TLSCert != "") {
		return nil, errors.New("host: server.tls_cert: turning TLS on or off needs a restart")
	}
	if s.TLSCert != "" {
		cert, err := loadCert(s)
		if err != nil {
			return nil, err
		}
		lc.cert = cert
	}
	// An address equal to the bound one is no change: a config may name
	// the port that port 0 got.
	if s.Listen != o.Listen && s.Listen != p.srv.ln.Addr().String() {
		ln, err := net.Listen("tcp", s.Listen)
		if err != nil {
			return nil, fmt.Errorf("host: server.listen: %w", err)
		}
		lc.ln = ln
	}
	if a := cfg.Admin.Listen; a != old.Admin.Listen && (p.srv.adminLn == nil || a != p.srv.adminLn.Addr().String()) {
		if a == "" {
			lc.closeAdmin = true
		} else {
			aln, err := net.Listen("tcp", a)
			if err != nil {
				if lc.ln != nil {
					lc.ln.Close()
				}
				return nil, fmt.Errorf("host: admin.listen: %w", err)
			}
			lc.adminLn = aln
		}
	}
	return lc, nil
}

// commitListeners puts prepared listeners in service: the new socket
// serves first, then the old one stops accepting. Connections accepted on
// the old socket are not closed; they end as they would have.
func (p *Proxy) commitListeners(lc *listenerChange) {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	if lc.cert != nil {
		p.srv.cert.Store(lc.cert)
	}
	if lc.ln != nil {
		old := p.srv.ln
		p.srv.ln = lc.ln
		if p.srv.main != nil {
			p.serveLocked(p.srv.main, lc.ln, p.srv.tlsCfg != nil)
		}
		p.retireListenerLocked(old)
		p.log.Info("listening", "addr", lc.ln.Addr().String(), "replaces", old.Addr().String())
	}
	if lc.adminLn != nil || lc.closeAdmin {
		old := p.srv.adminLn
		p.srv.adminLn = lc.adminLn
		if lc.adminLn != nil && p.srv.adminSrv != nil {
			p.serveLocked(p.srv.adminSrv, lc.adminLn, false)
		}
		if old != nil {
			p.retireListenerLocked(old)
		}
		addr := ""
		if p.srv.adminLn != nil {
			addr = p.srv.adminLn.Addr().String()
		}
		p.log.Info("admin listening", "addr", addr)
	}
}

// serveLocked serves ln on srv in its own goroutine.
func (p *Proxy) serveLocked(srv *http.Server, ln net.Listener, useTLS bool) {
	errc := p.srv.errc
	go func() {
		var err error
		if useTLS {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		p.srv.mu.Lock()
		replaced := p.srv.closedLns[ln]
		delete(p.srv.closedLns, ln)
		p.srv.mu.Unlock()
		if replaced || errors.Is(err, http.ErrServerClosed) {
			return
		}
		select {
		case errc <- err:
		default:
		}
	}()
}

func (p *Proxy) retireListenerLocked(ln net.Listener) {
	if p.srv.main != nil {
		if p.srv.closedLns == nil {
			p.srv.closedLns = make(map[net.Listener]bool)
		}
		p.srv.closedLns[ln] = true
	}
	ln.Close()
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
	// The admin server exists even without an admin listener, so that a
	// reload that adds admin.listen can serve it.
	admin := &http.Server{
		Handler:           p.adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	p.srv.mu.Lock()
	p.srv.main, p.srv.adminSrv, p.srv.errc = main, admin, errc
	p.serveLocked(main, p.srv.ln, p.srv.tlsCfg != nil)
	if p.srv.adminLn != nil {
		p.serveLocked(admin, p.srv.adminLn, false)
	}
	p.srv.mu.Unlock()
	p.srv.ready.Store(true)
	p.log.Info("listening", "addr", p.Addr().String(), "tls", p.srv.tlsCfg != nil, "admin", addrString(p.AdminAddr()))

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		serveErr = fmt.Errorf("host: serve: %w", err)
	}

	p.srv.ready.Store(false)
	grace := p.gen.Load().cfg.Server.ShutdownGrace.Duration
	p.log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	var httpErr, wsErr error
	go func() { defer wg.Done(); httpErr = main.Shutdown(sctx) }()
	go func() { defer wg.Done(); wsErr = p.closeSessions(sctx) }()
	_ = admin.Shutdown(sctx)
	wg.Wait()
	if httpErr != nil || wsErr != nil {
		p.log.Warn("shutdown grace exceeded: closing the remaining connections")
		main.Close()
		admin.Close()
	}
	return serveErr
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
