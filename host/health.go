package host

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// healthChecker probes every target of a pool on its own schedule and moves
// targets out after unhealthy_threshold failures in a row and back in after
// healthy_threshold successes.
type healthChecker struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startHealthChecks(pl *pool) *healthChecker {
	ctx, cancel := context.WithCancel(context.Background())
	hc := &healthChecker{cancel: cancel}
	h := pl.cfg.Health
	// Checks use fresh connections, not the proxy's pool: a target that no
	// longer accepts connections must fail even while old ones live on.
	tr := upstream.NewTransport(pl.cfg)
	tr.DisableKeepAlives = true
	client := &http.Client{
		Transport:     tr,
		Timeout:       h.Timeout.Duration,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, t := range pl.targets {
		u := *t.url
		u.Path = strings.TrimSuffix(u.Path, "/") + h.Path
		u.RawPath = ""
		hc.wg.Add(1)
		go func() {
			defer hc.wg.Done()
			defer tr.CloseIdleConnections()
			var ok, bad int
			tick := time.NewTicker(h.Interval.Duration)
			defer tick.Stop()
			for {
				// Probe at once, then every interval.
				healthy := probe(ctx, client, u.String())
				if ctx.Err() != nil {
					return
				}
				if healthy {
					ok, bad = ok+1, 0
					if ok == h.HealthyThreshold && !t.healthy.Load() {
						t.healthy.Store(true)
						pl.log.Info("target healthy again", "target", t.url.String())
					}
				} else {
					ok, bad = 0, bad+1
					if bad == h.UnhealthyThreshold && t.healthy.Load() {
						t.healthy.Store(false)
						pl.log.Warn("target unhealthy", "target", t.url.String(), "failures", bad)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return hc
}

// probe reports whether GET url answers 2xx or 3xx in time.
func probe(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// stop ends every check and waits for the goroutines to return.
func (hc *healthChecker) stop() {
	hc.cancel()
	hc.wg.Wait()
}
