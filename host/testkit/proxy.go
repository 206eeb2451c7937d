package testkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// Server is the proxy StartProxy runs; *host.Proxy is one. (testkit names
// the methods it needs rather than importing host, whose own tests use
// testkit.)
type Server interface {
	Listen() error
	Run(ctx context.Context) error
	Addr() net.Addr
	AdminAddr() net.Addr
}

// NewServer makes the proxy to run from the config StartProxy wrote to path
// and parsed: host.New with the chains the test wants, the plugins loader
// in front of it, or a reload.Reloader reading path itself. Resources it
// opens it closes with t.Cleanup; those run after the proxy has stopped.
type NewServer func(path string, cfg *config.Config) (Server, error)

// Proxy is a proxy running on 127.0.0.1 for a test.
type Proxy struct {
	// Server is what NewServer returned.
	Server Server
	// URL is the base URL of the proxy listener: "http://127.0.0.1:port",
	// https when server.tls_cert is set.
	URL string
	// Admin is the base URL of the admin listener, "" without one.
	Admin string
	// Path is the config file, which a test may rewrite to reload.
	Path string

	dir    string // removed by Stop (Launch's temporary directory)
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, once done is closed
}

// StopWithin bounds a graceful shutdown in StartProxy's cleanup and Wait.
const StopWithin = 15 * time.Second

// StartProxy writes conf to proxy.toml in a temporary directory (with
// server.listen on 127.0.0.1:0 when conf has no [server] table), parses it,
// makes the proxy with newServer, listens and runs it, and waits until it
// serves: until its admin listener, when there is one, answers /healthz
// (with 200, or 401 when admin.token is set). (The proxy listener is bound
// before StartProxy returns, so a connection made at once waits in the
// kernel's queue until Run accepts it.) When the test ends the proxy is
// shut down gracefully and the test fails if Run returns an error or does
// not return within StopWithin.
func StartProxy(t testing.TB, conf string, newServer NewServer) *Proxy {
	t.Helper()
	p, err := launchIn(t.TempDir(), conf, newServer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("testkit: %v", err)
		}
	})
	return p
}

// Launch is StartProxy for a proxy that outlives one test (one that a
// whole test binary shares): its temporary directory goes, and the caller
// must call Stop.
func Launch(conf string, newServer NewServer) (*Proxy, error) {
	dir, err := os.MkdirTemp("", "sluice-proxy-")
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	p, err := launchIn(dir, conf, newServer)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.dir = dir
	return p, nil
}

// launchIn starts the proxy with its proxy.toml in dir; see StartProxy.
func launchIn(dir, conf string, newServer NewServer) (*Proxy, error) {
	if !strings.Contains(conf, "[server]") {
		conf = "[server]\nlisten = \"127.0.0.1:0\"\n" + conf
	}
	path := filepath.Join(dir, "proxy.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	cfg, err := config.Parse([]byte(conf), path)
	if err != nil {
		return nil, fmt.Errorf("testkit: config: %w\n%s", err, conf)
	}
	srv, err := newServer(path, cfg)
	if err != nil {
		return nil, fmt.Errorf("testkit: starting the proxy: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{Server: srv, Path: path, cancel: cancel, done: make(chan struct{})}
	scheme := "http"
	if cfg.Server.TLSCert != "" {
		scheme = "https"
	}
	p.URL = scheme + "://" + srv.Addr().String()
	if a := srv.AdminAddr(); a != nil {
		p.Admin = "http://" + a.String()
	}
	go func() {
		p.err = srv.Run(ctx)
		close(p.done)
	}()
	if p.Admin != "" {
		if err := p.waitHealthy(); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// waitHealthy polls the admin listener's /healthz until it answers.
func (p *Proxy) waitHealthy() error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(Wait)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("testkit: the proxy stopped at once: %v", p.err)
		default:
		}
		if resp, err := c.Get(p.Admin + "/healthz"); err == nil {
			resp.Body.Close()
			return nil // any answer, 401 without the admin token too
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testkit: the admin listener did not answer /healthz within %v", Wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown starts the graceful shutdown and returns at once; Wait waits for
// its end.
func (p *Proxy) Shutdown() { p.cancel() }

// Wait waits for Run to return (after Shutdown, or on its own) and returns
// its error, or an error when it does not return within StopWithin.
func (p *Proxy) Wait() error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(StopWithin):
		return fmt.Errorf("testkit: Run did not return within %v", StopWithin)
	}
}

// Stop shuts the proxy down and waits for Run to return; see Wait.
func (p *Proxy) Stop() error {
	p.Shutdown()
	err := p.Wait()
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
	return err
}
