package host

import (
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/testkit"
)

// An upstream whose definition does not change keeps its pool (idle
// connections, health state) across generations; a changed one gets a new
// pool, and the old one closes once no generation uses it.
func TestApplyReusesUnchangedUpstreams(t *testing.T) {
	backend := testkit.NewWSBackend(t).Server.URL
	conf := func(target, timeout string) string {
		return upstreamConf(target, `response_timeout = "`+timeout+`"`)
	}
	px := pxStart(t, conf(backend, "5s"), nil)
	pool := func() *pool { return px.gen.Load().pools["u"] }
	first := pool()
	if _, err := px.Apply(mustParse(t, "[server]\nlisten = \"127.0.0.1:0\"\n"+conf(backend, "5s")), Chains{}); err != nil {
		t.Fatal(err)
	}
	if pool() != first {
		t.Fatal("an unchanged upstream got a new pool")
	}
	other := testkit.NewWSBackend(t).Server.URL
	if _, err := px.Apply(mustParse(t, "[server]\nlisten = \"127.0.0.1:0\"\n"+conf(other, "5s")), Chains{}); err != nil {
		t.Fatal(err)
	}
	if pool() == first {
		t.Fatal("a changed upstream kept its pool")
	}
	testkit.Eventually(t, 2*time.Second, "the old pool closed", func() bool { return first.refs.Load() == 0 })
}
