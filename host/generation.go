package host

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

// generation is everything built from one config: the routing table, the
// upstream pools with their transports and health checkers, and the chains.
// Requests hold the generation they started on until they end, so a
// replaced generation is closed only once drained.
type generation struct {
	cfg    *config.Config
	router *router
	routes map[string]*route
	pools  map[string]*pool

	// num counts generations from 1 (the one New builds); loadedAt is when
	// it was swapped in.
	num      uint64
	loadedAt time.Time
	// closer releases what the chains hold (a plugin set: instances and
	// runtimes). It is closed once the generation is retired and drained,
	// never by a finalizer. Nil when the chains hold nothing.
	closer io.Closer

	inflight  atomic.Int64
	retired   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

// Chains is the filter side of one generation: the chain of each route,
// keyed by route name (a route missing from Routes has no filters), and
// what releases them.
type Chains struct {
	Routes map[string]filter.Chain
	// Closer, when set, releases what the chains hold (a plugin set:
	// instances and runtimes). The proxy closes it once the generation is
	// replaced and drained, or on Close.
	Closer io.Closer
}

// Apply builds a new generation from cfg and chains and swaps it in,
// atomically for new requests. It returns the new generation's number.
//
// Everything that can fail happens before the swap: the upstream pools are
// built (an upstream whose definition is unchanged keeps its pool, so its
// connections and health state carry over), a changed server.listen or
// admin.listen address is bound, and the TLS certificate is read again. On
// any error nothing changes and chains.Closer is not touched: the caller still
// owns it.
//
// After the swap, requests already running finish on the old generation;
// once the last of them has, its chains' closer is closed and the pools no
// other generation uses close their idle connections. WebSockets keep
// running and take their route's chain from the current generation for
// each message; a session whose route or upstream target is gone, or which
// relays raw bytes on a route that now has message hooks, is closed with
// 1001 after server.reload_grace. A new listen address serves before the
// old one stops accepting; connections accepted on the old one live on.
// Server timeouts are fixed when Run starts: changes to them are logged and
// take effect at the next start.
//
// # Errors
//
// A build, bind or certificate error, or a closed proxy.
func (p *Proxy) Apply(cfg *config.Config, chains Chains) (uint64, error) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return 0, errors.New("host: proxy is closed")
	}
	old := p.gen.Load()
	g, err := p.build(cfg, chains.Routes, old)
	if err != nil {
		return 0, err
	}
	lc, err := p.prepareListeners(old.cfg, cfg)
	if err != nil {
		p.unrefPools(g)
		return 0, err
	}
	p.genSeq++
	g.num, g.loadedAt, g.closer = p.genSeq, time.Now(), chains.Closer
	p.gen.Store(g)
	p.commitListeners(lc)
	if s, o := cfg.Server, old.cfg.Server; s.ReadHeaderTimeout != o.ReadHeaderTimeout || s.ReadTimeout != o.ReadTimeout ||
		s.WriteTimeout != o.WriteTimeout || s.IdleTimeout != o.IdleTimeout || s.MaxHeaderBytes != o.MaxHeaderBytes {
		p.log.Warn("host: server timeouts and max_header_bytes take effect at the next start")
	}
	p.reconcileSessions(old, g)
	p.retire(old, g)
	return g.num, nil
}

// Generation returns the number of the generation serving now (1 for the
// one New built) and when it was swapped in.
func (p *Proxy) Generation() (uint64, time.Time) {
	g := p.gen.Load()
	return g.num, g.loadedAt
}

// build makes a generation from cfg. An upstream whose definition equals
// that of prev's pool of the same name reuses the pool: its transport keeps
// its idle connections and its health checker and target states carry on,
// so a reload does not cold-start upstreams. Every pool counts the
// generations that use it and closes when the last one is retired.
func (p *Proxy) build(cfg *config.Config, chains map[string]filter.Chain, prev *generation) (*generation, error) {
	g := &generation{
		cfg:     cfg,
		routes:  make(map[string]*route),
		pools:   make(map[string]*pool),
		drained: make(chan struct{}),
	}
	for _, uc := range cfg.Upstreams {
		if prev != nil {
			if pl := prev.pools[uc.Name]; pl != nil && reflect.DeepEqual(pl.cfg, uc) {
				pl.refs.Add(1)
				g.pools[uc.Name] = pl
				continue
			}
		}
		pl, err := newPool(uc, p)
		if err != nil {
			p.unrefPools(g)
			return nil, fmt.Errorf("host: upstream %q: %w", uc.Name, err)
		}
		pl.refs.Add(1)
		g.pools[uc.Name] = pl
	}
	var rs []*route
	for _, rc := range cfg.Routes {
		r := newRoute(rc, g.pools, chains[rc.Name])
		if rc.Upstream != "" && r.pool == nil {
			p.unrefPools(g)
			return nil, fmt.Errorf("host: route %q: no upstream named %q", rc.Name, rc.Upstream)
		}
		g.routes[rc.Name] = r
		rs = append(rs, r)
	}
	g.router = newRouter(rs)
	return g, nil
}

// unrefPools drops g's hold on its pools, closing those no other generation
// uses.
func (p *Proxy) unrefPools(g *generation) {
	for _, pl := range g.pools {
		pl.unref()
	}
}

// acquire returns the current generation, counted as in use.
func (p *Proxy) acquire() *generation {
	for {
		g := p.gen.Load()
		g.inflight.Add(1)
		if !g.retired.Load() {
			return g
		}
		// Swapped out between Load and Add: use the new one.
		p.release(g)
	}
}

func (p *Proxy) release(g *generation) {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.drainOnce.Do(func() { close(g.drained) })
	}
}

// retire stops the health checks of old's pools that cur does not reuse,
// and once the requests and sessions that hold old have finished, releases
// its chains and its hold on its pools. Nothing waits for a finalizer.
func (p *Proxy) retire(old, cur *generation) {
	old.retired.Store(true)
	for name, pl := range old.pools {
		if cur.pools[name] != pl {
			pl.stopChecks()
		}
	}
	if old.inflight.Load() == 0 {
		old.drainOnce.Do(func() { close(old.drained) })
	}
	go func() {
		<-old.drained
		p.unrefPools(old)
		if old.closer != nil {
			if err := old.closer.Close(); err != nil {
				p.log.Warn("host: releasing a retired generation", "generation", old.num, "err", err)
			}
		}
	}()
}
